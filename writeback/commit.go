package writeback

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/meta"
)

const maxBackoff = 10 * time.Second

func (m *Manager) committer() {
	defer m.done.Done()
	tick := time.NewTicker(m.opts.Window)
	defer tick.Stop()
	for {
		var flush chan error
		windowDue := false
		select {
		case <-m.stop:
			return
		case <-m.kick:
			windowDue = m.pressure.Swap(false)
		case <-tick.C:
			windowDue = true
		case flush = <-m.flushReq:
		case req := <-m.commitReq:
			var err error
			if batch := m.takeMatching(req.pred); len(batch) > 0 {
				err = m.commit(batch, false, false)
			}
			req.done <- err
			continue
		}
		if flush != nil {
			flush <- m.flushAll()
			continue
		}
		if batch := m.take(windowDue, false); len(batch) > 0 {
			m.commit(batch, true, true)
		}
	}
}

// flushAll commits everything, open files included, until nothing is
// dirty or a commit fails, then syncs. A failure names the files whose
// changes are not on disk.
func (m *Manager) flushAll() error {
	for i := 0; ; i++ {
		batch := m.take(true, true)
		if len(batch) == 0 {
			break
		}
		if err := m.commit(batch, true, false); err != nil {
			return m.notPersisted(err)
		}
		if i > 100 {
			break // writers keep dirtying files; what was dirty at the call is done
		}
	}
	if err := m.syncBlobs(); err != nil {
		return err
	}
	return m.store.SyncWAL()
}

// NotPersistedError is a flush failure with the files it left unsaved.
type NotPersistedError struct {
	Err   error
	Paths []string // of the files not persisted (at most 20), "inode N" when nameless
	Count int      // how many files in all
}

func (e *NotPersistedError) Error() string {
	more := ""
	if e.Count > len(e.Paths) {
		more = fmt.Sprintf(" and %d more", e.Count-len(e.Paths))
	}
	return fmt.Sprintf("%v; %d file(s) not persisted: %s%s", e.Err, e.Count, strings.Join(e.Paths, ", "), more)
}

func (e *NotPersistedError) Unwrap() error { return e.Err }

// notPersisted wraps err with the files that still hold changes.
func (m *Manager) notPersisted(err error) error {
	var inos []uint64
	m.mu.Lock()
	for ino, f := range m.files {
		f.mu.Lock()
		if f.pending != nil || f.inflight != nil || f.changedSinceSnapshot() {
			inos = append(inos, ino)
		}
		f.mu.Unlock()
	}
	m.mu.Unlock()
	slices.Sort(inos)
	e := &NotPersistedError{Err: err, Count: len(inos)}
	for _, ino := range inos[:min(len(inos), 20)] {
		p, ok, perr := m.store.PathOf(ino)
		if perr != nil || !ok {
			p = fmt.Sprintf("inode %d", ino)
		}
		e.Paths = append(e.Paths, p)
	}
	return e
}

// take moves the snapshots due now from the queue to in flight. With
// all, every file with changes (open ones too) is snapshotted first.
func (m *Manager) take(windowDue, all bool) []*snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	// After a failure, background commits back off; fsync callers retry
	// at once, so a disk that came back answers them.
	backoff := time.Now().Before(m.retryNotBefore)
	if all {
		for _, f := range m.files {
			f.mu.Lock()
			if f.changedSinceSnapshot() {
				m.snapshotLocked(f, Normal)
			}
			f.mu.Unlock()
		}
	}
	return m.takeLocked(func(f *file) bool {
		return all || f.pending.prio == Critical || (windowDue && !backoff)
	})
}

// takeMatching moves every queued snapshot that pred selects to in flight.
func (m *Manager) takeMatching(pred func(ino uint64) bool) []*snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.takeLocked(func(f *file) bool { return pred(f.ino) })
}

func (m *Manager) takeLocked(due func(f *file) bool) []*snapshot {
	var batch []*snapshot
	for ino, f := range m.queue {
		f.mu.Lock()
		if f.inflight == nil && due(f) {
			s := f.pending
			f.pending, f.inflight = nil, s
			delete(m.queue, ino)
			batch = append(batch, s)
		}
		f.mu.Unlock()
	}
	return batch
}

// prepare hashes, encodes and stores one chunk's bytes; nil for a hole.
// Small blobs are left for the commit to put inline in pebble, unless
// toFile (a spill, which must free memory before any commit). So are
// larger ones while journal (non-nil for a commit an fsync caller waits
// for) has bytes left: the WAL sync then makes them durable without the
// fsyncs of a blob file and its directory, and the manager moves them
// to files later (meta/journal.go, moveOut).
//
// hint is the file's record of how its chunks compress (blobstore.Hint).
func (m *Manager) prepare(data []byte, toFile bool, journal *atomic.Int64, hint *blobstore.Hint) (*meta.BlobRef, error) {
	if allZero(data) {
		return nil, nil
	}
	h := blobstore.Sum(data)
	m.store.Pin(h)
	if !toFile && (len(data) <= meta.InlineMax || m.journals(h, len(data), journal)) {
		codec, enc := blobstore.EncodeHint(data, hint)
		if enc == nil {
			enc = []byte{}
		}
		return &meta.BlobRef{Hash: h, Size: uint32(len(data)), Codec: codec, Stored: int64(len(enc)) + 1, Inline: enc}, nil
	}
	info, err := m.putHashed(h, data, hint)
	if err != nil {
		m.store.Unpin(h)
		return nil, err
	}
	m.unsyncedMu.Lock()
	m.unsynced[h] = struct{}{}
	m.unsyncedMu.Unlock()
	m.st.blobBytes.Add(info.Stored)
	return &meta.BlobRef{Hash: h, Size: uint32(len(data)), Codec: info.Codec, Stored: info.Stored}, nil
}

// putHashed stores data under h, which the caller computed from data (a
// store that can skips hashing it again).
func (m *Manager) putHashed(h blobstore.Hash, data []byte, hint *blobstore.Hint) (blobstore.Info, error) {
	if hp, ok := m.blobs.(blobstore.HashedPutter); ok {
		return hp.PutHashed(h, data, hint)
	}
	return m.blobs.Put(h, data)
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// syncBlobs makes every blob written so far durable, so no manifest that
// a later WAL sync persists can point at a blob the disk lost. A few blobs
// are synced one by one; many at once with one filesystem-wide sync.
//
// Calls are serialised (commits run on the committer and on fsync
// callers): a call must not return while another still syncs blobs it
// took from the set, or whose failure puts them back.
func (m *Manager) syncBlobs() error {
	m.blobSyncMu.Lock()
	defer m.blobSyncMu.Unlock()
	m.unsyncedMu.Lock()
	hs := make([]blobstore.Hash, 0, len(m.unsynced))
	for h := range m.unsynced {
		hs = append(hs, h)
	}
	m.unsynced = map[blobstore.Hash]struct{}{}
	m.unsyncedMu.Unlock()
	if len(hs) == 0 {
		return nil
	}
	err := m.syncHashes(hs)
	if err != nil {
		m.unsyncedMu.Lock()
		for _, h := range hs {
			m.unsynced[h] = struct{}{}
		}
		m.unsyncedMu.Unlock()
	}
	return err
}

// maxBlobSyncs is where one syncfs becomes cheaper than per-file fsyncs.
const maxBlobSyncs = 64

// syncHashes makes the blobs hs durable: one by one when they are few,
// with one filesystem-wide sync when many.
func (m *Manager) syncHashes(hs []blobstore.Hash) error {
	if bs, ok := m.blobs.(blobstore.BlobSyncer); ok && len(hs) <= maxBlobSyncs {
		return bs.SyncBlobs(hs)
	}
	return m.blobs.Sync()
}

// commit persists a batch in one transaction; durable syncs the WAL
// (every window commit does: one sync per window).
//
// background marks the committer's own window commit: unless one of its
// files is critical (an fsync waits for it) or writers are held back by
// the bounds, nobody waits for it, and its files are prepared on the
// background workers (lowprio.go). An fsync that arrives for a file of
// such a commit while it runs waits for it at that priority.
func (m *Manager) commit(batch []*snapshot, durable, background bool) error {
	start := time.Now()
	for _, s := range batch {
		durable = durable || s.prio == Critical
		background = background && s.prio != Critical
	}
	done, err := m.persist(batch, durable, background && m.held.Load() == 0)
	if err != nil && done > 0 {
		// Those landed (not synced: their fsync callers sync the WAL).
		m.finish(batch[:done], nil, false)
		batch = batch[done:]
	}
	m.finish(batch, err, durable)
	m.st.batches.Add(1)
	m.st.lastCommit.Store(int64(time.Since(start)))
	return err
}

// applySlice is how many files one namespace transaction of a commit
// applies: the namespace lock is free between slices, so a create or a
// setattr waits for at most one slice of a large batch, not for all of it.
const applySlice = 16

// persist stores the batch's blobs (and runs PrepareCommit) on every CPU,
// syncs the blobs, and applies the batch a slice at a time, syncing the
// WAL once after the last when durable. done is how many snapshots (from
// the start) landed, also on error.
func (m *Manager) persist(batch []*snapshot, durable, background bool) (done int, err error) {
	var journal *atomic.Int64
	for _, s := range batch {
		if s.prio == Critical && len(s.waiters) > 0 {
			journal = new(atomic.Int64)
			journal.Store(journalBytes)
			break
		}
	}
	if err := m.eachSnapshot(batch, background, func(s *snapshot) error { return m.prepareSnapshot(s, journal) }); err != nil {
		return 0, err
	}
	if journal != nil && journal.Load() < journalBytes {
		defer m.kickMoveOut()
	}
	if err := m.syncBlobs(); err != nil {
		return 0, err
	}
	for done < len(batch) {
		part := batch[done:min(len(batch), done+applySlice)]
		last := done+len(part) == len(batch)
		err := m.store.Update(durable && last, func(tx *meta.Tx) error {
			for _, s := range part {
				if err := m.apply(tx, s); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return done, err
		}
		done += len(part)
	}
	return done, nil
}

// prepareSnapshot does the work of one file's commit that needs no lock:
// its chunks hashed, encoded and stored, and PrepareCommit (the index's
// extraction).
func (m *Manager) prepareSnapshot(s *snapshot, journal *atomic.Int64) error {
	for idx, c := range s.chunks {
		start := idx * meta.ChunkSize
		if start >= s.size {
			continue
		}
		if c.buf == nil {
			s.refs[idx] = c.ref // nil for a chunk of zeros
			continue
		}
		data := c.buf
		if lim := s.size - start; uint64(len(data)) > lim {
			data = data[:lim]
		}
		ref, err := m.prepare(data, false, journal, &s.f.hint)
		if err != nil {
			return err
		}
		if ref != nil {
			s.prepared = append(s.prepared, ref.Hash)
		}
		s.refs[idx] = ref
		s.data[idx] = data
	}
	if m.opts.PrepareCommit == nil {
		return nil
	}
	var err error
	s.derived, err = m.opts.PrepareCommit(s.f.ino, s.size, func() ([]byte, error) { return m.snapshotContent(s) })
	return err
}

// eachSnapshot calls fn for every snapshot of a batch, after resetting
// what one commit attempt keeps: on the background workers (lowprio.go)
// when background, else on every CPU when the batch has several. Its
// error is the first of fn's, in batch order.
func (m *Manager) eachSnapshot(batch []*snapshot, background bool, fn func(s *snapshot) error) error {
	for _, s := range batch {
		s.refs = map[uint64]*meta.BlobRef{}
		s.data = map[uint64][]byte{}
		s.derived = nil
	}
	errs := make([]error, len(batch))
	var failed atomic.Bool
	each := func(i int) {
		if !failed.Load() {
			if errs[i] = fn(batch[i]); errs[i] != nil {
				failed.Store(true)
			}
		}
	}
	switch workers := min(len(batch), runtime.GOMAXPROCS(0)); {
	case background && m.low != nil:
		m.low.run(len(batch), each)
	case workers > 1:
		var (
			next atomic.Int64
			wg   sync.WaitGroup
		)
		wg.Add(workers)
		for range workers {
			go func() {
				defer wg.Done()
				drawAll(&next, len(batch), each)
			}()
		}
		wg.Wait()
	default:
		for i := range batch {
			each(i)
		}
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (m *Manager) apply(tx *meta.Tx, s *snapshot) error {
	a, err := tx.GetAttr(s.f.ino)
	if errors.Is(err, syscall.ENOENT) {
		s.gone = true
		return nil
	}
	if err != nil {
		return err
	}
	keep := (s.size + meta.ChunkSize - 1) / meta.ChunkSize
	if s.trunc != noTrunc {
		keep = min(keep, (s.trunc+meta.ChunkSize-1)/meta.ChunkSize)
	}
	if s.trunc != noTrunc {
		// The version a truncation replaces goes to the trash (meta/trash.go).
		if err := tx.TrashReplaced(s.f.ino, s.trunc); err != nil {
			return err
		}
	}
	// No committed entry lies past the committed size (this is the only
	// writer of entries, and it drops those past each size it records).
	if err := tx.DropChunks(s.f.ino, keep, (a.Size+meta.ChunkSize-1)/meta.ChunkSize); err != nil {
		return err
	}
	// Entries at or past the committed size's chunk count do not exist
	// (dropped above when it shrank): no read of the old entry for those.
	end := (a.Size + meta.ChunkSize - 1) / meta.ChunkSize
	for idx, ref := range s.refs {
		set := tx.SetChunk
		if idx >= end {
			set = tx.SetChunkPastEnd
		}
		if err := set(s.f.ino, idx, ref); err != nil {
			return err
		}
	}
	a.Size = s.size
	s.f.mu.Lock() // ClearTimes may withdraw a time concurrently
	s.applyTimes(&a)
	s.f.mu.Unlock()
	if err := tx.PutAttr(&a); err != nil {
		return err
	}
	if m.opts.OnCommit == nil {
		return nil
	}
	return m.opts.OnCommit(tx, s.f.ino, func() ([]byte, error) { return m.snapshotContent(s) }, s.derived)
}

// snapshotContent assembles the committed-to-be content of s.
func (m *Manager) snapshotContent(s *snapshot) ([]byte, error) {
	out := make([]byte, s.size)
	for idx := uint64(0); idx*meta.ChunkSize < s.size; idx++ {
		dst := out[idx*meta.ChunkSize : min(s.size, (idx+1)*meta.ChunkSize)]
		var src []byte
		if d, ok := s.data[idx]; ok {
			src = d
		} else if ref, ok := s.refs[idx]; ok {
			if ref != nil {
				d, err := m.store.ChunkData(meta.ChunkRefOf(ref))
				if err != nil {
					return nil, err
				}
				src = d
			}
		} else if s.trunc == noTrunc || idx*meta.ChunkSize < s.trunc {
			c, ok, err := m.store.Chunk(s.f.ino, idx)
			if err != nil {
				return nil, err
			}
			if ok {
				if src, err = m.store.ChunkData(c); err != nil {
					return nil, err
				}
			}
		}
		copy(dst, src)
	}
	return out, nil
}

// finish updates the in-memory state after a commit attempt.
func (m *Manager) finish(batch []*snapshot, err error, durable bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.room.Broadcast()
	for _, s := range batch {
		for _, h := range s.prepared {
			m.store.Unpin(h)
		}
		s.prepared = nil
	}
	if err != nil {
		m.failed(batch, err)
		return
	}
	m.retries = 0
	m.st.commits.Add(1)
	m.st.items.Add(uint64(len(batch)))
	for _, s := range batch {
		f := s.f
		f.mu.Lock()
		f.inflight = nil
		f.err = nil
		for idx, c := range s.chunks {
			live := f.chunks[idx]
			// A spill may have swapped the buffer for the same bytes as a blob.
			sameBlob := live != nil && live.ref != nil && s.refs[idx] != nil && live.ref.Hash == s.refs[idx].Hash
			if live == c || sameBlob {
				m.dropChunkLocked(f, idx, live)
			}
		}
		// The committed state is now s: only truncations made after it
		// still hide committed bytes.
		f.trunc = f.truncNew
		if f.pending != nil {
			f.trunc = min(f.trunc, f.pending.sincePrev)
		}
		if f.gen == s.gen {
			f.clearTimes()
		}
		f.fresh = false // the store holds chunks of it now
		if s.gone {
			for idx, c := range f.chunks {
				m.dropChunkLocked(f, idx, c)
			}
			f.trunc, f.truncNew = noTrunc, noTrunc
			f.clearTimes()
		}
		m.retire(s, nil, durable)
		if f.idle() {
			delete(m.files, f.ino)
		}
		f.mu.Unlock()
	}
}

// failed puts a failed batch back: each snapshot is retried unless a newer
// one of the same file (which holds its changes too) is already queued.
func (m *Manager) failed(batch []*snapshot, err error) {
	m.retries++
	m.st.retries.Add(1)
	if m.retries == 5 {
		m.st.failures.Add(1)
	}
	backoff := min(maxBackoff, time.Duration(1<<min(m.retries, 10))*50*time.Millisecond)
	m.retryNotBefore = time.Now().Add(backoff)
	m.opts.Logf("writeback: commit of %d files failed (attempt %d, retry in %v): %v", len(batch), m.retries, backoff, err)
	perr := errnoOf(err)
	for _, s := range batch {
		f := s.f
		f.mu.Lock()
		f.inflight = nil
		if errors.Is(perr, syscall.ENOSPC) || m.retries >= 5 {
			f.err = perr
		}
		// Fsync callers learn of the failure now; the data stays queued.
		m.retire(s, perr, false)
		if p := f.pending; p != nil {
			p.sincePrev = min(p.sincePrev, s.sincePrev)
			p.queuedAt = s.queuedAt
			m.queuedLocked(f, p.queuedAt)
		} else {
			// Its fsync callers have their answer: the retry waits for the
			// backoff like any background commit (a new fsync makes it
			// critical again), so "retry in 10s" means 10 s.
			s.prio = Normal
			s.held = nil
			for _, c := range s.chunks {
				if c.ref != nil {
					m.store.Pin(c.ref.Hash)
					s.held = append(s.held, c.ref.Hash)
				}
			}
			f.pending = s
			m.queuedLocked(f, s.queuedAt)
		}
		f.mu.Unlock()
	}
}

// trySpill hands a full chunk of a file still being written to a spill
// worker, which stores it as an (as yet unreferenced) blob so the dirty
// memory is freed and the final commit has little left to do.
func (m *Manager) trySpill(f *file, idx uint64, c *chunk) {
	c.frozen = true
	select {
	case m.spills <- spillJob{f: f, idx: idx, c: c}:
	default:
		c.frozen = false
	}
}

func (m *Manager) spiller() {
	defer m.done.Done()
	for {
		select {
		case <-m.stop:
			return
		case j := <-m.spills:
			m.spill(j)
		}
	}
}

func (m *Manager) spill(j spillJob) {
	ref, err := m.prepare(j.c.buf, true, nil, &j.f.hint)
	if err != nil {
		m.opts.Logf("writeback: spill of inode %d chunk %d: %v", j.f.ino, j.idx, err)
		return // the chunk stays in memory and is committed later
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	j.f.mu.Lock()
	defer j.f.mu.Unlock()
	if j.f.chunks[j.idx] != j.c {
		if ref != nil {
			m.store.Unpin(ref.Hash)
		}
		return
	}
	m.dropChunkLocked(j.f, j.idx, j.c)
	j.f.chunks[j.idx] = &chunk{ref: ref} // a nil ref: the chunk is all zeros
	recycle(j.c)
	m.st.spills.Add(1)
}
