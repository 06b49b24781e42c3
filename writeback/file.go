package writeback

import (
	"sync"
	"time"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/meta"
)

const noTrunc = ^uint64(0)

// chunk is the in-memory state of one dirty chunk: bytes (buf), a blob
// already written to the store by a spill (ref), or neither: all zeros. A
// frozen buffer is shared with a snapshot or a spill, so a write must copy
// it first.
type chunk struct {
	buf    []byte
	ref    *meta.BlobRef
	frozen bool
	// snapped: a snapshot took the chunk, so its buffer may be in use
	// until that commit ends and is never given back to chunkBufs.
	snapped bool
}

// file is the daemon-side state of an inode that is open or has changes
// not yet committed. Until its commits land it is the only source of
// truth for the inode's content and size.
//
// What gets committed is never the live state but a snapshot taken when a
// handle is closed (FLUSH of the last handle, RELEASE), on fsync, or on
// sync/unmount: so after a crash a file is a version that was once closed
// or synced, never a half-written one.
type file struct {
	ino uint64

	mu    sync.Mutex
	opens int
	size  uint64
	// trunc: committed content at or beyond this byte reads as zeros (a
	// truncation not yet committed).
	trunc uint64
	// truncNew is the lowest truncation since the newest snapshot: what
	// trunc becomes once the snapshots before it have landed.
	truncNew uint64
	chunks   map[uint64]*chunk
	gen      uint64 // bumped by every change
	snapGen  uint64 // gen at the newest snapshot
	times           // uncommitted times: a write's mtime, SetTimes
	// fresh: created by this mount and no commit of it has landed, so the
	// store holds no chunk of it to read before a write.
	fresh    bool
	dirtyMem int64 // bytes held in buf of this file's chunks
	err      error // sticky persist error, reported at write/fsync/flush

	pending  *snapshot // queued, superseded by a newer snapshot (coalescing)
	inflight *snapshot // being committed

	hint blobstore.Hint // how the file's chunks compress
}

// changedSinceSnapshot reports changes no snapshot holds yet.
func (f *file) changedSinceSnapshot() bool { return f.gen != f.snapGen }

// idle reports that nothing about the file needs memory any more.
func (f *file) idle() bool {
	return f.opens <= 0 && f.pending == nil && f.inflight == nil && len(f.chunks) == 0 &&
		f.trunc == noTrunc && !f.changedSinceSnapshot()
}

// times are timestamps not yet committed: the mtime of a write or
// truncate, or a setattr of times taken while the content was dirty
// (Manager.SetTimes). ctime is when the newest of them was made. Each is
// committed only when its flag is set.
type times struct {
	mtime, atime, ctime int64
	mtimeSet, atimeSet  bool
}

// modified records a change of the content at now.
func (t *times) modified(now int64) { t.mtime, t.mtimeSet, t.ctime = now, true, now }

// clearTimes drops the uncommitted times.
func (t *times) clearTimes() { t.mtimeSet, t.atimeSet = false, false }

// applyTimes overlays the uncommitted times on a.
func (t *times) applyTimes(a *meta.Attr) {
	if t.mtimeSet {
		a.Mtime = t.mtime
	}
	if t.atimeSet {
		a.Atime = t.atime
	}
	if t.mtimeSet || t.atimeSet {
		a.Ctime = max(a.Ctime, t.ctime)
	}
}

// snapshot is one version of a file on its way to the disk.
type snapshot struct {
	f         *file
	gen       uint64
	size      uint64
	trunc     uint64 // committed chunks at or past this byte are dropped
	sincePrev uint64 // lowest truncation between the previous snapshot and this one
	times
	chunks   map[uint64]*chunk
	prio     Priority
	queuedAt time.Time
	waiters  []*waiter
	held     []blobstore.Hash // spilled blobs pinned for the snapshot's life

	// per commit attempt
	refs     map[uint64]*meta.BlobRef // prepared; nil value = hole
	data     map[uint64][]byte        // logical bytes of buf chunks, for OnCommit
	prepared []blobstore.Hash         // pinned by this attempt
	derived  any                      // PrepareCommit's result for this attempt
	gone     bool                     // the inode was deleted before the commit landed
}

type waiter struct {
	done    chan error
	durable bool // set by the commit that answered
}
