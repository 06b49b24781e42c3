package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// fuseConf is read by fusermount3 for user_allow_other.
const fuseConf = "/etc/fuse.conf"

// checkFuseAccess says in one line what would stop a mount before FUSE
// fails with a bare errno. Root needs /dev/fuse only; a normal user mounts
// through fusermount3, which must be setuid root and opens /dev/fuse as
// the user, and allow_other needs user_allow_other in /etc/fuse.conf.
func checkFuseAccess(allowOther bool) error {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return errors.New("/dev/fuse is missing: install fuse3 and load the fuse module (modprobe fuse)")
	}
	if os.Geteuid() == 0 {
		return nil
	}
	if err := unix.Access("/dev/fuse", unix.R_OK|unix.W_OK); err != nil {
		return fmt.Errorf("no read-write access to /dev/fuse (%s) for uid %d: a normal user needs it to mount (an administrator can `chmod 0666 /dev/fuse`, the usual mode)",
			describeFile("/dev/fuse"), os.Geteuid())
	}
	bin := fusermountPath()
	if bin == "" {
		return errors.New("fusermount3 is not installed: a normal user mounts through it (install the fuse3 package)")
	}
	if st, err := os.Stat(bin); err != nil || st.Mode()&os.ModeSetuid == 0 || fileUID(st) != 0 {
		return fmt.Errorf("%s is not setuid root (%s): a normal user cannot mount through it (an administrator can `chmod u+s %s`)",
			bin, describeFile(bin), bin)
	}
	if allowOther {
		f, err := os.Open(fuseConf)
		allowed := false
		if err == nil {
			allowed = fuseConfAllowsOther(f)
			f.Close()
		}
		if !allowed {
			return fmt.Errorf("allow_other needs a `user_allow_other` line in %s when a normal user mounts (ask an administrator, or mount without allow_other)", fuseConf)
		}
	}
	return nil
}

// fuseConfAllowsOther reports whether a fuse.conf enables user_allow_other,
// read as fusermount3 does: one option per line, # starts a comment.
func fuseConfAllowsOther(r io.Reader) bool {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if strings.TrimSpace(line) == "user_allow_other" {
			return true
		}
	}
	return false
}

// fusermountPath finds fusermount3 (or fusermount) as go-fuse does.
func fusermountPath() string {
	for _, name := range []string{"fusermount3", "/bin/fusermount3", "fusermount", "/bin/fusermount"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

func fileUID(st os.FileInfo) uint32 {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return sys.Uid
	}
	return ^uint32(0)
}

// describeFile is "mode 0600, owner 0:0" for an error message.
func describeFile(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return err.Error()
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return st.Mode().String()
	}
	return fmt.Sprintf("mode %04o, owner %d:%d", sys.Mode&0o7777, sys.Uid, sys.Gid)
}
