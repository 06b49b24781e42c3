package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble"
)

// Grouped delta postings. A commit window carries many files, and files of
// neighbouring sessions share most of their words: a commit that wrote one
// delta key per term posting (X t term num fid, about 165 per file) made
// pebble insert, flush and compact all of them. A transaction registered
// with BeginBatch instead gathers the term postings its files write and,
// before it commits (FlushBatch), writes one key per term:
//
//	X T esc(term) seq                   the term's delta postings of one commit
//
// whose value holds the postings sorted by (num, fid), tombstones (tf 0)
// included. seq counts the flushes (global stats), so a term's groups come
// in the order they were written, and a later one wins for a file that
// several name. The per-posting keys of the delta table ('t') stay what a
// rebuild writes and what an older build left: every reader takes them
// before the groups. Nothing else changes: the groups are keys in the same
// batch as everything the commit writes, read through the same snapshots,
// folded into the base blocks and dropped by the same sweep.
const tblGroup = 'T'

func groupPrefix(term string) []byte { return appendEsc(tableKey(tblGroup), term) }

// maxGroupPostings bounds what a group value may claim to hold.
const maxGroupPostings = 1 << 24

// appendGroup encodes ps (sorted by (num, fid), one per file) as a group
// value: their count, then per posting the session number's difference
// from the one before, the file id (its difference from the one before
// within a session), and the term frequency.
func appendGroup(dst []byte, ps []posting) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ps)))
	var num uint32
	var fid uint64
	for i, p := range ps {
		dst = binary.AppendUvarint(dst, uint64(p.num-num))
		if i == 0 || p.num != num {
			dst = binary.AppendUvarint(dst, p.fid)
		} else {
			dst = binary.AppendUvarint(dst, p.fid-fid)
		}
		dst = binary.AppendUvarint(dst, p.tf)
		num, fid = p.num, p.fid
	}
	return dst
}

// uvarints3 reads the three uvarints of a posting of a group.
func uvarints3(v []byte) (a, b, c uint64, rest []byte, ok bool) {
	a, i := binary.Uvarint(v)
	if i <= 0 {
		return 0, 0, 0, nil, false
	}
	b, j := binary.Uvarint(v[i:])
	if j <= 0 {
		return 0, 0, 0, nil, false
	}
	c, k := binary.Uvarint(v[i+j:])
	if k <= 0 {
		return 0, 0, 0, nil, false
	}
	return a, b, c, v[i+j+k:], true
}

// decodeGroup appends the postings of a group value to dst.
func decodeGroup(dst []posting, v []byte) ([]posting, error) {
	n, k := binary.Uvarint(v)
	if k <= 0 || n > maxGroupPostings || n > uint64(len(v))/3 {
		return dst, errCorrupt
	}
	v = v[k:]
	var num uint32
	var fid uint64
	for i := uint64(0); i < n; i++ {
		dn, f, tf, rest, ok := uvarints3(v)
		if !ok || dn > uint64(^uint32(0)-num) {
			return dst, errCorrupt
		}
		v = rest
		if i > 0 && dn == 0 {
			if f == 0 || f > ^uint64(0)-fid {
				return dst, errCorrupt // not increasing
			}
			f += fid
		}
		num += uint32(dn)
		fid = f
		dst = append(dst, posting{num: num, fid: fid, tf: tf})
	}
	if len(v) != 0 {
		return dst, errCorrupt
	}
	return dst, nil
}

// lastWins sorts ps by (num, fid), keeping for each file the posting that
// came last in ps (stable: a later write of the same file wins).
func lastWins(ps []posting) []posting {
	slices.SortStableFunc(ps, cmpPosting)
	out := ps[:0]
	for i, p := range ps {
		if i+1 < len(ps) && ps[i+1].num == p.num && ps[i+1].fid == p.fid {
			continue
		}
		out = append(out, p)
	}
	return out
}

// pendingDeltas gathers the term postings written into one batch until
// they are written as groups.
type pendingDeltas struct {
	mu    sync.Mutex
	b     *pebble.Batch        // the batch they belong to (nil: none)
	open  bool                 // registered by BeginBatch: flushed before it commits
	terms map[string][]posting // escaped term (terminator included) -> postings, in write order
	order []string             // the terms, in first-write order
}

// BeginBatch registers b, a batch that index writes are about to go into:
// until FlushBatch, their term postings are gathered and written as one
// group key per term. The caller builds and commits batches one at a time
// (as every index writer must) and calls FlushBatch before committing b
// and EndBatch after, committed or not.
func (x *Index) BeginBatch(b *pebble.Batch) {
	p := &x.pend
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reset()
	p.b, p.open = b, true
}

// FlushBatch writes the postings gathered for b as groups, into b.
func (x *Index) FlushBatch(b *pebble.Batch) error {
	if !x.pending(b) {
		return nil
	}
	g, err := loadGlobal(b)
	if err != nil {
		return err
	}
	if g.files == 0 {
		x.dropPending(b) // the index emptied: nothing to post
		return nil
	}
	if err := x.flushPending(b, &g); err != nil {
		return err
	}
	return b.Set(tableKey(tblGlobal), g.encode(), nil)
}

// EndBatch forgets b: what it gathered and did not flush (an aborted
// transaction) is dropped.
func (x *Index) EndBatch(b *pebble.Batch) { x.dropPending(b) }

func (p *pendingDeltas) reset() {
	p.b, p.open = nil, false
	clear(p.terms)
	p.order = p.order[:0]
}

// pending says whether postings for b wait to be written.
func (x *Index) pending(b *pebble.Batch) bool {
	p := &x.pend
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.b == b && len(p.order) > 0
}

// registered says whether b was registered by BeginBatch.
func (x *Index) registered(b *pebble.Batch) bool {
	p := &x.pend
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.b == b && p.open
}

func (x *Index) dropPending(b *pebble.Batch) {
	p := &x.pend
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.b == b {
		p.reset()
	}
}

// gather takes a delta key (X t esc(term) num fid) and its value (the term
// frequency; 0 removes) into the postings pending for b.
func (x *Index) gather(b *pebble.Batch, key, value []byte) error {
	if len(key) < 2+2+tailLen {
		return errCorrupt
	}
	tf, n := binary.Uvarint(value)
	if n <= 0 {
		return errCorrupt
	}
	esc := key[2 : len(key)-tailLen]
	num := binary.BigEndian.Uint32(key[len(key)-tailLen:])
	fid := bytesToFid(key[len(key)-8:])
	p := &x.pend
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.b != b {
		if p.open && len(p.order) > 0 {
			// Batches are built one at a time: another batch's gathered
			// postings must not be dropped for this one.
			return errors.New("index: a batch was written while another's postings were gathered")
		}
		p.reset()
		p.b = b // an unregistered batch: flushed by the writer that gathers
	}
	if p.terms == nil {
		p.terms = map[string][]posting{}
	}
	ps, ok := p.terms[string(esc)]
	if !ok {
		p.order = append(p.order, string(esc))
	}
	p.terms[string(esc)] = append(ps, posting{num: num, fid: fid, tf: tf})
	return nil
}

// flushPending writes the postings pending for b as one group per term,
// under the next sequence number of g, and forgets them (b stays
// registered).
func (x *Index) flushPending(b *pebble.Batch, g *globalStats) error {
	p := &x.pend
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.b != b || len(p.order) == 0 {
		return nil
	}
	g.seq++
	slices.Sort(p.order)
	var key, val []byte
	for _, esc := range p.order {
		ps := lastWins(p.terms[esc])
		key = binary.BigEndian.AppendUint64(append(append(key[:0], keyPrefix, tblGroup), esc...), g.seq)
		val = appendGroup(val[:0], ps)
		if err := b.Set(key, val, nil); err != nil {
			return err
		}
	}
	open := p.open
	p.reset()
	p.b, p.open = b, open
	return nil
}

// writeGroup writes ps (any order; the last of a file wins) as a group of
// term t under the next sequence number of g.
func writeGroup(b *pebble.Batch, g *globalStats, t string, ps []posting) error {
	g.seq++
	key := binary.BigEndian.AppendUint64(groupPrefix(t), g.seq)
	return b.Set(key, appendGroup(nil, lastWins(ps)), nil)
}

// groupsIn appends the grouped delta postings under prefix (a term's)
// that it, bounded to them, holds, in the order they were written
// (sequence order).
func groupsIn(it *pebble.Iterator, prefix []byte, dst []posting) ([]posting, error) {
	for ok := it.First(); ok; ok = it.Next() {
		if len(it.Key()) != len(prefix)+8 {
			return dst, errCorrupt
		}
		var err error
		if dst, err = decodeGroup(dst, it.Value()); err != nil {
			return dst, err
		}
	}
	return dst, it.Error()
}

// hasGroups says whether term t has any group key in r.
func hasGroups(it *pebble.Iterator, t string) (bool, error) {
	prefix := groupPrefix(t)
	if it.SeekGE(prefix) && bytes.HasPrefix(it.Key(), prefix) {
		return true, nil
	}
	return false, it.Error()
}
