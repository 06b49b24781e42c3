package index

import (
	"cmp"
	"encoding/binary"
	"math"
	"slices"

	"github.com/cockroachdb/pebble"
)

// Term postings live in two layers (a one-level LSM inside pebble):
//
//	X P esc(term) firstNum    base: a block of the term's postings, packed
//	X t esc(term) num fid     delta: one posting written by the commit path
//
// A posting is (session num, file fid, term frequency tf). The commit path
// writes only delta keys, as before: a file's update sets the keys of the
// terms it holds now and writes a tombstone (tf 0) for the terms it no longer
// holds, so an update never reads or rewrites a posting list. Compaction
// (compact.go) folds a term's delta keys into its base blocks and deletes
// them; a read merges both layers, a delta key overriding the base posting of
// the same (num, fid).
//
// A base block holds the postings of consecutive sessions, sorted by (num,
// fid), at least blockPostings of them unless it is the term's last block or
// a compaction left it short, and never splits a session: the postings of
// session num are all in the block with the greatest firstNum <= num. Its
// value is
//
//	uvarint count, then per posting: uvarint num-prevNum, uvarint
//	zigzag(fid-prevFid), uvarint tf
//
// with prevNum starting at firstNum and prevFid at 0. Sessions are numbered in
// creation order and a session's files have nearby inode numbers, so a
// posting costs about 3 bytes instead of a 13-byte key tail.
const (
	tblBlock      = 'P'
	tblShrunk     = 'L'
	blockPostings = 128
)

func shrunkKey(num uint32) []byte { return appendNum(tableKey(tblShrunk), num) }

// shrink is an entry of the shrunk table.
type shrink struct {
	num uint32
	gen uint64
}

// readShrunk lists the shrunk table, by session number.
func readShrunk(r reader) ([]shrink, error) {
	prefix := tableKey(tblShrunk)
	it, err := prefixIter(r, prefix)
	if err != nil {
		return nil, err
	}
	var out []shrink
	for ok := it.First(); ok; ok = it.Next() {
		gen, n := binary.Uvarint(it.Value())
		if len(it.Key()) != len(prefix)+4 || n <= 0 {
			_ = it.Close()
			return nil, errCorrupt
		}
		out = append(out, shrink{num: binary.BigEndian.Uint32(it.Key()[len(prefix):]), gen: gen})
	}
	return out, it.Close()
}

// posting is one file's entry in a term's list.
type posting struct {
	num uint32
	fid uint64
	tf  uint64
}

func blockPrefix(term string) []byte { return appendEsc(tableKey(tblBlock), term) }

// A block written since block bounds exist starts with a header (an old
// block's first byte, its uvarint count, is never 0):
//
//	0x00, uvarint sessions, uvarint lengthGen, uvarint n (1..maxPoints),
//	n times: uvarint tf, uvarint minLen+1 (0: unknown), then the payload above
//
// sessions is the number of distinct sessions in the block (a term's document
// frequency is the sum over its blocks without delta keys). The n points
// bound the block's (tf, length) pairs, tf being a session's frequency summed
// over its files: the sessions are cut into groups by tf, and a point holds a
// group's greatest tf and least length, so every session of the block has a
// point with a tf at least its own and a length at most its own (BM25 grows
// with tf and falls with length, so the best of the points' scores bounds the
// block's). Points rather than one (max tf, min length) pair: a block's
// greatest tf is often that of one long session (a word that one file of a
// session repeats) and its least length that of another. The groups are the
// distinct tfs while there are at most maxPoints of them, else the greatest
// maxPoints-1 tfs alone and the rest together.
//
// Lengths are the sessions' lengths when the block was written, as of
// lengthGen in the global stats, which counts the times a session's length
// went down. A session that gets shorter is listed in the shrunk table (X L
// num -> the lengthGen of its last shrink): a block of an older generation
// may hold it, and its bound takes the least of its lengths and the current
// lengths of the sessions in its range that shrank since (wand.go). Compact
// rewrites the blocks older than the last shrink and empties the table.
// Nothing in the header depends on the document frequency or the collection
// size: the bound's IDF and average length are the query's.
const maxPoints = 4

type blockHead struct {
	has      bool // the block has a header (else it is unbounded)
	sessions uint64
	gen      uint64
	n        int
	points   [maxPoints]tfLen
}

// tfLen is a bound point: a tf and a length+1 (0: unknown, bound with 0).
type tfLen struct{ tf, minLen uint64 }

// lengthsKnown says whether every point has a length.
func (h *blockHead) lengthsKnown() bool {
	for _, p := range h.points[:h.n] {
		if p.minLen == 0 {
			return false
		}
	}
	return true
}

// encodeBlock packs ps (sorted by (num, fid), all tf > 0) with a header;
// length gives a session's length (ok=false: unknown).
func encodeBlock(dst []byte, ps []posting, length func(num uint32) (uint64, bool), gen uint64) []byte {
	type sess struct{ tf, length uint64 }
	var ss []sess
	known := true
	for i, p := range ps {
		if i == 0 || p.num != ps[i-1].num {
			l, ok := length(p.num)
			known = known && ok
			ss = append(ss, sess{length: l})
		}
		ss[len(ss)-1].tf += p.tf
	}
	slices.SortFunc(ss, func(a, b sess) int { return cmp.Compare(b.tf, a.tf) }) // greatest tf first
	var h blockHead
	for i, se := range ss {
		if h.n == 0 || h.n < maxPoints && se.tf != ss[i-1].tf {
			h.points[h.n] = tfLen{tf: se.tf, minLen: math.MaxUint64}
			h.n++
		}
		pt := &h.points[h.n-1]
		pt.minLen = min(pt.minLen, se.length+1)
	}
	dst = append(dst, 0)
	dst = binary.AppendUvarint(dst, uint64(len(ss)))
	dst = binary.AppendUvarint(dst, gen)
	dst = binary.AppendUvarint(dst, uint64(h.n))
	for _, pt := range h.points[:h.n] {
		if !known {
			pt.minLen = 0
		}
		dst = binary.AppendUvarint(dst, pt.tf)
		dst = binary.AppendUvarint(dst, pt.minLen)
	}
	return encodeBlockPayload(dst, ps)
}

// encodeBlockPayload packs ps without a header (the format before block bounds).
func encodeBlockPayload(dst []byte, ps []posting) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ps)))
	prevNum, prevFid := ps[0].num, uint64(0)
	for _, p := range ps {
		dst = binary.AppendUvarint(dst, uint64(p.num-prevNum))
		d := int64(p.fid - prevFid)
		dst = binary.AppendUvarint(dst, uint64(d<<1^d>>63))
		dst = binary.AppendUvarint(dst, p.tf)
		prevNum, prevFid = p.num, p.fid
	}
	return dst
}

// parseBlockHead reads a block's header, if any, and returns the payload.
func parseBlockHead(v []byte) (blockHead, []byte, error) {
	if len(v) == 0 || v[0] != 0 {
		return blockHead{}, v, nil
	}
	h := blockHead{has: true}
	v = v[1:]
	next := func() uint64 {
		n, k := binary.Uvarint(v)
		if k <= 0 {
			v = nil
			return 0
		}
		v = v[k:]
		return n
	}
	h.sessions = next()
	h.gen = next()
	n := next()
	if v == nil || n == 0 || n > maxPoints {
		return blockHead{}, nil, errCorrupt
	}
	h.n = int(n)
	for i := range h.n {
		h.points[i] = tfLen{tf: next(), minLen: next()}
	}
	if v == nil {
		return blockHead{}, nil, errCorrupt
	}
	return h, v, nil
}

// decodeBlock appends the postings of the block that starts at session first.
func decodeBlock(dst []posting, first uint32, v []byte) ([]posting, error) {
	_, v, err := parseBlockHead(v)
	if err != nil {
		return dst, err
	}
	return decodePayload(dst, first, v)
}

func decodePayload(dst []posting, first uint32, v []byte) ([]posting, error) {
	n, k := binary.Uvarint(v)
	if k <= 0 || n > uint64(len(v)) {
		return dst, errCorrupt
	}
	v = v[k:]
	num, fid := uint64(first), uint64(0)
	for range n {
		// Three uvarints read inline (uvarints3 is not inlined, and this is
		// the query's hottest loop).
		dn, k1 := binary.Uvarint(v)
		if k1 <= 0 {
			return dst, errCorrupt
		}
		v = v[k1:]
		zf, k2 := binary.Uvarint(v)
		if k2 <= 0 {
			return dst, errCorrupt
		}
		v = v[k2:]
		tf, k3 := binary.Uvarint(v)
		if k3 <= 0 {
			return dst, errCorrupt
		}
		v = v[k3:]
		num += dn
		fid += uint64(int64(zf>>1) ^ -int64(zf&1))
		if num > 0xFFFFFFFF {
			return dst, errCorrupt
		}
		dst = append(dst, posting{num: uint32(num), fid: fid, tf: tf})
	}
	if len(v) != 0 {
		return dst, errCorrupt
	}
	return dst, nil
}

// blockFirst reads the firstNum that ends a base block key under prefix.
func blockFirst(key []byte, prefix []byte) (uint32, error) {
	if len(key) != len(prefix)+4 {
		return 0, errCorrupt
	}
	return binary.BigEndian.Uint32(key[len(prefix):]), nil
}

// readBase appends every base posting of term t, in (num, fid) order.
func readBase(r reader, t string, dst []posting) ([]posting, error) {
	prefix := blockPrefix(t)
	it, err := prefixIter(r, prefix)
	if err != nil {
		return dst, err
	}
	for ok := it.First(); ok; ok = it.Next() {
		first, err := blockFirst(it.Key(), prefix)
		if err == nil {
			dst, err = decodeBlock(dst, first, it.Value())
		}
		if err != nil {
			_ = it.Close()
			return dst, err
		}
	}
	return dst, it.Close()
}

// readDelta appends the delta postings of term t (tombstones have tf 0),
// sorted by (num, fid), one per file: the per-posting keys, then the
// groups in the order they were written, the last of a file winning. One
// iterator reads both tables (moved by SetBounds: a query reads every
// term this way, and a new iterator costs more than the seek).
func readDelta(r reader, t string, dst []posting) ([]posting, error) {
	prefix := termPrefix(t)
	it, err := prefixIter(r, prefix)
	if err != nil {
		return dst, err
	}
	start := len(dst)
	dst, err = deltaKeysIn(it, prefix, dst)
	if err == nil {
		gp := groupPrefix(t)
		it.SetBounds(gp, prefixEnd(gp))
		n := len(dst)
		if dst, err = groupsIn(it, gp, dst); err == nil && len(dst) > n {
			dst = append(dst[:start], lastWins(dst[start:])...)
		}
	}
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	return dst, err
}

// deltaKeysIn appends the per-posting delta keys under prefix (a term's)
// that it, bounded to them, holds.
func deltaKeysIn(it *pebble.Iterator, prefix []byte, dst []posting) ([]posting, error) {
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != len(prefix)+tailLen {
			return dst, errCorrupt
		}
		tf, n := binary.Uvarint(it.Value())
		if n <= 0 {
			return dst, errCorrupt
		}
		dst = append(dst, posting{num: binary.BigEndian.Uint32(k[len(prefix):]), fid: bytesToFid(k[len(prefix)+4:]), tf: tf})
	}
	return dst, it.Error()
}

func postingLess(a, b posting) bool { return a.num < b.num || a.num == b.num && a.fid < b.fid }

// mergePostings merges base and delta (both sorted by (num, fid)) into dst:
// a delta posting replaces the base posting of the same file, and one with
// tf 0 removes it.
func mergePostings(dst, base, delta []posting) []posting {
	i, j := 0, 0
	for i < len(base) || j < len(delta) {
		switch {
		case j == len(delta) || i < len(base) && postingLess(base[i], delta[j]):
			dst = append(dst, base[i])
			i++
		default:
			if i < len(base) && base[i].num == delta[j].num && base[i].fid == delta[j].fid {
				i++
			}
			if delta[j].tf > 0 {
				dst = append(dst, delta[j])
			}
			j++
		}
	}
	return dst
}

// readPostings returns every posting of term t, both layers merged and
// without the dead files', sorted by (num, fid).
func readPostings(r reader, dead *deadSet, t string) ([]posting, error) {
	delta, err := readDelta(r, t, nil)
	if err != nil {
		return nil, err
	}
	base, err := readBase(r, t, nil)
	if err != nil {
		return nil, err
	}
	if len(delta) > 0 {
		base = mergePostings(make([]posting, 0, len(base)+len(delta)), base, delta)
	}
	return dead.filter(base), nil
}

// eachTerm calls fn with every term that has base blocks or delta keys, in
// order, skipping from term to term.
func eachTerm(r reader, fn func(t string) error) error {
	var terms []string
	for _, tbl := range []byte{tblTerm, tblGroup, tblBlock} {
		prefix := tableKey(tbl)
		it, err := prefixIter(r, prefix)
		if err != nil {
			return err
		}
		var list []string
		for ok := it.First(); ok; {
			t, _, err := decodeEsc(it.Key()[len(prefix):])
			if err != nil {
				_ = it.Close()
				return err
			}
			list = append(list, t)
			ok = it.SeekGE(afterEsc(appendEsc(slices.Clone(prefix), t)))
		}
		if err := it.Close(); err != nil {
			return err
		}
		terms = union(terms, list)
	}
	for _, t := range terms {
		if err := fn(t); err != nil {
			return err
		}
	}
	return nil
}
