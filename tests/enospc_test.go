package tests

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// smallDisk mounts a size-limited tmpfs and returns its path; it is
// unmounted when the test ends (after every mount on it).
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a %s tmpfs for the data dir (needs root): %v\n%s", size, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			exec.Command("umount", "-l", dir).Run()
			t.Errorf("umount the tmpfs: %v\n%s", err, out)
		}
	})
	return dir
}

// writeWhole writes data to path in 128 KiB pieces and closes it; it
// reports the first error and at which step it came.
func writeWhole(path string, data []byte) (step string, err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return "open", err
	}
	for off := 0; off < len(data); off += 128 << 10 {
		if _, err := f.Write(data[off:min(len(data), off+128<<10)]); err != nil {
			f.Close()
			return "write", err
		}
	}
	if err := f.Close(); err != nil {
		return "close", err
	}
	return "", nil
}

// fillDisk writes a ballast file on dir until the disk is full.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "ballast")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := bytes.Repeat([]byte{0xa5}, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill the disk: %v", err)
			}
			return p
		}
	}
}

// TestFullDisk: with the data dir on a small tmpfs,
//   - filling the mount fails with ENOSPC at write or close of the file
//     that does not fit; every file whose close() returned 0 and
//     everything fsynced before survives a remount byte for byte;
//   - a closed file that cannot be stored because the disk filled up
//     behind the daemon's back makes `taskerfs sync` and `taskerfs umount`
//     exit non-zero naming it; umount leaves the mount (and the change) in
//     place; once space returns, sync and umount succeed without a
//     remount, and the file is there after the remount.
func TestFullDisk(t *testing.T) {
	requireMountable(t)
	disk := smallDisk(t, "96m")
	m := mountFS(t, filepath.Join(disk, "data"), "--writeback-window", "2s", "--compress-after", "0")
	dir := mustMkdirAll(t, m.Path("sessions", "full"))

	keep := crashContent(3<<20, 1)
	mustWrite(t, filepath.Join(dir, "keep"), keep)
	f, err := os.Open(filepath.Join(dir, "keep"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	// Phase 1: fill the mount itself.
	accepted := map[string][]byte{}
	var failStep, failName string
	var failErr error
	for i := 0; i < 64; i++ {
		name := fmt.Sprintf("fill-%02d", i)
		data := crashContent(4<<20, uint64(100+i))
		step, err := writeWhole(filepath.Join(dir, name), data)
		if err != nil {
			failStep, failErr, failName = step, err, name
			break
		}
		accepted[name] = data
	}
	if failErr == nil {
		t.Fatalf("wrote %d files of 4 MiB to a 96 MiB disk without an error", len(accepted))
	}
	if !errors.Is(failErr, syscall.ENOSPC) || failStep == "open" {
		t.Fatalf("the file that did not fit failed at %s with %v, want ENOSPC at write or close", failStep, failErr)
	}
	var st syscall.Statfs_t
	syscall.Statfs(disk, &st)
	t.Logf("%d files of 4 MiB accepted; the next failed at %s: %v; the disk then had %d MiB free of %d",
		len(accepted), failStep, failErr, st.Bavail*uint64(st.Bsize)>>20, st.Blocks*uint64(st.Bsize)>>20)
	if out, err := runErr(m.Dir, taskerfsBin, "sync", "--data", m.Data); err != nil {
		t.Fatalf("taskerfs sync after only accepted writes: %v\n%s", err, out)
	}

	// Phase 2: free space through the mount; the daemon goes on.
	for name := range accepted {
		if strings.HasSuffix(name, "0") || strings.HasSuffix(name, "5") {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
		delete(accepted, name)
	}
	if err := os.Remove(filepath.Join(dir, failName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if out, err := runErr(m.Dir, taskerfsBin, "gc", "--data", m.Data); err != nil {
		t.Fatalf("taskerfs gc: %v\n%s", err, out)
	}
	late := crashContent(900<<10, 999) // under a chunk: held in memory until its commit
	if step, err := writeWhole(filepath.Join(dir, "late"), late); err != nil {
		t.Fatalf("writing after space came back (no remount): %s: %v", step, err)
	}

	// Phase 3: the disk fills behind the daemon's back before "late" is
	// committed (the window is 2 s).
	ballast := fillDisk(t, disk)
	out, err := runErr(m.Dir, taskerfsBin, "sync", "--data", m.Data)
	if err == nil {
		t.Fatalf("taskerfs sync exited 0 while a closed file could not be stored:\n%s", out)
	}
	if !strings.Contains(out, "late") {
		t.Errorf("taskerfs sync failed but does not name the file not persisted:\n%s", out)
	}
	out, err = runErr(m.Dir, taskerfsBin, "umount", m.Dir)
	if err == nil {
		t.Fatalf("taskerfs umount exited 0 while a closed file could not be stored:\n%s", out)
	}
	if !strings.Contains(out, "late") {
		t.Errorf("taskerfs umount failed but does not name the file not persisted:\n%s", out)
	}
	m.Alive()
	if !isMountpoint(m.Dir) {
		t.Fatal("a failed umount unmounted anyway: the change it could not store is gone")
	}
	if got := mustRead(t, filepath.Join(dir, "late")); !bytes.Equal(got, late) {
		t.Fatalf("late reads %d bytes while the disk is full, want its %d", len(got), len(late))
	}

	// Phase 4: space returns; no remount needed.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err = runErr(m.Dir, taskerfsBin, "sync", "--data", m.Data)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("taskerfs sync still fails after space came back: %v\n%s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	m.Remount()
	check := func(name string, want []byte) {
		if got := mustRead(t, filepath.Join(dir, name)); !bytes.Equal(got, want) {
			t.Errorf("%s after the remount: %d bytes, want %d (its close() or fsync returned 0)", name, len(got), len(want))
		}
	}
	check("keep", keep)
	check("late", late)
	for name, data := range accepted {
		check(name, data)
	}
	if s := m.Stderr(); strings.Contains(s, "panic") {
		t.Errorf("the daemon panicked:\n%s", s)
	}
}
