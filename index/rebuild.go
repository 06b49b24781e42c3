package index

import (
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble"
)

// A rebuild indexes every file at once, and writing each term posting as a
// delta key (what a commit does) would make pebble write, flush and compact
// some 165 keys per file only for compactAll to read them back and pack
// them. The rebuilder keeps the term postings of new sessions in memory
// instead and writes them as packed blocks directly.
//
// Blocks never split a session and cover increasing sessions (blocks.go).
// Sessions are numbered in the order the rebuild first meets them, so the
// postings held for a term all belong to sessions after those of the term's
// blocks already written, as long as every posting of a session numbered no
// later than the last flush (flushed) goes the ordinary way, as a delta key
// that compactAll folds in at the end. A source walks a session's files one
// after the other, so that is rare: a flush waits for a session to end
// unless the memory bound forces it.
//
// A flush writes only the terms holding at least a block's worth of
// postings; the others wait for more (else every flush would cut a short
// block for each rare term). When what waits is still over half the budget,
// or at the end, everything is written.
type rebuilder struct {
	terms   map[string][]posting
	n       int    // postings held
	flushed uint32 // the greatest session number at the last flush
	budget  int    // postings held before a flush is due

	flushes, forced, late int // for tests: flushes, flushes inside a session, files after their session's flush
	merged                int // for tests: runs merged into blocks (runs.go)

	// seen holds the file ids applied so far, as bitmap pages of 2^16 ids
	// (inode numbers are dense: about 8 KiB per 65,536 files): a file not
	// in it has no record to read back.
	seen map[uint64]*[1 << 10]uint64

	// tables, when the index has an ingest dir, take the records and texts
	// (ingest.go), and the flushes of term postings go to run files in
	// the same dir (runs.go).
	tables *tables
	runs   []string

	// held holds the keys every file rewrites (heldKeys).
	held heldKeys

	// adds, while the rebuilder runs (start), hands the postings of each
	// record to a goroutine of their own that holds them in terms: about
	// a fifth of the work of the one goroutine that applies the files. n
	// is counted, and terms flushed, by the caller of add, after sync.
	adds    chan heldRecord
	pending sync.WaitGroup
}

// heldRecord is a record whose postings the rebuilder is to hold.
type heldRecord struct {
	fid uint64
	rec *fileRecord
}

// start makes add hand the postings to a goroutine of their own, until stop.
func (rb *rebuilder) start() {
	rb.adds = make(chan heldRecord, 256)
	go func(adds <-chan heldRecord) {
		for h := range adds {
			rb.hold(h.fid, h.rec)
			rb.pending.Done()
		}
	}(rb.adds)
}

// sync waits until the postings of every record added are held.
func (rb *rebuilder) sync() { rb.pending.Wait() }

// stop ends what start started, once every record added is held.
func (rb *rebuilder) stop() {
	if rb.adds != nil {
		rb.sync()
		close(rb.adds)
		rb.adds = nil
	}
}

// rebuildPostings is the rebuilder's default budget: about 24 MiB of postings.
const rebuildPostings = 1 << 20

func newRebuilder(budget int) *rebuilder {
	return &rebuilder{terms: map[string][]posting{}, budget: budget, seen: map[uint64]*[1 << 10]uint64{}}
}

// first records file fid and says whether it is the first time.
func (rb *rebuilder) first(fid uint64) bool {
	page := rb.seen[fid>>16]
	if page == nil {
		page = new([1 << 10]uint64)
		rb.seen[fid>>16] = page
	}
	word, bit := &page[fid>>6&(1<<10-1)], uint64(1)<<(fid&63)
	if *word&bit != 0 {
		return false
	}
	*word |= bit
	return true
}

// add holds the term postings of file fid (its record rec, numbered after
// the last flush, and not changed after).
func (rb *rebuilder) add(fid uint64, rec *fileRecord) {
	rb.n += len(rec.terms)
	if rb.adds != nil {
		rb.pending.Add(1)
		rb.adds <- heldRecord{fid, rec}
		return
	}
	rb.hold(fid, rec)
}

// hold is add's work: the postings of rec in terms.
func (rb *rebuilder) hold(fid uint64, rec *fileRecord) {
	for _, t := range rec.terms {
		ps, ok := rb.terms[t.term]
		key := t.term
		if !ok {
			// A decoded record's terms share one string (decodeRecord):
			// a key of its own keeps only the term's bytes.
			key = strings.Clone(key)
		}
		rb.terms[key] = append(ps, posting{num: rec.num, fid: fid, tf: t.tf})
	}
}

// due says whether to flush before a file of session sid, the file before
// it being of session last.
func (rb *rebuilder) due(sid, last string) bool {
	if rb.n >= rb.budget && sid != last {
		return true
	}
	if rb.n >= 2*rb.budget {
		rb.forced++
		return true
	}
	return false
}

// flush writes the held postings of every term with at least a block's
// worth (all of them with all) as blocks into b, g being the global stats
// as b holds them.
func (rb *rebuilder) flush(b *pebble.Batch, g globalStats, all bool) error {
	if rb.n == 0 {
		return nil
	}
	rb.sync()
	if rb.tables != nil {
		// To a run, merged into blocks at the end (runs.go).
		if err := rb.writeRun(); err != nil {
			return err
		}
		rb.flushed = g.lastNum
		rb.flushes++
		return nil
	}
	bw := newBlockWriter(b, g)
	defer bw.close()
	write := func(minimum int) error {
		for _, t := range slices.Sorted(maps.Keys(rb.terms)) {
			ps := rb.terms[t]
			if len(ps) < minimum {
				continue
			}
			sortPostings(ps)
			if err := writeBlocks(b, bw, blockPrefix(t), ps); err != nil {
				return err
			}
			rb.n -= len(ps)
			delete(rb.terms, t)
		}
		return nil
	}
	minimum := blockPostings
	if all {
		minimum = 0
	}
	if err := write(minimum); err != nil {
		return err
	}
	if rb.n > rb.budget/2 {
		if err := write(0); err != nil {
			return err
		}
	}
	rb.flushed = g.lastNum
	rb.flushes++
	return nil
}

// reset forgets every posting held or in runs: the index they were for has
// no file left.
func (rb *rebuilder) reset() {
	rb.sync()
	clear(rb.terms)
	rb.n = 0
	if rb.tables != nil {
		rb.dropRuns()
	}
}
