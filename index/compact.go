package index

import (
	"encoding/binary"
	"slices"

	"github.com/cockroachdb/pebble"
)

// Compaction folds the delta keys of a term into its base blocks (blocks.go).
//
// It runs inside the commit path, in the caller's batch, so it needs no lock
// of its own and a reader never sees half of it: the global stats count the
// delta postings written since the last sweep (pending); once they pass
// max(sweepMin, sweepPerFile per indexed file), a sweep starts, and every
// later update compacts, after its own writes, the next terms in key order
// holding at least sweepFactor times as many delta keys as it wrote, until
// the sweep has passed the last term. The cursor (the last term compacted)
// is kept in the global stats. Only the blocks whose session range holds a
// delta key are rewritten: new sessions have the highest numbers, so ingest
// rewrites the last block of each term, once per sweep.
//
// The delta stays below about a sixth of the base, so a read merges a short
// list into a long packed one; deltas written behind the cursor wait for the
// next sweep. Rebuild packs everything at its end (compactAll).
const (
	defaultSweepMin = 1 << 16
	sweepPerFile    = 16
	sweepFactor     = 4
	sweepStepMin    = 1024
)

// tombstone is the value of a delta key that removes a posting.
var tombstone = []byte{0}

// Global stats flags.
const (
	flagLengths  = 1 << iota // the length column (X l) holds every session
	flagSweeping             // a compaction sweep is under way; cursor is where
)

// sweepStep counts wrote delta postings and runs a step of the sweep when one
// is due.
func (x *Index) sweepStep(b *pebble.Batch, g *globalStats, wrote int) error {
	g.pending += uint64(wrote)
	if g.flags&flagSweeping == 0 {
		if g.pending < max(x.sweepMin, g.files*sweepPerFile) {
			return nil
		}
		g.flags |= flagSweeping
		g.cursor = ""
	}
	budget := max(sweepFactor*wrote, sweepStepMin)
	for budget > 0 {
		t, ok, err := nextDeltaTerm(b, g.cursor, g.cursor != "")
		if err != nil {
			return err
		}
		if !ok {
			g.flags &^= flagSweeping
			g.cursor, g.pending = "", 0
			return nil
		}
		n, err := compactTerm(b, t)
		if err != nil {
			return err
		}
		budget -= max(n, 1)
		g.cursor = t
	}
	return nil
}

// compactBatchBytes is how much a full compaction writes before it commits.
const compactBatchBytes = 16 << 20

// Compact folds every delta posting into the base blocks, committing as it
// goes. Like every index writer it must not run concurrently with another
// (the caller's commit lock); readers see the same results throughout.
func (x *Index) Compact() error {
	b, err := compactAll(x.db, x.db.NewIndexedBatch())
	if err == nil {
		err = b.Commit(pebble.Sync)
	}
	_ = b.Close()
	return err
}

// compactAll compacts every term into b, committing b and going on in a new
// batch whenever it has grown past compactBatchBytes; it returns the last
// batch, not yet committed, and ends any sweep under way.
func compactAll(db *pebble.DB, b *pebble.Batch) (*pebble.Batch, error) {
	cursor := ""
	for {
		t, ok, err := nextDeltaTerm(b, cursor, cursor != "")
		if err != nil {
			return b, err
		}
		if !ok {
			break
		}
		if _, err := compactTerm(b, t); err != nil {
			return b, err
		}
		cursor = t
		if b.Len() > compactBatchBytes {
			if err := b.Commit(pebble.NoSync); err != nil {
				return b, err
			}
			_ = b.Close()
			b = db.NewIndexedBatch()
		}
	}
	g, err := loadGlobal(b)
	if err != nil || g.files == 0 {
		return b, err
	}
	g.flags &^= flagSweeping
	g.cursor, g.pending = "", 0
	return b, b.Set(tableKey(tblGlobal), g.encode(), nil)
}

// compactTerm folds the delta keys of term t into its base blocks and
// deletes them; it returns how many it folded.
func compactTerm(b *pebble.Batch, t string) (int, error) {
	delta, err := readDelta(b, t, nil)
	if err != nil || len(delta) == 0 {
		return 0, err
	}
	prefix := blockPrefix(t)
	var firsts []uint32
	it, err := prefixIter(b, prefix)
	if err != nil {
		return 0, err
	}
	for ok := it.First(); ok; ok = it.Next() {
		first, err := blockFirst(it.Key(), prefix)
		if err != nil {
			_ = it.Close()
			return 0, err
		}
		firsts = append(firsts, first)
	}
	if err := it.Close(); err != nil {
		return 0, err
	}

	// Block i covers sessions [firsts[i], firsts[i+1]); the first block also
	// takes the deltas before it. Rewrite the blocks that deltas fall in.
	key := slices.Clone(prefix)
	var base, merged []posting
	rest := delta
	for i := 0; len(rest) > 0; i++ {
		n := len(rest)
		if i+1 < len(firsts) {
			n, _ = slices.BinarySearchFunc(rest, firsts[i+1], func(p posting, num uint32) int { return cmpNum(p.num, num) })
		}
		if n == 0 {
			continue
		}
		group := rest[:n]
		rest = rest[n:]
		base = base[:0]
		if i < len(firsts) {
			key = appendNum(key[:len(prefix)], firsts[i])
			v, ok, err := get(b, key)
			if err != nil {
				return 0, err
			}
			if !ok {
				return 0, errCorrupt
			}
			if base, err = decodeBlock(base, firsts[i], v); err != nil {
				return 0, err
			}
			if err := b.Delete(key, nil); err != nil {
				return 0, err
			}
		}
		merged = mergePostings(merged[:0], base, group)
		if err := writeBlocks(b, prefix, merged); err != nil {
			return 0, err
		}
	}
	dkey := termPrefix(t)
	for _, p := range delta {
		if err := b.Delete(withNumFid(dkey[:len(dkey):len(dkey)], p.num, p.fid), nil); err != nil {
			return 0, err
		}
	}
	return len(delta), nil
}

func cmpNum(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// writeBlocks cuts ps into blocks of about blockPostings postings, never
// splitting a session and folding a short remainder into the block before.
func writeBlocks(b *pebble.Batch, prefix []byte, ps []posting) error {
	var val []byte
	key := slices.Clone(prefix)
	for len(ps) > 0 {
		n := min(blockPostings, len(ps))
		for n < len(ps) && ps[n].num == ps[n-1].num {
			n++
		}
		if len(ps)-n < blockPostings/2 {
			n = len(ps)
		}
		val = encodeBlock(val[:0], ps[:n])
		if err := b.Set(appendNum(key[:len(prefix)], ps[0].num), val, nil); err != nil {
			return err
		}
		ps = ps[n:]
	}
	return nil
}

// The length column: X l block -> the lengths of sessions block*256 ..
// block*256+255, one uvarint each (length+1; 0: no such session), trailing
// zeros dropped. Ranking reads a session's length from it instead of seeking
// to the session's aggregate: one key per 256 sessions.
const (
	tblLength    = 'l'
	lengthsShift = 8
	lengthsBlock = 1 << lengthsShift
)

func lengthKey(block uint32) []byte { return appendNum(tableKey(tblLength), block) }

func decodeLengths(v []byte, out *[lengthsBlock]uint64) error {
	*out = [lengthsBlock]uint64{}
	for i := 0; len(v) > 0; i++ {
		n, k := binary.Uvarint(v)
		if k <= 0 || i == lengthsBlock {
			return errCorrupt
		}
		out[i] = n
		v = v[k:]
	}
	return nil
}

// setLength sets the column entry of session num to v (length+1, or 0).
func setLength(b *pebble.Batch, num uint32, v uint64) error {
	key := lengthKey(num >> lengthsShift)
	old, _, err := get(b, key)
	if err != nil {
		return err
	}
	var vals [lengthsBlock]uint64
	if err := decodeLengths(old, &vals); err != nil {
		return err
	}
	vals[num&(lengthsBlock-1)] = v
	last := -1
	for i, n := range vals {
		if n != 0 {
			last = i
		}
	}
	if last < 0 {
		return b.Delete(key, nil)
	}
	var enc []byte
	for _, n := range vals[:last+1] {
		enc = binary.AppendUvarint(enc, n)
	}
	return b.Set(key, enc, nil)
}

// lengthReader reads session lengths from the column.
type lengthReader struct {
	r      reader
	block  uint32
	loaded bool
	vals   [lengthsBlock]uint64
}

// length returns the length of session num, which must exist.
func (l *lengthReader) length(num uint32) (uint64, error) {
	if blk := num >> lengthsShift; !l.loaded || blk != l.block {
		v, _, err := get(l.r, lengthKey(blk))
		if err != nil {
			return 0, err
		}
		if err := decodeLengths(v, &l.vals); err != nil {
			return 0, err
		}
		l.block, l.loaded = blk, true
	}
	n := l.vals[num&(lengthsBlock-1)]
	if n == 0 {
		return 0, errCorrupt
	}
	return n - 1, nil
}

// columnSessions lists every session number the length column holds, sorted.
func columnSessions(r reader) ([]uint32, error) {
	prefix := tableKey(tblLength)
	it, err := prefixIter(r, prefix)
	if err != nil {
		return nil, err
	}
	var ids []uint32
	var vals [lengthsBlock]uint64
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != len(prefix)+4 {
			_ = it.Close()
			return nil, errCorrupt
		}
		if err := decodeLengths(it.Value(), &vals); err != nil {
			_ = it.Close()
			return nil, err
		}
		blk := binary.BigEndian.Uint32(k[len(prefix):])
		for i, n := range vals {
			if n != 0 {
				ids = append(ids, blk<<lengthsShift|uint32(i))
			}
		}
	}
	return ids, it.Close()
}
