package writeback

import (
	"sync"
	"time"

	"github.com/taskerfs/taskerfs/meta"
)

const noTrunc = ^uint64(0)

// chunk is the in-memory state of one dirty chunk: either bytes (buf) or
// a blob already written to the store by a spill (ref). A frozen buffer is
// being read by a commit or spill, so a write must copy it first.
type chunk struct {
	buf    []byte
	ref    *meta.BlobRef
	frozen bool
}

// file is the daemon-side state of an inode that is open or has changes
// not yet committed. It is the only source of truth for such an inode's
// content and size until its commit lands.
type file struct {
	ino uint64

	mu    sync.Mutex
	opens int
	size  uint64
	trunc uint64 // committed content at or beyond this byte reads as zeros
	// truncNew is the lowest truncation since the running commit took its
	// snapshot: what trunc becomes once that commit lands.
	truncNew uint64
	chunks   map[uint64]*chunk
	gen      uint64 // bumped by every change
	mtime    int64  // set by writes; committed only when mtimeSet
	mtimeSet bool
	dirtyMem int64 // bytes held in buf of this file's chunks
	err      error // sticky persist error, reported at write/fsync/flush

	// queue state, guarded by Manager.mu
	queued   bool
	prio     Priority
	queuedAt time.Time
	waiters  []*waiter
}

func (f *file) dirty() bool {
	return len(f.chunks) > 0 || f.trunc != noTrunc || f.mtimeSet
}

type waiter struct {
	gen  uint64
	done chan error
}
