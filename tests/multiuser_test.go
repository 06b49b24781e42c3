package tests

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cred is a set of process credentials to act as.
type cred struct {
	uid, gid uint32
	groups   []uint32
}

// Test users of the permission tests. They need no passwd entry: the
// kernel checks numbers.
var (
	alice = cred{uid: 61001, gid: 61001, groups: []uint32{61001, 61010}}
	bob   = cred{uid: 61002, gid: 61002, groups: []uint32{61002}}
)

// teamGID is a group alice is in and bob is not.
const teamGID = 61010

// asUser runs fn on an OS thread of its own that has switched to c; the
// thread is thrown away afterwards, so the test stays root. Credentials are
// per thread in the kernel; the raw syscalls change only this thread (the
// syscall package's Setuid would change all of them).
func asUser(c cred, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		groups := c.groups
		var p unsafe.Pointer
		if len(groups) > 0 {
			p = unsafe.Pointer(&groups[0])
		}
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETGROUPS, uintptr(len(groups)), uintptr(p), 0); e != 0 {
			errc <- fmt.Errorf("setgroups: %w", e)
			return
		}
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESGID, uintptr(c.gid), uintptr(c.gid), uintptr(c.gid)); e != 0 {
			errc <- fmt.Errorf("setresgid: %w", e)
			return
		}
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, uintptr(c.uid), uintptr(c.uid), uintptr(c.uid)); e != 0 {
			errc <- fmt.Errorf("setresuid: %w", e)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// exposeToAll lets every uid walk down to dir: t.TempDir makes 0700 dirs.
func exposeToAll(t testing.TB, dir string) {
	t.Helper()
	tmp := filepath.Clean(os.TempDir()) + string(filepath.Separator)
	for d := filepath.Dir(dir); strings.HasPrefix(d, tmp); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// writeAs appends data to path as c, without creating it.
func writeAs(c cred, path, data string) error {
	return asUser(c, func() error {
		fd, err := unix.Open(path, unix.O_WRONLY|unix.O_APPEND, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		_, err = unix.Write(fd, []byte(data))
		return err
	})
}

// createAs creates path (O_EXCL) with perm as c and writes data into it.
func createAs(c cred, path string, perm uint32, data string) error {
	return asUser(c, func() error {
		fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, perm)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		// The umask took bits off perm.
		if err := unix.Fchmod(fd, perm); err != nil {
			return err
		}
		_, err = unix.Write(fd, []byte(data))
		return err
	})
}

// statOf stats path as root.
func statOf(t testing.TB, path string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st
}

// TestAllowOtherPermissions drives a mount shared with -o allow_other as
// two unprivileged uids and root: the kernel (default_permissions) checks
// every access against the owners and modes taskerfs stores, refusing
// where POSIX requires it and allowing where POSIX allows it.
func TestAllowOtherPermissions(t *testing.T) {
	requireMountable(t)
	m := mountFS(t, newDataDir(t), "--allow-other")
	exposeToAll(t, m.Dir)
	s := m.Path("sessions")
	home, sticky, team := filepath.Join(s, "alice"), filepath.Join(s, "sticky"), filepath.Join(s, "team")
	for _, d := range []struct {
		path     string
		mode     uint32
		uid, gid int
	}{
		{home, 0o755, int(alice.uid), int(alice.gid)},
		{sticky, 0o1777, 0, 0},
		{team, 0o2777, 0, teamGID},
	} {
		mustMkdirAll(t, d.path)
		if err := os.Chown(d.path, d.uid, d.gid); err != nil {
			t.Fatal(err)
		}
		if err := unix.Chmod(d.path, d.mode); err != nil {
			t.Fatal(err)
		}
	}
	private := filepath.Join(home, "private")

	type step struct {
		name string
		do   func() error
		want error // nil: allowed
	}
	steps := []step{
		{"alice creates a file in her dir", func() error { return createAs(alice, private, 0o600, "secret\n") }, nil},
		{"bob cannot read alice's 0600 file", func() error {
			return asUser(bob, func() error { _, err := os.ReadFile(private); return err })
		}, syscall.EACCES},
		{"bob cannot create in alice's 0755 dir", func() error { return createAs(bob, filepath.Join(home, "bob"), 0o644, "") }, syscall.EACCES},
		{"bob cannot unlink in alice's dir", func() error { return asUser(bob, func() error { return unix.Unlink(private) }) }, syscall.EACCES},
		{"bob cannot rename out of alice's dir", func() error {
			return asUser(bob, func() error { return unix.Rename(private, filepath.Join(sticky, "stolen")) })
		}, syscall.EACCES},
		{"bob cannot chmod alice's file", func() error { return asUser(bob, func() error { return unix.Chmod(private, 0o666) }) }, syscall.EPERM},
		{"bob cannot chown alice's file to himself", func() error {
			return asUser(bob, func() error { return unix.Chown(private, int(bob.uid), -1) })
		}, syscall.EPERM},
		{"bob cannot set alice's file times", func() error {
			return asUser(bob, func() error {
				return unix.UtimesNano(private, []unix.Timespec{unix.NsecToTimespec(1e9), unix.NsecToTimespec(1e9)})
			})
		}, syscall.EPERM},
		{"bob cannot truncate alice's file", func() error { return asUser(bob, func() error { return unix.Truncate(private, 0) }) }, syscall.EACCES},
		{"alice opens her file to others' reading", func() error { return asUser(alice, func() error { return unix.Chmod(private, 0o644) }) }, nil},
		{"bob reads alice's 0644 file", func() error {
			return asUser(bob, func() error {
				b, err := os.ReadFile(private)
				if err == nil && string(b) != "secret\n" {
					err = fmt.Errorf("read %q", b)
				}
				return err
			})
		}, nil},
		{"bob cannot write alice's 0644 file", func() error { return writeAs(bob, private, "bob was here\n") }, syscall.EACCES},
		{"bob cannot set a user xattr on alice's 0644 file", func() error {
			return asUser(bob, func() error { return unix.Setxattr(private, "user.tag", []byte("x"), 0) })
		}, syscall.EACCES},
		{"alice makes her file writable by all", func() error { return asUser(alice, func() error { return unix.Chmod(private, 0o666) }) }, nil},
		{"bob writes alice's 0666 file", func() error { return writeAs(bob, private, "bob was here\n") }, nil},
		{"alice cannot give her file away", func() error {
			return asUser(alice, func() error { return unix.Chown(private, int(bob.uid), -1) })
		}, syscall.EPERM},
		{"alice cannot chgrp to a group she is not in", func() error {
			return asUser(alice, func() error { return unix.Chown(private, -1, int(bob.gid)) })
		}, syscall.EPERM},
		{"alice may chgrp to her other group", func() error {
			return asUser(alice, func() error { return unix.Chown(private, -1, teamGID) })
		}, nil},
		{"root may chown to anyone", func() error { return os.Chown(private, int(bob.uid), int(bob.gid)) }, nil},
		{"alice can no longer chmod what bob owns", func() error { return asUser(alice, func() error { return unix.Chmod(private, 0o600) }) }, syscall.EPERM},

		// Sticky directory: only a file's owner (or the dir's, or root)
		// may remove or rename it.
		{"alice creates in the sticky dir", func() error { return createAs(alice, filepath.Join(sticky, "a"), 0o666, "a\n") }, nil},
		{"bob writes alice's 0666 file in the sticky dir", func() error { return writeAs(bob, filepath.Join(sticky, "a"), "b\n") }, nil},
		{"bob cannot unlink alice's file in the sticky dir", func() error {
			return asUser(bob, func() error { return unix.Unlink(filepath.Join(sticky, "a")) })
		}, syscall.EPERM},
		{"bob cannot rename alice's file in the sticky dir", func() error {
			return asUser(bob, func() error { return unix.Rename(filepath.Join(sticky, "a"), filepath.Join(sticky, "mine")) })
		}, syscall.EPERM},
		{"bob creates his own file in the sticky dir", func() error { return createAs(bob, filepath.Join(sticky, "b"), 0o644, "b\n") }, nil},
		{"bob cannot rename over alice's file in the sticky dir", func() error {
			return asUser(bob, func() error { return unix.Rename(filepath.Join(sticky, "b"), filepath.Join(sticky, "a")) })
		}, syscall.EPERM},
		{"alice cannot unlink bob's file in the sticky dir", func() error {
			return asUser(alice, func() error { return unix.Unlink(filepath.Join(sticky, "b")) })
		}, syscall.EPERM},
		{"bob renames his own file in the sticky dir", func() error {
			return asUser(bob, func() error { return unix.Rename(filepath.Join(sticky, "b"), filepath.Join(sticky, "b2")) })
		}, nil},
		{"bob unlinks his own file in the sticky dir", func() error {
			return asUser(bob, func() error { return unix.Unlink(filepath.Join(sticky, "b2")) })
		}, nil},
		{"root unlinks alice's file in the sticky dir", func() error { return os.Remove(filepath.Join(sticky, "a")) }, nil},

		// Set-group-ID directory: new entries take its group.
		{"bob creates in the setgid dir", func() error { return createAs(bob, filepath.Join(team, "f"), 0o644, "") }, nil},
		{"bob makes a dir in the setgid dir", func() error {
			return asUser(bob, func() error { return unix.Mkdir(filepath.Join(team, "d"), 0o755) })
		}, nil},
	}
	for _, st := range steps {
		err := st.do()
		switch {
		case st.want == nil && err != nil:
			t.Errorf("%s: %v, want success", st.name, err)
		case st.want != nil && !errors.Is(err, st.want):
			t.Errorf("%s: %v, want %v", st.name, err, st.want)
		}
	}

	if got := statOf(t, private); got.Uid != bob.uid || got.Gid != bob.gid {
		t.Errorf("private: owner %d:%d, want %d:%d", got.Uid, got.Gid, bob.uid, bob.gid)
	}
	if got := string(mustRead(t, private)); got != "secret\nbob was here\n" {
		t.Errorf("private = %q", got)
	}
	if st := statOf(t, filepath.Join(team, "f")); st.Uid != bob.uid || st.Gid != teamGID {
		t.Errorf("file in setgid dir: owner %d:%d, want %d:%d", st.Uid, st.Gid, bob.uid, teamGID)
	}
	if st := statOf(t, filepath.Join(team, "d")); st.Gid != teamGID || st.Mode&unix.S_ISGID == 0 {
		t.Errorf("dir in setgid dir: gid %d mode %o, want gid %d and setgid", st.Gid, st.Mode, teamGID)
	}
	m.Alive()
	m.Unmount()
}

// TestSetuidClearing checks that writes, truncation and chown by anyone
// without CAP_FSETID clear the set-user-ID bit (and set-group-ID with group
// execute), while root's writes keep them. The kernel turns the clearing
// into a SETATTR of the mode, which taskerfs must store.
func TestSetuidClearing(t *testing.T) {
	requireMountable(t)
	m := mountFS(t, newDataDir(t), "--allow-other")
	exposeToAll(t, m.Dir)
	dir := m.Path("sessions", "suid")
	mustMkdirAll(t, dir)
	if err := unix.Chmod(dir, 0o1777); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		mode  uint32 // set by the owner (alice) first
		owner cred
		act   func(path string) error
		want  uint32
	}{
		{name: "owner writes", mode: 0o6755, owner: alice,
			act: func(p string) error { return writeAs(alice, p, "x") }, want: 0o755},
		{name: "other user writes", mode: 0o6777, owner: alice,
			act: func(p string) error { return writeAs(bob, p, "x") }, want: 0o777},
		{name: "setgid without group exec stays", mode: 0o2766, owner: alice,
			act: func(p string) error { return writeAs(bob, p, "x") }, want: 0o2766},
		{name: "root writes", mode: 0o6755, owner: alice,
			act: func(p string) error { return writeAs(cred{}, p, "x") }, want: 0o6755},
		{name: "owner truncates on open", mode: 0o4755, owner: alice,
			act: func(p string) error {
				return asUser(alice, func() error {
					fd, err := unix.Open(p, unix.O_WRONLY|unix.O_TRUNC, 0)
					if err == nil {
						unix.Close(fd)
					}
					return err
				})
			}, want: 0o755},
		{name: "owner truncates", mode: 0o4755, owner: alice,
			act: func(p string) error { return asUser(alice, func() error { return unix.Truncate(p, 1) }) }, want: 0o755},
		{name: "root chowns", mode: 0o6755, owner: alice,
			act: func(p string) error { return os.Chown(p, int(bob.uid), -1) }, want: 0o755},
		{name: "owner chgrps", mode: 0o6755, owner: alice,
			act: func(p string) error { return asUser(alice, func() error { return unix.Chown(p, -1, teamGID) }) }, want: 0o755},
		{name: "setgid by a non-member is dropped", mode: 0o755, owner: alice,
			act: func(p string) error {
				if err := os.Chown(p, -1, int(bob.gid)); err != nil {
					return err
				}
				return asUser(alice, func() error { return unix.Chmod(p, 0o2755) })
			}, want: 0o755},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("f%d", i))
			if err := createAs(tt.owner, path, 0o644, "start\n"); err != nil {
				t.Fatal(err)
			}
			if err := asUser(tt.owner, func() error { return unix.Chmod(path, tt.mode) }); err != nil {
				t.Fatal(err)
			}
			if got := statOf(t, path).Mode & 0o7777; got != tt.mode {
				t.Fatalf("mode after chmod %o: %o", tt.mode, got)
			}
			if err := tt.act(path); err != nil {
				t.Fatalf("act: %v", err)
			}
			if got := statOf(t, path).Mode & 0o7777; got != tt.want {
				t.Errorf("mode %o, want %o", got, tt.want)
			}
		})
	}
	// The cleared modes are stored, not only in the kernel's cache.
	want := map[string]uint32{}
	for i := range tests {
		p := filepath.Join(dir, fmt.Sprintf("f%d", i))
		want[p] = statOf(t, p).Mode & 0o7777
	}
	m.Remount()
	for p, mode := range want {
		if got := statOf(t, p).Mode & 0o7777; got != mode {
			t.Errorf("%s: mode %o after remount, want %o", filepath.Base(p), got, mode)
		}
	}
	m.Unmount()
}

// TestWithoutAllowOther checks that only the mounting user may use a
// mount without allow_other.
func TestWithoutAllowOther(t *testing.T) {
	requireMountable(t)
	m := mountFS(t, newDataDir(t))
	exposeToAll(t, m.Dir)
	for _, c := range []cred{alice, bob} {
		err := asUser(c, func() error {
			var st unix.Stat_t
			return unix.Stat(m.Path("sessions"), &st)
		})
		if !errors.Is(err, syscall.EACCES) {
			t.Errorf("uid %d: stat %v, want EACCES", c.uid, err)
		}
	}
	m.Unmount()
}

// testUser is a login created for the test with useradd.
type testUser struct {
	name     string
	uid, gid uint32
	home     string // owned by the user, holds a copy of the binary
	bin      string
}

// newTestUser adds a system user and removes it when the test ends.
func newTestUser(t *testing.T) *testUser {
	t.Helper()
	requireTool(t, "useradd", "userdel")
	suffix := make([]byte, 4)
	rand.Read(suffix)
	name := "tfs" + hex.EncodeToString(suffix)
	home, err := os.MkdirTemp("", "taskerfs-user-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	if out, err := exec.Command("useradd", "--no-create-home", "--home-dir", home, "--shell", "/usr/sbin/nologin", "--user-group", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		// The user's daemon may still be flushing after its unmount, and a
		// uid-switched thread of this test may not have ended yet: give
		// them time, then remove the user regardless (-f kills nothing).
		for i := 0; i < 25; i++ {
			if exec.Command("userdel", name).Run() == nil {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		if out, err := exec.Command("userdel", "-f", name).CombinedOutput(); err != nil {
			t.Errorf("userdel -f %s: %v\n%s", name, err, out)
		}
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	tu := &testUser{name: name, uid: uint32(uid), gid: uint32(gid), home: home, bin: filepath.Join(home, "bin", "taskerfs")}
	// A copy the user can run wherever TASKERFS_BIN lives.
	mustMkdirAll(t, filepath.Dir(tu.bin))
	src, err := os.Open(taskerfsBin)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(tu.bin, os.O_WRONLY|os.O_CREATE, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{home, filepath.Join(home, "bin")} {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return tu
}

// cred is the user's credentials.
func (u *testUser) cred() cred { return cred{uid: u.uid, gid: u.gid, groups: []uint32{u.gid}} }

// run runs the user's copy of taskerfs as the user and returns its output.
func (u *testUser) run(args ...string) (string, error) {
	cmd := exec.Command(u.bin, args...)
	cmd.Dir = u.home
	cmd.Env = []string{"HOME=" + u.home, "USER=" + u.name, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: u.uid, Gid: u.gid, Groups: []uint32{u.gid}}}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// setDevFuseMode changes /dev/fuse's mode until the test ends.
func setDevFuseMode(t *testing.T, mode os.FileMode) {
	t.Helper()
	st, err := os.Stat("/dev/fuse")
	if err != nil {
		t.Fatal(err)
	}
	orig := st.Mode().Perm()
	if orig == mode {
		return
	}
	if err := os.Chmod("/dev/fuse", mode); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Chmod("/dev/fuse", orig); err != nil {
			t.Errorf("restore /dev/fuse mode %o: %v", orig, err)
		}
	})
}

// requireSetuidFusermount skips t unless fusermount3 can mount for users.
func requireSetuidFusermount(t *testing.T) {
	t.Helper()
	p, err := exec.LookPath("fusermount3")
	if err != nil {
		cannotRun(t, "fusermount3 is not installed (.ci/run installs fuse3)")
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode()&os.ModeSetuid == 0 || st.Sys().(*syscall.Stat_t).Uid != 0 {
		cannotRun(t, p+" is not setuid root: normal users cannot mount here")
	}
}

// TestNonRootMount has a normal user mount a data dir through fusermount3,
// write, unmount and mount again, and checks the one-line messages for
// what a user's mount may lack.
func TestNonRootMount(t *testing.T) {
	requireMountable(t)
	requireSetuidFusermount(t)
	u := newTestUser(t)
	data := filepath.Join(u.home, "data")
	mnt := filepath.Join(u.home, "mnt")
	if out, err := u.run("--help"); err != nil {
		t.Fatalf("the user cannot run taskerfs: %v\n%s", err, out)
	}
	cleanupDaemon(t, data, mnt)

	t.Run("no /dev/fuse access", func(t *testing.T) {
		setDevFuseMode(t, 0o600)
		out, err := u.run("mount", "--background", "--data", data, mnt)
		if err == nil || !strings.Contains(out, "no read-write access to /dev/fuse") || strings.Count(strings.TrimSpace(out), "\n") > 0 {
			t.Errorf("got %v and %q; want one line about /dev/fuse", err, out)
		}
	})

	// Most distributions ship /dev/fuse 0666; this machine's is 0600.
	setDevFuseMode(t, 0o666)

	mountAsUser := func() int {
		t.Helper()
		if out, err := u.run("mount", "--background", "--data", data, mnt); err != nil {
			t.Fatalf("mount as %s: %v\n%s", u.name, err, out)
		}
		// Root cannot stat a user's mount without allow_other: ask the table.
		if mountInfoLine(t, mnt) == "" {
			t.Fatalf("not mounted after mount --background returned")
		}
		return daemonPid(t, data)
	}
	pid := mountAsUser()
	if line := mountInfoLine(t, mnt); !strings.Contains(line, fmt.Sprintf("user_id=%d,", u.uid)) {
		t.Errorf("mount table entry %q: want user_id=%d", line, u.uid)
	}
	note := filepath.Join(mnt, "sessions", "note.txt")
	if err := createAs(u.cred(), note, 0o644, "from a normal user\n"); err != nil {
		t.Fatalf("user writes: %v", err)
	}
	// A daemon that is not root saves its user's queries: mkdir and rmdir
	// in saved/ are plain operations (nothing reads /proc).
	err := asUser(u.cred(), func() error {
		q := filepath.Join(mnt, "saved", "normal user")
		if err := os.Mkdir(q, 0o755); err != nil {
			return fmt.Errorf("mkdir saved/: %w", err)
		}
		for _, dir := range []string{"saved", "search"} {
			names, err := linkNamesErr(filepath.Join(mnt, dir))
			if err != nil || !slices.Contains(names, "normal user") {
				return fmt.Errorf("ls %s/ = %q, %v after mkdir", dir, names, err)
			}
		}
		return os.Remove(q)
	})
	if err != nil {
		t.Errorf("user's saved query on their own mount: %v", err)
	}
	if st := statOf(t, filepath.Join(data, "lock")); st.Uid != u.uid {
		t.Errorf("data dir files owned by %d, want the user %d", st.Uid, u.uid)
	}
	// Without allow_other even root is kept out of a user's mount.
	if _, err := os.Stat(note); !errors.Is(err, syscall.EACCES) {
		t.Errorf("root stat on a user mount without allow_other: %v, want EACCES", err)
	}
	if out, err := u.run("umount", mnt); err != nil {
		t.Fatalf("umount as the user: %v\n%s", err, out)
	}
	if !processGone(pid) || mountInfoLine(t, mnt) != "" {
		t.Fatalf("user's umount returned before the daemon finished")
	}

	mountAsUser()
	err = asUser(u.cred(), func() error {
		b, err := os.ReadFile(note)
		if err == nil && string(b) != "from a normal user\n" {
			err = fmt.Errorf("read %q", b)
		}
		return err
	})
	if err != nil {
		t.Errorf("after remount: %v", err)
	}
	if out, err := u.run("umount", mnt); err != nil {
		t.Fatalf("umount as the user: %v\n%s", err, out)
	}

	t.Run("allow_other and fstab user mounts", func(t *testing.T) {
		testUserNamespaceMounts(t, u, data, mnt)
	})
}

// testUserNamespaceMounts runs, in a private mount namespace with its own
// /etc/fuse.conf and /etc/fstab: allow_other refused without
// user_allow_other and working with it, then a `user` fstab line mounted
// and unmounted by the user with mount(8) and umount(8).
func testUserNamespaceMounts(t *testing.T, u *testUser, data, mnt string) {
	requireTool(t, "unshare", "setpriv", "mount", "umount", "mount.fuse3")
	conf := filepath.Join(u.home, "fuse.conf")
	mustWrite(t, conf, []byte("# no user_allow_other here\n#user_allow_other\n"))
	confAllow := filepath.Join(u.home, "fuse.conf.allow")
	mustWrite(t, confAllow, []byte("user_allow_other\n"))
	fstab := filepath.Join(u.home, "fstab")
	mustWrite(t, fstab, []byte(fmt.Sprintf("%s %s fuse.taskerfs user,noauto 0 0\n", data, mnt)))
	script := `
set -eu
as_user() { setpriv --reuid="$USER_UID" --regid="$USER_GID" --clear-groups env -i HOME="$HOME_DIR" PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
gone() { while [ -e /proc/$1 ] && [ "$(sed 's/.*) //' /proc/$1/stat | cut -c1)" != Z ]; do sleep 0.02; done; }
trap 'umount -l "$MNT" 2>/dev/null || true' EXIT

mount --bind "$CONF" /etc/fuse.conf
if out=$(as_user "$BIN" mount --background --allow-other --data "$DATA" "$MNT" 2>&1); then
	echo "allow_other mounted without user_allow_other"; exit 1
fi
echo "refused: $out"

mount --bind "$CONF_ALLOW" /etc/fuse.conf
as_user "$BIN" mount --background --allow-other --data "$DATA" "$MNT"
grep " $MNT " /proc/self/mountinfo
cat "$MNT/sessions/note.txt"
as_user "$BIN" umount "$MNT"

mount --bind "$FSTAB" /etc/fstab
mount -t tmpfs tmpfs /usr/local/sbin
ln -s "$BIN" /usr/local/sbin/taskerfs
as_user mount "$MNT"
grep " $MNT " /proc/self/mountinfo
as_user sh -c 'echo "through fstab" >> "$0"' "$MNT/sessions/note.txt"
pid=$(cat "$DATA/taskerfs.pid")
as_user umount "$MNT"
gone $pid
echo "fstab user mount done"
`
	ctx, cancel := context.WithTimeout(context.Background(), mountDeadline+unmountDeadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "-m", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "USER_UID="+strconv.Itoa(int(u.uid)), "USER_GID="+strconv.Itoa(int(u.gid)),
		"HOME_DIR="+u.home, "BIN="+u.bin, "DATA="+data, "MNT="+mnt, "CONF="+conf, "CONF_ALLOW="+confAllow, "FSTAB="+fstab)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("namespace script: %v\n%s\ntaskerfs.log:\n%s", err, out, readIfExists(filepath.Join(data, "taskerfs.log")))
	}
	t.Logf("namespace script:\n%s", out)
	for _, want := range []string{
		"refused: taskerfs: allow_other needs a `user_allow_other` line in /etc/fuse.conf",
		fmt.Sprintf("user_id=%d,", u.uid), "allow_other",
		"from a normal user", // root read it through allow_other
		"nosuid,nodev,noexec", "fstab user mount done",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("script output lacks %q", want)
		}
	}
	m := mountFS(t, data)
	if got := string(mustRead(t, m.Path("sessions", "note.txt"))); got != "from a normal user\nthrough fstab\n" {
		t.Errorf("note.txt = %q", got)
	}
	m.Unmount()
}
