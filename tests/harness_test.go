// Package tests holds integration tests that mount the built taskerfs
// binary (TASKERFS_BIN) and drive it through the kernel with ordinary tools.
package tests

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Deadlines for the daemon. They bound waits so a hung daemon fails a test
// instead of hanging it; they are never asserted as performance.
const (
	mountDeadline   = 30 * time.Second
	unmountDeadline = 3 * time.Minute
)

// taskerfsBin is the binary under test; skipReason is set when the
// integration tests cannot run on this machine.
var (
	taskerfsBin string
	skipReason  string
)

func TestMain(m *testing.M) {
	taskerfsBin = os.Getenv("TASKERFS_BIN")
	switch {
	case taskerfsBin == "":
		skipReason = "TASKERFS_BIN is not set: build the binary and run `TASKERFS_BIN=$PWD/bin/taskerfs go test ./tests/` (or `make integration`)"
	case !fileExists(taskerfsBin):
		skipReason = fmt.Sprintf("TASKERFS_BIN=%s does not exist", taskerfsBin)
	case !fileExists("/dev/fuse"):
		skipReason = "/dev/fuse is missing: the integration tests need FUSE (modprobe fuse)"
	}
	if skipReason != "" {
		if underCI() {
			fmt.Fprintln(os.Stderr, "tests: CI=true and the integration tests cannot run:", skipReason)
		} else {
			fmt.Fprintln(os.Stderr, "tests: skipping all integration tests:", skipReason)
		}
	}
	os.Exit(m.Run())
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// requireMountable skips t when the integration tests cannot run here
// (fails it under CI).
func requireMountable(t testing.TB) {
	t.Helper()
	if skipReason != "" {
		cannotRun(t, skipReason)
	}
}

// underCI reports whether CI=true: then a test that cannot run fails, so
// that CI cannot go green without having run it.
func underCI() bool { return os.Getenv("CI") == "true" }

// cannotRun skips t for reason, or fails it under CI.
func cannotRun(t testing.TB, reason string) {
	t.Helper()
	if underCI() {
		t.Fatalf("cannot run under CI=true: %s", reason)
	}
	t.Skip(reason)
}

// lockedBuffer collects the daemon's stderr while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Mount is one running taskerfs daemon serving Data on Dir.
type Mount struct {
	t    testing.TB
	Dir  string   // mountpoint
	Data string   // data dir
	Args []string // extra flags passed to `taskerfs mount` on every (re)mount

	cmd     *exec.Cmd
	stderr  *lockedBuffer
	exited  chan struct{} // closed when the daemon process has exited
	waitErr error         // the daemon's exit status, valid after exited closes
	logs    []string      // stderr of earlier daemons of this Mount
	conn    uint32        // the FUSE connection (fusectl number) of the current mount
}

// newDataDir returns a fresh, empty data dir removed at the end of the test.
func newDataDir(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "data")
}

// mountFS mounts dataDir on a fresh mountpoint and waits until it is ready.
// The mount is always torn down when the test ends, also on failure.
func mountFS(t testing.TB, dataDir string, args ...string) *Mount {
	t.Helper()
	requireMountable(t)
	m := &Mount{t: t, Dir: filepath.Join(t.TempDir(), "mnt"), Data: dataDir, Args: args}
	t.Cleanup(m.cleanup)
	m.start()
	return m
}

// Path joins elem onto the mountpoint.
func (m *Mount) Path(elem ...string) string {
	return filepath.Join(append([]string{m.Dir}, elem...)...)
}

// Stderr is everything the daemons of this Mount have logged so far.
func (m *Mount) Stderr() string {
	all := strings.Join(m.logs, "")
	if m.stderr != nil {
		all += m.stderr.String()
	}
	return all
}

func (m *Mount) running() bool {
	if m.cmd == nil {
		return false
	}
	select {
	case <-m.exited:
		return false
	default:
		return true
	}
}

// PeakRSS is the daemon's peak resident memory (VmHWM), 0 if unknown.
func (m *Mount) PeakRSS() int64 {
	if !m.running() {
		return 0
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", m.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// Alive fails the test if the daemon has exited.
func (m *Mount) Alive() {
	m.t.Helper()
	if !m.running() {
		m.t.Fatalf("taskerfs daemon is not running (exit: %v); stderr:\n%s", m.waitErr, m.Stderr())
	}
}

func (m *Mount) start() {
	m.t.Helper()
	if m.stderr != nil {
		m.logs = append(m.logs, m.stderr.String())
	}
	// The trash is off unless a test turns it on (undo_test.go): other
	// tests measure what deleting a file frees.
	args := append([]string{"mount", "--data", m.Data, "--trash-days", "0"}, m.Args...)
	args = append(args, m.Dir)
	cmd := exec.Command(taskerfsBin, args...)
	m.stderr = &lockedBuffer{}
	cmd.Stdout = m.stderr
	cmd.Stderr = m.stderr
	// Its own process group: a Ctrl-C of `go test` must not race our
	// orderly unmount.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		m.t.Fatalf("start %s: %v", taskerfsBin, err)
	}
	m.cmd = cmd
	m.exited = make(chan struct{})
	go func(exited chan struct{}) {
		m.waitErr = cmd.Wait()
		close(exited)
	}(m.exited)

	deadline := time.Now().Add(mountDeadline)
	for !isMountpoint(m.Dir) {
		if !m.running() {
			m.t.Fatalf("taskerfs mount exited before the mount was ready (%v); stderr:\n%s", m.waitErr, m.stderr.String())
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mount %s not ready after %v; stderr:\n%s", m.Dir, mountDeadline, m.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	var st unix.Stat_t
	if unix.Stat(m.Dir, &st) == nil {
		m.conn = unix.Minor(st.Dev)
	}
}

// abortFuseConn aborts FUSE connection n through fusectl (mounting it if
// needed): every request waiting on it fails at once.
func abortFuseConn(n uint32) {
	const ctl = "/sys/fs/fuse/connections"
	if _, err := os.Stat(filepath.Join(ctl, fmt.Sprint(n))); err != nil {
		unix.Mount("fusectl", ctl, "fusectl", 0, "")
	}
	os.WriteFile(filepath.Join(ctl, fmt.Sprint(n), "abort"), []byte("1"), 0o200)
}

// isMountpoint reports whether dir is on another device than its parent.
func isMountpoint(dir string) bool {
	var st, pst unix.Stat_t
	if unix.Stat(dir, &st) != nil || unix.Stat(filepath.Dir(dir), &pst) != nil {
		return false
	}
	return st.Dev != pst.Dev
}

// Unmount runs `taskerfs umount` and waits for the daemon to flush and exit;
// it fails the test if either goes wrong.
func (m *Mount) Unmount() {
	m.t.Helper()
	if !m.running() {
		m.t.Fatalf("unmount: daemon already exited (%v); stderr:\n%s", m.waitErr, m.Stderr())
	}
	// A just-closed file may still be referenced by the kernel for a moment
	// (EBUSY); retry briefly before giving up.
	var out []byte
	var err error
	for i := 0; i < 50; i++ {
		out, err = exec.Command(taskerfsBin, "umount", m.Dir).CombinedOutput()
		if err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		m.t.Fatalf("taskerfs umount %s: %v\n%s\ndaemon stderr:\n%s", m.Dir, err, out, m.Stderr())
	}
	m.waitExit(unmountDeadline)
	if m.waitErr != nil {
		m.t.Fatalf("taskerfs daemon exited with %v after unmount; stderr:\n%s", m.waitErr, m.Stderr())
	}
	if isMountpoint(m.Dir) {
		m.t.Fatalf("%s is still a mountpoint after the daemon exited", m.Dir)
	}
}

// Remount unmounts (flushing everything) and mounts the same data dir again.
func (m *Mount) Remount() {
	m.t.Helper()
	m.Unmount()
	m.start()
}

// Kill ends the daemon with SIGKILL, as a crash would, and clears the
// dead mount so that Remount-style restarts via Start work.
func (m *Mount) Kill() {
	m.t.Helper()
	if m.running() {
		m.cmd.Process.Kill()
		m.waitKilled()
	}
	lazyUnmount(m.Dir)
}

// waitKilled waits for a SIGKILLed daemon to exit. A daemon killed while
// it holds a file of its own mount open (go-fuse opens one briefly right
// after mounting, its poll hack) blocks in the kernel closing it
// (fuse_flush) with no one left to answer: after 10 s its FUSE connection
// is aborted, which ends it, and the test log says so.
func (m *Mount) waitKilled() {
	select {
	case <-m.exited:
	case <-time.After(10 * time.Second):
		m.t.Logf("taskerfs daemon did not exit 10 s after SIGKILL (blocked in the kernel); aborting its FUSE connection %d", m.conn)
		abortFuseConn(m.conn)
		<-m.exited
	}
}

// Start mounts again after Kill.
func (m *Mount) Start() {
	m.t.Helper()
	if m.running() {
		m.t.Fatalf("Start: daemon still running")
	}
	m.start()
}

func (m *Mount) waitExit(d time.Duration) {
	m.t.Helper()
	select {
	case <-m.exited:
	case <-time.After(d):
		m.t.Fatalf("daemon did not exit %v after unmount; stderr:\n%s", d, m.Stderr())
	}
}

// cleanup always leaves no mount and no daemon behind: an orderly unmount
// first, then SIGTERM, then a lazy unmount and SIGKILL.
func (m *Mount) cleanup() {
	if m.t.Failed() {
		m.t.Logf("taskerfs daemon stderr:\n%s", m.Stderr())
	}
	if m.running() {
		wait := unmountDeadline
		// A just-closed file may still be referenced by the kernel for a
		// moment (EBUSY): retry briefly, as Unmount does.
		var err error
		for i := 0; i < 20; i++ {
			if err = exec.Command(taskerfsBin, "umount", m.Dir).Run(); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			// Busy (a leaked fd): detach the mount and end the daemon,
			// politely first.
			lazyUnmount(m.Dir)
			m.cmd.Process.Signal(syscall.SIGTERM)
			wait = 5 * time.Second
		}
		select {
		case <-m.exited:
		case <-time.After(wait):
			m.cmd.Process.Kill()
			m.waitKilled()
		}
	}
	if isMountpoint(m.Dir) || isStale(m.Dir) {
		lazyUnmount(m.Dir)
	}
}

func isStale(dir string) bool {
	_, err := os.Stat(dir)
	return errors.Is(err, syscall.ENOTCONN)
}

func lazyUnmount(dir string) {
	if unix.Unmount(dir, unix.MNT_DETACH) != nil {
		exec.Command("fusermount3", "-uz", dir).Run()
	}
}

// run runs name with args in dir and fails the test, showing the output,
// if it does not succeed. It returns the combined output.
func run(t testing.TB, dir, name string, args ...string) string {
	t.Helper()
	out, err := runErr(dir, name, args...)
	if err != nil {
		t.Fatalf("%s %s (in %s): %v\n%s", name, strings.Join(args, " "), dir, err, out)
	}
	return out
}

// runErr runs name with args in dir and returns its combined output.
func runErr(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// runStdin is run with data fed to stdin.
func runStdin(t testing.TB, dir, stdin, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s (in %s): %v\n%s", name, strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

// requireTool skips t when a command-line tool is not installed (fails it
// under CI).
func requireTool(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			cannotRun(t, n+" is not installed (.ci/run installs it)")
		}
	}
}

// mustMkdirAll creates dir and fails the test on error.
func mustMkdirAll(t testing.TB, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// mustWrite writes data to path and fails the test on error.
func mustWrite(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// mustRead reads path and fails the test on error.
func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// blobUsage counts the blob files under DATADIR/blobs and their bytes.
func blobUsage(t testing.TB, dataDir string) (files int, bytes int64) {
	t.Helper()
	root := filepath.Join(dataDir, "blobs")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			files++
			bytes += fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return files, bytes
}

// diskUsage is the space allocated on disk under dir (st_blocks), so
// sparse files count only what they really take.
func diskUsage(t testing.TB, dir string) int64 {
	t.Helper()
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // a file the daemon removed while we walked
		}
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil
			}
			return err
		}
		total += st.Blocks * 512
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return total
}
