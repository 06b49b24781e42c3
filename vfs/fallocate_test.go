package vfs

import (
	"bytes"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestFallocateZeroRange: FALLOC_FL_ZERO_RANGE zeroes the range inside the
// file, grows the file to cover it unless KEEP_SIZE is given, and reads
// back exactly; it also zeroes whole chunks (stored as holes).
func TestFallocateZeroRange(t *testing.T) {
	const mib = 1 << 20
	content := bytes.Repeat([]byte("0123456789abcdef"), 3*mib/16) // 3 MiB
	cases := []struct {
		name      string
		off, size uint64
		mode      uint32
		wantSize  uint64
	}{
		{"inside, keep size", 5, 10, unix.FALLOC_FL_ZERO_RANGE | unix.FALLOC_FL_KEEP_SIZE, 3 * mib},
		{"inside, no keep size", 100, 7, unix.FALLOC_FL_ZERO_RANGE, 3 * mib},
		{"whole middle chunk and parts of its neighbours", mib - 3, mib + 6, unix.FALLOC_FL_ZERO_RANGE, 3 * mib},
		{"across EOF grows", 3*mib - 4, 20, unix.FALLOC_FL_ZERO_RANGE, 3*mib + 16},
		{"across EOF, keep size", 3*mib - 4, 20, unix.FALLOC_FL_ZERO_RANGE | unix.FALLOC_FL_KEEP_SIZE, 3 * mib},
		{"past EOF grows", 4 * mib, 8, unix.FALLOC_FL_ZERO_RANGE, 4*mib + 8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newTFS(t)
			c := NewCtxGroups(1000, 1000)
			o := f.o
			_, h, err := o.Create(c, o.Root(), "f", syscall.O_RDWR, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := o.Write(c, h, content, 0); err != nil {
				t.Fatal(err)
			}
			if err := o.Fallocate(c, h, tc.off, tc.size, tc.mode); err != nil {
				t.Fatalf("fallocate: %v", err)
			}
			want := append([]byte(nil), content...)
			if uint64(len(want)) < tc.wantSize {
				want = append(want, make([]byte, tc.wantSize-uint64(len(want)))...)
			}
			for i := tc.off; i < tc.off+tc.size && i < uint64(len(want)); i++ {
				want[i] = 0
			}
			check := func(when string) {
				a, err := o.GetattrHandle(c, h)
				if err != nil {
					t.Fatal(err)
				}
				if a.Size != tc.wantSize {
					t.Fatalf("%s: size %d, want %d", when, a.Size, tc.wantSize)
				}
				got := make([]byte, tc.wantSize+10)
				n, err := o.Read(c, h, got, 0)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got[:n], want) {
					t.Fatalf("%s: content differs (len %d, want %d)", when, n, len(want))
				}
			}
			check("before fsync")
			if err := o.Fsync(c, h, 0); err != nil {
				t.Fatal(err)
			}
			check("after fsync")
			if err := o.Release(c, h); err != nil {
				t.Fatal(err)
			}
		})
	}
}
