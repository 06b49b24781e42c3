package meta

import (
	"sync"
	"sync/atomic"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/taskerfs/taskerfs/cache"
)

// attrCache holds inode records exactly as they stand in the committed
// store, so that a namespace change can read them from it as well as
// GetAttr: every commit writes the records it changed into it (not just
// drops them), and a reader fills it only with a record that no commit
// can have changed since it was read.
//
// The protocol, with s.version odd while a commit lands:
//   - a commit bumps the version (begin) under mu before it applies, and
//     after it applies stores what it wrote and bumps it again (end);
//   - a reader notes the version (even) before its pebble read and fills
//     the cache only if, under mu, the version is still that one: no
//     commit began after its read, so none can have changed the record,
//     and any later commit's end overwrites the entry.
//
// So while a writer holds the namespace lock (no commit in flight), every
// entry is the committed record, and Tx reads through it.
//
// It is synchronous (an LRU under a mutex), not ristretto: ristretto
// buffers its Sets, and a Set that must be visible to the next Get waits
// for its goroutine, which on a busy machine put up to hundreds of
// microseconds on every GETATTR that missed. hashicorp/golang-lru's
// simplelru is the well-kept LRU underneath; the lock is ours because the
// version check and the fill must be one step.
//
// It holds directory entries too, under the same protocol and lock: the
// inode a name leads to, or that a name is absent. Most point reads of a
// namespace change are of a name: the kernel's LOOKUP before a create
// (absent), the create's own check, the unlink's (present). Each missed
// the memtables and walked pebble's levels, together 8% of the daemon's
// CPU creating and removing 4 KiB files.
//
// And it knows every name of a young directory: one made since the store
// was opened, whose entries have all been committed through it. A name
// such a directory does not have is absent without a point read, which
// answers the kernel's LOOKUP before each create of a copy or an untar
// into new directories (5% of the daemon's CPU untarring 10,000 small
// files). A directory stops being young when the names it holds would
// pass maxYoungNames (the oldest young ones go first), or when a commit
// touching its entries fails (its outcome is unknown).
type attrCache struct {
	mu    sync.Mutex
	lru   *simplelru.LRU[uint64, Attr]
	names *simplelru.LRU[nameKey, txName]
	max   int

	young      map[uint64]map[string]struct{} // young directory -> its names
	youngOrder []uint64                       // young directories, oldest first (some no longer young)
	youngNames int                            // names held in young
	maxYoung   int                            // bound of youngNames

	hits, misses, evictions atomic.Uint64
}

func newAttrCache(entries int) *attrCache {
	c := &attrCache{max: max(entries, 1)}
	// NewLRU fails only for a size below 1.
	c.lru, _ = simplelru.NewLRU[uint64, Attr](c.max, func(uint64, Attr) { c.evictions.Add(1) })
	c.names, _ = simplelru.NewLRU[nameKey, txName](max(c.max/4, 1), nil)
	c.young, c.maxYoung = map[uint64]map[string]struct{}{}, maxYoungNames
	return c
}

// maxYoungNames bounds the names the young directories hold (a name costs
// about 50 bytes).
const maxYoungNames = 32 << 10

// makeYoungLocked starts tracking dir, just made and empty.
func (c *attrCache) makeYoungLocked(dir uint64) {
	if _, ok := c.young[dir]; ok {
		return
	}
	c.young[dir] = map[string]struct{}{}
	c.youngOrder = append(c.youngOrder, dir)
	c.trimYoungLocked()
}

// dropYoungLocked stops tracking dir.
func (c *attrCache) dropYoungLocked(dir uint64) {
	if set, ok := c.young[dir]; ok {
		c.youngNames -= len(set)
		delete(c.young, dir)
	}
}

// trimYoungLocked drops the oldest young directories while there are too
// many names or directories, and forgets dropped ones in the order.
func (c *attrCache) trimYoungLocked() {
	for len(c.youngOrder) > 0 && (c.youngNames > c.maxYoung || len(c.young) > c.maxYoung/8) {
		c.dropYoungLocked(c.youngOrder[0])
		c.youngOrder = c.youngOrder[1:]
	}
	if len(c.youngOrder) > 2*len(c.young)+64 {
		kept := c.youngOrder[:0]
		for _, d := range c.youngOrder {
			if _, ok := c.young[d]; ok {
				kept = append(kept, d)
			}
		}
		c.youngOrder = kept
	}
}

// youngLocked records that name of a young directory leads to v.
func (c *attrCache) youngLocked(k nameKey, v txName) {
	set, ok := c.young[k.parent]
	if !ok {
		return
	}
	_, had := set[k.name]
	switch {
	case v.ino != 0 && !had:
		set[k.name] = struct{}{}
		c.youngNames++
		c.trimYoungLocked()
	case v.ino == 0 && had:
		delete(set, k.name)
		c.youngNames--
	}
}

// nameKey is a directory entry's key: the directory and the name.
type nameKey struct {
	parent uint64
	name   string
}

// txName is what a name leads to (ino 0: no entry).
type txName struct {
	ino uint64
	typ uint32
}

// getName returns the cached entry of k: from the cache of entries, or
// absent when k's directory is young and has no such name.
func (c *attrCache) getName(k nameKey) (txName, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.names.Get(k); ok {
		return v, true
	}
	if set, ok := c.young[k.parent]; ok {
		if _, has := set[k.name]; !has {
			return txName{}, true
		}
	}
	return txName{}, false
}

// fillName caches v, read from the store when version was v0, unless a
// commit has begun since.
func (c *attrCache) fillName(k nameKey, v txName, v0 uint64, version *atomic.Uint64) {
	if v0%2 != 0 {
		return
	}
	c.mu.Lock()
	if version.Load() == v0 {
		c.names.Add(k, v)
	}
	c.mu.Unlock()
}

// get returns the cached record of ino.
func (c *attrCache) get(ino uint64) (Attr, bool) {
	c.mu.Lock()
	a, ok := c.lru.Get(ino)
	c.mu.Unlock()
	if ok {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
	return a, ok
}

// fill caches a, read from the store when version was v0, unless a commit
// has begun since.
func (c *attrCache) fill(a Attr, v0 uint64, version *atomic.Uint64) {
	if v0%2 != 0 {
		return
	}
	c.mu.Lock()
	if version.Load() == v0 {
		c.lru.Add(a.Ino, a)
	}
	c.mu.Unlock()
}

// begin marks a commit in flight: fills of earlier reads stop.
func (c *attrCache) begin(version *atomic.Uint64) {
	c.mu.Lock()
	version.Add(1)
	c.mu.Unlock()
}

// end stores what the commit left (ok) or forgets what it touched (not
// ok: whether it landed is unknown), then ends the commit.
func (c *attrCache) end(version *atomic.Uint64, tx *Tx, ok bool) {
	c.mu.Lock()
	if ok {
		c.storeLocked(tx)
	} else {
		for _, ino := range tx.touched {
			c.lru.Remove(ino)
		}
		for k := range tx.names {
			c.names.Remove(k)
			c.dropYoungLocked(k.parent)
		}
	}
	version.Add(1)
	c.mu.Unlock()
}

// keep caches the records a transaction that wrote nothing read: they
// are the committed ones, and no commit is in flight while the caller
// holds the namespace lock.
func (c *attrCache) keep(tx *Tx) {
	c.mu.Lock()
	c.storeLocked(tx)
	c.mu.Unlock()
}

func (c *attrCache) storeLocked(tx *Tx) {
	for ino, m := range tx.attrs {
		if m.absent {
			c.lru.Remove(ino)
		} else {
			c.lru.Add(ino, m.a)
		}
	}
	for _, d := range tx.newDirs {
		c.makeYoungLocked(d)
	}
	for k, v := range tx.names {
		c.names.Add(k, v)
		c.youngLocked(k, v)
	}
}

// peek is get without the counters (for a transaction's own reads).
func (c *attrCache) peek(ino uint64) (Attr, bool) {
	c.mu.Lock()
	a, ok := c.lru.Get(ino)
	c.mu.Unlock()
	return a, ok
}

func (c *attrCache) stats() cache.Stats {
	c.mu.Lock()
	n := c.lru.Len()
	c.mu.Unlock()
	return cache.Stats{Hits: c.hits.Load(), Misses: c.misses.Load(), Evictions: c.evictions.Load(),
		Cost: int64(n), MaxCost: int64(c.max)}
}
