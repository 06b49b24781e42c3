package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests mount the way people do outside the test harness: with
// --background, with mount(8) and an fstab line, in the form mount.fuse3
// calls, and under systemd's notify protocol.

// daemonPid reads the pid a taskerfs daemon wrote into its data dir.
func daemonPid(t testing.TB, dataDir string) int {
	t.Helper()
	b := mustRead(t, filepath.Join(dataDir, "taskerfs.pid"))
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		t.Fatalf("pid file %q: %v", b, err)
	}
	return pid
}

// processGone reports whether pid has exited; a zombie waiting for its
// new parent (init) to reap it has exited too.
func processGone(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) state ...; comm may hold spaces, so split after ')'.
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// cleanupDaemon makes sure no background daemon of dataDir and no mount
// on mnt outlive the test, whatever the test did.
func cleanupDaemon(t testing.TB, dataDir, mnt string) {
	t.Cleanup(func() {
		if isMountpoint(mnt) || isStale(mnt) {
			lazyUnmount(mnt)
		}
		b, err := os.ReadFile(filepath.Join(dataDir, "taskerfs.pid"))
		if err != nil {
			return
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || processGone(pid) {
			return
		}
		syscall.Kill(pid, syscall.SIGTERM)
		for deadline := time.Now().Add(10 * time.Second); !processGone(pid) && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		if !processGone(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

// waitGone waits for a daemon that is expected to exit, failing the test
// if it does not within unmountDeadline.
func waitGone(t testing.TB, pid int) {
	t.Helper()
	for deadline := time.Now().Add(unmountDeadline); !processGone(pid); {
		if time.Now().After(deadline) {
			t.Fatalf("daemon %d still running %v after unmount", pid, unmountDeadline)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mountInfoLine returns the /proc/self/mountinfo line for mnt, "" if none.
func mountInfoLine(t testing.TB, mnt string) string {
	t.Helper()
	info := string(mustRead(t, "/proc/self/mountinfo"))
	line := ""
	for _, l := range strings.Split(info, "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == mnt {
			line = l
		}
	}
	return line
}

func TestBackgroundMount(t *testing.T) {
	requireMountable(t)
	data := newDataDir(t)
	mnt := filepath.Join(t.TempDir(), "mnt")
	cleanupDaemon(t, data, mnt)

	run(t, "", taskerfsBin, "mount", "--background", "--data", data, mnt)
	// The command has returned: the mount must be there now, unpolled.
	if !isMountpoint(mnt) {
		t.Fatalf("--background returned before %s was mounted", mnt)
	}
	pid := daemonPid(t, data)
	if processGone(pid) {
		t.Fatalf("daemon %d in the pid file is not running", pid)
	}
	if line := mountInfoLine(t, mnt); !strings.Contains(line, " - fuse.taskerfs "+data+" ") {
		t.Errorf("mount table entry %q: want type fuse.taskerfs and source %s", line, data)
	}
	content := randomBytes(71, 3<<20)
	mustMkdirAll(t, filepath.Join(mnt, "sessions", "bg"))
	mustWrite(t, filepath.Join(mnt, "sessions", "bg", "blob.bin"), content)
	mustWrite(t, filepath.Join(mnt, "sessions", "bg", "note.txt"), []byte("written in background mode\n"))

	run(t, "", taskerfsBin, "umount", mnt)
	// `taskerfs umount` returns once the daemon has flushed and exited.
	if !processGone(pid) {
		t.Fatalf("taskerfs umount returned while daemon %d still runs", pid)
	}
	if isMountpoint(mnt) {
		t.Fatalf("%s still mounted", mnt)
	}
	if fileExists(filepath.Join(data, "taskerfs.pid")) {
		t.Errorf("the daemon left its pid file behind")
	}
	logText := string(mustRead(t, filepath.Join(data, "taskerfs.log")))
	for _, want := range []string{"mounted on " + mnt, "everything is on disk"} {
		if !strings.Contains(logText, want) {
			t.Errorf("taskerfs.log lacks %q:\n%s", want, logText)
		}
	}

	m := mountFS(t, data)
	if got := mustRead(t, m.Path("sessions", "bg", "blob.bin")); !bytes.Equal(got, content) {
		t.Errorf("blob.bin differs after the background daemon's unmount (%d bytes, want %d)", len(got), len(content))
	}
	if got := string(mustRead(t, m.Path("sessions", "bg", "note.txt"))); got != "written in background mode\n" {
		t.Errorf("note.txt = %q", got)
	}
	m.Unmount()
}

// TestBackgroundErrors checks that a background mount that cannot start
// exits non-zero with the reason, and leaves no mount and no daemon.
func TestBackgroundErrors(t *testing.T) {
	requireMountable(t)
	tests := []struct {
		name    string
		setup   func(t *testing.T, data, mnt string)
		args    []string
		wantErr string
	}{
		{name: "data dir is a file", wantErr: "not a directory",
			setup: func(t *testing.T, data, mnt string) { mustWrite(t, data, []byte("x")) }},
		{name: "damaged data dir", wantErr: "meta",
			setup: func(t *testing.T, data, mnt string) {
				mustMkdirAll(t, data)
				mustWrite(t, filepath.Join(data, "meta"), []byte("not a database"))
			}},
		{name: "data dir in use", wantErr: "in use",
			setup: func(t *testing.T, data, mnt string) {
				m := mountFS(t, data)
				t.Cleanup(m.Unmount)
			}},
		{name: "mountpoint not empty", wantErr: "not empty",
			setup: func(t *testing.T, data, mnt string) { mustWrite(t, filepath.Join(mustMkdirAll(t, mnt), "x"), nil) }},
		{name: "unknown option", args: []string{"-o", "allow_other,no_such_option"}, wantErr: `unknown mount option "no_such_option"`},
		{name: "bad option value", args: []string{"-o", "max_dirty_bytes=lots"}, wantErr: "max_dirty_bytes=lots"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := newDataDir(t)
			mnt := filepath.Join(t.TempDir(), "mnt")
			cleanupDaemon(t, data, mnt)
			if tt.setup != nil {
				tt.setup(t, data, mnt)
			}
			args := append([]string{"mount", "--background", "--data", data}, tt.args...)
			out, err := runErr("", taskerfsBin, append(args, mnt)...)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() == 0 {
				t.Fatalf("mount --background: %v, want an error exit; output:\n%s", err, out)
			}
			if !strings.Contains(out, tt.wantErr) {
				t.Errorf("output %q does not say %q", out, tt.wantErr)
			}
			if strings.Count(strings.TrimSpace(out), "\n") > 2 {
				t.Errorf("want a short error, got:\n%s", out)
			}
			if isMountpoint(mnt) {
				t.Errorf("%s is mounted after a failed start", mnt)
			}
		})
	}
}

// TestMountHelperForm calls the binary as mount.fuse3 does:
// `taskerfs DATADIR MOUNTPOINT -o OPTIONS`.
func TestMountHelperForm(t *testing.T) {
	requireMountable(t)
	data := newDataDir(t)
	mnt := mustMkdirAll(t, filepath.Join(t.TempDir(), "mnt"))
	cleanupDaemon(t, data, mnt)

	out, err := runErr("", taskerfsBin, data, mnt, "-o", "rw,allow_other,dev,suid,nofail,_netdev,writeback_window=20ms", "-f", "-t", "fuse.taskerfs")
	if err != nil || isMountpoint(mnt) {
		t.Fatalf("-f (fake) must succeed without mounting: %v %s", err, out)
	}

	run(t, "", taskerfsBin, data, mnt, "-o", "rw,allow_other,dev,suid,nofail,_netdev,x-systemd.automount,writeback_window=20ms,max_dirty_bytes=100000000")
	line := mountInfoLine(t, mnt)
	if !strings.Contains(line, " - fuse.taskerfs "+data+" ") || !strings.Contains(line, "allow_other") {
		t.Errorf("mount table entry %q: want fuse.taskerfs from %s with allow_other", line, data)
	}
	if strings.Contains(strings.Fields(line)[5], "nosuid") {
		t.Errorf("-o suid ignored: %q", line)
	}
	mustWrite(t, filepath.Join(mnt, "sessions", "f"), []byte("helper form\n"))
	pid := daemonPid(t, data)

	// umount(8) runs /sbin/umount.fuse.taskerfs MOUNTPOINT -n when it exists.
	umount := &exec.Cmd{Path: taskerfsBin, Args: []string{"umount.fuse.taskerfs", mnt, "-n"}}
	if out, err := umount.CombinedOutput(); err != nil {
		t.Fatalf("umount.fuse.taskerfs: %v\n%s", err, out)
	}
	if !processGone(pid) || isMountpoint(mnt) {
		t.Fatalf("umount.fuse.taskerfs returned before the daemon finished")
	}

	t.Run("read-only", func(t *testing.T) {
		run(t, "", taskerfsBin, data, mnt, "-o", "ro")
		if got := string(mustRead(t, filepath.Join(mnt, "sessions", "f"))); got != "helper form\n" {
			t.Errorf("read %q", got)
		}
		err := os.WriteFile(filepath.Join(mnt, "sessions", "g"), []byte("x"), 0o644)
		if !errors.Is(err, syscall.EROFS) {
			t.Errorf("write on a ro mount: %v, want EROFS", err)
		}
		run(t, "", taskerfsBin, "umount", mnt)
	})

	t.Run("bad option", func(t *testing.T) {
		out, err := runErr("", taskerfsBin, data, mnt, "-o", "allow_other,frobnicate=3")
		if err == nil || !strings.Contains(out, `unknown mount option "frobnicate"`) {
			t.Errorf("got %v, %q; want an unknown option error", err, out)
		}
		if isMountpoint(mnt) {
			t.Errorf("mounted despite the bad option")
		}
	})
}

// TestSystemdNotify mounts in the foreground under a NOTIFY_SOCKET, as a
// Type=notify unit does.
func TestSystemdNotify(t *testing.T) {
	requireMountable(t)
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	m := mountFS(t, newDataDir(t))
	expectNotify := func(want string) {
		t.Helper()
		buf := make([]byte, 4096)
		conn.SetReadDeadline(time.Now().Add(mountDeadline))
		n, _, err := conn.ReadFromUnix(buf)
		if err != nil || !strings.Contains(string(buf[:n]), want) {
			t.Fatalf("notify message %q, %v; want %s", buf[:n], err, want)
		}
	}
	expectNotify("READY=1")
	m.Unmount()
	expectNotify("STOPPING=1")
}

// TestFstab mounts an fstab line with mount(8) and unmounts it with
// umount(8), in a private mount namespace with its own /etc/fstab.
func TestFstab(t *testing.T) {
	requireMountable(t)
	requireTool(t, "unshare", "mount", "umount", "mount.fuse3")
	base := t.TempDir()
	data := filepath.Join(base, "data")
	mnt := mustMkdirAll(t, filepath.Join(base, "mnt"))
	fstab := filepath.Join(base, "fstab")
	mustWrite(t, fstab, []byte(fmt.Sprintf("# test fstab\n%s %s fuse.taskerfs defaults,allow_other,nofail,_netdev,x-systemd.automount,writeback_window=50ms 0 0\n", data, mnt)))
	content := randomBytes(72, 1<<20)
	src := filepath.Join(base, "blob.bin")
	mustWrite(t, src, content)
	cleanupDaemon(t, data, mnt)

	// mount.fuse3 runs `taskerfs` from the default PATH (mount(8) clears
	// the environment), so the namespace gets a private /usr/local/sbin.
	// umount(8) runs /sbin/umount.fuse.taskerfs when it exists; the
	// second round adds it through an overlay on /usr/sbin.
	script := `
set -eu
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; umount -l "$MNT" 2>/dev/null || true' EXIT
gone() { while [ -e /proc/$1 ] && [ "$(sed 's/.*) //' /proc/$1/stat | cut -c1)" != Z ]; do sleep 0.02; done; }
alive() { [ -e /proc/$1 ] && [ "$(sed 's/.*) //' /proc/$1/stat | cut -c1)" != Z ]; }
mount --bind "$FSTAB" /etc/fstab
mount -t tmpfs tmpfs /usr/local/sbin
ln -s "$BIN" /usr/local/sbin/taskerfs

mount "$MNT"
grep " $MNT " /proc/self/mountinfo
mkdir "$MNT/sessions/fstab"
cp "$SRC" "$MNT/sessions/fstab/blob.bin"
echo "written through fstab" > "$MNT/sessions/fstab/note.txt"
pid=$(cat "$DATA/taskerfs.pid")
mount -a
echo "mount -a: ok"
umount "$MNT"
grep -q " $MNT " /proc/self/mountinfo && { echo "still mounted after umount"; exit 1; }
gone $pid
pid=

mount "$MNT"
cmp "$SRC" "$MNT/sessions/fstab/blob.bin"
echo "remount: blob intact"
pid=$(cat "$DATA/taskerfs.pid")
if mkdir -p "$WORK/upper" "$WORK/work" && mount -t overlay overlay -o "lowerdir=/usr/sbin,upperdir=$WORK/upper,workdir=$WORK/work" /usr/sbin 2>/dev/null; then
	ln -s "$BIN" /usr/sbin/umount.fuse.taskerfs
	echo "second round" >> "$MNT/sessions/fstab/note.txt"
	umount "$MNT"
	if alive $pid; then echo "umount helper returned before the daemon exited"; exit 1; fi
	echo "umount helper: daemon done"
else
	echo "no overlayfs: umount helper not tried"
	umount "$MNT"
	gone $pid
fi
pid=
`
	// The bound keeps a hung mount from hanging the test; it is no measure.
	ctx, cancel := context.WithTimeout(context.Background(), mountDeadline+unmountDeadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "-m", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "FSTAB="+fstab, "BIN="+taskerfsBin, "MNT="+mnt, "DATA="+data, "SRC="+src, "WORK="+base)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("fstab script: %v\n%s\ntaskerfs.log:\n%s", err, out, readIfExists(filepath.Join(data, "taskerfs.log")))
	}
	t.Logf("fstab script:\n%s", out)
	if strings.Contains(string(out), "umount helper not tried") && underCI() {
		t.Errorf("cannot run under CI=true: no overlayfs to install the umount helper in /usr/sbin")
	}
	for _, want := range []string{"fuse.taskerfs " + data + " ", "allow_other", "mount -a: ok", "remount: blob intact"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("script output lacks %q", want)
		}
	}

	// The data survived both umount(8)s: check it from a fresh mount.
	m := mountFS(t, data)
	if got := mustRead(t, m.Path("sessions", "fstab", "blob.bin")); !bytes.Equal(got, content) {
		t.Errorf("blob.bin differs after the fstab mounts (%d bytes)", len(got))
	}
	note := string(mustRead(t, m.Path("sessions", "fstab", "note.txt")))
	if !strings.HasPrefix(note, "written through fstab\n") {
		t.Errorf("note.txt = %q", note)
	}
	if strings.Contains(string(out), "umount helper: daemon done") && note != "written through fstab\nsecond round\n" {
		t.Errorf("note.txt after the umount helper = %q", note)
	}
	m.Unmount()
}

// readIfExists returns a file's content for a failure message.
func readIfExists(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// TestSyslog runs a daemon with -o syslog against a syslog socket of the
// test's own, put in place in a private mount namespace.
func TestSyslog(t *testing.T) {
	requireMountable(t)
	requireTool(t, "unshare", "mount")
	base := t.TempDir()
	data := filepath.Join(base, "data")
	mnt := mustMkdirAll(t, filepath.Join(base, "mnt"))
	sock := filepath.Join(base, "syslog.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cleanupDaemon(t, data, mnt)

	// Go's log/syslog tries /dev/log, then /var/run/syslog.
	script := `
set -eu
if [ -e /dev/log ]; then
	mount --bind "$SOCK" /dev/log
else
	mount -t tmpfs tmpfs /run
	touch /run/syslog
	mount --bind "$SOCK" /run/syslog
fi
"$BIN" "$DATA" "$MNT" -o syslog
echo hello > "$MNT/sessions/hello.txt"
"$BIN" umount "$MNT"
`
	ctx, cancel := context.WithTimeout(context.Background(), mountDeadline+unmountDeadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "-m", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "SOCK="+sock, "BIN="+taskerfsBin, "DATA="+data, "MNT="+mnt)
	cmd.WaitDelay = time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("syslog script: %v\n%s", err, out)
	}
	var got []string
	buf := make([]byte, 8192)
	for !strings.Contains(strings.Join(got, ""), "everything is on disk") {
		conn.SetReadDeadline(time.Now().Add(mountDeadline))
		n, _, err := conn.ReadFromUnix(buf)
		if err != nil {
			t.Fatalf("syslog messages so far %q: %v", got, err)
		}
		got = append(got, string(buf[:n]))
	}
	if all := strings.Join(got, ""); !strings.Contains(all, "taskerfs[") || !strings.Contains(all, "mounted on "+mnt) {
		t.Errorf("syslog messages %q: want the tag taskerfs and the mount", got)
	}
	if fileExists(filepath.Join(data, "taskerfs.log")) {
		t.Errorf("taskerfs.log written although the log goes to syslog")
	}
}
