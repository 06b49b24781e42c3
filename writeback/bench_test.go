package writeback_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"

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

// uniqueData returns size bytes no other call returns (pseudo-random, so
// neither dedup nor compression makes the work disappear).
func uniqueData(r *rand.ChaCha8, size int) []byte {
	data := make([]byte, size)
	r.Read(data)
	return data
}

// BenchmarkCloseQueued is the cost a close() pays while the queue has room:
// FLUSH plus RELEASE of the last handle, which snapshots the file and queues
// its commit. Creating and writing the file is not timed; "close-ns/op"
// is the close alone (ns/op includes the untimed set-up).
func BenchmarkCloseQueued(b *testing.B) {
	for _, size := range []int{4 << 10, 200 << 10} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			s, wb := benchManager(b)
			r := rand.NewChaCha8([32]byte{1})
			var closing time.Duration
			for i := 0; b.Loop(); i++ {
				ino := writeClose(b, s, wb, fmt.Sprint("f", i), uniqueData(r, size))
				start := time.Now()
				if err := wb.Flush(ino); err != nil {
					b.Fatal(err)
				}
				wb.Release(ino)
				closing += time.Since(start)
			}
			b.ReportMetric(float64(closing.Nanoseconds())/float64(b.N), "close-ns/op")
		})
	}
}

// BenchmarkGroupCommit is the queue's throughput: closes, then one sync.
func BenchmarkGroupCommit(b *testing.B) {
	s, wb := benchManager(b)
	const files = 100
	r := rand.NewChaCha8([32]byte{3})
	b.SetBytes(files * 4 << 10)
	for i := 0; b.Loop(); i++ {
		for j := range files {
			ino := writeClose(b, s, wb, fmt.Sprint("f", i, "-", j), uniqueData(r, 4<<10))
			wb.Release(ino)
		}
		if err := wb.SyncAll(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFsync is fsync() of a freshly written file (4 KiB, 200 KiB),
// one at a time, before its close: the synchronous commit (hash, blob,
// pebble batch, syncs). "fsync-ns/op" is the fsync alone; creating and
// writing the file is not timed.
func BenchmarkFsync(b *testing.B) {
	for _, size := range []int{4 << 10, 200 << 10} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			s, wb := benchManager(b)
			r := rand.NewChaCha8([32]byte{2})
			var syncing time.Duration
			var each []time.Duration
			for i := 0; b.Loop(); i++ {
				ino := writeClose(b, s, wb, fmt.Sprint("f", i), uniqueData(r, size))
				start := time.Now()
				if err := wb.Fsync(ino); err != nil {
					b.Fatal(err)
				}
				d := time.Since(start)
				syncing += d
				each = append(each, d)
				wb.Release(ino)
			}
			b.ReportMetric(float64(syncing.Nanoseconds())/float64(b.N), "fsync-ns/op")
			// The mean hides a bimodal distribution (most fsyncs against a
			// few behind background syncs): the median and the tail too.
			slices.Sort(each)
			b.ReportMetric(float64(each[len(each)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(each[len(each)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}

// BenchmarkSequentialRead reads a committed 16 MiB file front to back in
// 128 KiB requests through one handle's ReadCache, as the kernel's
// read-ahead does: each chunk is loaded (file read + SHA-256) once, the
// next ones in the background while the current one is copied out.
func BenchmarkSequentialRead(b *testing.B) {
	s, wb := benchManager(b)
	const size = 16 << 20
	ino := writeClose(b, s, wb, "big", uniqueData(rand.NewChaCha8([32]byte{4}), size))
	wb.Release(ino)
	if err := wb.SyncAll(); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 128<<10)
	b.SetBytes(size)
	for b.Loop() {
		var rc writeback.ReadCache
		for off := int64(0); off < size; off += int64(len(buf)) {
			if n, err := wb.Read(ino, buf, off, &rc); err != nil || n != len(buf) {
				b.Fatalf("read at %d: %d, %v", off, n, err)
			}
		}
	}
}

// BenchmarkSequentialWrite writes 16 MiB of unique bytes in 1 MiB pieces
// (as fio's 1 MiB WRITEs reach the daemon) and makes them durable: full
// chunks spill while the writer goes on, the fsync commits the rest.
func BenchmarkSequentialWrite(b *testing.B) {
	s, wb := benchManager(b)
	const size = 16 << 20
	r := rand.NewChaCha8([32]byte{5})
	piece := make([]byte, 1<<20)
	b.SetBytes(size)
	i := 0
	for b.Loop() {
		i++
		a, err := s.Create(meta.RootIno, fmt.Sprintf("f%d", i), meta.NewNode{Mode: syscall.S_IFREG | 0o644})
		if err != nil {
			b.Fatal(err)
		}
		if err := wb.Open(a.Ino); err != nil {
			b.Fatal(err)
		}
		for off := int64(0); off < size; off += int64(len(piece)) {
			r.Read(piece) // unique bytes: no dedup
			if _, err := wb.Write(a.Ino, piece, off); err != nil {
				b.Fatal(err)
			}
		}
		if err := wb.Fsync(a.Ino); err != nil {
			b.Fatal(err)
		}
		wb.Release(a.Ino)
	}
}
