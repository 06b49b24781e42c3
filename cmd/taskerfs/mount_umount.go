package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// mountEntry is one line of /proc/self/mountinfo.
type mountEntry struct {
	mountpoint string
	fstype     string
	source     string
}

// parseMountinfo reads the mount table in /proc/self/mountinfo format.
func parseMountinfo(r io.Reader) ([]mountEntry, error) {
	var out []mountEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		fields := strings.Fields(sc.Text())
		sep := -1
		for i := 6; i < len(fields); i++ {
			if fields[i] == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 5 || sep < 0 || sep+2 >= len(fields) {
			continue
		}
		out = append(out, mountEntry{
			mountpoint: unescapeMountinfo(fields[4]),
			fstype:     fields[sep+1],
			source:     unescapeMountinfo(fields[sep+2]),
		})
	}
	return out, sc.Err()
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// taskerfsDataDir returns the data dir mounted at mnt according to the
// mount table, "" when mnt is not a taskerfs mount. The last entry wins:
// it is the one on top.
func taskerfsDataDir(entries []mountEntry, mnt string) string {
	dir := ""
	for _, e := range entries {
		if e.mountpoint != mnt {
			continue
		}
		dir = ""
		if e.fstype == "fuse.taskerfs" && filepath.IsAbs(e.source) {
			dir = e.source
		}
	}
	return dir
}

// canonicalMountpoint resolves symlinks in mnt the way the mount table
// shows it, so that `umount` through a symlinked path still finds (and
// waits for) the daemon. The mount itself is not entered unless mnt's last
// component is a symlink: a hung daemon must not hang the unmount.
func canonicalMountpoint(mnt string) string {
	parent, err := filepath.EvalSymlinks(filepath.Dir(mnt))
	if err != nil {
		return mnt
	}
	p := filepath.Join(parent, filepath.Base(mnt))
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		entries, _ := parseMountinfo(f)
		f.Close()
		for _, e := range entries {
			if e.mountpoint == p {
				return p
			}
		}
	}
	if st, err := os.Lstat(p); err == nil && st.Mode()&os.ModeSymlink != 0 {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return real
		}
	}
	return p
}

// daemonHandle follows one daemon process until it exits.
type daemonHandle struct {
	pid     int
	pidfd   int    // -1 when pidfd_open is unavailable
	dataDir string // the data dir it serves
}

// findDaemon returns the daemon serving mnt, nil if it cannot be known
// (not a taskerfs mount, no pid file).
func findDaemon(mnt string) *daemonHandle {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	entries, err := parseMountinfo(f)
	f.Close()
	if err != nil {
		return nil
	}
	dataDir := taskerfsDataDir(entries, mnt)
	if dataDir == "" {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(dataDir, pidFileName))
	if err != nil {
		return nil
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return nil
	}
	// A pidfd pins this very process: a recycled pid cannot fool the wait.
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if err != nil {
		fd = -1
	}
	d := &daemonHandle{pid: pid, pidfd: fd, dataDir: dataDir}
	// A pid file left by a killed daemon may name a recycled pid: only a
	// process holding the data dir's lock is its daemon.
	if !holdsFile(pid, filepath.Join(dataDir, "lock")) {
		d.close()
		return nil
	}
	return d
}

// holdsFile reports whether process pid has path open.
func holdsFile(pid int, path string) bool {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real // /proc shows the resolved path
	}
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return false
	}
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join(fdDir, fd.Name())); err == nil && target == path {
			return true
		}
	}
	return false
}

// wait returns once the daemon has exited, that is, flushed everything.
func (d *daemonHandle) wait() {
	told := false
	for !d.exited(time.Second) {
		if !told {
			fmt.Fprintf(os.Stderr, "taskerfs: waiting for the daemon (pid %d) to flush and exit\n", d.pid)
			told = true
		}
	}
}

// exited waits up to timeout and reports whether the daemon is gone.
func (d *daemonHandle) exited(timeout time.Duration) bool {
	if d.pidfd >= 0 {
		fds := []unix.PollFd{{Fd: int32(d.pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(timeout/time.Millisecond))
		if err == nil || !errors.Is(err, unix.EINTR) {
			return n > 0 || err != nil
		}
		return false
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if unix.Kill(d.pid, 0) == unix.ESRCH {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func (d *daemonHandle) close() {
	if d.pidfd >= 0 {
		unix.Close(d.pidfd)
	}
}
