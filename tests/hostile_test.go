package tests

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestHostileInput feeds the mount what careless or malicious programs do
// and wants errno answers, intact data and a live daemon afterwards.
func TestHostileInput(t *testing.T) {
	data := newDataDir(t)
	m := mountFS(t, data)
	base := mustMkdirAll(t, m.Path("sessions", "hostile"))

	name255 := strings.Repeat("n", 255)
	utf255 := strings.Repeat("é", 127) + "x" // 255 bytes, 128 characters
	name256 := strings.Repeat("o", 256)
	oddNames := []string{"\xff\xfe", "bad\x80name", "caf\xe9", "\xc3\x28", "ctrl\x01\x1f\x7f", "new\nline", " leading space", "trailing."}
	const farOff = 1 << 40
	farTail := []byte("written at 2^40")

	t.Run("name length", func(t *testing.T) {
		dir := mustMkdirAll(t, filepath.Join(base, "names"))
		mustWrite(t, filepath.Join(dir, name255), []byte("255"))
		mustWrite(t, filepath.Join(dir, utf255), []byte("utf255"))
		if err := os.Mkdir(filepath.Join(dir, strings.Repeat("d", 255)), 0o755); err != nil {
			t.Errorf("mkdir of a 255-byte name: %v", err)
		}
		if err := os.Symlink(name255, filepath.Join(dir, strings.Repeat("s", 255))); err != nil {
			t.Errorf("symlink with a 255-byte name: %v", err)
		}
		expectFile(t, filepath.Join(dir, name255), "255")
		expectFile(t, filepath.Join(dir, utf255), "utf255")
		expectFile(t, filepath.Join(dir, strings.Repeat("s", 255)), "255")

		long := filepath.Join(dir, name256)
		existing := filepath.Join(dir, name255)
		ops := map[string]error{
			"create":  func() error { f, err := os.Create(long); f.Close(); return err }(),
			"mkdir":   os.Mkdir(long, 0o755),
			"symlink": os.Symlink("target", long),
			"link":    os.Link(existing, long),
			"rename":  os.Rename(existing, long),
			"mknod":   unix.Mknod(long, unix.S_IFIFO|0o644, 0),
			"lstat":   func() error { _, err := os.Lstat(long); return err }(),
		}
		for op, err := range ops {
			if !errors.Is(err, syscall.ENAMETOOLONG) {
				t.Errorf("%s of a 256-byte name: %v, want ENAMETOOLONG", op, err)
			}
		}
		expectFile(t, existing, "255")
		if names := readNames(t, dir); len(names) != 4 {
			t.Errorf("%s holds %d entries after the failed calls, want 4", dir, len(names))
		}
	})

	t.Run("non-UTF-8 names", func(t *testing.T) {
		dir := mustMkdirAll(t, filepath.Join(base, "odd"))
		for _, name := range oddNames {
			mustWrite(t, filepath.Join(dir, name), []byte(name))
		}
		if err := os.Rename(filepath.Join(dir, "caf\xe9"), filepath.Join(dir, "caf\xe9\xff")); err != nil {
			t.Errorf("rename between non-UTF-8 names: %v", err)
		}
		if err := os.Mkdir(filepath.Join(dir, "\xfe\xfd dir"), 0o755); err != nil {
			t.Errorf("mkdir of a non-UTF-8 name: %v", err)
		}
		checkOddNames(t, dir, oddNames)
	})

	t.Run("write at 2^40", func(t *testing.T) {
		path := filepath.Join(base, "far.bin")
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt(farTail, farOff); err != nil {
			t.Fatalf("pwrite at 2^40: %v", err)
		}
		checkFar(t, f, farOff, farTail)
		if err := f.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		g, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		checkFar(t, g, farOff, farTail)
	})

	t.Run("rename a directory into its own child", func(t *testing.T) {
		a := mustMkdirAll(t, filepath.Join(base, "a"))
		mustMkdirAll(t, filepath.Join(a, "b", "c"))
		for _, dst := range []string{filepath.Join(a, "b", "c", "x"), filepath.Join(a, "b")} {
			if err := unix.Rename(a, dst); !errors.Is(err, unix.EINVAL) {
				t.Errorf("rename %s -> %s: %v, want EINVAL", a, dst, err)
			}
		}
		if _, err := os.Stat(filepath.Join(a, "b", "c")); err != nil {
			t.Errorf("the tree is damaged after the refused renames: %v", err)
		}
	})

	t.Run("directory errnos", func(t *testing.T) {
		full := mustMkdirAll(t, filepath.Join(base, "full"))
		mustWrite(t, filepath.Join(full, ".hidden"), []byte("x"))
		onlySub := mustMkdirAll(t, filepath.Join(base, "onlysub", "sub"))
		empty := mustMkdirAll(t, filepath.Join(base, "empty"))
		file := filepath.Join(base, "plain")
		mustWrite(t, file, []byte("plain"))
		cases := []struct {
			what string
			err  error
			want syscall.Errno
		}{
			{"rmdir of a dir holding a file", unix.Rmdir(full), unix.ENOTEMPTY},
			{"rmdir of a dir holding a dir", unix.Rmdir(filepath.Dir(onlySub)), unix.ENOTEMPTY},
			{"rename of an empty dir over a non-empty one", unix.Rename(empty, full), unix.ENOTEMPTY},
			{"rename of a file over a dir", unix.Rename(file, empty), unix.EISDIR},
			{"rename of a dir over a file", unix.Rename(empty, file), unix.ENOTDIR},
			{"unlink of a dir", unix.Unlink(empty), unix.EISDIR},
			{"rmdir of a file", unix.Rmdir(file), unix.ENOTDIR},
			{"mkdir over a file", unix.Mkdir(file, 0o755), unix.EEXIST},
			{"exclusive create of an existing file", func() error {
				fd, err := unix.Open(file, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY, 0o644)
				if err == nil {
					unix.Close(fd)
				}
				return err
			}(), unix.EEXIST},
		}
		for _, c := range cases {
			if !errors.Is(c.err, c.want) {
				t.Errorf("%s: %v, want %v", c.what, c.err, c.want)
			}
		}
		expectFile(t, filepath.Join(full, ".hidden"), "x")
		expectFile(t, file, "plain")
		if _, err := os.Stat(onlySub); err != nil {
			t.Errorf("onlysub/sub: %v", err)
		}
	})

	var blobsBeforeOrphan int
	t.Run("unlink of an open file", func(t *testing.T) {
		blobsBeforeOrphan, _ = blobUsage(t, data)
		path := filepath.Join(base, "doomed")
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		first := randomBytes(40, 200<<10) // a blob file, not an inline value
		if _, err := f.Write(first); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatalf("fsync: %v", err)
		}
		if err := os.Remove(path); err != nil {
			t.Fatalf("unlink: %v", err)
		}
		expectMissing(t, path)
		if slices.Contains(readNames(t, base), "doomed") {
			t.Errorf("readdir still lists the unlinked file")
		}
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil {
			t.Fatalf("fstat of the unlinked file: %v", err)
		}
		if st.Nlink != 0 || st.Size != int64(len(first)) {
			t.Errorf("fstat after unlink: nlink %d size %d, want 0 and %d", st.Nlink, st.Size, len(first))
		}
		got := make([]byte, len(first))
		if _, err := f.ReadAt(got, 0); err != nil || !bytes.Equal(got, first) {
			t.Errorf("read after unlink: %v, equal=%v", err, bytes.Equal(got, first))
		}
		more := []byte("written after unlink")
		if _, err := f.WriteAt(more, int64(len(first))); err != nil {
			t.Fatalf("write after unlink: %v", err)
		}
		if err := f.Sync(); err != nil {
			t.Errorf("fsync after unlink: %v", err)
		}
		want := append(first, more...)
		got = make([]byte, len(want)+10)
		n, err := f.ReadAt(got, 0)
		if err != io.EOF || !bytes.Equal(got[:n], want) {
			t.Errorf("read after the write after unlink: %d bytes, %v; equal=%v", n, err, bytes.Equal(got[:n], want))
		}
		if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Nlink != 0 || st.Size != int64(len(want)) {
			t.Errorf("fstat after the write: nlink %d size %d (%v), want 0 and %d", st.Nlink, st.Size, err, len(want))
		}
		if err := f.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		// The name is free for a new, empty file.
		mustWrite(t, path, nil)
		expectFile(t, path, "")
	})

	// After all of that the daemon answers.
	m.Alive()
	if _, err := os.Stat(m.Dir); err != nil {
		t.Fatalf("stat of the mount root: %v", err)
	}
	if _, err := os.ReadDir(m.Dir); err != nil {
		t.Fatalf("readdir of the mount root: %v", err)
	}

	m.Remount()
	expectFile(t, filepath.Join(base, "names", name255), "255")
	expectFile(t, filepath.Join(base, "names", utf255), "utf255")
	checkOddNames(t, filepath.Join(base, "odd"), oddNames)
	if f, err := os.Open(filepath.Join(base, "far.bin")); err != nil {
		t.Errorf("far.bin after remount: %v", err)
	} else {
		checkFar(t, f, farOff, farTail)
		f.Close()
	}
	// The orphan's blob goes once the file is closed and gc runs.
	run(t, "", taskerfsBin, "gc", "--data", data)
	if files, _ := blobUsage(t, data); files != blobsBeforeOrphan {
		t.Errorf("%d blob files after the unlinked file was closed and gc ran, want %d", files, blobsBeforeOrphan)
	}
	m.Unmount()
}

// checkFar checks a file holding tail at off and zeros before it.
func checkFar(t testing.TB, f *os.File, off int64, tail []byte) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Size != off+int64(len(tail)) {
		t.Errorf("size %d (%v), want %d", st.Size, err, off+int64(len(tail)))
	}
	got := make([]byte, len(tail)+8)
	n, err := f.ReadAt(got, off-4)
	want := append(make([]byte, 4), tail...)
	if err != io.EOF || !bytes.Equal(got[:n], want) {
		t.Errorf("read at 2^40-4: %q, %v; want %q and EOF", got[:n], err, want)
	}
	hole := make([]byte, 4096)
	if n, err := f.ReadAt(hole, off/2); err != nil || n != len(hole) || !bytes.Equal(hole, make([]byte, len(hole))) {
		t.Errorf("read in the hole at 2^39: %d bytes, %v", n, err)
	}
}

// checkOddNames wants dir to list exactly the given names (one renamed)
// with their own bytes as content.
func checkOddNames(t testing.TB, dir string, names []string) {
	t.Helper()
	want := map[string]bool{"\xfe\xfd dir": true}
	for _, name := range names {
		if name == "caf\xe9" {
			name += "\xff"
		}
		want[name] = true
	}
	got := readNames(t, dir)
	for _, name := range got {
		if !want[name] {
			t.Errorf("unexpected entry %q in %s", name, dir)
		}
		delete(want, name)
	}
	for name := range want {
		t.Errorf("missing entry %q in %s", name, dir)
	}
	for _, name := range names {
		if name == "caf\xe9" {
			expectFile(t, filepath.Join(dir, name+"\xff"), name)
			continue
		}
		expectFile(t, filepath.Join(dir, name), name)
	}
}

// readNames lists dir's entry names as raw bytes.
func readNames(t testing.TB, dir string) []string {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		t.Fatalf("readdir %s: %v", dir, err)
	}
	return names
}
