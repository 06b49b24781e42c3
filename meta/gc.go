package meta

import (
	"sync/atomic"
	"time"

	"github.com/taskerfs/taskerfs/blobstore"
)

// freedCounters count what transactions freed, as hints for the
// background collector: whether a pass can find anything, and whether
// pebble holds enough deleted keys to be worth compacting.
type freedCounters struct {
	blobs  atomic.Uint64 // file or inline blobs whose last reference went
	inodes atomic.Uint64 // inodes deleted
	inline atomic.Uint64 // bytes of inline payloads deleted (unreferenced or moved to files)
}

// compactAfterInline is how many bytes of deleted inline payloads make a
// compaction of the inline table worth it, when they are also at least half
// of what the table holds on disk (its cost stays in proportion). A file
// rewritten and fsynced again and again (fsx, an active session's
// metadata.json) leaves its old payloads in tables until a compaction
// reaches them, which on a store that has gone quiet is never.
var compactAfterInline = uint64(32 << 20) // a variable for tests

// compactAfterInodes is how many deleted inodes make a compaction worth
// it: after rm -rf of a tree, pebble keeps the deleted keys (and their
// tombstones) in its WAL, memtable and tables until compaction reaches
// them, which on an idle store is never. A compaction rewrites the whole
// store, so it also waits for the inodes deleted since the last one to
// reach half of those still there (compactWorthIt): its cost then stays in
// proportion to the deletions, at any size of store.
const compactAfterInodes = 256

// compactWorthIt reports whether deleted inodes since the last compaction
// justify rewriting a store that still holds live ones.
func compactWorthIt(deleted uint64, live int64) bool {
	return deleted >= compactAfterInodes && int64(deleted) >= live/2
}

// Collector is gc run by the daemon itself. A blob is deleted only once it
// has been unreferenced and unpinned for a grace period: found so by one
// pass, still so at a pass at least grace later. The pins keep it safe
// with the write-back queue (spilled and prepared blobs are pinned until
// their commit lands) and with open files (unlinked open files keep their
// references); the grace period covers a reader that looked up a chunk
// just before a commit dropped its last reference.
type Collector struct {
	s      *Store
	grace  time.Duration
	seen   map[blobstore.Hash]time.Time // unreferenced at a pass, since
	blobs  uint64                       // freed.blobs at the last pass
	inline uint64                       // freed.inline at the last compaction of the inline table
	walIn  uint64                       // bytes written to the WAL, at the end of the last pass
	still  int                          // passes in a row that found walIn unchanged
}

// walQuietPasses is how many passes in a row must find that nothing but
// the collector wrote to the WAL before it gives the WAL's spare space
// back (Store.ReleaseWAL): with the default 20 s interval, after 20 to 40 s
// without a write. A store in use keeps its spares, whose reuse makes
// fsync cheaper.
const walQuietPasses = 2

// NewCollector returns a collector for s with the given grace period.
func (s *Store) NewCollector(grace time.Duration) *Collector {
	return &Collector{s: s, grace: grace, seen: map[blobstore.Hash]time.Time{}}
}

// CollectResult is what one Pass did.
type CollectResult struct {
	GCResult
	Waiting     int  // unreferenced blobs still in their grace period
	Compacted   bool // pebble compacted its deleted keys
	ReleasedWAL bool // the store was quiet: the WAL's spare space went (Store.ReleaseWAL)
}

// Pass runs one collection if there can be anything to collect (a blob
// lost its last reference since the last pass, or blobs are waiting out
// their grace period, or full: blobs that were never referenced, such as
// a spill of a file deleted while it was written, leave no other trace),
// then compacts pebble if many inodes were deleted since the last
// compaction.
func (c *Collector) Pass(now time.Time, full bool) (CollectResult, error) {
	var res CollectResult
	// Quiet: nothing but this collector wrote to the WAL since its last
	// pass (walIn is read at the end of a pass, after its own writes).
	quiet := c.s.db.Metrics().WAL.BytesIn == c.walIn
	freed := c.s.freed.blobs.Load()
	if full || freed != c.blobs || len(c.seen) > 0 {
		// Whatever dropped a blob's last reference must be durable before
		// the blob goes, or a power loss could bring the reference back
		// without its blob. (Unlinks and other namespace changes are
		// committed without a WAL sync.) `taskerfs gc` does the same with
		// its SyncAll first.
		if err := c.s.SyncWAL(); err != nil {
			return res, err
		}
		c.blobs = freed
		unref := map[blobstore.Hash]time.Time{}
		r, err := c.s.gc(func(h blobstore.Hash, pinned bool) bool {
			since, ok := c.seen[h]
			if !ok || pinned {
				since, ok = now, false // the grace period starts when the pin goes
			}
			if now.Sub(since) >= c.grace && ok {
				return true
			}
			unref[h] = since
			return false
		}, false)
		res.GCResult = r
		if err != nil {
			return res, err // keep seen: the next pass carries on
		}
		c.seen = unref // forgets blobs referenced again or deleted
		res.Waiting = len(unref)
	}
	compacted, err := c.s.compactIfWorthIt()
	if err != nil {
		return res, err
	}
	if compacted {
		res.Compacted = true
		c.inline = c.s.freed.inline.Load() // a full compaction covers the inline table
	}
	if freed := c.s.freed.inline.Load() - c.inline; freed >= compactAfterInline {
		// Both payload tables: keyed by hash (older) and by id.
		var size uint64
		for _, pfx := range []byte{pfxInline, pfxPayload} {
			if n, err := c.s.db.EstimateDiskUsage([]byte{pfx}, []byte{pfx + 1}); err == nil {
				size += n
			}
		}
		if freed >= size/2 {
			c.inline = c.s.freed.inline.Load()
			for _, pfx := range []byte{pfxInline, pfxPayload} {
				if err := c.s.db.Compact([]byte{pfx}, []byte{pfx + 1}, true); err != nil {
					return res, err
				}
			}
			res.Compacted = true
		}
	}
	if !quiet {
		c.still = 0
	} else if c.still++; c.still == walQuietPasses {
		if err := c.s.ReleaseWAL(); err != nil {
			return res, err
		}
		res.ReleasedWAL = true
	}
	c.walIn = c.s.db.Metrics().WAL.BytesIn
	return res, nil
}

// compactIfWorthIt compacts pebble when enough inodes were deleted since
// the last compaction (compactWorthIt).
func (s *Store) compactIfWorthIt() (bool, error) {
	live := s.Counters()
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	inodes := s.freed.inodes.Load()
	if !compactWorthIt(inodes-s.compactedInodes, live.Files+live.Dirs) {
		return false, nil
	}
	s.compactedInodes = inodes
	return true, s.Compact()
}

// Compact flushes pebble's memtable and compacts every level, so deleted
// keys and their tombstones leave the disk.
func (s *Store) Compact() error {
	return s.db.Compact([]byte{0}, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, true)
}

// EngineMetrics is pebble's own account of the store (levels, write
// amplification, compactions, caches), for the daemon's debug endpoint.
func (s *Store) EngineMetrics() string { return s.db.Metrics().String() }
