package index

import (
	"bufio"
	"bytes"
	"cmp"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/sstable"
)

// Sorted runs: a rebuild with an ingest dir writes its term postings once.
//
// Written as blocks at every flush of the rebuilder, the postings went
// through the memtable and a flush into L0, and every flush spans every
// term: each compaction of L0 into the base level rewrote all of that
// level (at 100k sessions, 714 MB flushed became 2.6 GB written into the
// base level, a fifth of a reindex's CPU). So a flush writes the postings
// it holds to a run file instead, sorted by block key; at the end the
// runs are merged (a term's postings from every run, in the order of the
// runs, which is the order of the sessions) and cut into blocks, in key
// order, into one table that pebble takes whole (DB.Ingest) before the
// delta keys of late files are folded in.
//
// A run is a sequence of terms in ascending block-prefix order, each
//
//	uvarint len(prefix), prefix (blockPrefix of the term),
//	uvarint count, uvarint size,
//	size bytes: count x (uvarint num delta, varint fid delta, uvarint tf)
//
// with the postings in (num, fid) order, num and fid as the differences
// from the posting before (from 0 for the first; fid's modulo 2^64, signed:
// a session's files have neighbouring inode numbers, and so, mostly, do
// the sessions that follow each other).

// maxRunPrefix caps a run's prefix length: a term is at most a few
// hundred bytes escaped (tokenize cuts long tokens).
const maxRunPrefix = 1 << 12

func sortPostings(ps []posting) {
	slices.SortFunc(ps, cmpPosting)
}

func cmpPosting(a, b posting) int {
	if c := cmp.Compare(a.num, b.num); c != 0 {
		return c
	}
	return cmp.Compare(a.fid, b.fid)
}

// writeRun writes the postings rb holds to a new run file and empties rb.
func (rb *rebuilder) writeRun() error {
	t := rb.tables
	type held struct {
		prefix []byte
		term   string
	}
	order := make([]held, 0, len(rb.terms))
	for term := range rb.terms {
		order = append(order, held{blockPrefix(term), term})
	}
	slices.SortFunc(order, func(a, b held) int { return bytes.Compare(a.prefix, b.prefix) })

	path := t.fs.PathJoin(t.dir, fmt.Sprintf("postings-%d.run", ingestSeq.Add(1)))
	f, err := t.fs.Create(path)
	if err != nil {
		return err
	}
	rb.runs = append(rb.runs, path)
	w := bufio.NewWriterSize(f, 256<<10)
	var buf, body []byte
	for _, h := range order {
		ps := rb.terms[h.term]
		sortPostings(ps)
		buf = binary.AppendUvarint(buf[:0], uint64(len(h.prefix)))
		buf = append(buf, h.prefix...)
		buf = binary.AppendUvarint(buf, uint64(len(ps)))
		body = body[:0]
		prev, prevFid := uint32(0), uint64(0)
		for _, p := range ps {
			body = binary.AppendUvarint(body, uint64(p.num-prev))
			body = binary.AppendVarint(body, int64(p.fid-prevFid))
			body = binary.AppendUvarint(body, p.tf)
			prev, prevFid = p.num, p.fid
		}
		buf = binary.AppendUvarint(buf, uint64(len(body)))
		buf = append(buf, body...)
		if _, err := w.Write(buf); err != nil {
			_ = f.Close()
			return err
		}
	}
	err = w.Flush()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	clear(rb.terms)
	rb.n = 0
	return nil
}

// dropRuns removes the run files written so far.
func (rb *rebuilder) dropRuns() {
	for _, p := range rb.runs {
		_ = rb.tables.fs.Remove(p)
	}
	rb.runs = nil
}

// runCursor reads one run, a term at a time.
type runCursor struct {
	r      *bufio.Reader
	close  func() error
	order  int // the run's place among the runs (its sessions' order)
	prefix []byte
	body   []byte // the current term's postings, encoded
	ps     []posting
	done   bool
}

var errRunCorrupt = errors.New("index: rebuild run corrupt")

// next reads the run's next term; done at the end of the run.
func (c *runCursor) next() error {
	n, err := binary.ReadUvarint(c.r)
	if err == io.EOF {
		c.done = true
		return nil
	}
	if err != nil || n == 0 || n > maxRunPrefix {
		return errRunCorrupt
	}
	c.prefix = slices.Grow(c.prefix[:0], int(n))[:n]
	if _, err := io.ReadFull(c.r, c.prefix); err != nil {
		return errRunCorrupt
	}
	count, err := binary.ReadUvarint(c.r)
	if err != nil || count == 0 || count > 1<<32 {
		return errRunCorrupt
	}
	size, err := binary.ReadUvarint(c.r)
	if err != nil || size < 3*count || size > 30*count {
		return errRunCorrupt // (three varints a posting, one to ten bytes each)
	}
	c.body = slices.Grow(c.body[:0], int(size))[:size]
	if _, err := io.ReadFull(c.r, c.body); err != nil {
		return errRunCorrupt
	}
	c.ps = slices.Grow(c.ps[:0], int(count))
	b := c.body
	num, fid := uint64(0), uint64(0)
	for range count {
		d, n1 := binary.Uvarint(b)
		if n1 <= 0 {
			return errRunCorrupt
		}
		df, n2 := binary.Varint(b[n1:])
		if n2 <= 0 {
			return errRunCorrupt
		}
		fid += uint64(df) // (modulo 2^64, as written)
		tf, n3 := binary.Uvarint(b[n1+n2:])
		if n3 <= 0 {
			return errRunCorrupt
		}
		b = b[n1+n2+n3:]
		if num += d; num > 1<<32-1 {
			return errRunCorrupt
		}
		c.ps = append(c.ps, posting{num: uint32(num), fid: fid, tf: tf})
	}
	if len(b) != 0 {
		return errRunCorrupt
	}
	return nil
}

// runHeap orders the cursors by their current term, then by run.
type runHeap []*runCursor

func (h runHeap) Len() int { return len(h) }
func (h runHeap) Less(i, j int) bool {
	if c := bytes.Compare(h[i].prefix, h[j].prefix); c != 0 {
		return c < 0
	}
	return h[i].order < h[j].order
}
func (h runHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *runHeap) Push(x any)   { *h = append(*h, x.(*runCursor)) }
func (h *runHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}

// tableSink is a blockSink over a table being written.
type tableSink struct{ w *sstable.Writer }

func (s tableSink) Set(key, value []byte, _ *pebble.WriteOptions) error { return s.w.Set(key, value) }

// mergeRuns cuts the postings of every run into blocks, writes them into
// one table and ingests it; b, committed, is what the blocks' session
// lengths are read through. The runs are removed.
func (rb *rebuilder) mergeRuns(db *pebble.DB, b *pebble.Batch) (err error) {
	if len(rb.runs) == 0 {
		return nil
	}
	t := rb.tables
	defer rb.dropRuns()
	h := make(runHeap, 0, len(rb.runs))
	defer func() {
		for _, c := range h {
			_ = c.close()
		}
	}()
	for i, p := range rb.runs {
		f, err := t.fs.Open(p)
		if err != nil {
			return err
		}
		c := &runCursor{r: bufio.NewReaderSize(f, 64<<10), close: f.Close, order: i}
		if err := c.next(); err != nil {
			_ = f.Close()
			return err
		}
		if c.done {
			_ = f.Close()
			continue
		}
		h = append(h, c)
	}
	heap.Init(&h)
	rb.merged += len(rb.runs)

	g, err := loadGlobal(b)
	if err != nil {
		return err
	}
	bw := newBlockWriter(b, g)
	defer bw.close()
	path := t.fs.PathJoin(t.dir, fmt.Sprintf("blocks-%d.sst", ingestSeq.Add(1)))
	f, err := t.fs.Create(path)
	if err != nil {
		return err
	}
	w := sstable.NewWriter(objstorageprovider.NewFileWritable(f), t.tableOptions())
	written := false
	defer func() {
		if w != nil {
			_ = w.Close()
		}
		if err != nil || !written {
			_ = t.fs.Remove(path)
		}
	}()
	// The merge and the blocks' encoding and writing take about the same
	// time: the merge runs beside, a term's postings ahead.
	type termPostings struct {
		prefix []byte
		ps     []posting
	}
	// Two terms in flight: enough for the two to overlap. Each keeps the
	// buffer it grew: about as large as the most common term's postings
	// (up to one per file: 18 MB at 100k sessions); with more in flight,
	// or growing anew for every common term, the merge held a gigabyte or
	// spent most of its time growing slices.
	const ahead = 2
	free := make(chan *termPostings, ahead)
	for range ahead {
		free <- &termPostings{}
	}
	work := make(chan *termPostings, ahead)
	stop := make(chan struct{})
	var mergeErr error
	go func() {
		defer close(work)
		for len(h) > 0 {
			var tp *termPostings
			select {
			case tp = <-free:
			case <-stop:
				return
			}
			tp.prefix = append(tp.prefix[:0], h[0].prefix...)
			tp.ps = tp.ps[:0]
			for len(h) > 0 && bytes.Equal(h[0].prefix, tp.prefix) {
				c := h[0]
				tp.ps = append(tp.ps, c.ps...)
				if err := c.next(); err != nil {
					mergeErr = err
					return
				}
				if c.done {
					_ = c.close()
					heap.Pop(&h)
				} else {
					heap.Fix(&h, 0)
				}
			}
			// Runs follow the sessions, but a session cut by a forced
			// flush has files in two runs, in the order the source met
			// them.
			if !slices.IsSortedFunc(tp.ps, cmpPosting) {
				sortPostings(tp.ps)
			}
			work <- tp // (room for every item: never blocks)
		}
	}()
	for tp := range work {
		if err == nil {
			if err = writeBlocks(tableSink{w}, bw, tp.prefix, tp.ps); err != nil {
				close(stop)
			}
			written = true
		}
		free <- tp
	}
	if err != nil {
		return err
	}
	if mergeErr != nil {
		return mergeErr
	}
	err = w.Close()
	w = nil
	if err != nil || !written {
		return err
	}
	t.ingests++
	return db.Ingest([]string{path}) // removes it once linked
}
