package writeback_test

import (
	"fmt"
	"syscall"
	"testing"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/meta"
	"github.com/taskerfs/taskerfs/writeback"
)

func benchManager(b *testing.B) (*meta.Store, *writeback.Manager) {
	b.Helper()
	bs, err := blobstore.OpenLocal(b.TempDir(), blobstore.LocalOptions{})
	if err != nil {
		b.Fatal(err)
	}
	s, err := meta.Open(b.TempDir(), meta.Options{Blobs: bs})
	if err != nil {
		b.Fatal(err)
	}
	wb := writeback.New(s, writeback.Options{})
	b.Cleanup(func() {
		wb.Close()
		s.Close()
		bs.Close()
	})
	return s, wb
}

// writeClose creates a file, writes data and closes it, as a FUSE client would.
func writeClose(b *testing.B, s *meta.Store, wb *writeback.Manager, name string, data []byte) uint64 {
	a, err := s.Create(meta.RootIno, name, meta.NewNode{Mode: syscall.S_IFREG | 0o644})
	if err != nil {
		b.Fatal(err)
	}
	if err := wb.Open(a.Ino); err != nil {
		b.Fatal(err)
	}
	if _, err := wb.Write(a.Ino, data, 0); err != nil {
		b.Fatal(err)
	}
	return a.Ino
}

// BenchmarkCloseQueued is the cost a close() pays: the commit is queued.
func BenchmarkCloseQueued(b *testing.B) {
	for _, size := range []int{4 << 10, 200 << 10} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			s, wb := benchManager(b)
			b.SetBytes(int64(size))
			for i := 0; b.Loop(); i++ {
				data := make([]byte, size)
				data[0], data[1] = byte(i), byte(i>>8)
				ino := writeClose(b, s, wb, fmt.Sprint("f", i), data)
				wb.Flush(ino)
				wb.Release(ino)
			}
		})
	}
}

// BenchmarkGroupCommit is the queue's throughput: closes, then one sync.
func BenchmarkGroupCommit(b *testing.B) {
	s, wb := benchManager(b)
	const files = 100
	b.SetBytes(files * 4 << 10)
	for i := 0; b.Loop(); i++ {
		for j := range files {
			data := make([]byte, 4<<10)
			data[0], data[1], data[2] = byte(i), byte(j), byte(i>>8)
			ino := writeClose(b, s, wb, fmt.Sprint("f", i, "-", j), data)
			wb.Release(ino)
		}
		if err := wb.SyncAll(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFsync is a write plus fsync of a 4 KiB file, one at a time.
func BenchmarkFsync(b *testing.B) {
	s, wb := benchManager(b)
	for i := 0; b.Loop(); i++ {
		data := make([]byte, 4<<10)
		data[0], data[1] = byte(i), byte(i>>8)
		ino := writeClose(b, s, wb, fmt.Sprint("f", i), data)
		if err := wb.Fsync(ino); err != nil {
			b.Fatal(err)
		}
		wb.Release(ino)
	}
}
