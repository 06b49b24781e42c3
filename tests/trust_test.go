package tests

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The data dir holds every file's content: it must be private however it
// was made. A pre-existing 0755 dir and a umask of 022 still give a 0700
// tree of 0600 files (pebble's WAL, tables, OPTIONS, blobs, lock, pid,
// log, control socket), while mounted and after.
func TestDataDirPrivate(t *testing.T) {
	requireMountable(t)
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	data := newDataDir(t)
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(data, 0o755); err != nil {
		t.Fatal(err)
	}
	m := mountFS(t, data, "--log", "file")
	big := make([]byte, 3<<20)
	rand.Read(big)
	mustMkdirAll(t, m.Path("sessions", "s1"))
	for i, content := range [][]byte{[]byte("small secret\n"), big} {
		mustWrite(t, m.Path("sessions", "s1", "f"+string(rune('0'+i))), content)
	}
	run(t, "", taskerfsBin, "sync", "--data", data)
	checkPrivate(t, data)
	m.Unmount()
	checkPrivate(t, data)

	// Modes an earlier version or a careless chmod left are fixed at mount.
	if err := os.Chmod(data, 0o755); err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(filepath.Join(data, "meta"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			os.Chmod(p, 0o644)
		}
		return nil
	})
	m.Start()
	checkPrivate(t, data)
}

func checkPrivate(t *testing.T, dir string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		n++
		perm := info.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
		case info.IsDir() && perm != 0o700:
			t.Errorf("dir %s has mode %04o, want 0700", p, perm)
		case !info.IsDir() && perm != 0o600:
			t.Errorf("file %s has mode %04o, want 0600", p, perm)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("only %d entries in the data dir %s", n, dir)
	}
}

// open(O_CREAT|O_TRUNC) racing an unlink of the same name never fails with
// ENOENT, as on a local fs: the kernel looks the name up, then opens the
// inode, and the unlink may come in between.
func TestCreateTruncRacesUnlink(t *testing.T) {
	m := mountFS(t, newDataDir(t))
	dir := mustMkdirAll(t, m.Path("sessions", "race"))
	name := filepath.Join(dir, "f")
	const rounds = 5000
	var enoent, other atomic.Int64
	var firstErr atomic.Value
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range rounds {
			if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				firstErr.CompareAndSwap(nil, err)
			}
		}
	}()
	for i := 0; ; i++ {
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			enoent.Add(1)
		case err != nil:
			other.Add(1)
			firstErr.CompareAndSwap(nil, err)
		default:
			f.Write([]byte("x"))
			if err := f.Close(); err != nil {
				firstErr.CompareAndSwap(nil, err)
			}
		}
		select {
		case <-done:
			if enoent.Load() != 0 || other.Load() != 0 {
				t.Fatalf("%d opens: %d failed with ENOENT, %d with another error (first: %v)", i+1, enoent.Load(), other.Load(), firstErr.Load())
			}
			if err := firstErr.Load(); err != nil {
				t.Fatalf("unlink or close failed: %v", err)
			}
			return
		default:
		}
	}
}

// `taskerfs umount` returns only once the daemon has exited and released
// the data dir, also when the mountpoint is named through a symlink: an
// fsck started right after must not find the data dir locked.
func TestUmountReleasesDataDir(t *testing.T) {
	for _, viaLink := range []bool{false, true} {
		t.Run(map[bool]string{false: "direct", true: "through a symlink"}[viaLink], func(t *testing.T) {
			m := mountFS(t, newDataDir(t))
			dir := mustMkdirAll(t, m.Path("sessions", "u"))
			big := make([]byte, 32<<20)
			rand.Read(big)
			mustWrite(t, filepath.Join(dir, "big.bin"), big)
			mnt := m.Dir
			if viaLink {
				link := filepath.Join(t.TempDir(), "link")
				if err := os.Symlink(filepath.Dir(m.Dir), link); err != nil {
					t.Fatal(err)
				}
				mnt = filepath.Join(link, filepath.Base(m.Dir))
			}
			run(t, "", taskerfsBin, "umount", mnt)
			out, err := runErr("", taskerfsBin, "fsck", "--data", m.Data)
			if err != nil {
				t.Fatalf("fsck right after umount %s: %v\n%s", mnt, err, out)
			}
			m.waitExit(unmountDeadline)
		})
	}
}

// Under CI=true a test that cannot run fails instead of skipping: this
// runs the test binary itself without TASKERFS_BIN, and without the tools
// on PATH, and checks that it fails; without CI it still skips.
func TestNoSilentSkipsUnderCI(t *testing.T) {
	if os.Getenv("TASKERFS_SKIPCHECK_CHILD") != "" {
		t.Skip("inside the child run")
	}
	for _, tt := range []struct {
		name, run string
		env       []string
	}{
		{name: "no TASKERFS_BIN", run: "^TestDataDirPrivate$", env: []string{"TASKERFS_BIN="}},
		{name: "tool missing", run: "^TestSedInPlace$", env: []string{"PATH=/nonexistent"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, ci := range []string{"true", ""} {
				cmd := exec.Command(os.Args[0], "-test.run", tt.run, "-test.count=1", "-test.v")
				cmd.Env = append(append(os.Environ(), "TASKERFS_SKIPCHECK_CHILD=1", "CI="+ci), tt.env...)
				out, err := cmd.CombinedOutput()
				skipped := strings.Contains(string(out), "--- SKIP")
				switch {
				case ci == "true" && (err == nil || skipped || !strings.Contains(string(out), "cannot run under CI=true")):
					t.Errorf("CI=true: the test did not fail (%v):\n%s", err, out)
				case ci == "" && (err != nil || !skipped):
					t.Errorf("without CI: the test did not skip (%v):\n%s", err, out)
				}
			}
		})
	}
}

// fsck exits 0 on a healthy store: empty files (session files too) are
// valid, and blobs that normal overwrites left for gc are reported as
// reclaimable, not as damage.
func TestFsckHealthyStore(t *testing.T) {
	m := mountFS(t, newDataDir(t))
	dir := mustMkdirAll(t, m.Path("sessions", "healthy"))
	mustMkdirAll(t, filepath.Join(dir, "screenshots"))
	for _, name := range []string{"empty.txt", "metadata.json", "summary.json", "screenshots/chunk-001.json"} {
		mustWrite(t, filepath.Join(dir, name), nil)
	}
	buf := make([]byte, 3<<20)
	for range 3 {
		rand.Read(buf)
		mustWrite(t, filepath.Join(dir, "big.bin"), buf)
		mustWrite(t, filepath.Join(dir, "mid.bin"), buf[:200<<10])
	}
	m.Unmount()
	out, err := runErr("", taskerfsBin, "fsck", "--data", m.Data)
	if err != nil || !strings.Contains(out, "fsck: clean") {
		t.Fatalf("fsck of a healthy store: %v\n%s", err, out)
	}
	if !strings.Contains(out, "reclaimable") {
		t.Errorf("fsck does not report the old versions awaiting gc as reclaimable:\n%s", out)
	}
	run(t, "", taskerfsBin, "gc", "--data", m.Data)
	out = run(t, "", taskerfsBin, "fsck", "--data", m.Data)
	if strings.Contains(out, "reclaimable") || !strings.Contains(out, "fsck: clean") {
		t.Errorf("fsck after gc:\n%s", out)
	}
}

// user.taskerfs.sha256 is the hash of the content as close() left it, at
// once: also while another handle keeps the file open (then close() does
// not queue a snapshot) and for files of several chunks.
func TestSHA256XattrAfterClose(t *testing.T) {
	m := mountFS(t, newDataDir(t))
	dir := mustMkdirAll(t, m.Path("sessions", "x"))
	for _, size := range []int{1000, 1 << 20, 3<<20 + 17} {
		for _, heldOpen := range []bool{false, true} {
			p := filepath.Join(dir, fmt.Sprintf("f-%d-%v", size, heldOpen))
			old := make([]byte, size)
			rand.Read(old)
			mustWrite(t, p, old)
			var held *os.File
			if heldOpen {
				var err error
				if held, err = os.Open(p); err != nil {
					t.Fatal(err)
				}
			}
			for round := range 3 {
				content := make([]byte, size)
				rand.Read(content)
				f, err := os.OpenFile(p, os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.WriteAt(content, 0); err != nil {
					t.Fatal(err)
				}
				if err := f.Close(); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 64)
				n, err := unix.Getxattr(p, "user.taskerfs.sha256", buf)
				if err != nil {
					t.Fatalf("size %d, held open %v, round %d: getxattr: %v", size, heldOpen, round, err)
				}
				if got, want := string(buf[:n]), fmt.Sprintf("%x", sha256.Sum256(content)); got != want {
					t.Errorf("size %d, held open %v, round %d: sha256 xattr %s, content hashes to %s", size, heldOpen, round, got, want)
				}
			}
			if held != nil {
				held.Close()
			}
		}
	}
}

// gc reports the disk space it really gave back: what the blob files it
// removed took on disk (blocks), equal to what the blob store shrinks by.
func TestGCReportsFreedSpace(t *testing.T) {
	m := mountFS(t, newDataDir(t))
	dir := mustMkdirAll(t, m.Path("sessions", "gc"))
	buf := make([]byte, 2<<20+12345)
	for range 3 {
		for i := range 4 {
			rand.Read(buf)
			mustWrite(t, filepath.Join(dir, fmt.Sprintf("f%d", i)), buf[:len(buf)-i*300000])
		}
	}
	m.Unmount()
	blobs := filepath.Join(m.Data, "blobs")
	before := diskUsage(t, blobs)
	out := run(t, "", taskerfsBin, "gc", "--data", m.Data)
	after := diskUsage(t, blobs)
	var scanned, removed int
	var freed int64
	if _, err := fmt.Sscanf(strings.TrimSpace(out), "gc: scanned %d blobs, removed %d, freed %d bytes", &scanned, &removed, &freed); err != nil {
		t.Fatalf("gc output %q: %v", out, err)
	}
	if removed == 0 || freed != before-after {
		t.Fatalf("gc removed %d blobs and reports %d bytes freed; the blob store shrank by %d bytes (%d -> %d)", removed, freed, before-after, before, after)
	}
}
