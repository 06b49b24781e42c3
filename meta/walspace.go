package meta

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
)

// walPreallocate caps how much disk pebble reserves ahead of a WAL.
//
// pebble reserves 110% of the memtable size (35 MiB here) with fallocate
// whenever a WAL enters a new block of that size, and keeps a few WALs
// around (live, queued for flush, spare). These reservations stay
// allocated after the data they were for is deleted: a store emptied by
// rm -rf and gc still held 177 MB of WALs holding 2 MB of records. Capped
// to 1 MiB per block, a WAL costs about what it holds; the writes past
// the reserved part extend the file, which costs a metadata update on
// the fdatasync that follows them, and only for WALs over 1 MiB.
const walPreallocate = 1 << 20

// WAL spares: pebble's log recycling, kept by the store so that it can
// give the space back.
//
// A WAL that pebble no longer needs is worth keeping: the next WAL written
// over its blocks syncs faster than a new file, whose every fdatasync
// also commits the file's growth (a tenth off fs_mark -S 1 without it).
// pebble recycles them itself, but keeps up to three (about 8 MiB each
// with the daemon's memtables) for as long as the store is open, idle or
// not: 24 of the 25 MB a store emptied by rm -rf and gc still held.
//
// So pebble's own recycling is off (its cleaner, walCleaner, says it needs
// the files' contents, which is how pebble is told not to reuse them), and
// the cleaner renames each obsolete WAL to a spare (spare-N.wal, a name
// pebble does not know) instead of deleting it; the next WAL that pebble
// creates is a spare renamed back and written over, which is what pebble's
// recycling does (every record carries its log's number, so a reader stops
// where the old log's records begin). When the store goes quiet
// (Store.ReleaseWAL), the spares are deleted but one, cut short (shrink),
// and the WALs that retire after it are deleted, not kept; the first write
// after that writes a whole spare in the background and moves the WAL
// onto it (wake).
type walSpares struct {
	fs  vfs.FS // the file system under spaceFS
	dir string
	max int

	mu        sync.Mutex
	files     []string // spare paths, oldest first
	seq       uint64   // numbers spare names
	quiet     bool     // released, and pebble has not created a WAL since: keep none
	releasing bool     // ReleaseWAL's own flush: the WAL it creates is not a sign of work
	reused    bool     // the newest WAL is a spare written over: it holds a spare's blocks
	reuses    int      // spares written over so far (tests)

	// Refill (wake): when writes resume on a quiet store, a whole spare
	// is written in the background and pebble moves its WAL onto it.
	size      int64        // bytes of a refilled spare (a memtable's worth)
	rotate    func() error // starts a flush, which makes pebble open its next WAL
	refilling bool
	stopped   bool
	wg        sync.WaitGroup
	refills   int // spares written by refill (tests)
}

const spareSuffix = ".wal"

func isSpareName(name string) bool {
	return strings.HasPrefix(name, "spare-") && strings.HasSuffix(name, spareSuffix)
}

func isLogName(fs vfs.FS, path string) bool {
	return strings.HasSuffix(fs.PathBase(path), ".log")
}

// clearStale deletes the spares a daemon that stopped without closing the
// store left behind (they hold only records pebble was done with).
func (w *walSpares) clearStale() error {
	names, err := w.fs.List(w.dir)
	if err != nil {
		return nil // no dir yet: pebble creates it
	}
	for _, n := range names {
		if isSpareName(n) {
			if err := w.fs.Remove(w.fs.PathJoin(w.dir, n)); err != nil {
				return fmt.Errorf("meta: remove stale WAL spare %s: %w", n, err)
			}
		}
	}
	return nil
}

// retire takes an obsolete WAL from pebble's cleaner: kept as a spare, or
// deleted when there are enough or the store is quiet.
func (w *walSpares) retire(path string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.quiet && len(w.files) < w.max {
		w.seq++
		spare := w.fs.PathJoin(w.dir, fmt.Sprintf("spare-%d%s", w.seq, spareSuffix))
		if err := w.fs.Rename(path, spare); err == nil {
			w.files = append(w.files, spare)
			return nil
		}
	}
	return w.fs.Remove(path)
}

// create makes pebble's next WAL, from a spare when there is one. quiet
// reports that it was made while the store is quiet (ReleaseWAL's flush).
func (w *walSpares) create(name string) (f vfs.File, quiet bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.releasing {
		w.quiet = false
	}
	for len(w.files) > 0 {
		spare := w.files[len(w.files)-1] // the newest: its blocks are the likeliest cached
		w.files = w.files[:len(w.files)-1]
		f, err := w.fs.ReuseForWrite(spare, name)
		if err == nil {
			w.reused = !w.quiet // a quiet store's spare was cut short (shrink)
			w.reuses++
			return f, w.quiet, nil
		}
		slog.Warn("WAL spare not reused", "spare", spare, "err", err)
		_ = w.fs.Remove(spare)
	}
	w.reused = false
	f, err = w.fs.Create(name)
	return f, w.quiet, err
}

// liveReused reports whether the newest WAL was a spare.
func (w *walSpares) liveReused() bool {
	if w == nil { // a snapshot's read-only store
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reused
}

// wake is called when a quiet store's WAL is first written to: work
// resumed, so obsolete WALs are kept again, and a whole spare is written
// in the background (zeros, synced) for pebble to move its WAL onto, so
// that fsync after a quiet spell soon costs what it costs in a busy store
// (the WAL written into until then is the short spare: its first walKeep
// bytes are written blocks, the rest grows the file).
func (w *walSpares) wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.releasing || w.refilling || w.stopped || w.rotate == nil || w.size <= 0 {
		return
	}
	w.quiet = false
	w.refilling = true
	w.wg.Add(1)
	go w.refill()
}

func (w *walSpares) refill() {
	defer w.wg.Done()
	w.mu.Lock()
	w.seq++
	path := w.fs.PathJoin(w.dir, fmt.Sprintf("spare-%d%s", w.seq, spareSuffix))
	w.mu.Unlock()
	err := writeZeros(w.fs, path, w.size)
	w.mu.Lock()
	w.refilling = false
	if err != nil || w.quiet || w.stopped || len(w.files) >= w.max {
		w.mu.Unlock()
		_ = w.fs.Remove(path)
		if err != nil {
			slog.Warn("WAL spare not written", "err", err)
		}
		return
	}
	w.files = append(w.files, path)
	w.refills++
	rotate := w.rotate
	w.mu.Unlock()
	if err := rotate(); err != nil {
		slog.Warn("WAL not moved onto a fresh spare", "err", err)
	}
}

// writeZeros writes a file of size zero bytes and syncs it.
func writeZeros(fs vfs.FS, path string, size int64) error {
	f, err := fs.Create(path)
	if err != nil {
		return err
	}
	buf := make([]byte, 256<<10)
	for left := size; left > 0 && err == nil; {
		n := min(left, int64(len(buf)))
		_, err = f.Write(buf[:n])
		left -= n
	}
	if err == nil {
		err = f.SyncData()
	}
	return errors.Join(err, f.Close())
}

func (w *walSpares) setRotate(fn func() error) {
	w.mu.Lock()
	w.rotate = fn
	w.mu.Unlock()
}

// stop waits for a refill under way and keeps any from starting: pebble
// is about to close.
func (w *walSpares) stop() {
	if w == nil { // a snapshot's read-only store
		return
	}
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	w.wg.Wait()
}

func (w *walSpares) setReleasing(on bool) {
	if w == nil { // a snapshot's read-only store
		return
	}
	w.mu.Lock()
	w.releasing = on
	w.mu.Unlock()
}

// release deletes the spares and makes the WALs that retire from now on go
// too, until pebble creates the next WAL.
func (w *walSpares) release() error {
	if w == nil { // a snapshot's read-only store
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.quiet = true
	return w.dropLocked()
}

// shrink keeps the newest spare, cut to keep bytes, deletes the others,
// and makes the WALs that retire from now on go, until pebble creates the
// next WAL. The next WAL is written over the short spare: the blocks that
// a WAL's first keep bytes are written into are then already written, so
// the first fsyncs after a quiet spell cost what they cost before it,
// without a journal commit for the file's growth each (a new WAL made
// fsync()+close() 44% slower, fs_mark -S 1 13% slower, until the next
// rotation).
func (w *walSpares) shrink(keep int64) error {
	if w == nil { // a snapshot's read-only store
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.quiet = true
	if len(w.files) == 0 {
		return nil
	}
	newest := w.files[len(w.files)-1]
	w.files = w.files[:len(w.files)-1]
	err := w.dropLocked()
	if cerr := w.cut(newest, keep); cerr != nil {
		_ = w.fs.Remove(newest)
		return errors.Join(err, cerr)
	}
	w.files = []string{newest}
	return err
}

// cut truncates a spare to keep bytes. A file system without descriptors
// (pebble's MemFS, in tests) keeps it whole.
func (w *walSpares) cut(path string, keep int64) error {
	f, err := w.fs.OpenReadWrite(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if fd := f.Fd(); fd != vfs.InvalidFd {
		if st, err := f.Stat(); err == nil && st.Size() > keep {
			if err := syscall.Ftruncate(int(fd), keep); err != nil {
				return fmt.Errorf("meta: cut WAL spare: %w", err)
			}
		}
	}
	return nil
}

func (w *walSpares) dropLocked() error {
	var first error
	for _, f := range w.files {
		if err := w.fs.Remove(f); err != nil && first == nil {
			first = fmt.Errorf("meta: remove WAL spare: %w", err)
		}
	}
	w.files = nil
	return first
}

// count is how many spares there are (tests).
func (w *walSpares) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.files)
}

// spareCleaner is pebble's cleaner for the store: an obsolete WAL goes to
// the spares, any other file is deleted. The embedded ArchiveCleaner is
// never called: it is there for its marker method, which tells pebble not
// to recycle WALs itself (pebble's base.NeedsFileContents). pebble does
// not export the type of Clean's second parameter, so the cleaner is
// generic over it and newSpareCleaner infers it from pebble's own
// DeleteCleaner.Clean.
type spareCleaner[T any] struct {
	pebble.ArchiveCleaner
	spares *walSpares
}

func newSpareCleaner[T any](_ func(vfs.FS, T, string) error, w *walSpares) spareCleaner[T] {
	return spareCleaner[T]{spares: w}
}

func (c spareCleaner[T]) Clean(fs vfs.FS, _ T, path string) error {
	if isLogName(fs, path) {
		return c.spares.retire(path)
	}
	return fs.Remove(path)
}

func (spareCleaner[T]) String() string { return "spare-wal" }

// spaceFS is the file system under pebble: WAL preallocation capped, and
// new WALs made from spares.
type spaceFS struct {
	vfs.FS
	spares *walSpares
}

func (fs spaceFS) Create(name string) (vfs.File, error) {
	if fs.spares == nil || !isLogName(fs.FS, name) {
		f, err := fs.FS.Create(name)
		if err != nil {
			return nil, err
		}
		return cappedFile{f, walPreallocate}, nil
	}
	f, quiet, err := fs.spares.create(name)
	if err != nil {
		return nil, err
	}
	if quiet {
		// A quiet store's WAL reserves nothing: it holds what is
		// written, which may be nothing until the daemon stops. The
		// first write to it means work resumed (wakingFile).
		return &wakingFile{cappedFile: cappedFile{f, 0}, w: fs.spares}, nil
	}
	return cappedFile{f, walPreallocate}, nil
}

// wakingFile is the WAL of a quiet store: its first write wakes the spares.
type wakingFile struct {
	cappedFile
	w    *walSpares
	woke atomic.Bool
}

func (f *wakingFile) Write(p []byte) (int, error) {
	if !f.woke.Swap(true) {
		f.w.wake()
	}
	return f.cappedFile.Write(p)
}

func (fs spaceFS) ReuseForWrite(oldname, newname string) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname)
	if err != nil {
		return nil, err
	}
	return cappedFile{f, walPreallocate}, nil
}

// cappedFile reserves at most max bytes when pebble preallocates.
type cappedFile struct {
	vfs.File
	max int64
}

func (f cappedFile) Preallocate(offset, length int64) error {
	if n := min(length, f.max); n > 0 {
		return f.File.Preallocate(offset, n)
	}
	return nil
}

// maxWALSpares is how many obsolete WALs are kept to be written over: as
// many as pebble's own recycling keeps (one more than the memtables that
// may queue for a flush before writes stall, MemTableStopWritesThreshold).
const maxWALSpares = 3

// walKeep is how much of one spare a quiet store keeps for its next WAL
// (walSpares.shrink).
const walKeep = 512 << 10

// ReleaseWAL gives back the disk space the WAL holds beyond what is live
// and walKeep bytes for the next one: the spares are deleted but the
// newest, which is cut to walKeep, and when the current WAL holds records
// (or is a whole spare written over) the memtable is flushed so that it
// retires too; its records go to a table, where they take what they are
// worth, and nothing once compacted away. For a store that has gone quiet
// (the background collector, Collector.Pass) and for `taskerfs gc`.
func (s *Store) ReleaseWAL() error {
	s.spares.setReleasing(true)
	defer s.spares.setReleasing(false)
	// First the spares, so that the flush's new WAL is the short spare,
	// which reserves nothing more, and not a whole one's 8 MiB; the WAL
	// the flush retires is then deleted, not kept (quiet).
	if err := s.spares.shrink(walKeep); err != nil {
		return err
	}
	if s.db.Metrics().WAL.Size > 0 || s.spares.liveReused() {
		if err := s.db.Flush(); err != nil {
			return fmt.Errorf("meta: flush: %w", err)
		}
		s.spares.awaitRetired(s.db)
	}
	return s.spares.shrink(walKeep) // one that retired before quiet was set
}

// awaitRetired waits (a second at most) for pebble's cleaner to have taken
// the WALs that are no longer live: pebble deletes obsolete files in the
// background, after the flush that made them so has returned.
func (w *walSpares) awaitRetired(db *pebble.DB) {
	if w == nil { // a snapshot's read-only store
		return
	}
	for range 200 {
		names, err := w.fs.List(w.dir)
		if err != nil {
			return
		}
		logs := 0
		for _, n := range names {
			if isLogName(w.fs, n) {
				logs++
			}
		}
		if int64(logs) <= db.Metrics().WAL.Files {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
