package writeback_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/meta"
	"github.com/taskerfs/taskerfs/writeback"
)

// A handle reading sequentially loads chunks ahead of itself; what it
// reads must still be the file as it is at each read: chunks rewritten,
// truncated away or written but not committed after the read-ahead began
// are read as they are now, and a seek reads the right place.
func TestReadAheadSeesChanges(t *testing.T) {
	const chunk = meta.ChunkSize
	cases := []struct {
		name   string
		change func(e *env, ino uint64, want []byte) []byte // after the first read; returns the new content
	}{
		{"no change", func(e *env, ino uint64, want []byte) []byte { return want }},
		{"chunk 2 rewritten and committed", func(e *env, ino uint64, want []byte) []byte {
			e.openFile(ino)
			d := data(chunk, 99)
			e.write(ino, d, 2*chunk)
			e.wb.Release(ino)
			if err := e.wb.SyncAll(); err != nil {
				t.Fatal(err)
			}
			return append(append(append([]byte{}, want[:2*chunk]...), d...), want[3*chunk:]...)
		}},
		{"chunk 1 rewritten, still dirty", func(e *env, ino uint64, want []byte) []byte {
			e.openFile(ino) // stays open: the bytes are only in memory
			d := data(chunk/2, 98)
			e.write(ino, d, chunk+100)
			out := append([]byte{}, want...)
			copy(out[chunk+100:], d)
			return out
		}},
		{"truncated to 1.5 chunks and committed", func(e *env, ino uint64, want []byte) []byte {
			e.openFile(ino)
			e.truncate(ino, chunk+chunk/2)
			e.wb.Release(ino)
			if err := e.wb.SyncAll(); err != nil {
				t.Fatal(err)
			}
			return want[:chunk+chunk/2]
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, setup{})
			ino := e.create("f")
			want := data(5*chunk, 7)
			e.writeFile(ino, want)
			if err := e.wb.SyncAll(); err != nil {
				t.Fatal(err)
			}
			var rc writeback.ReadCache
			buf := make([]byte, 128<<10)
			read := func(off int64) []byte {
				t.Helper()
				n, err := e.wb.Read(ino, buf, off, &rc)
				if err != nil {
					t.Fatalf("read at %d: %v", off, err)
				}
				return append([]byte{}, buf[:n]...)
			}
			sameBytes(t, "first read", read(0), want[:len(buf)])
			want = c.change(e, ino, want)
			var got []byte
			for off := int64(len(buf)); off < int64(len(want)); off += int64(len(buf)) {
				got = append(got, read(off)...)
			}
			sameBytes(t, "rest of the file", got, want[len(buf):])
			// A seek back and a sequential run from there.
			sameBytes(t, "after a seek", append(read(chunk-4096), read(chunk-4096+int64(len(buf)))...),
				want[chunk-4096:chunk-4096+2*len(buf)])
		})
	}
}

// countingStore counts blob loads.
type countingStore struct {
	blobstore.Store
	gets atomic.Int64
}

func (c *countingStore) Get(h blobstore.Hash) ([]byte, error) {
	c.gets.Add(1)

	return c.Store.Get(h)
}

// lendingStore is a countingStore over a Local store that also lends
// (blobstore.Lender), as the mount's own store does.
type lendingStore struct {
	countingStore
	local *blobstore.Local
}

func (c *lendingStore) GetLent(h blobstore.Hash) ([]byte, *blobstore.Lent, error) {
	c.gets.Add(1)
	return c.local.GetLent(h)
}

// counted is a store for these tests that counts its loads.
type counted interface {
	blobstore.Store
	loads() int64
}

func (c *countingStore) loads() int64 { return c.gets.Load() }

// The kernel's READs of a sequential reader reach the handle out of order
// (its read-ahead is asynchronous, up to max_read at a time, not aligned
// to chunks): every chunk must still be loaded and verified once.
func TestReadAheadOutOfOrderLoadsEachChunkOnce(t *testing.T) {
	const chunk = meta.ChunkSize
	// Disjoint pieces (as the page cache asks for them) a half chunk off
	// the chunk grid after the first, each pair swapped.
	swapped := func(piece, size int64) [][2]int64 {
		spans := [][2]int64{{0, chunk / 2}}
		var rest [][2]int64
		for off := int64(chunk / 2); off < size; off += piece {
			rest = append(rest, [2]int64{off, min(piece, size-off)})
		}
		for i := 0; i+1 < len(rest); i += 2 {
			rest[i], rest[i+1] = rest[i+1], rest[i]
		}
		return append(spans, rest...)
	}
	// Whole chunks, each one overtaken by the one after the next:
	// 0, 2, 1, 3, 5, 4, 6, ... (a READ arriving two chunks late must
	// find the load started for it still there).
	lateByTwo := func(size int64) [][2]int64 {
		var spans [][2]int64
		for k := int64(0); k*chunk < size; k += 3 {
			for _, j := range []int64{k, k + 2, k + 1} {
				if j*chunk < size {
					spans = append(spans, [2]int64{j * chunk, chunk})
				}
			}
		}
		return spans
	}
	const size = 8 * chunk
	for _, tc := range []struct {
		name  string
		lend  bool
		spans [][2]int64
	}{
		{"128KiB", false, swapped(128<<10, size)},
		{"1024KiB", false, swapped(1<<20, size)},
		{"128KiB-lent", true, swapped(128<<10, size)},
		{"1024KiB-lent", true, swapped(1<<20, size)},
		{"late-by-two", false, lateByTwo(size)},
		{"late-by-two-lent", true, lateByTwo(size)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, setup{})
			ino := e.create("f")
			want := data(size, 7)
			e.writeFile(ino, want)
			if err := e.wb.SyncAll(); err != nil {
				t.Fatal(err)
			}
			e.shutdown()
			var cs counted = &countingStore{Store: e.local}
			if tc.lend {
				cs = &lendingStore{countingStore: countingStore{Store: e.local}, local: e.local}
			}

			s, err := meta.Open(e.metaDir, meta.Options{Blobs: cs})
			if err != nil {
				t.Fatal(err)
			}
			wb := writeback.New(s, writeback.Options{})
			defer s.Close()
			var rc writeback.ReadCache
			rc.Stream()
			for _, sp := range tc.spans {
				off := sp[0]
				buf := make([]byte, sp[1])
				n, err := wb.Read(ino, buf, off, &rc)
				if err != nil {
					t.Fatalf("read at %d: %v", off, err)
				}
				sameBytes(t, fmt.Sprintf("read at %d", off), buf[:n], want[off:off+int64(n)])
			}
			if err := wb.Close(); err != nil { // waits for the read-ahead
				t.Fatal(err)
			}
			if got := cs.loads(); got != 8 {
				t.Errorf("%d blob loads for a sequential read of 8 chunks, want 8", got)
			}
		})
	}
}

// recordingCache is a meta.BlobCache that only counts Sets.
type recordingCache struct{ sets atomic.Int64 }

func (*recordingCache) Get(blobstore.Hash) ([]byte, bool) { return nil, false }
func (r *recordingCache) Set(blobstore.Hash, []byte)      { r.sets.Add(1) }

// A stream reader (an open file handle) keeps the chunk of its first read
// to itself; a plain reader's first read fills the shared blob cache.
func TestReadCacheStreamSkipsSharedCache(t *testing.T) {
	e := newEnv(t, setup{})
	ino := e.create("f")
	want := data(300<<10, 5)
	e.writeFile(ino, want)
	if err := e.wb.SyncAll(); err != nil {
		t.Fatal(err)
	}
	e.shutdown()
	rc := &recordingCache{}
	s, err := meta.Open(e.metaDir, meta.Options{Blobs: e.local, BlobCache: rc})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	wb := writeback.New(s, writeback.Options{})
	defer wb.Close()
	buf := make([]byte, 128<<10)
	for _, stream := range []bool{true, false} {
		var c writeback.ReadCache
		if stream {
			c.Stream()
		}
		before := rc.sets.Load()
		if n, err := wb.Read(ino, buf, 0, &c); err != nil || n != len(buf) {
			t.Fatalf("read: %d, %v", n, err)
		}
		sameBytes(t, "first read", buf, want[:len(buf)])
		if got, wantSets := rc.sets.Load()-before, map[bool]int64{true: 0, false: 1}[stream]; got != wantSets {
			t.Errorf("stream %v: %d shared cache Sets on the first read, want %d", stream, got, wantSets)
		}
	}
}

// A reader's buffers go back to the pool when its file is closed; a
// reader of another file that gets them, and the first reader used again,
// read their own bytes.
func TestReadCacheReleaseGivesBuffersBack(t *testing.T) {
	const chunk = meta.ChunkSize
	e := newEnv(t, setup{})
	a, b := e.create("a"), e.create("b")
	wantA, wantB := data(4*chunk, 8), data(4*chunk, 9)
	e.writeFile(a, wantA)
	e.writeFile(b, wantB)
	if err := e.wb.SyncAll(); err != nil {
		t.Fatal(err)
	}
	e.shutdown()
	cs := &lendingStore{countingStore: countingStore{Store: e.local}, local: e.local}
	s, err := meta.Open(e.metaDir, meta.Options{Blobs: cs})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	wb := writeback.New(s, writeback.Options{})
	defer wb.Close()
	readAll := func(what string, ino uint64, rc *writeback.ReadCache, want []byte, backwards bool) {
		t.Helper()
		buf := make([]byte, 256<<10)
		for i := range len(want) / len(buf) {
			off := int64(i * len(buf))
			if backwards {
				off = int64(len(want) - (i+1)*len(buf))
			}
			n, err := wb.Read(ino, buf, off, rc)
			if err != nil {
				t.Fatalf("%s: read at %d: %v", what, off, err)
			}
			sameBytes(t, fmt.Sprintf("%s at %d", what, off), buf[:n], want[off:off+int64(n)])
		}
	}
	var ra, rb writeback.ReadCache
	ra.Stream()
	readAll("a", a, &ra, wantA, false)
	ra.Release()
	rb.Stream()
	readAll("b", b, &rb, wantB, false)
	// From the end: the chunks a held last are the first it asks for.
	readAll("a again", a, &ra, wantA, true)
	rb.Release()
	ra.Release()
}
