package blobstore

import "sync"

// lendCap is the capacity of a lent buffer: a 1 MiB chunk stored raw,
// with its header. Larger blobs are allocated as before.
const lendCap = 1<<20 + headerSize

// Lent is a buffer a store lent to a reader for one blob's bytes. The
// reader calls Return once nothing refers to those bytes any more; the
// next load then reuses the memory instead of allocating (and zeroing)
// another megabyte. A reader that loses track of a Lent simply lets the
// garbage collector have it. A nil *Lent (bytes not from the pool) may be
// returned too; that does nothing.
type Lent struct{ b []byte }

var lendPool = sync.Pool{New: func() any { return &Lent{b: make([]byte, lendCap)} }}

// borrow returns n bytes, from the pool when they fill at least half a
// lent buffer (their previous contents are not cleared: the caller
// overwrites them). A smaller blob gets a buffer of its own size: a reader
// may hold what it loads for as long as its file is open, and a megabyte
// for every 100 KB screenshot would multiply what it holds (and, for a
// reader that never gives it back, what it allocates).
func borrow(n int) (*Lent, []byte) {
	if !lendable(n) {
		return nil, make([]byte, n)
	}
	l := lendPool.Get().(*Lent)
	return l, l.b[:n]
}

// lendable reports whether n bytes come from the pool (see borrow).
func lendable(n int) bool { return n >= lendCap/2 && n <= lendCap }

// Return gives the buffer back to the pool. The bytes it held must not
// be used after.
func (l *Lent) Return() {
	if l != nil {
		lendPool.Put(l)
	}
}

// Lender is a Store that can load a blob into a lent buffer (Local).
type Lender interface {
	// GetLent is Get into a buffer from the pool: data aliases lent's
	// memory (lent is nil when it does not). The caller calls
	// lent.Return once it no longer uses data.
	GetLent(h Hash) (data []byte, lent *Lent, err error)
}
