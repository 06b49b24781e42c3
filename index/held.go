package index

import "github.com/cockroachdb/pebble"

// heldKeys is a rebuild's write-back of the keys every file rewrites: the
// length column's block of its session (256 sessions' lengths, about 500
// bytes), its session's aggregate and the global counts. Written through,
// each went into the batch, the WAL and the memtable once per file: at
// 100k sessions the length column alone was four fifths of the 324 MB a
// rebuild wrote there, and the memtable flushes that made drove the
// compactions of the base level. A rebuild numbers the sessions as it
// meets them and takes a session's files one after the other, so it
// changes one block and one aggregate after the other: each is held while
// it changes and written when the next one is, and all of them when the
// rebuilder flushes (before anything else reads them through the batch).
type heldKeys struct {
	lengths lengthCache
	agg     aggCache

	global      globalStats // the counts as apply left them
	globalHeld  bool
	globalDirty bool
}

// flush writes what is held and changed into b.
func (h *heldKeys) flush(b *pebble.Batch) error {
	if err := h.lengths.flush(b); err != nil {
		return err
	}
	if err := h.agg.flush(b); err != nil {
		return err
	}
	if h.globalDirty {
		if err := b.Set(tableKey(tblGlobal), h.global.encode(), nil); err != nil {
			return err
		}
		h.globalDirty = false
	}
	return nil
}

// aggCache is the aggregate part of heldKeys: one session's.
type aggCache struct {
	num    uint32
	agg    sessionAgg
	exists bool
	held   bool // num's aggregate is agg (or none: !exists)
	dirty  bool // and not yet in the batch
}

func (c *aggCache) load(b *pebble.Batch, num uint32) (sessionAgg, bool, error) {
	if c.held && c.num == num {
		return c.agg, c.exists, nil
	}
	if err := c.flush(b); err != nil {
		return sessionAgg{}, false, err
	}
	c.held = false
	a, ok, err := loadAgg(b, num)
	if err != nil {
		return sessionAgg{}, false, err
	}
	c.num, c.agg, c.exists, c.held = num, a, ok, true
	return a, ok, nil
}

func (c *aggCache) store(b *pebble.Batch, num uint32, a sessionAgg, exists bool) error {
	if c.held && c.num != num {
		if err := c.flush(b); err != nil {
			return err
		}
	}
	c.num, c.agg, c.exists, c.held, c.dirty = num, a, exists, true, true
	return nil
}

func (c *aggCache) flush(b *pebble.Batch) error {
	if !c.dirty {
		return nil
	}
	var err error
	if c.exists {
		err = b.Set(numKey(c.num), c.agg.encode(), nil)
	} else {
		err = b.Delete(numKey(c.num), nil)
	}
	if err == nil {
		c.dirty = false
	}
	return err
}

// loadAgg is the package's loadAgg through g's held keys, in a rebuild.
func (g *globalStats) loadAgg(b *pebble.Batch, num uint32) (sessionAgg, bool, error) {
	if g.held != nil {
		return g.held.agg.load(b, num)
	}
	return loadAgg(b, num)
}

// storeAgg writes the aggregate of session num (or deletes it: !exists),
// through g's held keys in a rebuild.
func (g *globalStats) storeAgg(b *pebble.Batch, num uint32, a sessionAgg, exists bool) error {
	if g.held != nil {
		return g.held.agg.store(b, num, a, exists)
	}
	if !exists {
		return b.Delete(numKey(num), nil)
	}
	return b.Set(numKey(num), a.encode(), nil)
}
