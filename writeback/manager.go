// Package writeback holds the dirty data of open and recently closed files
// and persists it through a priority queue: close() never waits for
// hashing, compression or the disk; normal items are group-committed once
// per window in one pebble batch and one sync; fsync jumps the queue and
// returns only when the file is durable; writers wait when the backlog of
// dirty bytes or its age is over its bound.
package writeback

import (
	"errors"
	"fmt"
	"log"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/meta"
)

// Priority orders queued commits.
type Priority int

const (
	Low Priority = iota
	Normal
	Critical
)

func (p Priority) String() string {
	return [...]string{"low", "normal", "critical"}[p]
}

// Options tune a Manager. Zero values take the defaults.
type Options struct {
	Window        time.Duration // group-commit window for normal items (100 ms)
	MaxDirtyBytes int64         // writers wait above this (256 MiB here; the mount defaults to 64 MiB)
	MaxAge        time.Duration // writers wait while the oldest item is older (5 s)
	// Prioritize picks the priority of a closed file's commit (Normal if nil).
	Prioritize func(ino uint64) Priority
	// PrepareCommit, when set, runs before the transaction that commits
	// ino's new content (size bytes), outside every lock, concurrently for
	// the files of one commit: it may derive from the content (the index's
	// extraction) what OnCommit then only has to write. Its result goes to
	// OnCommit as prepared; an error fails the commit like one of OnCommit.
	PrepareCommit func(ino, size uint64, content func() ([]byte, error)) (prepared any, err error)
	// OnCommit runs inside the transaction that commits ino's new content,
	// so derived data (the index) lands atomically with it. prepared is
	// what PrepareCommit returned for this commit (nil without it).
	OnCommit func(tx *meta.Tx, ino uint64, content func() ([]byte, error), prepared any) error
	Logf     func(format string, args ...any)
	// FreeSpace reports the bytes available to the data dir and the size
	// of its filesystem (statfs). When set, a write that the disk could
	// not hold once everything queued is stored fails with ENOSPC at
	// write(), instead of being accepted by a close() that cannot keep
	// its promise; a reserve (1/16 of the filesystem, 2..256 MiB) stays
	// free for the namespace's WAL and tables.
	FreeSpace func() (avail, total int64, err error)
	// BackgroundNice is the nice value of the threads that do work no one
	// waits for (lowprio.go): 10 when 0; below 0, that work runs like
	// every other.
	BackgroundNice int
}

// Manager owns every open or dirty file's in-memory state.
type Manager struct {
	store *meta.Store
	blobs blobstore.Store
	opts  Options

	mu    sync.Mutex
	room  *sync.Cond // signalled when dirty bytes or backlog age drop
	files map[uint64]*file
	queue map[uint64]*file
	// queuedSince is at or before the queuedAt of everything in queue
	// (zero: nothing queued since the last scan), so that a writer learns
	// the backlog is younger than MaxAge without scanning the queue
	// (oldestAgeLocked). Guarded by mu.
	queuedSince time.Time

	dirtyBytes     atomic.Int64
	pressure       atomic.Bool  // writers are waiting: commit normal items now
	held           atomic.Int32 // writers waiting in waitRoom now
	low            *lowPool     // background workers; nil when off
	relieving      bool         // a relief spill is running (guarded by mu)
	unsyncedMu     sync.Mutex
	unsynced       map[blobstore.Hash]struct{} // blobs put since the last blob sync
	blobSyncMu     sync.Mutex                  // one syncBlobs at a time: see there
	kick           chan struct{}
	flushReq       chan chan error
	commitReq      chan commitReq
	spills         chan spillJob
	moveKick       chan struct{} // journaled blobs to move to files (journal.go)
	stop           chan struct{}
	done           sync.WaitGroup
	closed         bool
	retryNotBefore time.Time
	retries        int

	spaceMu    sync.Mutex
	spaceAvail int64     // from the last FreeSpace call
	spaceTotal int64     // filesystem size
	spaceAt    time.Time // when it was read
	spaceBlobs int64     // st.blobBytes then: blobs stored since use the space too

	st counters
	ra readAheader // background loads for sequential readers (readahead.go)
}

type spillJob struct {
	f   *file
	idx uint64
	c   *chunk
}

// New starts a manager's committer and spill workers.
func New(store *meta.Store, opts Options) *Manager {
	if opts.Window <= 0 {
		opts.Window = 100 * time.Millisecond
	}
	if opts.MaxDirtyBytes <= 0 {
		opts.MaxDirtyBytes = 256 << 20
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = 5 * time.Second
	}
	if opts.Logf == nil {
		opts.Logf = log.Printf
	}
	if opts.BackgroundNice == 0 {
		opts.BackgroundNice = defaultBackgroundNice
	}
	m := &Manager{
		store: store, blobs: store.Blobs(), opts: opts,
		files: map[uint64]*file{}, queue: map[uint64]*file{}, unsynced: map[blobstore.Hash]struct{}{},
		kick: make(chan struct{}, 1), flushReq: make(chan chan error), commitReq: make(chan commitReq),
		spills: make(chan spillJob, 64), moveKick: make(chan struct{}, 1), stop: make(chan struct{}),
	}
	m.room = sync.NewCond(&m.mu)
	if opts.BackgroundNice > 0 {
		m.low = newLowPool(opts.BackgroundNice)
	}
	m.done.Add(4)
	go m.committer()
	go m.spiller()
	go m.spiller()
	go m.mover()
	m.kickMoveOut() // blobs a crash left journaled
	return m
}

func (m *Manager) poke() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// fileLocked returns ino's state, creating it from the inode if needed.
// Called with m.mu held.
func (m *Manager) fileLocked(ino uint64) (*file, error) {
	if f := m.files[ino]; f != nil {
		return f, nil
	}
	a, err := m.store.GetAttr(ino)
	if err != nil {
		return nil, err
	}
	f := &file{ino: ino, size: a.Size, trunc: noTrunc, truncNew: noTrunc, chunks: map[uint64]*chunk{}}
	m.files[ino] = f
	return f, nil
}

// Open registers an open handle on ino.
func (m *Manager) Open(ino uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, err := m.fileLocked(ino)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.opens++
	f.mu.Unlock()
	return nil
}

// OpenNew registers the first handle of a file created in the caller's
// namespace transaction, which a store read cannot see yet: it is empty.
func (m *Manager) OpenNew(ino uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.files[ino]
	if f == nil {
		f = &file{ino: ino, trunc: noTrunc, truncNew: noTrunc, chunks: map[uint64]*chunk{}, fresh: true}
		m.files[ino] = f
	}
	f.mu.Lock()
	f.opens++
	f.mu.Unlock()
}

// IsOpen reports whether ino has open handles (meta keeps such inodes as
// orphans when their last name goes).
func (m *Manager) IsOpen(ino uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.files[ino]
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.opens > 0
}

// Release drops a handle. On the last one, the content as it is now is
// snapshotted and queued. It reports whether that was the last handle.
func (m *Manager) Release(ino uint64) (last bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.files[ino]
	if f == nil {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opens--
	if f.opens > 0 {
		return false
	}
	if f.changedSinceSnapshot() {
		m.snapshotLocked(f, m.priority(ino))
	}
	if f.idle() {
		delete(m.files, ino)
	}
	return true
}

func (m *Manager) priority(ino uint64) Priority {
	if m.opts.Prioritize != nil {
		return m.opts.Prioritize(ino)
	}
	return Normal
}

// Discard forgets ino's unsaved state (its inode is gone for good).
func (m *Manager) Discard(ino uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.files[ino]
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for idx, c := range f.chunks {
		m.dropChunkLocked(f, idx, c)
	}
	if p := f.pending; p != nil {
		f.pending = nil
		delete(m.queue, ino)
		m.retire(p, nil, true)
	}
	f.trunc, f.truncNew, f.snapGen = noTrunc, noTrunc, f.gen
	f.clearTimes()
	if f.idle() {
		delete(m.files, ino)
	}
}

// snapshotLocked freezes f's current content into its pending snapshot,
// superseding (coalescing with) one that is still queued. Called with
// m.mu and f.mu held.
func (m *Manager) snapshotLocked(f *file, prio Priority) *snapshot {
	s := &snapshot{f: f, gen: f.gen, size: f.size, trunc: f.trunc, sincePrev: f.truncNew,
		times: f.times, chunks: make(map[uint64]*chunk, len(f.chunks)),
		prio: prio, queuedAt: time.Now()}
	for idx, c := range f.chunks {
		c.frozen, c.snapped = true, true
		s.chunks[idx] = c
		if c.ref != nil {
			// The live entry may be replaced before the commit lands.
			m.store.Pin(c.ref.Hash)
			s.held = append(s.held, c.ref.Hash)
		}
	}
	if p := f.pending; p != nil {
		m.st.coalesced.Add(1)
		s.prio = max(s.prio, p.prio)
		s.queuedAt = p.queuedAt
		s.sincePrev = min(s.sincePrev, p.sincePrev)
		s.waiters = p.waiters
		p.waiters = nil
		m.retire(p, nil, true)
	}
	f.truncNew = noTrunc
	f.snapGen = f.gen
	f.pending = s
	m.queuedLocked(f, s.queuedAt)
	if s.prio == Critical {
		m.poke()
	}
	return s
}

// retire ends a snapshot's life: answer its waiters and release its pins.
func (m *Manager) retire(s *snapshot, err error, durable bool) {
	for _, w := range s.waiters {
		w.durable = durable
		w.done <- err
	}
	s.waiters = nil
	for _, h := range s.held {
		m.store.Unpin(h)
	}
	s.held = nil
}

// waitRoom blocks a writer while the backlog is over its bounds.
func (m *Manager) waitRoom() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for !m.closed && (m.dirtyBytes.Load() > m.opts.MaxDirtyBytes || m.oldestAgeLocked(m.opts.MaxAge) > m.opts.MaxAge) {
		m.st.throttled.Add(1)
		m.pressure.Store(true)
		if m.dirtyBytes.Load() > m.opts.MaxDirtyBytes {
			m.relieveLocked()
		}
		m.poke()
		m.held.Add(1)
		m.room.Wait()
		m.held.Add(-1)
	}
}

// relieveLocked frees dirty memory that no commit can free: buffers of
// files still open. They are stored as (not yet referenced) blobs, like a
// full chunk's spill. Called with m.mu held.
func (m *Manager) relieveLocked() {
	if m.relieving {
		return
	}
	var jobs []spillJob
	for _, f := range m.files {
		f.mu.Lock()
		for idx, c := range f.chunks {
			if c.buf != nil && !c.frozen && len(c.buf) > 0 {
				c.frozen = true
				jobs = append(jobs, spillJob{f: f, idx: idx, c: c})
			}
		}
		f.mu.Unlock()
	}
	if len(jobs) == 0 {
		return
	}
	m.relieving = true
	go func() {
		for _, j := range jobs {
			m.spill(j)
		}
		m.mu.Lock()
		m.relieving = false
		m.room.Broadcast()
		m.mu.Unlock()
	}()
}

// queuedLocked puts f, pending since at, in the queue. Called with m.mu
// held.
func (m *Manager) queuedLocked(f *file, at time.Time) {
	m.queue[f.ino] = f
	if m.queuedSince.IsZero() || at.Before(m.queuedSince) {
		m.queuedSince = at
	}
}

// oldestAgeLocked is how long the oldest queued change has waited, or a
// lower bound of it when that is within limit: waitRoom asks on every
// write, and a scan of the queue (hundreds of files in a window of small
// ones) was 2% of the daemon's CPU.
func (m *Manager) oldestAgeLocked(limit time.Duration) time.Duration {
	if m.queuedSince.IsZero() {
		return 0
	}
	now := time.Now()
	if age := now.Sub(m.queuedSince); age <= limit {
		return age
	}
	var oldest time.Time
	for _, f := range m.queue {
		if p := f.pending; p != nil && (oldest.IsZero() || p.queuedAt.Before(oldest)) {
			oldest = p.queuedAt
		}
	}
	m.queuedSince = oldest
	if oldest.IsZero() {
		return 0
	}
	return now.Sub(oldest)
}

func (m *Manager) openFile(ino uint64) (*file, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fileLocked(ino)
}

// spaceReserve is what stays free for pebble on a filesystem of total bytes.
func spaceReserve(total int64) int64 { return min(max(total/16, 2<<20), 256<<20) }

// checkSpace fails with ENOSPC when n more dirty bytes could not be stored
// once everything already queued is: the free space (read at most every
// 100 ms, on every call when it runs low) minus the dirty bytes not yet on
// disk, minus blobs stored since the reading, minus the reserve.
func (m *Manager) checkSpace(n int64) error {
	if m.opts.FreeSpace == nil {
		return nil
	}
	m.spaceMu.Lock()
	defer m.spaceMu.Unlock()
	free := func() int64 {
		return m.spaceAvail - (m.st.blobBytes.Load() - m.spaceBlobs) - m.dirtyBytes.Load() - spaceReserve(m.spaceTotal)
	}
	if m.spaceAt.IsZero() || time.Since(m.spaceAt) > 100*time.Millisecond || free() < 4*n+(8<<20) {
		avail, total, err := m.opts.FreeSpace()
		if err != nil {
			return nil // no figure: the commit reports a real failure
		}
		m.spaceAvail, m.spaceTotal, m.spaceAt, m.spaceBlobs = avail, total, time.Now(), m.st.blobBytes.Load()
	}
	if free() < n {
		m.st.noSpace.Add(1)
		return syscall.ENOSPC
	}
	return nil
}

// Write stores data at off in ino's dirty state.
func (m *Manager) Write(ino uint64, data []byte, off int64) (int, error) {
	if off < 0 {
		return 0, syscall.EINVAL
	}
	m.waitRoom()
	if err := m.checkSpace(int64(len(data))); err != nil {
		return 0, err
	}
	f, err := m.openFile(ino)
	if err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, f.err
	}
	pos := uint64(off)
	rest := data
	for len(rest) > 0 {
		idx, o := pos/meta.ChunkSize, int(pos%meta.ChunkSize)
		n := min(len(rest), meta.ChunkSize-o)
		c, err := m.writableChunk(f, idx)
		if err != nil {
			return len(data) - len(rest), err
		}
		if grow := o + n - len(c.buf); grow > 0 {
			c.buf = growZeroed(c.buf, o+n, o)
			f.dirtyMem += int64(grow)
			m.dirtyBytes.Add(int64(grow))
		}
		copy(c.buf[o:], rest[:n])
		if o+n == meta.ChunkSize {
			m.trySpill(f, idx, c)
		}
		rest = rest[n:]
		pos += uint64(n)
	}
	if pos > f.size {
		f.size = pos
	}
	f.gen++
	f.modified(time.Now().UnixNano())
	return len(data), nil
}

// writableChunk returns chunk idx as an owned, unfrozen buffer holding the
// chunk's current content. Called with f.mu held.
func (m *Manager) writableChunk(f *file, idx uint64) (*chunk, error) {
	c := f.chunks[idx]
	if c != nil && c.buf != nil && !c.frozen {
		return c, nil
	}
	var base []byte
	switch {
	case c != nil && c.buf != nil:
		base = c.buf
	case c != nil && c.ref != nil:
		d, err := m.store.ChunkData(meta.ChunkRefOf(c.ref))
		if err != nil {
			return nil, err
		}
		base = d
	case c != nil: // all zeros
	default:
		d, err := m.committedChunk(f, idx, nil)
		if err != nil {
			return nil, err
		}
		base = d
	}
	nc := &chunk{buf: append(make([]byte, 0, max(len(base), 4096)), base...)}
	if len(base) == 0 {
		nc.buf = nil // sized by the first write (growZeroed)
	}
	if c != nil {
		m.dropChunkLocked(f, idx, c)
	}
	f.chunks[idx] = nc
	f.dirtyMem += int64(len(nc.buf))
	m.dirtyBytes.Add(int64(len(nc.buf)))
	return nc, nil
}

// growZeroed extends buf to n bytes, the new ones below fill zero (the
// caller overwrites those from fill on), doubling the capacity (up to a
// chunk) so sequential writes copy it only a few times. A whole chunk's
// capacity comes from chunkBufs.
func growZeroed(buf []byte, n, fill int) []byte {
	old := len(buf)
	if n > cap(buf) {
		c := min(max(n, 2*cap(buf)), meta.ChunkSize)
		var nb []byte
		if c == meta.ChunkSize {
			nb = (*chunkBufs.Get().(*[]byte))[:n]
		} else {
			nb = make([]byte, n, c)
		}
		copy(nb, buf)
		buf = nb
	}
	buf = buf[:n]
	clear(buf[old:max(old, min(fill, n))])
	return buf
}

// chunkBufs recycles the buffers of full chunks a spill has stored: a
// sequential writer fills one a millisecond, and a new megabyte each time
// cost its page faults, its zeroing and the collector's work.
var chunkBufs = sync.Pool{New: func() any { b := make([]byte, meta.ChunkSize); return &b }}

// recycle gives c's buffer to chunkBufs when nothing else can hold it:
// c was only ever the file's live entry and a spill's (never a
// snapshot's), and is no longer the live entry. Called with f.mu held.
func recycle(c *chunk) {
	if c.snapped || cap(c.buf) != meta.ChunkSize {
		return
	}
	b := c.buf[:cap(c.buf)]
	c.buf = nil
	chunkBufs.Put(&b)
}

// dropChunkLocked forgets chunk idx's dirty entry c.
func (m *Manager) dropChunkLocked(f *file, idx uint64, c *chunk) {
	if f.chunks[idx] == c {
		delete(f.chunks, idx)
	}
	if c.buf != nil {
		f.dirtyMem -= int64(len(c.buf))
		m.dirtyBytes.Add(-int64(len(c.buf)))
	}
	if c.ref != nil {
		m.store.Unpin(c.ref.Hash)
	}
	m.room.Broadcast()
}

// committedChunk returns the committed bytes of chunk idx as the file
// sees them now (zeros past a pending truncation). Read-only.
func (m *Manager) committedChunk(f *file, idx uint64, cache *ReadCache) ([]byte, error) {
	start := idx * meta.ChunkSize
	if start >= f.trunc || f.fresh {
		return nil, nil
	}
	ref, ok, err := m.store.Chunk(f.ino, idx)
	if err != nil || !ok {
		return nil, err
	}
	d, err := m.blob(ref, cache)
	if err != nil {
		return nil, err
	}
	if lim := f.trunc - start; uint64(len(d)) > lim {
		d = d[:lim]
	}
	return d, nil
}

// Read fills dst from off and returns the byte count (short at EOF).
func (m *Manager) Read(ino uint64, dst []byte, off int64, cache *ReadCache) (int, error) {
	if off < 0 {
		return 0, syscall.EINVAL
	}
	m.mu.Lock()
	f := m.files[ino]
	m.mu.Unlock()
	if f == nil {
		a, err := m.store.GetAttr(ino)
		if err != nil {
			return 0, err
		}
		f = &file{ino: ino, size: a.Size, trunc: noTrunc}
		return m.readLocked(f, dst, uint64(off), cache)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return m.readLocked(f, dst, uint64(off), cache)
}

func (m *Manager) readLocked(f *file, dst []byte, off uint64, cache *ReadCache) (int, error) {
	if off >= f.size {
		return 0, nil
	}
	n := int(min(uint64(len(dst)), f.size-off))
	dst = dst[:n]
	pos := off
	for done := 0; done < n; {
		idx, o := pos/meta.ChunkSize, int(pos%meta.ChunkSize)
		l := min(n-done, meta.ChunkSize-o)
		var src []byte
		var err error
		switch c := f.chunks[idx]; {
		case c != nil && c.buf != nil:
			src = c.buf
		case c != nil && c.ref != nil:
			src, err = m.blob(meta.ChunkRefOf(c.ref), cache)
		case c != nil: // all zeros
		default:
			src, err = m.committedChunk(f, idx, cache)
		}
		if err != nil {
			return done, err
		}
		out := dst[done : done+l]
		k := 0
		if o < len(src) {
			k = copy(out, src[o:])
		}
		clear(out[k:])
		done += l
		pos += uint64(l)
	}
	m.readAhead(f, off, uint64(n), cache)
	return n, nil
}

// Attr overlays the in-memory size and times on a committed attr.
func (m *Manager) Attr(a *meta.Attr) {
	m.mu.Lock()
	f := m.files[a.Ino]
	m.mu.Unlock()
	if f == nil {
		return
	}
	f.mu.Lock()
	a.Size = f.size
	f.applyTimes(a)
	f.mu.Unlock()
}

// ClearTimes drops the uncommitted mtime and/or atime because a setattr
// commits one explicitly (touch -d after a write must win).
func (m *Manager) ClearTimes(ino uint64, atime, mtime bool) {
	m.mu.Lock()
	f := m.files[ino]
	m.mu.Unlock()
	if f == nil {
		return
	}
	f.mu.Lock()
	for _, t := range []*times{&f.times, snapTimes(f.pending), snapTimes(f.inflight)} {
		if t != nil {
			t.mtimeSet = t.mtimeSet && !mtime
			t.atimeSet = t.atimeSet && !atime
		}
	}
	f.mu.Unlock()
}

func snapTimes(s *snapshot) *times {
	if s == nil {
		return nil
	}
	return &s.times
}

// SetTimes takes a setattr of times alone (utimensat, as tar and cp -p
// send before closing) for a file that is open with content no snapshot
// holds yet: the times then go to disk with that content's commit, as a
// write's own mtime does, instead of in a metadata commit of their own,
// and Attr shows them meanwhile. It reports false, leaving the change to
// the caller, for any other file.
func (m *Manager) SetTimes(ino uint64, atime, mtime *int64) bool {
	m.mu.Lock()
	f := m.files[ino]
	m.mu.Unlock()
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.opens <= 0 || !f.changedSinceSnapshot() {
		return false
	}
	if mtime != nil {
		f.mtime, f.mtimeSet = *mtime, true
	}
	if atime != nil {
		f.atime, f.atimeSet = *atime, true
	}
	f.ctime = time.Now().UnixNano()
	return true
}

// Truncate sets ino's size. It is queued like a write.
func (m *Manager) Truncate(ino uint64, size uint64) error {
	m.waitRoom()
	m.mu.Lock()
	defer m.mu.Unlock()
	f, err := m.fileLocked(ino)
	if err != nil {
		return err
	}
	f.mu.Lock()
	if f.err != nil {
		err := f.err
		f.mu.Unlock()
		return err
	}
	if size < f.size {
		last, rem := size/meta.ChunkSize, size%meta.ChunkSize
		for idx, c := range f.chunks {
			if idx > last || (idx == last && rem == 0) {
				m.dropChunkLocked(f, idx, c)
			}
		}
		if rem != 0 {
			c, err := m.writableChunk(f, last)
			if err != nil {
				f.mu.Unlock()
				return err
			}
			if uint64(len(c.buf)) > rem {
				f.dirtyMem -= int64(uint64(len(c.buf)) - rem)
				m.dirtyBytes.Add(-int64(uint64(len(c.buf)) - rem))
				c.buf = c.buf[:rem]
			}
		}
		f.trunc = min(f.trunc, size)
		f.truncNew = min(f.truncNew, size)
	}
	f.size = size
	f.gen++
	f.modified(time.Now().UnixNano())
	if f.opens <= 0 {
		m.snapshotLocked(f, Normal)
	}
	f.mu.Unlock()
	return nil
}

// Flush runs at every close(2) of a handle. When it is the file's only
// handle, the content as closed is snapshotted and queued: RELEASE comes
// later and asynchronously, and a search right after close() must see the
// change. It reports a persist error of an earlier commit.
func (m *Manager) Flush(ino uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.files[ino]
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.opens == 1 && f.changedSinceSnapshot() && f.err == nil {
		m.snapshotLocked(f, m.priority(ino))
	}
	return f.err
}

// Fsync returns once ino's content and inode are durable. When the file's
// version is queued and no commit of it is in flight, the caller commits
// it itself, without the committer: a lone fsync then waits for no other
// goroutine than pebble's WAL writer, and concurrent fsyncs still share
// WAL syncs (pebble groups the syncs of concurrent commits).
func (m *Manager) Fsync(ino uint64) error {
	m.mu.Lock()
	f := m.files[ino]
	if f == nil {
		m.mu.Unlock()
		return m.store.SyncWAL()
	}
	f.mu.Lock()
	if f.changedSinceSnapshot() {
		m.snapshotLocked(f, Normal) // made critical below, without waking the committer
	}
	w := &waiter{done: make(chan error, 1)}
	var direct *snapshot
	switch {
	case f.pending != nil:
		s := f.pending
		s.prio = Critical
		s.waiters = append(s.waiters, w)
		if f.inflight == nil {
			f.pending, f.inflight = nil, s
			delete(m.queue, ino)
			direct = s
		} else {
			m.poke()
		}
	case f.inflight != nil:
		f.inflight.waiters = append(f.inflight.waiters, w)
	default:
		w = nil
	}
	f.mu.Unlock()
	m.mu.Unlock()
	if direct != nil {
		m.commit([]*snapshot{direct}, true, false) // answers w
	}
	if w != nil {
		if err := <-w.done; err != nil || w.durable {
			return err
		}
	}
	return m.store.SyncWAL()
}

// SyncAll commits every dirty file, open or not, and syncs everything.
func (m *Manager) SyncAll() error {
	ch := make(chan error, 1)
	select {
	case m.flushReq <- ch:
		return <-ch
	case <-m.stop:
		return errors.New("writeback: closed")
	}
}

type commitReq struct {
	pred func(ino uint64) bool
	done chan error
}

// CommitNow commits, without waiting for the disk, every queued snapshot
// for which pred holds, and waits for one in flight: a reader of derived
// data (search) then sees every change whose close() has returned.
func (m *Manager) CommitNow(pred func(ino uint64) bool) error {
	// A matching commit already in flight counts too: the committer
	// answers this request only after it has landed.
	m.mu.Lock()
	any := false
	for ino, f := range m.files {
		f.mu.Lock()
		busy := f.pending != nil || f.inflight != nil
		f.mu.Unlock()
		if busy && pred(ino) {
			any = true
			break
		}
	}
	m.mu.Unlock()
	if !any {
		return nil
	}
	req := commitReq{pred: pred, done: make(chan error, 1)}
	select {
	case m.commitReq <- req:
		return <-req.done
	case <-m.stop:
		return errors.New("writeback: closed")
	}
}

// Queued reports whether ino has a closed or fsync'd version whose commit
// has not landed (meta.ContentGate).
func (m *Manager) Queued(ino uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.files[ino]
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pending != nil || f.inflight != nil
}

// Settle commits ino's queued version now, without a WAL sync (its blobs
// are synced first, as for every commit), and returns once it has landed
// (meta.ContentGate): a rename or link then commits after it. It costs the
// renaming caller that one file's commit, not a wait for the disk's WAL
// sync; close() itself still never waits.
func (m *Manager) Settle(ino uint64) error {
	if err := m.CommitNow(func(i uint64) bool { return i == ino }); err != nil {
		return errnoOf(err)
	}
	return nil
}

// Close flushes everything durably and stops the workers.
func (m *Manager) Close() error {
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return nil
	}
	err := m.SyncAll()
	if err == nil {
		if merr := m.moveAllOut(); merr != nil {
			m.opts.Logf("writeback: journaled blobs left inline for the next mount: %v", merr)
		}
	}
	m.mu.Lock()
	m.closed = true
	m.room.Broadcast()
	m.mu.Unlock()
	close(m.stop)
	m.done.Wait()
	if m.low != nil {
		m.low.close()
	}
	m.ra.close()
	return err
}

func errnoOf(err error) error {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return fmt.Errorf("%w: %v", syscall.EIO, err)
}
