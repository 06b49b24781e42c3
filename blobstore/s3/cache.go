package s3

import (
	"container/list"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/taskerfs/taskerfs/blobstore"
)

// lru is the read cache: blob files in a Local store, evicted least
// recently used first once their bytes pass the budget. Recency lives in
// memory and, coarsely, in file mtimes (touched on use at most once a
// minute), so a restart rebuilds the order from a directory scan.
type lru struct {
	store  *blobstore.Local
	budget int64

	mu    sync.Mutex
	order *list.List // front = most recent; values *entry
	items map[blobstore.Hash]*list.Element
	bytes int64
}

type entry struct {
	h       blobstore.Hash
	size    int64
	touched time.Time
}

func openLRU(dir string, budget int64) (*lru, error) {
	st, err := blobstore.OpenLocal(dir, blobstore.LocalOptions{})
	if err != nil {
		return nil, err
	}
	c := &lru{store: st, budget: budget, order: list.New(), items: map[blobstore.Hash]*list.Element{}}
	var found []*entry
	err = st.List("", func(h blobstore.Hash) error {
		fi, err := os.Stat(st.Path(h))
		if err != nil {
			return nil
		}
		found = append(found, &entry{h: h, size: fi.Size(), touched: fi.ModTime()})
		return nil
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	slices.SortFunc(found, func(a, b *entry) int { return b.touched.Compare(a.touched) })
	for _, e := range found {
		c.items[e.h] = c.order.PushBack(e)
		c.bytes += e.size
	}
	c.evict()
	return c, nil
}

// get reads a cached blob and marks it used.
func (c *lru) get(h blobstore.Hash) ([]byte, error) {
	d, err := c.store.Get(h)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	el, ok := c.items[h]
	var touch bool
	if ok {
		c.order.MoveToFront(el)
		e := el.Value.(*entry)
		if now := time.Now(); now.Sub(e.touched) > time.Minute {
			e.touched, touch = now, true
		}
	}
	c.mu.Unlock()
	if touch {
		now := time.Now()
		os.Chtimes(c.store.Path(h), now, now)
	}
	return d, nil
}

// add caches a downloaded raw blob.
func (c *lru) add(h blobstore.Hash, raw []byte) error {
	if int64(len(raw)) > c.budget {
		return nil
	}
	if _, err := c.store.PutRaw(h, raw); err != nil {
		return err
	}
	c.track(h, int64(len(raw)))
	c.evict()
	return nil
}

// adopt moves a file holding h (an uploaded staged blob) into the cache.
// The caller evicts afterwards.
func (c *lru) adopt(h blobstore.Hash, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if err := c.store.Adopt(h, path); err != nil {
		return fmt.Errorf("move into cache: %w", err)
	}
	c.track(h, fi.Size())
	return nil
}

func (c *lru) track(h blobstore.Hash, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[h]; ok {
		e := el.Value.(*entry)
		c.bytes += size - e.size
		e.size = size
		c.order.MoveToFront(el)
		return
	}
	c.items[h] = c.order.PushFront(&entry{h: h, size: size, touched: time.Now()})
	c.bytes += size
}

// remove drops h; it reports whether h was cached.
func (c *lru) remove(h blobstore.Hash) bool {
	c.mu.Lock()
	if el, ok := c.items[h]; ok {
		c.bytes -= el.Value.(*entry).size
		c.order.Remove(el)
		delete(c.items, h)
	}
	c.mu.Unlock()
	err := c.store.Delete(h)
	return err == nil || !errors.Is(err, blobstore.ErrNotFound)
}

// evict removes least recently used blobs until the cache fits its budget.
func (c *lru) evict() {
	for {
		c.mu.Lock()
		if c.bytes <= c.budget || c.order.Len() == 0 {
			c.mu.Unlock()
			return
		}
		el := c.order.Back()
		e := el.Value.(*entry)
		c.order.Remove(el)
		delete(c.items, e.h)
		c.bytes -= e.size
		c.mu.Unlock()
		c.store.Delete(e.h)
	}
}

// usage is the cache's entry count and bytes.
func (c *lru) usage() (int, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len(), c.bytes
}
