package vfs

import (
	"bytes"
	"errors"
	"syscall"
	"testing"
)

// ReadFile never allocates a file's size on trust: a sparse file far
// larger than memory is refused with EFBIG, not read whole.
func TestReadFileCap(t *testing.T) {
	v := openTestFS(t)
	if err := v.WriteFile("sessions/s/huge.bin", []byte("head"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := v.Resolve("sessions/s/huge.bin")
	if err != nil {
		t.Fatal(err)
	}
	size := uint64(MaxReadFile + 1)
	if _, err := v.SetAttr(a.Ino, SetAttrIn{Size: &size}); err != nil {
		t.Fatal(err)
	}
	data, err := v.ReadFileAt("sessions/s/huge.bin")
	if !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("ReadFileAt of a %d-byte sparse file: %d bytes, %v; want EFBIG", size, len(data), err)
	}
}

func FuzzReadFile(f *testing.F) {
	f.Add([]byte("hello"), uint64(5))
	f.Add([]byte("hello"), uint64(2))
	f.Add([]byte{}, uint64(1<<20))
	f.Add([]byte("x"), uint64(MaxReadFile+1))
	f.Add([]byte("x"), ^uint64(0)>>1)
	v, err := Open(f.TempDir(), Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { v.Close() })
	f.Fuzz(func(t *testing.T, content []byte, size uint64) {
		size %= 1 << 62 // sizes the kernel can ask for
		if size > 4<<20 && size <= MaxReadFile {
			size = 4 << 20 // keep the fuzzer from allocating gigabytes
		}
		if err := v.WriteFile("sessions/f/file", content, 0o644); err != nil {
			t.Fatal(err)
		}
		a, err := v.Resolve("sessions/f/file")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.SetAttr(a.Ino, SetAttrIn{Size: &size}); err != nil {
			if errors.Is(err, syscall.EFBIG) || errors.Is(err, syscall.EINVAL) {
				return
			}
			t.Fatal(err)
		}
		got, err := v.ReadFile(a.Ino)
		if size > MaxReadFile {
			if !errors.Is(err, syscall.EFBIG) {
				t.Fatalf("size %d: %d bytes, %v; want EFBIG", size, len(got), err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		want := append(bytes.Clone(content[:min(uint64(len(content)), size)]), make([]byte, size-min(uint64(len(content)), size))...)
		if !bytes.Equal(got, want) {
			t.Fatalf("size %d: read %d bytes, want %d", size, len(got), len(want))
		}
	})
}
