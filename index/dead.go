package index

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble"
)

// Dead files. A removed file (or one moved to another session) used to
// write a tombstone delta key for every term it posted: 100-300 keys per
// session file, which made an rm -rf of the sessions write more keys than
// their ingest and spend most of its commit time inserting them into the
// memtable. A removal now writes two keys instead,
//
//	X D num fid   -> ""                      the mark readers see
//	X E num fid   -> the file's record as it was (its terms and their tfs)
//
// and leaves the file's term postings where they are. Every reader of term
// postings drops the postings of a marked (num, fid) (readPostings; the
// block-max search decodes the blocks whose range holds a marked session),
// so queries, document frequencies and block bounds are exact from the
// commit on, and a reader's cost is one key per mark. The sweeper then
// purges dead files in batches (purge): it rewrites the base blocks holding
// their postings, deletes their delta keys and drops the marks, all in one
// batch, once removals pause.
//
// A mark's (num, fid) never names a live file's postings: a file indexed
// again under the number of a mark it left (an rm then a create that reuses
// the inode, a move back) takes the mark over (takeDead) and writes, against
// the postings the mark hides, only the terms that differ. Session numbers
// are never handed out twice, so a mark outlives its session safely.
const (
	tblDead    = 'D'
	tblDeadRec = 'E'
)

func deadKey(num uint32, fid uint64) []byte    { return withNumFid(tableKey(tblDead), num, fid) }
func deadRecKey(num uint32, fid uint64) []byte { return withNumFid(tableKey(tblDeadRec), num, fid) }
func isDeadKey(k []byte, tbl byte) bool {
	return len(k) == 2+tailLen && k[0] == keyPrefix && k[1] == tbl
}

// numFid names one file's postings in one session.
type numFid struct {
	num uint32
	fid uint64
}

func cmpNumFid(a, b numFid) int {
	if a.num != b.num {
		return cmpNum(a.num, b.num)
	}
	return cmp.Compare(a.fid, b.fid)
}

// deadSet is the dead marks a reader sees, sorted by (num, fid).
type deadSet struct {
	marks []numFid
}

// loadDead reads every dead mark through r: with none, one seek.
func loadDead(r reader) (*deadSet, error) {
	it, err := prefixIter(r, tableKey(tblDead))
	if err != nil {
		return nil, err
	}
	d := &deadSet{}
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if !isDeadKey(k, tblDead) {
			_ = it.Close()
			return nil, fmt.Errorf("index: dead mark %q: %w", k, errCorrupt)
		}
		d.marks = append(d.marks, numFid{binary.BigEndian.Uint32(k[2:]), bytesToFid(k[6:])})
	}
	return d, it.Close()
}

func (d *deadSet) empty() bool { return d == nil || len(d.marks) == 0 }

// has says whether the postings of (num, fid) are dead.
func (d *deadSet) has(num uint32, fid uint64) bool {
	if d.empty() {
		return false
	}
	_, ok := slices.BinarySearchFunc(d.marks, numFid{num, fid}, cmpNumFid)
	return ok
}

// touches says whether a dead mark names a session in [lo, hi) (hi 0: no end).
func (d *deadSet) touches(lo, hi uint32) bool {
	if d.empty() {
		return false
	}
	i, _ := slices.BinarySearchFunc(d.marks, numFid{num: lo}, cmpNumFid)
	return i < len(d.marks) && (hi == 0 || d.marks[i].num < hi)
}

// filter drops the dead files' postings from ps (sorted), in place.
func (d *deadSet) filter(ps []posting) []posting {
	if d.empty() {
		return ps
	}
	return slices.DeleteFunc(ps, func(p posting) bool { return d.has(p.num, p.fid) })
}

// deadFile is one dead file's record, for the purge.
type deadFile struct {
	num   uint32
	fid   uint64
	terms []termFreq // sorted by term
}

func decodeDeadRec(k, v []byte) (deadFile, error) {
	if !isDeadKey(k, tblDeadRec) {
		return deadFile{}, fmt.Errorf("index: dead record %q: %w", k, errCorrupt)
	}
	rec, err := decodeRecord(v)
	if err != nil {
		return deadFile{}, fmt.Errorf("index: dead record %q: %w", k, err)
	}
	num, fid := binary.BigEndian.Uint32(k[2:]), bytesToFid(k[6:])
	if rec.num != num {
		return deadFile{}, fmt.Errorf("index: dead record %q names session %d: %w", k, rec.num, errCorrupt)
	}
	return deadFile{num: num, fid: fid, terms: rec.terms}, nil
}

// markDead records that file fid's postings under old.num are dead (a
// removal, or a move to another session) and counts it in g.
func markDead(b *pebble.Batch, fid uint64, old *fileRecord, g *globalStats) error {
	g.dead++
	g.deadPostings += uint64(len(old.terms))
	if err := b.Set(deadKey(old.num, fid), nil, nil); err != nil {
		return err
	}
	return b.Set(deadRecKey(old.num, fid), old.encode(), nil)
}

// takeDead removes the dead mark of (num, fid), if there is one, and
// returns the record it held (nil: none).
func takeDead(b *pebble.Batch, num uint32, fid uint64, g *globalStats) (*fileRecord, error) {
	if g.dead == 0 {
		return nil, nil
	}
	key := deadRecKey(num, fid)
	v, ok, err := get(b, key)
	if err != nil || !ok {
		return nil, err
	}
	rec, err := decodeRecord(v)
	if err != nil {
		return nil, fmt.Errorf("index: dead record of file %d: %w", fid, err)
	}
	g.dead--
	g.deadPostings -= min(g.deadPostings, uint64(len(rec.terms)))
	if err := b.Delete(key, nil); err != nil {
		return nil, err
	}
	return rec, b.Delete(deadKey(num, fid), nil)
}

// purge removes from the term postings the dead files of at least budget
// postings (whole files, in (num, fid) order), deletes their marks, and
// counts them out of g. It reads through the batch, under the writers'
// lock like every index writer.
func purge(b *pebble.Batch, g *globalStats, budget int) error {
	it, err := prefixIter(b, tableKey(tblDeadRec))
	if err != nil {
		return err
	}
	var files []deadFile
	var keys [][]byte
	for ok := it.First(); ok && budget > 0; ok = it.Next() {
		f, err := decodeDeadRec(it.Key(), it.Value())
		if err != nil {
			_ = it.Close()
			return err
		}
		files = append(files, f)
		keys = append(keys, slices.Clone(it.Key()))
		budget -= max(len(f.terms), 1)
	}
	if err := it.Close(); err != nil {
		return err
	}
	if len(files) == 0 {
		g.dead, g.deadPostings = 0, 0
		return nil
	}
	// term -> the dead files posting it, sorted by (num, fid) as files are.
	byTerm := map[string][]posting{}
	for _, f := range files {
		for _, t := range f.terms {
			byTerm[t.term] = append(byTerm[t.term], posting{num: f.num, fid: f.fid})
		}
	}
	terms := make([]string, 0, len(byTerm))
	for t := range byTerm {
		terms = append(terms, t)
	}
	slices.Sort(terms)
	bw := newBlockWriter(b, *g)
	defer bw.close()
	// One iterator over the delta table, opened before any write of the
	// purge (it sees none of them) and sought forward: terms and each
	// term's files come in key order.
	dit, err := prefixIter(b, tableKey(tblTerm))
	if err != nil {
		return err
	}
	defer dit.Close()
	git, err := prefixIter(b, tableKey(tblGroup))
	if err != nil {
		return err
	}
	defer git.Close()
	var key []byte
	for _, t := range terms {
		dead := byTerm[t]
		// Their grouped delta postings (groups.go) cannot be deleted one by
		// one: a later group with a tombstone for each hides them until the
		// sweep folds the term.
		if grouped, err := hasGroups(git, t); err != nil {
			return err
		} else if grouped {
			if err := writeGroup(b, g, t, dead); err != nil {
				return err
			}
		}
		// The dead files' own delta keys go (point deletions: the live
		// files' delta keys of the term stay for the sweep to fold).
		prefix := termPrefix(t)
		for _, p := range dead {
			key = withNumFid(append(key[:0], prefix...), p.num, p.fid)
			if dit.SeekGE(key) && bytes.Equal(dit.Key(), key) {
				if err := b.Delete(key, nil); err != nil {
					return err
				}
			} else if err := dit.Error(); err != nil {
				return err
			}
		}
		// Their base postings: the blocks holding them are rewritten
		// without them (tombstones fold as a sweep's do).
		if err := compactTerm(b, bw, t, dead); err != nil {
			return err
		}
	}
	for i, k := range keys {
		if err := b.Delete(k, nil); err != nil {
			return err
		}
		if err := b.Delete(deadKey(files[i].num, files[i].fid), nil); err != nil {
			return err
		}
		g.dead--
		g.deadPostings -= min(g.deadPostings, uint64(len(files[i].terms)))
	}
	return nil
}
