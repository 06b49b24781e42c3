// Package cache is a small, cost-bounded cache over ristretto that makes
// every Set visible to the next Get and counts its own hits and misses.
package cache

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/ristretto/v2"
)

// maxTrackedItems bounds the admission sketch (10 counters per item, about
// 2 bytes each): a cache that holds more items than this still works, its
// frequency estimates are only coarser.
const maxTrackedItems = 1 << 16

// Cache maps K to V within a total cost. Safe for concurrent use.
//
// Ordering: Set returns only once ristretto has applied it, so a Get after
// Set sees the value (unless the admission policy refused it, in which case
// the caller just reloads it), and a Del after Set always removes it. A Set
// of a value loaded before a concurrent Del can still re-insert it: cache
// only values that cannot go stale that way (content-addressed blobs), or
// order the load and the Del yourself.
type Cache[K ristretto.Key, V any] struct {
	// mu makes Close exclusive: ristretto panics on a Set or Del that
	// races its Close, and FUSE handlers may still be running at unmount.
	mu     sync.RWMutex
	closed bool
	rc     *ristretto.Cache[K, V]

	hits, misses, evictions atomic.Uint64
}

// Stats is a snapshot of a cache's counters.
type Stats struct {
	Hits, Misses uint64
	Evictions    uint64 // items dropped to make room
	Cost         int64  // total cost of the items held
	MaxCost      int64
}

// New returns a cache holding items whose costs sum to at most maxCost.
func New[K ristretto.Key, V any](maxCost int64) (*Cache[K, V], error) {
	if maxCost <= 0 {
		return nil, fmt.Errorf("cache: max cost %d, want > 0", maxCost)
	}
	c := &Cache[K, V]{}
	rc, err := ristretto.NewCache(&ristretto.Config[K, V]{
		NumCounters:        10 * min(max(maxCost, 1<<10), maxTrackedItems),
		MaxCost:            maxCost,
		BufferItems:        64, // ristretto's recommended Get buffer size
		IgnoreInternalCost: true,
		OnEvict:            func(*ristretto.Item[V]) { c.evictions.Add(1) },
	})
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	c.rc = rc
	return c, nil
}

// Get returns the value cached for k.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		var zero V
		return zero, false
	}
	v, ok := c.rc.Get(k)
	if ok {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
	return v, ok
}

// Set caches v under k at the given cost (values below 1 count as 1, so
// every item uses room). It waits until the write is applied: ristretto
// buffers new keys, and two quick Sets of one new key would otherwise let
// the first win.
func (c *Cache[K, V]) Set(k K, v V, cost int64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return
	}
	c.rc.Set(k, v, max(cost, 1))
	c.rc.Wait()
}

// Del removes k; a Get that starts after Del returns misses.
func (c *Cache[K, V]) Del(k K) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return
	}
	c.rc.Del(k)
}

// Stats returns the counters so far; Cost includes every Del that returned.
func (c *Cache[K, V]) Stats() Stats {
	s := Stats{Hits: c.hits.Load(), Misses: c.misses.Load(), Evictions: c.evictions.Load()}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.closed {
		c.rc.Wait() // let pending Dels release their cost
		s.MaxCost = c.rc.MaxCost()
		s.Cost = s.MaxCost - c.rc.RemainingCost()
	}
	return s
}

// Close frees the cache. Later calls are no-ops that miss.
func (c *Cache[K, V]) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		c.rc.Close()
	}
}
