package index

import (
	"bytes"
	"encoding/binary"
	"math"
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
	flagLengths    = 1 << iota // the length column (X l) holds every session
	flagSweeping               // a compaction sweep is under way; cursor is where
	flagRebuilding             // a rebuild began and has not finished: files are missing
)

// sweepStep counts wrote delta postings and runs a step of the sweep when one
// is due. With background sweeps (SetBackgroundSweep) it only counts, until
// the backlog passes sweepBacklog thresholds: then the writers fold again
// themselves, so that the delta stays bounded if the sweeper falls behind.
func (x *Index) sweepStep(b *pebble.Batch, g *globalStats, wrote int) error {
	g.pending += uint64(wrote)
	budget := max(sweepFactor*wrote, x.stepMin)
	if x.background.Load() {
		if g.deadPostings >= x.purgeCap(g) {
			if err := x.purge(b, g, budget); err != nil {
				return err
			}
		}
		if g.pending < sweepBacklog*x.sweepThreshold(g) {
			return nil
		}
	} else if x.purgeDue(g) {
		if err := x.purge(b, g, budget); err != nil {
			return err
		}
	}
	if !x.sweeping(g) {
		return nil
	}
	return x.fold(b, g, budget)
}

// purge and fold read the delta through b: the postings gathered for it
// are written first (groups.go).
func (x *Index) purge(b *pebble.Batch, g *globalStats, budget int) error {
	if err := x.flushPending(b, g); err != nil {
		return err
	}
	return purge(b, g, budget)
}

func (x *Index) fold(b *pebble.Batch, g *globalStats, budget int) error {
	if err := x.flushPending(b, g); err != nil {
		return err
	}
	return fold(b, g, budget)
}

// defaultPurgeMin is how many postings of dead files (dead.go) make a purge
// due before a sweep is: about twenty session files. Below it the marks
// wait for the next sweep, so that a purge rewrites each block once for
// many files, and a search reads at most that many marks.
const defaultPurgeMin = 4096

// purgeDue says whether dead files should be purged now. With a
// background sweeper: when removals paused (the count did not change over
// the sweeper's last quietLooks looks) or the dead postings passed
// purgeCap. A purge step rewrites every block that its files' terms post
// in, so the files of an rm -rf in progress are purged together once it
// ends instead of a few at a time beside it (when it removed every file,
// the last removal drops the whole index and nothing is left to purge); a
// sweep due or under way meanwhile folds without them (their postings
// fold into the blocks like any other, hidden by their marks, and the
// purge takes them out of the blocks later). Without one: enough of them,
// or a sweep due or under way (it purges them first).
//
// The sweep used to purge first in both cases: an rm -rf that began while
// the ingest before it still had a sweep due was then purged a step of
// 4,096 postings at a time beside the rm, rewriting the blocks of some
// 1,500 terms per step: 10 s of the daemon's CPU for the rm of 2,000
// JSON-only sessions, which took 21 s instead of 10.
func (x *Index) purgeDue(g *globalStats) bool {
	if g.dead == 0 {
		return false
	}
	if x.background.Load() {
		return g.deadPostings >= x.purgeCap(g) || g.dead == x.seenDead.Load() && x.quietLooks.Load() >= quietLooks
	}
	if g.flags&flagSweeping != 0 || g.pending >= x.sweepThreshold(g) {
		return true
	}
	return g.deadPostings >= x.purgeMin
}

// quietLooks is how many looks of the background sweeper in a row must
// find the dead file count unchanged before it purges: with its 20 ms
// ticks, half a second without a removal, longer than the write-back
// queue's commit window (100 ms by default), so that removals it commits
// in groups are not taken for a pause.
const quietLooks = 25

// purgeCap is how many dead postings make a purge due even while removals
// go on: about 20,000 session files, whose marks a search reads (14 bytes
// each) and whose records wait in the store (about a kilobyte each).
func (x *Index) purgeCap(g *globalStats) uint64 {
	return max(sweepBacklog*x.sweepThreshold(g), defaultPurgeCap)
}

const defaultPurgeCap = 1 << 22

// sweeping starts a sweep in g when one is due and reports whether one is
// under way.
func (x *Index) sweeping(g *globalStats) bool {
	if g.flags&flagSweeping == 0 {
		if g.pending < x.sweepThreshold(g) {
			return false
		}
		g.flags |= flagSweeping
		g.cursor = ""
	}
	return true
}

// sweepThreshold is how many delta postings start a sweep.
func (x *Index) sweepThreshold(g *globalStats) uint64 {
	return max(x.sweepMin, g.files*x.perFile)
}

// sweepBacklog is how many sweep thresholds of delta postings the writers
// leave to a background sweeper before they fold again themselves.
const sweepBacklog = 4

// SetBackgroundSweep leaves the compaction sweep to a background caller of
// Sweep: a namespace change (an unlink, a rename) then writes its own keys
// and no more, instead of folding four times as many delta postings as it
// wrote while the FUSE request waits. Call it before any other use.
func (x *Index) SetBackgroundSweep(on bool) { x.background.Store(on) }

// Sweep runs one step of the compaction sweep in b, folding at least budget
// delta postings, when one is due; more says that the sweep is not over.
// Like every index writer it runs under the caller's commit lock.
func (x *Index) Sweep(b *pebble.Batch, budget int) (more bool, err error) {
	if err := checkBatch(b); err != nil {
		return false, err
	}
	g, err := loadGlobal(b)
	if err != nil || g.files == 0 || g.flags&flagRebuilding != 0 {
		return false, err
	}
	if x.purgeDue(&g) {
		if err := x.purge(b, &g, budget); err != nil {
			return false, err
		}
		x.seenDead.Store(g.dead) // (the purge's own change is no removal)
		return x.purgeDue(&g) || x.sweeping(&g), b.Set(tableKey(tblGlobal), g.encode(), nil)
	}
	if !x.sweeping(&g) {
		return false, nil
	}
	if err := x.fold(b, &g, budget); err != nil {
		return false, err
	}
	return g.flags&flagSweeping != 0, b.Set(tableKey(tblGlobal), g.encode(), nil)
}

// SweepDue says whether a sweep or a purge of dead files is under way or
// should start (a read of the committed global stats: no lock needed). The
// background sweeper calls it on every tick: it also notes how many dead
// files there are, so that a purge waits until removals pause.
func (x *Index) SweepDue() (bool, error) {
	g, err := loadGlobal(x.db)
	if err != nil || g.files == 0 || g.flags&flagRebuilding != 0 {
		return false, err
	}
	if seen := x.seenDead.Swap(g.dead); seen != g.dead {
		x.quietLooks.Store(0)
	} else {
		x.quietLooks.Add(1)
	}
	if g.dead > 0 && x.quietLooks.Load() < quietLooks && g.deadPostings < x.purgeCap(&g) {
		return x.sweeping(&g), nil // removals under way: the purge waits
	}
	return x.purgeDue(&g) || x.sweeping(&g), nil // (g is a copy: nothing is started)
}

// fold compacts the next terms of the sweep under way, at least budget
// delta postings, and ends the sweep when it passes the last term.
func fold(b *pebble.Batch, g *globalStats, budget int) error {
	d, err := newDeltaReader(b, g.cursor)
	if err != nil {
		return err
	}
	defer d.close()
	bw := newBlockWriter(b, *g)
	defer bw.close()
	first, last, folded := "", "", false
	for budget > 0 {
		t, delta, ok, err := d.next()
		if err != nil {
			return err
		}
		if !ok {
			g.flags &^= flagSweeping
			g.cursor, g.pending = "", 0
			break
		}
		if err := compactTerm(b, bw, t, delta); err != nil {
			return err
		}
		if !folded {
			first, folded = t, true
		}
		budget -= len(delta)
		g.cursor, last = t, t
	}
	if !folded {
		return nil
	}
	return dropDeltas(b, first, last)
}

// deltaReader reads the delta term by term, with one iterator over the
// per-posting keys and one over the groups (which do not see the batch's
// later writes: compaction deletes behind them).
type deltaReader struct {
	keys, groups tableReader
	buf          []posting
}

// tableReader walks one delta table ('t' or 'T') term by term.
type tableReader struct {
	it     *pebble.Iterator
	valid  bool
	prefix []byte
	group  bool
	term   string // the current term (valid)
	key    []byte // its key prefix
}

// newDeltaReader starts after term after ("": at the first term).
func newDeltaReader(r reader, after string) (*deltaReader, error) {
	d := &deltaReader{}
	for i, tbl := range []byte{tblTerm, tblGroup} {
		prefix := tableKey(tbl)
		lower := slices.Clone(prefix)
		if after != "" {
			lower = afterEsc(appendEsc(lower, after))
		}
		it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(prefix)})
		if err != nil {
			d.close()
			return nil, err
		}
		tr := tableReader{it: it, valid: it.First(), prefix: prefix, group: tbl == tblGroup}
		if err := tr.head(); err != nil {
			_ = it.Close()
			d.close()
			return nil, err
		}
		if i == 0 {
			d.keys = tr
		} else {
			d.groups = tr
		}
	}
	return d, nil
}

// head reads the term of the key the reader is at.
func (tr *tableReader) head() error {
	if !tr.valid {
		return tr.it.Error()
	}
	t, rest, err := decodeEsc(tr.it.Key()[len(tr.prefix):])
	if err != nil {
		return err
	}
	tr.term = t
	tp := len(tr.it.Key()) - len(rest)
	tr.key = append(tr.key[:0], tr.it.Key()[:tp]...)
	return nil
}

// take appends the current term's postings to dst and moves to the next term.
func (tr *tableReader) take(dst []posting) ([]posting, error) {
	tp := len(tr.key)
	for ; tr.valid; tr.valid = tr.it.Next() {
		k := tr.it.Key()
		if !bytes.HasPrefix(k, tr.key) {
			break
		}
		if tr.group {
			if len(k) != tp+8 {
				return dst, errCorrupt
			}
			var err error
			if dst, err = decodeGroup(dst, tr.it.Value()); err != nil {
				return dst, err
			}
			continue
		}
		tf, n := binary.Uvarint(tr.it.Value())
		if len(k) != tp+tailLen || n <= 0 {
			return dst, errCorrupt
		}
		dst = append(dst, posting{num: binary.BigEndian.Uint32(k[tp:]), fid: bytesToFid(k[tp+4:]), tf: tf})
	}
	return dst, tr.head()
}

// next returns the next term and its delta postings, sorted by (num, fid)
// and one per file (valid until the next call).
func (d *deltaReader) next() (t string, delta []posting, ok bool, err error) {
	switch {
	case !d.keys.valid && !d.groups.valid:
		return "", nil, false, nil
	case !d.groups.valid || d.keys.valid && d.keys.term < d.groups.term:
		t = d.keys.term
		d.buf, err = d.keys.take(d.buf[:0])
		return t, d.buf, err == nil, err
	case !d.keys.valid || d.groups.term < d.keys.term:
		t = d.groups.term
		d.buf, err = d.groups.take(d.buf[:0])
	default: // both: the keys first, the groups after them
		t = d.keys.term
		if d.buf, err = d.keys.take(d.buf[:0]); err == nil {
			d.buf, err = d.groups.take(d.buf)
		}
	}
	if err != nil {
		return "", nil, false, err
	}
	d.buf = lastWins(d.buf)
	return t, d.buf, true, nil
}

func (d *deltaReader) close() {
	for _, tr := range []*tableReader{&d.keys, &d.groups} {
		if tr.it != nil {
			_ = tr.it.Close()
		}
	}
}

// compactBatchBytes is how much a full compaction writes before it commits,
// checked every compactStep delta postings.
const (
	compactBatchBytes = 16 << 20
	compactStep       = 1 << 16
)

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
	g, err := loadGlobal(b)
	if err != nil {
		return b, err
	}
	// The dead files first: their postings are not folded into blocks.
	for g.dead > 0 {
		if err := purge(b, &g, compactStep); err != nil {
			return b, err
		}
		if err := b.Set(tableKey(tblGlobal), g.encode(), nil); err != nil {
			return b, err
		}
		if b.Len() > compactBatchBytes {
			if b, err = nextBatch(db, b); err != nil {
				return b, err
			}
		}
	}
	// One sweep from the first term, in steps of compactStep postings and
	// batches of about compactBatchBytes. sw, its cursor, is never stored:
	// the stored stats are reset below.
	sw := g
	sw.flags |= flagSweeping
	sw.cursor = ""
	for sw.flags&flagSweeping != 0 {
		if err := fold(b, &sw, compactStep); err != nil {
			return b, err
		}
		if b.Len() > compactBatchBytes {
			if b, err = nextBatch(db, b); err != nil {
				return b, err
			}
		}
	}
	if b, err = refreshBounds(db, b, g); err != nil {
		return b, err
	}
	if g, err = loadGlobal(b); err != nil || g.files == 0 {
		return b, err
	}
	g.flags &^= flagSweeping
	g.cursor, g.pending = "", 0
	return b, b.Set(tableKey(tblGlobal), g.encode(), nil)
}

// nextBatch commits b (a full compaction batch) and returns a fresh one;
// on failure it returns b itself, for the caller to close.
func nextBatch(db *pebble.DB, b *pebble.Batch) (*pebble.Batch, error) {
	if err := b.Commit(pebble.NoSync); err != nil {
		return b, err
	}
	_ = b.Close()
	return db.NewIndexedBatch(), nil
}

// refreshBounds rewrites every base block whose bounds are missing (written
// before block bounds existed), older than a shrink in the shrunk table, or without
// a minimum length that the length column can now give: after it, every
// block's bound is as tight as its header allows. It commits b as it goes,
// like compactAll, and returns the last batch.
func refreshBounds(db *pebble.DB, b *pebble.Batch, g globalStats) (*pebble.Batch, error) {
	prefix := tableKey(tblBlock)
	it, err := prefixIter(b, prefix)
	if err != nil {
		return b, err
	}
	shrunk, err := readShrunk(b)
	if err != nil {
		_ = it.Close()
		return b, err
	}
	var lastShrink uint64
	for _, s := range shrunk {
		lastShrink = max(lastShrink, s.gen)
	}
	bw := newBlockWriter(b, g)
	var ps []posting
	var val, key []byte
	for ok := it.First(); ok; {
		h, payload, err := parseBlockHead(it.Value())
		if err == nil && h.has && h.gen >= lastShrink && (h.lengthsKnown() || !bw.lengths) {
			ok = it.Next()
			continue
		}
		k := it.Key()
		if err != nil || len(k) < len(prefix)+4 {
			err = errCorrupt
		}
		if err == nil {
			ps, err = decodePayload(ps[:0], binary.BigEndian.Uint32(k[len(k)-4:]), payload)
		}
		if err == nil && len(ps) == 0 {
			err = errCorrupt
		}
		if err != nil {
			_ = it.Close()
			bw.close()
			return b, err
		}
		key = append(key[:0], k...)
		val = encodeBlock(val[:0], ps, bw.length, g.lengthGen)
		if err := b.Set(key, val, nil); err != nil {
			_ = it.Close()
			bw.close()
			return b, err
		}
		if b.Len() > compactBatchBytes {
			_ = it.Close()
			bw.close()
			if b, err = nextBatch(db, b); err != nil {
				return b, err
			}
			bw = newBlockWriter(b, g)
			if it, err = b.NewIter(&pebble.IterOptions{LowerBound: prefixEnd(key), UpperBound: prefixEnd(prefix)}); err != nil {
				bw.close()
				return b, err
			}
			ok = it.First()
			continue
		}
		ok = it.Next()
	}
	bw.close()
	if err := it.Close(); err != nil {
		return b, err
	}
	// Every block is now at least as new as every shrink.
	return b, b.DeleteRange(tableKey(tblShrunk), prefixEnd(tableKey(tblShrunk)), nil)
}

// blockWriter gives the blocks a compaction writes their sessions'
// lengths, from the length column as the batch sees it (so the writes of the
// commit itself count).
type blockWriter struct {
	lengths bool // the length column is complete
	lr      *lengthReader
	gen     uint64
}

func newBlockWriter(b *pebble.Batch, g globalStats) *blockWriter {
	return &blockWriter{lengths: g.flags&flagLengths != 0, lr: &lengthReader{r: b}, gen: g.lengthGen}
}

// length returns the length of session num (ok=false: unknown).
func (w *blockWriter) length(num uint32) (uint64, bool) {
	if !w.lengths {
		return 0, false
	}
	n, err := w.lr.length(num)
	return n, err == nil
}

func (w *blockWriter) close() { w.lr.close() }

// compactTerm folds delta, the delta postings of term t (sorted), into the
// term's base blocks; the caller deletes the delta keys (dropDeltas).
func compactTerm(b *pebble.Batch, bw *blockWriter, t string, delta []posting) error {
	prefix := blockPrefix(t)
	it, err := prefixIter(b, prefix)
	if err != nil {
		return err
	}
	// Each block to rewrite is found with a seek, not by listing the term's
	// blocks (a common term has thousands; fresh files and a sweep add to
	// its last ones), and read through the same iterator: pebble's Get on
	// an indexed batch builds a merging iterator over every level per call.
	// A block this writes has a key below the next block read (it holds
	// only sessions before that block's first), so a seek finds the old
	// value whether or not the iterator sees the batch's new writes.
	defer it.Close()

	// Block i covers sessions [first_i, first_i+1); the first block also
	// takes the deltas before it. Rewrite the blocks that deltas fall in.
	seek := slices.Clone(prefix)
	key := slices.Clone(prefix)
	var base, merged []posting
	rest := delta
	for len(rest) > 0 {
		// The block rest[0] falls in: the last one starting at or before
		// its session, else the first.
		var ok bool
		if n0 := rest[0].num; n0 == math.MaxUint32 {
			ok = it.Last()
		} else {
			ok = it.SeekLT(appendNum(seek[:len(prefix)], n0+1))
		}
		if !ok {
			if err := it.Error(); err != nil {
				return err
			}
			ok = it.First()
		}
		n := len(rest)
		base = base[:0]
		if ok {
			first, err := blockFirst(it.Key(), prefix)
			if err != nil {
				return err
			}
			if base, err = decodeBlock(base, first, it.Value()); err != nil {
				return err
			}
			key = appendNum(key[:len(prefix)], first)
			if err := b.Delete(key, nil); err != nil {
				return err
			}
			if it.Next() {
				next, err := blockFirst(it.Key(), prefix)
				if err != nil {
					return err
				}
				n, _ = slices.BinarySearchFunc(rest, next, func(p posting, num uint32) int { return cmpNum(p.num, num) })
			}
		}
		if err := it.Error(); err != nil {
			return err
		}
		if n == 0 {
			return errCorrupt // (the blocks are out of order)
		}
		merged = mergePostings(merged[:0], base, rest[:n])
		rest = rest[n:]
		if err := writeBlocks(b, bw, prefix, merged); err != nil {
			return err
		}
	}
	return nil
}

// dropDeltas deletes the delta keys of the terms from first to last (in key
// order), which the caller has just folded: one range deletion for all of
// them. The caller read those keys with one iterator opened on b before any
// of its writes, and nothing writes a delta key between that read and this
// deletion, so the range holds exactly the keys folded; a delta key written
// later in the same batch has a later sequence number and is not covered.
// Point tombstones, one per posting, were most of what pebble flushed and
// compacted during an ingest (2.4M for 2000 sessions); a flush drops what a
// range deletion covers in the same memtable.
func dropDeltas(b *pebble.Batch, first, last string) error {
	if err := b.DeleteRange(termPrefix(first), prefixEnd(termPrefix(last)), nil); err != nil {
		return err
	}
	return b.DeleteRange(groupPrefix(first), prefixEnd(groupPrefix(last)), nil)
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

// blockSink takes the blocks writeBlocks cuts: a batch, or the table of
// blocks a rebuild ingests (runs.go).
type blockSink interface {
	Set(key, value []byte, o *pebble.WriteOptions) error
}

// writeBlocks cuts ps into blocks of about blockPostings postings, never
// splitting a session and folding a short remainder into the block before.
func writeBlocks(b blockSink, bw *blockWriter, prefix []byte, ps []posting) error {
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
		val = encodeBlock(val[:0], ps[:n], bw.length, bw.gen)
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

// setLength sets the column entry of session num to v (length+1, or 0),
// through g's lengthCache in a rebuild; shrunk says that the session
// existed and is now shorter.
func setLength(b *pebble.Batch, g *globalStats, num uint32, v uint64) (shrunk bool, err error) {
	if g.held != nil {
		return g.held.lengths.set(b, num, v)
	}
	var vals [lengthsBlock]uint64
	if err := readLengths(b, num>>lengthsShift, &vals); err != nil {
		return false, err
	}
	prev := vals[num&(lengthsBlock-1)]
	shrunk = v != 0 && prev != 0 && v < prev
	vals[num&(lengthsBlock-1)] = v
	return shrunk, writeLengths(b, num>>lengthsShift, &vals)
}

func readLengths(b *pebble.Batch, block uint32, vals *[lengthsBlock]uint64) error {
	old, _, err := get(b, lengthKey(block))
	if err != nil {
		return err
	}
	return decodeLengths(old, vals)
}

func writeLengths(b *pebble.Batch, block uint32, vals *[lengthsBlock]uint64) error {
	last := -1
	for i, n := range vals {
		if n != 0 {
			last = i
		}
	}
	if last < 0 {
		return b.Delete(lengthKey(block), nil)
	}
	var enc []byte
	for _, n := range vals[:last+1] {
		enc = binary.AppendUvarint(enc, n)
	}
	return b.Set(lengthKey(block), enc, nil)
}

// lengthCache is the length column's part of a rebuild's heldKeys: the
// block being changed.
type lengthCache struct {
	block uint32
	vals  [lengthsBlock]uint64
	held  bool // vals are block's
	dirty bool // and not yet in the batch
}

func (c *lengthCache) set(b *pebble.Batch, num uint32, v uint64) (shrunk bool, err error) {
	if block := num >> lengthsShift; !c.held || c.block != block {
		if err := c.flush(b); err != nil {
			return false, err
		}
		c.held = false
		if err := readLengths(b, block, &c.vals); err != nil {
			return false, err
		}
		c.block, c.held = block, true
	}
	prev := c.vals[num&(lengthsBlock-1)]
	c.vals[num&(lengthsBlock-1)] = v
	c.dirty = true
	return v != 0 && prev != 0 && v < prev, nil
}

// flush writes the block held into b, if changed since it was read.
func (c *lengthCache) flush(b *pebble.Batch) error {
	if !c.dirty {
		return nil
	}
	if err := writeLengths(b, c.block, &c.vals); err != nil {
		return err
	}
	c.dirty = false
	return nil
}

// lengthReader reads session lengths from the column, for ascending
// session numbers mostly: an iterator steps from block to block.
type lengthReader struct {
	r      reader
	it     *pebble.Iterator
	block  uint32
	loaded bool
	vals   [lengthsBlock]uint64
}

// length returns the length of session num, which must exist.
func (l *lengthReader) length(num uint32) (uint64, error) {
	if blk := num >> lengthsShift; !l.loaded || blk != l.block {
		if l.it == nil {
			it, err := prefixIter(l.r, tableKey(tblLength))
			if err != nil {
				return 0, err
			}
			l.it = it
		}
		key := lengthKey(blk)
		if !l.it.SeekGE(key) || !bytes.Equal(l.it.Key(), key) {
			if err := l.it.Error(); err != nil {
				return 0, err
			}
			return 0, errCorrupt
		}
		if err := decodeLengths(l.it.Value(), &l.vals); err != nil {
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

func (l *lengthReader) close() {
	if l.it != nil {
		_ = l.it.Close()
	}
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
