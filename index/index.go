// Package index extracts session documents from the JSON files of a session
// (both the seed's layout and the real app's envelope), keeps full-text and
// facet postings in pebble next to the filesystem metadata, parses the search
// grammar and ranks results with BM25.
//
// All keys start with 'X' (see keys.go). Writes go into a batch supplied by the
// caller, so index changes commit atomically with the file content they come
// from. The batch must be indexed: an update reads what the file contributed
// before and the session's other files, from the DB and from earlier writes in
// the same batch. Like meta's refcounts, the session and global aggregates
// are read-modify-write: batches that touch the index must be built and
// committed one at a time (the caller's commit lock), never interleaved.
package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"sync/atomic"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/taskerfs/taskerfs/internal/ordered"
)

// Index is the session index over one pebble DB. It holds no state of its
// own besides the DB, so it is safe for concurrent readers.
type Index struct {
	db       *pebble.DB
	sweepMin uint64 // delta postings written before a compaction sweep starts (compact.go)
	perFile  uint64 // and per indexed file (sweepPerFile; tests lower it)
	stepMin  int    // the least a sweep step folds (compact.go; tests make it small)
	purgeMin uint64 // dead postings (dead.go) that make a purge due on their own
	// seenDead is the dead file count the background sweeper saw last (compact.go).
	seenDead   atomic.Uint64
	quietLooks atomic.Int32 // looks in a row that found seenDead unchanged
	// background: a caller runs the sweep (Sweep); writers only count (compact.go).
	background atomic.Bool
	content    ContentSource // nil: snippet text is stored in the index
	// exhaustive turns block-max top-k (wand.go) off: every hit is scored.
	exhaustive bool
	// Where rebuilds write tables to ingest (ingest.go); "": no tables.
	ingestFS  vfs.FS
	ingestDir string
	// pend gathers the term postings of the batch being built (groups.go).
	pend pendingDeltas
}

// ContentSource returns the committed content of file fid, for snippets.
type ContentSource func(fileID uint64) ([]byte, error)

// SetContentSource makes the index keep no snippet text of its own: a
// snippet is cut from the file's content, read through src and extracted
// again, which gives the same text the index would have stored (the
// extraction is deterministic). Text stored earlier is still used and is
// dropped when its file is next indexed. Call it before any other use.
//
// The trade: the index shrinks by the stored text (about 45% of it), and
// every snippet re-parses a JSON file: a top 100 with snippets parses up
// to a hundred, on every CPU (SearchQuery). The mount uses it; an index
// without a source stores zstd text.
func (x *Index) SetContentSource(src ContentSource) { x.content = src }

// New returns the index stored in db.
func New(db *pebble.DB) *Index {
	return &Index{db: db, sweepMin: defaultSweepMin, perFile: sweepPerFile, stepMin: sweepStepMin, purgeMin: defaultPurgeMin}
}

// reader is what both a snapshot, the DB and an indexed batch provide.
type reader interface {
	Get(key []byte) ([]byte, io.Closer, error)
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
}

// get returns a copy of the value at key; ok=false if absent.
func get(r reader, key []byte) (value []byte, ok bool, err error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	value = append([]byte(nil), v...)
	return value, true, closer.Close()
}

func prefixIter(r reader, prefix []byte) (*pebble.Iterator, error) {
	return r.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
}

func loadRecord(r reader, fid uint64) (*fileRecord, error) {
	v, ok, err := get(r, fileKey(fid))
	if err != nil || !ok {
		return nil, err
	}
	rec, err := decodeRecord(v)
	if err != nil {
		return nil, fmt.Errorf("index: file %d: %w", fid, err)
	}
	return rec, nil
}

func loadGlobal(r reader) (globalStats, error) {
	v, ok, err := get(r, tableKey(tblGlobal))
	if err != nil || !ok {
		return globalStats{}, err
	}
	return decodeGlobal(v)
}

func loadAgg(r reader, num uint32) (sessionAgg, bool, error) {
	v, ok, err := get(r, numKey(num))
	if err != nil || !ok {
		return sessionAgg{}, false, err
	}
	a, err := decodeAgg(v)
	return a, err == nil, err
}

func checkBatch(b *pebble.Batch) error {
	if b == nil || !b.Indexed() {
		return errors.New("index: an indexed batch (db.NewIndexedBatch) is required")
	}
	return nil
}

// UpdateFile replaces everything file fid contributed before with what its
// full content contributes now. Content that is not valid JSON, or of the
// wrong shape, contributes what makes sense (maybe only the session's
// existence); only a batch or DB failure is an error. A file whose session id
// changed (a rename between sessions) moves to the new session.
func (x *Index) UpdateFile(b *pebble.Batch, fileID uint64, sessionID string, kind Kind, content []byte) error {
	if err := checkBatch(b); err != nil {
		return err
	}
	if sessionID == "" {
		return errors.New("index: empty session id")
	}
	rec, text := buildRecord(sessionID, kind, content)
	return x.apply(b, fileID, rec, x.storedForm(text), true, nil)
}

// MoveFile re-keys the postings of file fid under session sessionID without
// reading its content: the file record lists what the file contributes, so
// a rename (of the file or of a whole session tree) is a key rewrite. It
// reports false, changing nothing, when the index has no record of the file
// or the file's kind changes with its new path: then the caller must index
// the content (UpdateFile).
func (x *Index) MoveFile(b *pebble.Batch, fileID uint64, sessionID string, kind Kind) (bool, error) {
	if err := checkBatch(b); err != nil {
		return false, err
	}
	if sessionID == "" {
		return false, errors.New("index: empty session id")
	}
	rec, err := loadRecord(b, fileID)
	if err != nil || rec == nil || rec.kind != kind {
		return false, err
	}
	if rec.sid == sessionID {
		return true, nil
	}
	text, _, err := get(b, textKey(fileID))
	if err != nil {
		return false, err
	}
	rec.sid, rec.num = sessionID, 0
	return true, x.apply(b, fileID, rec, text, true, nil) // the text as stored
}

// RemoveFile deletes everything file fid contributed; a no-op for a file the
// index does not know. The session disappears with its last file.
func (x *Index) RemoveFile(b *pebble.Batch, fileID uint64) error {
	if err := checkBatch(b); err != nil {
		return err
	}
	return x.apply(b, fileID, nil, nil, true, nil)
}

// apply moves file fid from its stored record to rec (nil: removed), writing
// only the keys that differ; text is the snippet text in its stored form
// (encodeText, which Prepare runs outside the commit). With sweep, it then runs a step of the
// compaction sweep when one is due (compact.go). A rebuild passes rb, which
// takes the term postings of new sessions (see rebuilder).
func (x *Index) apply(b *pebble.Batch, fid uint64, rec *fileRecord, text []byte, sweep bool, rb *rebuilder) error {
	var old *fileRecord
	fresh := false // (a rebuild cleared the index: a file met first has no record)
	if rb != nil {
		if t := rb.tables; t != nil && !t.takes(fid) {
			// The file may be in the tables: let its record be read.
			if err := t.ingest(); err != nil {
				return err
			}
		}
		fresh = rb.first(fid)
	}
	if !fresh {
		var err error
		if old, err = loadRecord(b, fid); err != nil {
			return err
		}
	}
	if old == nil && rec == nil {
		return nil
	}
	var g globalStats
	var err error
	if rb != nil && rb.held.globalHeld {
		g = rb.held.global
	} else if g, err = loadGlobal(b); err != nil {
		return err
	}
	if rb != nil {
		g.held = &rb.held
	}
	if g.files == 0 {
		g.flags |= flagLengths // an empty index: the length column is complete from here on
	}
	if rec != nil {
		if old != nil && old.sid == rec.sid {
			rec.num = old.num
		} else if rec.num, err = sessionNum(b, rec.sid, &g); err != nil {
			return err
		}
	}
	// Outside a rebuild the term postings are gathered and written as one
	// group key per term (groups.go): at the end of this call for a batch
	// nobody registered, before it commits for one that was.
	var term func(key, value []byte) error
	if rb == nil {
		term = func(key, value []byte) error { return x.gather(b, key, value) }
	}
	wrote, err := writePostings(b, fid, old, rec, rb, &g, term)
	if err != nil {
		return err
	}
	if rec == nil {
		err = b.Delete(fileKey(fid), nil)
		if err == nil {
			err = b.Delete(textKey(fid), nil)
		}
	} else if rb != nil && rb.tables != nil {
		var t []byte
		if len(text) > 0 && x.content == nil {
			t = text
		}
		err = rb.tables.add(fid, rec.encode(), t, !fresh)
	} else {
		err = b.Set(fileKey(fid), rec.encode(), nil)
		if err == nil && (len(text) == 0 || x.content != nil) {
			err = b.Delete(textKey(fid), nil)
		} else if err == nil {
			err = b.Set(textKey(fid), text, nil)
		}
	}
	if err != nil {
		return err
	}
	if old == nil || rec == nil || old.sid != rec.sid || old.part() != rec.part() {
		// (else the session's aggregate and the global counts stay as they are)
		if err := updateAggregates(b, fid, old, rec, &g); err != nil {
			return err
		}
	}
	if g.files == 0 {
		// Nothing indexed: leave no key behind (the tombstones neither),
		// and no posting held for later.
		if rb != nil {
			rb.reset()
			if err := rb.held.flush(b); err != nil {
				return err
			}
			rb.held.globalHeld = false
		}
		x.dropPending(b)
		for _, tbl := range []byte{tblTerm, tblGroup, tblBlock, tblShrunk, tblDead, tblDeadRec} {
			if err := b.DeleteRange(tableKey(tbl), prefixEnd(tableKey(tbl)), nil); err != nil {
				return err
			}
		}
		return b.Delete(tableKey(tblGlobal), nil)
	}
	if sweep {
		if err := x.sweepStep(b, &g, wrote); err != nil {
			return err
		}
	}
	if rb == nil && !x.registered(b) {
		if err := x.flushPending(b, &g); err != nil {
			return err
		}
		x.dropPending(b)
	}
	if rb != nil {
		rb.held.global, rb.held.globalHeld, rb.held.globalDirty = g, true, true
		return nil
	}
	return b.Set(tableKey(tblGlobal), g.encode(), nil)
}

// updateAggregates moves file fid's part of its session from old to rec
// (either may be nil) and updates the session aggregates and the global
// counts in g.
func updateAggregates(b *pebble.Batch, fid uint64, old, rec *fileRecord, g *globalStats) error {
	if old != nil && (rec == nil || old.num != rec.num) {
		if err := b.Delete(sessFileKey(old.num, fid), nil); err != nil {
			return err
		}
	}
	if rec != nil {
		if err := b.Set(sessFileKey(rec.num, fid), rec.part().encode(), nil); err != nil {
			return err
		}
	}
	switch {
	case old == nil:
		g.files++
	case rec == nil:
		g.files--
	}
	if old != nil {
		var add *sessPart
		if rec != nil && rec.num == old.num {
			p := rec.part()
			add = &p
		}
		op := old.part()
		if err := updateSession(b, old.sid, old.num, g, &op, add); err != nil {
			return err
		}
	}
	if rec != nil && (old == nil || old.num != rec.num) {
		p := rec.part()
		if err := updateSession(b, rec.sid, rec.num, g, nil, &p); err != nil {
			return err
		}
	}
	return nil
}

// sessionNum returns the number of session sid, handing out the next one
// to a session the index does not know yet.
func sessionNum(b *pebble.Batch, sid string, g *globalStats) (uint32, error) {
	v, ok, err := get(b, sessionKey(sid))
	if err != nil {
		return 0, err
	}
	if ok {
		if len(v) != 4 {
			return 0, fmt.Errorf("index: session %q: %w", sid, errCorrupt)
		}
		return binary.BigEndian.Uint32(v), nil
	}
	if g.lastNum == math.MaxUint32 {
		return 0, errors.New("index: out of session numbers; reindex")
	}
	g.lastNum++
	return g.lastNum, b.Set(sessionKey(sid), appendNum(nil, g.lastNum), nil)
}

// writePostings turns the postings of old into those of cur (either may be
// nil) and returns how many term postings (delta keys) it wrote. Within one
// session only the terms, facets and day that differ are written, so
// rewriting a chunk with one more screenshot costs little. A term posting
// that goes away gets a tombstone (a delta key with tf 0), which hides the
// posting a base block may hold (blocks.go); facet and day keys are deleted.
// A file that leaves its session (removed, or moved to another) leaves its
// term postings behind a dead mark instead (dead.go), and a file indexed
// under the number of a dead mark of its own takes the mark over.
// With rb, the term postings of a new file of a session that rb has not
// flushed yet go to rb instead of the batch; a rebuild writes no dead marks.
//
// Term postings go through term (nil: b.Set, one delta key each).
func writePostings(b *pebble.Batch, fid uint64, old, cur *fileRecord, rb *rebuilder, g *globalStats, term func(key, value []byte) error) (int, error) {
	wrote := 0
	if term == nil {
		term = func(key, value []byte) error { return b.Set(key, value, nil) }
	}
	set := func(key, value []byte) error {
		if key[1] == tblTerm {
			wrote++
			return term(key, value)
		}
		return b.Set(key, value, nil)
	}
	del := func(key, _ []byte) error {
		if key[1] == tblTerm {
			wrote++
			return term(key, tombstone)
		}
		return b.Delete(key, nil)
	}
	if old == nil || cur == nil || old.num != cur.num {
		if old != nil && rb != nil {
			if err := old.eachPosting(fid, del); err != nil {
				return wrote, err
			}
		} else if old != nil {
			err := old.eachOtherPosting(fid, del)
			if err == nil {
				err = markDead(b, fid, old, g)
			}
			if err != nil {
				return wrote, err
			}
		}
		if cur != nil && rb != nil {
			if cur.num > rb.flushed {
				rb.add(fid, cur)
				return wrote, cur.eachOtherPosting(fid, set)
			}
			rb.late++ // its session's postings are written already: delta keys
		}
		if cur == nil {
			return wrote, nil
		}
		var revived *fileRecord
		if rb == nil {
			var err error
			if revived, err = takeDead(b, cur.num, fid, g); err != nil {
				return wrote, err
			}
		}
		if revived == nil {
			return wrote, cur.eachPosting(fid, set)
		}
		// The postings the mark hid are the revived record's: write the
		// terms that differ from them, and the facets and day anew.
		k := newKeyBuilder(cur.num, fid)
		if err := diffTerms(k, revived.terms, cur.terms, set, del); err != nil {
			return wrote, err
		}
		return wrote, cur.eachOtherPosting(fid, set)
	}
	k := newKeyBuilder(cur.num, fid)
	if old.day != cur.day {
		if old.day != "" {
			if err := del(k.day(old.day), nil); err != nil {
				return wrote, err
			}
		}
		if cur.day != "" {
			if err := set(k.day(cur.day), nil); err != nil {
				return wrote, err
			}
		}
	}
	if err := diffTerms(k, old.terms, cur.terms, set, del); err != nil {
		return wrote, err
	}
	i, j := 0, 0
	for i < len(old.facets) || j < len(cur.facets) {
		var err error
		switch {
		case j == len(cur.facets) || i < len(old.facets) && facetLess(old.facets[i], cur.facets[j]):
			err = del(k.facet(old.facets[i]), nil)
			i++
		case i == len(old.facets) || facetLess(cur.facets[j], old.facets[i]):
			err = set(k.facet(cur.facets[j]), nil)
			j++
		default:
			i++
			j++
		}
		if err != nil {
			return wrote, err
		}
	}
	return wrote, nil
}

// diffTerms writes, with the keys of k, the term postings that turn old
// into cur (both sorted): set for a new or changed tf, del for a term gone.
func diffTerms(k *keyBuilder, old, cur []termFreq, set, del func(key, value []byte) error) error {
	i, j := 0, 0
	for i < len(old) || j < len(cur) {
		var err error
		switch {
		case j == len(cur) || i < len(old) && old[i].term < cur[j].term:
			err = del(k.term(old[i].term), nil)
			i++
		case i == len(old) || cur[j].term < old[i].term:
			err = set(k.term(cur[j].term), k.tf(cur[j].tf))
			j++
		default:
			if old[i].tf != cur[j].tf {
				err = set(k.term(cur[j].term), k.tf(cur[j].tf))
			}
			i++
			j++
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// updateSession folds into the aggregate of session sid (number num) one
// file's part leaving (remove) and/or arriving (add); the parts table holds
// the change already. Sums are updated in place; when a metadata.json part
// changes (which one names the session depends on all of them) or the
// aggregate is missing, it is recomputed from the parts (refreshSession).
func updateSession(b *pebble.Batch, sid string, num uint32, g *globalStats, remove, add *sessPart) error {
	if remove != nil && remove.kind == KindMetadata || add != nil && add.kind == KindMetadata {
		return refreshSession(b, sid, num, g)
	}
	before, existed, err := g.loadAgg(b, num)
	if err != nil {
		return err
	}
	if !existed {
		return refreshSession(b, sid, num, g)
	}
	after := before
	after.sid = sid
	if remove != nil {
		after.files--
		after.length -= remove.length
	}
	if add != nil {
		after.files++
		after.length += add.length
	}
	g.sessions--
	g.length -= before.length
	return writeAgg(b, sid, num, g, after)
}

// writeAgg stores the aggregate of session sid (number num) and its length
// column entry, or deletes them (and the session's number) when it has no
// files left, and counts it in g.
func writeAgg(b *pebble.Batch, sid string, num uint32, g *globalStats, after sessionAgg) error {
	if after.files == 0 {
		if err := g.storeAgg(b, num, sessionAgg{}, false); err != nil {
			return err
		}
		if _, err := setLength(b, g, num, 0); err != nil {
			return err
		}
		if err := b.Delete(shrunkKey(num), nil); err != nil {
			return err
		}
		return b.Delete(sessionKey(sid), nil)
	}
	g.sessions++
	g.length += after.length
	shrunk, err := setLength(b, g, num, after.length+1)
	if err != nil {
		return err
	}
	if shrunk {
		// Block bounds written before may be too low (blocks.go).
		g.lengthGen++
		if err := b.Set(shrunkKey(num), binary.AppendUvarint(nil, g.lengthGen), nil); err != nil {
			return err
		}
	}
	return g.storeAgg(b, num, after, true)
}

// refreshSession recomputes the aggregate of session sid (number num) from
// its parts, seen through the batch, and folds the change into g. A session
// without files left loses its number.
func refreshSession(b *pebble.Batch, sid string, num uint32, g *globalStats) error {
	before, existed, err := g.loadAgg(b, num)
	if err != nil {
		return err
	}
	after, err := sumParts(b, num)
	if err != nil {
		return err
	}
	after.sid = sid
	if existed {
		g.sessions--
		g.length -= before.length
	}
	return writeAgg(b, sid, num, g, after)
}

// sumParts adds up the X s parts of session num. With several metadata files
// (an atomic save in flight) the one with the highest file id names the session.
func sumParts(r reader, num uint32) (sessionAgg, error) {
	prefix := sessFilePrefix(num)
	it, err := prefixIter(r, prefix)
	if err != nil {
		return sessionAgg{}, err
	}
	var a sessionAgg
	for ok := it.First(); ok; ok = it.Next() {
		p, err := decodePart(it.Value())
		if err != nil || len(it.Key()) != len(prefix)+8 {
			_ = it.Close()
			return sessionAgg{}, fmt.Errorf("index: session %d: %w", num, errCorrupt)
		}
		a.files++
		a.length += p.length
		if p.kind == KindMetadata {
			a.hasMeta = true
			a.metaFid = bytesToFid(it.Key()[len(prefix):])
			a.name, a.start, a.day = p.name, p.start, p.day
		}
	}
	if err := it.Close(); err != nil {
		return sessionAgg{}, err
	}
	return a, nil
}

// FileSession returns the session that file fid is indexed under.
func (x *Index) FileSession(fileID uint64) (sessionID string, ok bool, err error) {
	rec, err := loadRecord(x.db, fileID)
	if err != nil || rec == nil {
		return "", false, err
	}
	return rec.sid, true, nil
}

// Incomplete says whether a rebuild began and did not finish (the index
// then lacks files until a rebuild runs to the end).
func (x *Index) Incomplete() (bool, error) {
	g, err := loadGlobal(x.db)
	return g.flags&flagRebuilding != 0, err
}

// Clear deletes the whole index keyspace (before a reindex).
func (x *Index) Clear(b *pebble.Batch) error {
	return b.DeleteRange([]byte{keyPrefix}, []byte{keyPrefix + 1}, nil)
}

// FileSource iterates every indexable file: it calls fn once per file with its
// id, session, kind and full content, and stops at fn's first error.
type FileSource func(fn func(fileID uint64, sessionID string, kind Kind, content []byte) error) error

// rebuildBatchBytes is how much content one rebuild batch indexes before it commits.
const rebuildBatchBytes = 32 << 20

// Rebuild clears the index and reindexes every file of all, committing as it
// goes. Searches meanwhile see a partial index; run it while no other writer
// touches the index (taskerfs reindex, or fsck's repair).
func (x *Index) Rebuild(all FileSource) error { return x.RebuildWith(all, nil) }

// RebuildProgress is how far a rebuild is.
type RebuildProgress struct {
	Files int   // files indexed
	Bytes int64 // their content bytes
	// Prepared counts the files whose records a RecordSource prepared in
	// a pass of its own before the rebuild takes them (vfs's reindex):
	// the source reports it, with Files 0, while it prepares.
	Prepared int
}

// RebuildWith is Rebuild calling progress (if not nil) after each file.
// Extraction (JSON parsing, tokenizing) runs on every CPU; the records are
// applied to the batch in the order all yields them.
func (x *Index) RebuildWith(all FileSource, progress func(RebuildProgress)) error {
	return x.rebuildWith(fromContent(all), progress, newRebuilder(rebuildPostings))
}

// A RebuildFile is one file of a RecordSource: its content, or what the
// content contributes, prepared ahead (Prepared.Append) by the source.
type RebuildFile struct {
	ID        uint64
	SessionID string
	Kind      Kind
	Size      int    // the content's bytes
	Content   []byte // when Prepared is nil
	Prepared  []byte
	// Load, when set, gives Content or Prepared, read on the rebuild's
	// workers; a file it fails to read is left out (a damaged blob, which
	// fsck reports).
	Load func() (content, prepared []byte, err error)
}

// A RecordSource is a FileSource that may yield a file's record prepared
// ahead instead of its content. It calls fn once per file, in the order
// the rebuild is to number the sessions (a session's files together), and
// stops at fn's first error.
type RecordSource func(fn func(f *RebuildFile) error) error

// fromContent is the RecordSource of a FileSource.
func fromContent(all FileSource) RecordSource {
	return func(fn func(f *RebuildFile) error) error {
		return all(func(fid uint64, sid string, kind Kind, content []byte) error {
			return fn(&RebuildFile{ID: fid, SessionID: sid, Kind: kind, Size: len(content), Content: content})
		})
	}
}

// RebuildFrom is RebuildWith for a source that prepares records itself
// (vfs prepares the files stored inline in the order they are stored,
// which reads them far faster than in the order of the sessions).
func (x *Index) RebuildFrom(src RecordSource, progress func(RebuildProgress)) error {
	return x.rebuildWith(src, progress, newRebuilder(rebuildPostings))
}

// rebuildWith is RebuildFrom with the term postings held in rb.
func (x *Index) rebuildWith(all RecordSource, progress func(RebuildProgress), rb *rebuilder) error {
	b := x.db.NewIndexedBatch()
	err := x.Clear(b)
	if err == nil {
		// Marked until the end, so that an interrupted rebuild is not taken
		// for a whole index (Check reports it).
		err = b.Set(tableKey(tblGlobal), globalStats{flags: flagRebuilding}.encode(), nil)
	}
	if err != nil {
		_ = b.Close()
		return err
	}
	// Drop the old index's tables now: else every read of the rebuild
	// (a session's number, its aggregate, the length column) looks through
	// them under the range deletion.
	if err := b.Commit(pebble.NoSync); err != nil {
		_ = b.Close()
		return err
	}
	_ = b.Close()
	if err := x.db.Compact([]byte{keyPrefix}, []byte{keyPrefix + 1}, true); err != nil {
		return err
	}
	if x.ingestDir != "" && rb.tables == nil {
		t, err := newTables(x.db, x.ingestFS, x.ingestDir)
		if err != nil {
			return err
		}
		rb.tables = t
		defer func() {
			t.abort() // what an error leaves unwritten
			_ = x.ingestFS.RemoveAll(x.ingestDir)
		}()
	}
	b = x.db.NewIndexedBatch()
	rb.start()
	defer rb.stop()
	var p RebuildProgress
	pending := 0
	last := ""
	// flush writes what rb holds into the batch of the moment.
	flush := func(all bool) error {
		if err := rb.held.flush(b); err != nil {
			return err
		}
		g, err := loadGlobal(b)
		if err == nil {
			err = rb.flush(b, g, all)
		}
		return err
	}
	err = extractFrom(all, func(e *extracted, f *RebuildFile) {
		if f.Load != nil {
			var err error
			if f.Content, f.Prepared, err = f.Load(); err != nil {
				e.skip = true
				return
			}
		}
		if f.Prepared == nil {
			e.rec, e.text = buildRecord(e.sid, e.kind, f.Content)
			e.stored = x.storedForm(e.text)
			return
		}
		p, err := decodePrepared(f.Prepared)
		if err == nil && !p.Matches(e.sid, e.kind) {
			err = fmt.Errorf("prepared for %s (kind %d), yielded as %s (kind %d)", p.sid, p.kind, e.sid, e.kind)
		}
		if err != nil {
			e.err = fmt.Errorf("index: file %d: prepared record: %w", e.fid, err)
			return
		}
		e.rec, e.stored = p.rec, p.text
	}, func(e *extracted) error {
		if e.skip {
			return nil
		}
		if e.err != nil {
			return e.err
		}
		if e.sid == "" {
			return errors.New("index: empty session id")
		}
		if rb.due(e.sid, last) {
			if err := flush(false); err != nil {
				return err
			}
		}
		last = e.sid
		if err := x.apply(b, e.fid, e.rec, e.stored, false, rb); err != nil {
			return err
		}
		p.Files++
		p.Bytes += int64(e.size)
		if progress != nil {
			progress(p)
		}
		pending += e.size + 1024
		if pending < rebuildBatchBytes {
			return nil
		}
		pending = 0
		nb, err := nextBatch(x.db, b)
		if err != nil {
			return err
		}
		b = nb
		return nil
	})
	if err == nil {
		err = flush(true)
	}
	if err == nil && len(rb.runs) > 0 {
		// Everything the runs' blocks read (the length column) committed.
		if b, err = nextBatch(x.db, b); err == nil {
			err = rb.mergeRuns(x.db, b)
		}
	}
	if err == nil && rb.tables != nil {
		err = rb.tables.ingest()
	}
	if err == nil {
		// Postings of sessions met again after a flush went in as delta keys: pack them.
		b, err = compactAll(x.db, b)
	}
	if err == nil {
		var g globalStats
		if g, err = loadGlobal(b); err == nil {
			g.flags &^= flagRebuilding
			if g.files == 0 {
				err = b.Delete(tableKey(tblGlobal), nil) // an empty index has no keys
			} else {
				err = b.Set(tableKey(tblGlobal), g.encode(), nil)
			}
		}
	}
	if err == nil {
		err = b.Commit(pebble.Sync)
	}
	_ = b.Close()
	return err
}

// extracted is one file of a FileSource with its record built.
type extracted struct {
	fid    uint64
	sid    string
	kind   Kind
	size   int
	rec    *fileRecord
	text   string
	stored []byte // text as stored (encodeText), when the work sets it
	err    error  // what the work could not do
	skip   bool   // the file could not be read: leave it out
}

// extractFrom builds the records of the files all yields on every CPU
// (work sets the record, and whatever else fn needs, of e) and calls fn
// with each, in the order all yields them, one at a time. It stops at the
// first error of all or fn.
func extractFrom(all RecordSource, work func(e *extracted, f *RebuildFile), fn func(e *extracted) error) error {
	type input struct {
		e *extracted
		f *RebuildFile
	}
	workers := max(runtime.GOMAXPROCS(0), 1)
	errStop := errors.New("index: stopped")
	return ordered.Run(workers, 4*workers, func(emit func(input) bool) error {
		return all(func(f *RebuildFile) error {
			e := &extracted{fid: f.ID, sid: f.SessionID, kind: f.Kind, size: f.Size}
			if !emit(input{e, f}) {
				return errStop
			}
			return nil
		})
	}, func(in input) { work(in.e, in.f) }, func(in input) error { return fn(in.e) })
}

// Stats returns the number of indexed sessions and files and the approximate
// on-disk size of the index keyspace (memtables not counted).
func (x *Index) Stats() (sessions, files int64, bytes int64, err error) {
	g, err := loadGlobal(x.db)
	if err != nil {
		return 0, 0, 0, err
	}
	size, err := x.db.EstimateDiskUsage([]byte{keyPrefix}, []byte{keyPrefix + 1})
	if err != nil {
		return 0, 0, 0, err
	}
	return int64(g.sessions), int64(g.files), int64(size), nil
}
