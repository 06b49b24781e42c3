package writeback_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/blobstore/storetest"
	"github.com/taskerfs/taskerfs/meta"
	"github.com/taskerfs/taskerfs/writeback"
)

// ioPiece is the size the kernel splits FUSE writes into.
const ioPiece = 128 << 10

// setup configures an env.
type setup struct {
	opts     writeback.Options
	putDelay time.Duration
	faults   bool // put a faultyStore between meta and the disk
}

// env is a write-back manager over a real pebble namespace and a local
// blob store in temp dirs: everything below the FUSE adapter.
type env struct {
	t        *testing.T
	metaDir  string
	blobDir  string
	opts     writeback.Options
	local    *blobstore.Local
	faults   *faultyStore // nil unless setup.faults
	store    *meta.Store
	wb       *writeback.Manager
	logs     *logSink
	putDelay time.Duration
}

func newEnv(t *testing.T, s setup) *env {
	t.Helper()
	root := t.TempDir()
	e := &env{t: t, metaDir: filepath.Join(root, "meta"), blobDir: filepath.Join(root, "blobs"),
		opts: s.opts, logs: &logSink{}, putDelay: s.putDelay}
	e.opts.Logf = e.logs.logf
	local, err := blobstore.OpenLocal(e.blobDir, blobstore.LocalOptions{PutDelay: s.putDelay})
	if err != nil {
		t.Fatal(err)
	}
	e.local = local
	if s.faults {
		e.faults = &faultyStore{Store: local}
	}
	e.open()
	t.Cleanup(func() {
		if e.faults != nil {
			e.faults.set(0, nil) // let the final flush through
		}
		e.shutdown()
		local.Close()
	})
	return e
}

func (e *env) blobs() blobstore.Store {
	if e.faults != nil {
		return e.faults
	}
	return e.local
}

func (e *env) open() {
	e.t.Helper()
	s, err := meta.Open(e.metaDir, meta.Options{Blobs: e.blobs()})
	if err != nil {
		e.t.Fatal(err)
	}
	e.store = s
	e.wb = writeback.New(s, e.opts)
	s.SetOpenCheck(e.wb.IsOpen)
	s.SetContentGate(e.wb)
}

// shutdown closes the manager (which flushes everything) and pebble.
func (e *env) shutdown() {
	e.t.Helper()
	if e.wb != nil {
		if err := e.wb.Close(); err != nil {
			e.t.Errorf("writeback close: %v", err)
		}
		e.wb = nil
	}
	if e.store != nil {
		if err := e.store.Close(); err != nil {
			e.t.Errorf("meta close: %v", err)
		}
		e.store = nil
	}
}

// restart is an orderly daemon restart: flush, close, open again.
func (e *env) restart() {
	e.t.Helper()
	e.shutdown()
	e.open()
}

// crashCopy copies the namespace and blob dirs as they are on disk right
// now, as a kill -9 would leave them, and opens the copy. What it shows
// is what survived; the live env is untouched.
func (e *env) crashCopy() *meta.Store {
	e.t.Helper()
	root := e.t.TempDir()
	copyTree(e.t, e.metaDir, filepath.Join(root, "meta"))
	copyTree(e.t, e.blobDir, filepath.Join(root, "blobs"))
	blobs, err := blobstore.OpenLocal(filepath.Join(root, "blobs"), blobstore.LocalOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	s, err := meta.Open(filepath.Join(root, "meta"), meta.Options{Blobs: blobs})
	if err != nil {
		e.t.Fatalf("open crash copy: %v", err)
	}
	e.t.Cleanup(func() {
		s.Close()
		blobs.Close()
	})
	return s
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // a temp file renamed away while we walked
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o600)
	})
	if err != nil {
		t.Fatalf("copy %s: %v", from, err)
	}
}

func (e *env) create(name string) uint64 {
	e.t.Helper()
	a, err := e.store.Create(meta.RootIno, name, meta.NewNode{Mode: syscall.S_IFREG | 0o644})
	if err != nil {
		e.t.Fatalf("create %s: %v", name, err)
	}
	return a.Ino
}

func (e *env) openFile(ino uint64) {
	e.t.Helper()
	if err := e.wb.Open(ino); err != nil {
		e.t.Fatalf("open %d: %v", ino, err)
	}
}

// write stores data at off in kernel-sized pieces.
func (e *env) write(ino uint64, data []byte, off int64) {
	e.t.Helper()
	for len(data) > 0 {
		n := min(len(data), ioPiece)
		got, err := e.wb.Write(ino, data[:n], off)
		if err != nil || got != n {
			e.t.Fatalf("write %d bytes at %d of inode %d: %d, %v", n, off, ino, got, err)
		}
		data, off = data[n:], off+int64(n)
	}
}

func (e *env) truncate(ino uint64, size uint64) {
	e.t.Helper()
	if err := e.wb.Truncate(ino, size); err != nil {
		e.t.Fatalf("truncate %d to %d: %v", ino, size, err)
	}
}

func (e *env) fsync(ino uint64) {
	e.t.Helper()
	if err := e.wb.Fsync(ino); err != nil {
		e.t.Fatalf("fsync %d: %v", ino, err)
	}
}

// writeFile is open, write everything, close: a whole new version.
func (e *env) writeFile(ino uint64, data []byte) {
	e.t.Helper()
	e.openFile(ino)
	e.truncate(ino, 0)
	e.write(ino, data, 0)
	e.wb.Release(ino)
}

// content is what a reader through the mount sees now.
func (e *env) content(ino uint64) []byte {
	e.t.Helper()
	a, err := e.store.GetAttr(ino)
	if err != nil {
		e.t.Fatalf("getattr %d: %v", ino, err)
	}
	e.wb.Attr(&a)
	buf := make([]byte, a.Size+4096)
	n, err := e.wb.Read(ino, buf, 0, nil)
	if err != nil {
		e.t.Fatalf("read %d: %v", ino, err)
	}
	if uint64(n) != a.Size {
		e.t.Fatalf("read %d: %d bytes, size %d", ino, n, a.Size)
	}
	return buf[:n]
}

// committed assembles ino's content from the namespace alone, ignoring
// the manager: what a restart would see.
func committed(t *testing.T, s *meta.Store, ino uint64) []byte {
	t.Helper()
	// The attr and the manifest are read separately while the committer
	// may be landing a batch: retry until both come from one state.
	for range 10000 {
		before := s.Version()
		if before%2 == 1 {
			time.Sleep(50 * time.Microsecond) // a commit is landing
			continue
		}
		out, err := committedOnce(s, ino)
		if s.Version() == before {
			if err != nil {
				t.Fatalf("inode %d: %v", ino, err)
			}
			return out
		}
	}
	t.Fatalf("inode %d never stopped changing", ino)
	return nil
}

func committedOnce(s *meta.Store, ino uint64) ([]byte, error) {
	a, err := s.GetAttr(ino)
	if err != nil {
		return nil, fmt.Errorf("getattr: %w", err)
	}
	out := make([]byte, a.Size)
	err = s.Chunks(ino, func(idx uint64, c meta.ChunkRef) error {
		start := idx * meta.ChunkSize
		if start >= a.Size {
			return fmt.Errorf("chunk %d lies past the size %d", idx, a.Size)
		}
		d, err := s.Blob(c.Hash)
		if err != nil {
			return fmt.Errorf("chunk %d: %w", idx, err)
		}
		if len(d) != int(c.Size) {
			return fmt.Errorf("chunk %d: blob of %d bytes, manifest says %d", idx, len(d), c.Size)
		}
		copy(out[start:], d)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return out, nil
}

// chunkIndexes lists ino's manifest entries (holes are absent).
func chunkIndexes(t *testing.T, s *meta.Store, ino uint64) []uint64 {
	t.Helper()
	var out []uint64
	if err := s.Chunks(ino, func(idx uint64, _ meta.ChunkRef) error { out = append(out, idx); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkRefs verifies that every blob refcount equals the manifest entries
// pointing at it and that no manifest points at a missing blob.
func checkRefs(t *testing.T, s *meta.Store) {
	t.Helper()
	refs := map[blobstore.Hash]uint64{}
	err := s.AllInodes(func(a meta.Attr) error {
		return s.Chunks(a.Ino, func(_ uint64, c meta.ChunkRef) error { refs[c.Hash]++; return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.RefBlobs(func(h blobstore.Hash, info meta.BlobInfo) error {
		if info.Refs != refs[h] {
			t.Errorf("blob %s: refcount %d, manifests hold %d", h, info.Refs, refs[h])
		}
		delete(refs, h)
		if _, err := s.Blob(h); err != nil {
			t.Errorf("blob %s is referenced but unreadable: %v", h, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for h, n := range refs {
		t.Errorf("blob %s referenced by %d manifest entries has no refcount", h, n)
	}
}

func sameBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	t.Fatalf("%s: %d bytes, want %d; first difference at byte %d", what, len(got), len(want), i)
}

// eventually polls cond until it holds. The deadline only turns a hang
// into a failure; it is far above any expected duration.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// data returns n reproducible incompressible bytes.
func data(n int, seed uint64) []byte { return storetest.Random(n, seed) }

// faultyStore fails the next n Puts with err, counting every Put. With a
// gate, each Put waits for a token, served in arrival order.
type faultyStore struct {
	blobstore.Store
	mu    sync.Mutex
	fails int // -1: fail until set again
	err   error
	puts  int
	times []time.Time // of every Put
	gate  chan struct{}
}

func (f *faultyStore) putTimes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.times...)
}

func (f *faultyStore) arrived() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.puts
}

func (f *faultyStore) set(fails int, err error) {
	f.mu.Lock()
	f.fails, f.err = fails, err
	f.mu.Unlock()
}

func (f *faultyStore) Put(h blobstore.Hash, d []byte) (blobstore.Info, error) {
	f.mu.Lock()
	f.puts++
	f.times = append(f.times, time.Now())
	fail := f.fails != 0
	if f.fails > 0 {
		f.fails--
	}
	err, gate := f.err, f.gate
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if fail {
		return blobstore.Info{}, err
	}
	return f.Store.Put(h, d)
}

// logSink keeps the manager's log lines; t.Logf is unsafe once a test ends.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (l *logSink) logf(format string, args ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *logSink) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}
