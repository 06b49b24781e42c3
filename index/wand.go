package index

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// Block-max top-k (.results.json and every search with a limit).
//
// A query of words only (one word, words ANDed, or single words ORed: the
// shapes whose matching set is a set operation over the words' postings)
// ranks its hits without scoring every posting. Each packed block's header
// (blocks.go) holds up to four (tf, least session length) points that
// dominate every session of the block; with the query's IDF and average
// length, which are computed at query time (so nothing stored goes stale
// when they change), they bound the BM25 contribution of the term to any
// session of the block.
//
// The session numbers are cut into intervals at every block boundary of
// every query term; an interval's bound is the sum, in scoring order, of
// the bounds of the blocks covering it. Intervals are evaluated in
// descending bound order, each exactly (postings decoded and merged with
// the delta keys, lengths from the length column, the same BM25 arithmetic
// as the exhaustive path), keeping the k best scores in a min-heap; once the
// next bound is below the k-th best score, no session left can enter the top
// k, and the rest is skipped. This is MaxScore-like block skipping rather
// than document-at-a-time WAND: a block is only ever decoded whole, and
// processing blocks best-first raises the threshold fastest, which for a
// single broad word (the case that grows with the collection) is all that
// matters.
//
// Exactness: floating-point addition, multiplication and division are
// monotone, so the bound computed from a dominating (tf, length) point with
// the same expression as the score is at least the score of every session
// it dominates; a session is skipped only when its bound is strictly below
// the k-th best score seen, so every session scoring at least the final k-th
// score (ties included) is evaluated, and the winners, their scores and the
// tie-break by session id are those of the exhaustive path.
//
// Blocks without a bound: a block written before headers existed, a block
// whose session range holds delta keys (not yet compacted; their count is
// bounded by compaction) and delta keys before a term's first block: these
// are always evaluated. A block older than a shrink of a session in its
// range (blocks.go) takes that session's current length into its minimum.
// The document frequency is the sum of the headers' session counts over the
// bounded blocks plus the sessions counted in the decoded ones.
//
// A query with fewer than wandMinHits times more hits (estimated from its
// block count) than winners is ranked exhaustively: few blocks could be
// skipped.

// bm25Norm is BM25's length normalisation for a session of length length.
func bm25Norm(length uint64, avgdl float64) float64 {
	return bm25K1 * (1 - bm25B + bm25B*float64(length)/avgdl)
}

// termScore is the BM25 contribution of one term with frequency tf > 0.
func termScore(idf, tf, norm float64) float64 {
	return idf * tf * (bm25K1 + 1) / (tf + norm)
}

func bm25IDF(n, df float64) float64 { return math.Log(1 + (n-df+0.5)/(df+0.5)) }

// wandShape returns the scoring terms of a query the block-max path can
// rank, and whether they are ANDed (else ORed).
func wandShape(root node) (terms []string, and bool, ok bool) {
	switch n := root.(type) {
	case *wordNode:
		and = true
		ok = len(n.tokens) > 0
	case *andNode:
		and = true
		for _, x := range n.xs {
			w, isWord := x.(*wordNode)
			if !isWord || len(w.tokens) == 0 {
				return nil, false, false
			}
		}
		ok = true
	case *orNode:
		for _, x := range n.xs {
			w, isWord := x.(*wordNode)
			if !isWord || len(w.tokens) != 1 {
				return nil, false, false
			}
		}
		ok = true
	}
	if !ok {
		return nil, false, false
	}
	return scoringTerms(root, false, nil), and, true
}

// wandSeg is one base block of a term (or the delta keys of a term without
// blocks), covering sessions from lo to the next segment's lo.
type wandSeg struct {
	lo      uint32
	first   uint32 // the block's firstNum
	payload []byte // nil: no block
	head    blockHead
	delta   []posting // the delta keys in the segment's range
	dead    *deadSet  // set when a dead mark names a session in its range
	ps      []posting // decoded and merged, once loaded
	loaded  bool
}

func (s *wandSeg) load() error {
	if s.loaded {
		return nil
	}
	var err error
	if s.payload != nil {
		if s.ps, err = decodePayload(nil, s.first, s.payload); err != nil {
			return err
		}
	}
	if len(s.delta) > 0 {
		s.ps = mergePostings(make([]posting, 0, len(s.ps)+len(s.delta)), s.ps, s.delta)
	}
	s.ps = s.dead.filter(s.ps)
	s.loaded = true
	return nil
}

func (s *wandSeg) bounded() bool { return s.head.has && len(s.delta) == 0 && s.dead == nil }

type wandTerm struct {
	segs []wandSeg
	df   int
}

// loadWandTerm reads the block headers of term t (copying the payloads) and
// its delta keys, and counts its document frequency.
func loadWandTerm(r reader, dead *deadSet, t string) (*wandTerm, error) {
	delta, err := readDelta(r, t, nil)
	if err != nil {
		return nil, err
	}
	prefix := blockPrefix(t)
	it, err := prefixIter(r, prefix)
	if err != nil {
		return nil, err
	}
	wt := &wandTerm{}
	var arena []byte
	var ends []int
	for ok := it.First(); ok; ok = it.Next() {
		first, err := blockFirst(it.Key(), prefix)
		var h blockHead
		var payload []byte
		if err == nil {
			h, payload, err = parseBlockHead(it.Value())
		}
		if err != nil {
			_ = it.Close()
			return nil, err
		}
		arena = append(arena, payload...)
		ends = append(ends, len(arena))
		wt.segs = append(wt.segs, wandSeg{lo: first, first: first, head: h})
	}
	if err := it.Close(); err != nil {
		return nil, err
	}
	start := 0
	for i := range wt.segs {
		wt.segs[i].payload = arena[start:ends[i]:ends[i]]
		start = ends[i]
	}
	if len(wt.segs) == 0 {
		wt.segs = []wandSeg{{}}
	}
	wt.segs[0].lo = 0 // the first block also takes the deltas before it
	for i := 0; len(delta) > 0; i++ {
		n := len(delta)
		if i+1 < len(wt.segs) {
			n, _ = slices.BinarySearchFunc(delta, wt.segs[i+1].lo, func(p posting, num uint32) int { return cmpNum(p.num, num) })
		}
		wt.segs[i].delta, delta = delta[:n:n], delta[n:]
	}
	for i := range wt.segs {
		s := &wt.segs[i]
		hi := uint32(0)
		if i+1 < len(wt.segs) {
			hi = wt.segs[i+1].lo
		}
		if dead.touches(s.lo, hi) {
			s.dead = dead
		}
		if s.bounded() {
			wt.df += int(s.head.sessions)
			continue
		}
		if err := s.load(); err != nil {
			return nil, err
		}
		for j, p := range s.ps {
			if j == 0 || p.num != s.ps[j-1].num {
				wt.df++
			}
		}
	}
	return wt, nil
}

// bound is the greatest BM25 contribution of the term to a session of
// segment s, which covers sessions up to hi (+Inf: unbounded): the best
// score of the header's points. The sessions in its range that got shorter
// since the block was written (shrunk) lower every point's length to
// theirs.
func (s *wandSeg) bound(idf, avgdl float64, hi uint32, shrunk []shrink, lengths *lengthReader) float64 {
	if !s.bounded() {
		return math.Inf(1)
	}
	ceiling := uint64(math.MaxUint64) // the least current length of a shrunk session
	i, _ := slices.BinarySearchFunc(shrunk, s.lo, func(e shrink, num uint32) int { return cmpNum(e.num, num) })
	for ; i < len(shrunk) && shrunk[i].num <= hi && ceiling > 0; i++ {
		if shrunk[i].gen <= s.head.gen {
			continue
		}
		l, err := lengths.length(shrunk[i].num)
		if err != nil {
			l = 0 // no such session now: nothing to know, bound with length 0
		}
		ceiling = min(ceiling, l)
	}
	best := 0.0
	for _, pt := range s.head.points[:s.head.n] {
		var length uint64
		if pt.minLen > 0 {
			length = min(pt.minLen-1, ceiling)
		}
		best = max(best, termScore(idf, float64(pt.tf), bm25Norm(length, avgdl)))
	}
	return best
}

// interval is a range of session numbers inside one segment of every term.
type interval struct {
	lo, hi uint32 // inclusive
	segs   []int  // per term, the segment covering it
	bound  float64
}

// blockMaxTopK ranks the best limit sessions of the query whose scoring
// terms are terms, ANDed or ORed, as rank would (same sessions, order and
// scores), evaluating only the blocks that can hold one of them.
func (ev *evaluator) blockMaxTopK(terms []string, and bool, g globalStats, limit int) ([]ranked, bool, error) {
	n := float64(g.sessions)
	avgdl := 1.0
	if g.sessions > 0 && g.length > 0 {
		avgdl = float64(g.length) / n
	}
	// Skipping needs many more hits than winners: a block of 128 postings
	// is skipped only if none of its sessions is among the best, which for
	// sessions of similar scores happens with probability about
	// (1-limit/hits)^128. With fewer hits than wandMinHits*limit, the
	// exhaustive path is cheaper. The estimate counts block keys (about
	// blockPostings postings each; the delta keys are few): the least count
	// for an AND, their sum for an OR.
	est := 0
	for i, t := range terms {
		blocks, err := countBlocks(ev.r, t)
		if err != nil {
			return nil, false, err
		}
		switch {
		case !and:
			est += blocks * blockPostings
		case i == 0 || blocks*blockPostings < est:
			est = blocks * blockPostings
		}
	}
	if est < wandMinHits*limit {
		return nil, false, nil
	}
	wts := make([]*wandTerm, len(terms))
	idf := make([]float64, len(terms))
	for i, t := range terms {
		dead, err := ev.deadSet()
		if err != nil {
			return nil, false, err
		}
		wt, err := loadWandTerm(ev.r, dead, t)
		if err != nil {
			return nil, false, err
		}
		wts[i] = wt
		idf[i] = bm25IDF(n, float64(wt.df))
	}

	// Cut the session numbers at every segment boundary of every term.
	var bounds []uint32
	for _, wt := range wts {
		for _, s := range wt.segs {
			bounds = append(bounds, s.lo)
		}
	}
	slices.Sort(bounds)
	bounds = slices.Compact(bounds)
	ivs := make([]interval, len(bounds))
	shrunk, err := readShrunk(ev.r)
	if err != nil {
		return nil, false, err
	}
	lengths := &lengthReader{r: ev.r}
	defer lengths.close()
	segBounds := make([][]float64, len(wts))
	for i, wt := range wts {
		segBounds[i] = make([]float64, len(wt.segs))
		for j := range wt.segs {
			hi := uint32(math.MaxUint32)
			if j+1 < len(wt.segs) {
				hi = wt.segs[j+1].lo - 1
			}
			segBounds[i][j] = wt.segs[j].bound(idf[i], avgdl, hi, shrunk, lengths)
		}
	}
	cur := make([]int, len(wts))
	segIdx := make([]int, len(bounds)*len(wts))
	for j, lo := range bounds {
		iv := &ivs[j]
		iv.lo, iv.hi = lo, math.MaxUint32
		if j+1 < len(bounds) {
			iv.hi = bounds[j+1] - 1
		}
		iv.segs = segIdx[j*len(wts) : (j+1)*len(wts)]
		for i, wt := range wts {
			for cur[i]+1 < len(wt.segs) && wt.segs[cur[i]+1].lo <= lo {
				cur[i]++
			}
			iv.segs[i] = cur[i]
			iv.bound += segBounds[i][cur[i]]
		}
	}
	// Best first: the intervals of the greatest bounds hold the best
	// sessions, so the threshold (the limit-th best score so far) rises at
	// once, and the first interval whose bound is below it ends the search.
	best := make([]int, len(ivs))
	for j := range best {
		best[j] = j
	}
	slices.SortStableFunc(best, func(a, b int) int { return cmp.Compare(ivs[b].bound, ivs[a].bound) })

	top := &minHeap{k: limit, h: make([]float64, 0, limit)}
	type scored struct {
		num   uint32
		score float64
	}
	var cands []scored                    // every session that scored at least the threshold of its time
	candPs := make([][]posting, len(wts)) // and its postings, per term
	decs := make([]segDecoder, len(wts))
	for i := range decs {
		decs[i].keep = len(wts) > 1
	}
	sub := make([][]posting, len(wts))
	p := make([]int, len(wts))
	q := make([]int, len(wts))
	tfs := make([]uint64, len(wts))
	evaluate := func(j int) error {
		iv := &ivs[j]
		for i, wt := range wts {
			ps, err := decs[i].postings(wt, iv.segs[i])
			if err != nil {
				return err
			}
			a, _ := slices.BinarySearchFunc(ps, iv.lo, func(p posting, num uint32) int { return cmpNum(p.num, num) })
			b := a
			for b < len(ps) && ps[b].num <= iv.hi {
				b++
			}
			sub[i], p[i] = ps[a:b], 0
		}
		driver := 0 // AND: the sessions of the shortest list, looked up in the others
		for i := range sub {
			if len(sub[i]) < len(sub[driver]) {
				driver = i
			}
		}
		for {
			num, found := uint32(math.MaxUint32), false
			if and {
				if p[driver] == len(sub[driver]) {
					return nil
				}
				num, found = sub[driver][p[driver]].num, true
				for i := range sub {
					for p[i] < len(sub[i]) && sub[i][p[i]].num < num {
						p[i]++
					}
				}
			} else {
				for i := range sub {
					if p[i] < len(sub[i]) && (!found || sub[i][p[i]].num < num) {
						num, found = sub[i][p[i]].num, true
					}
				}
			}
			if !found {
				return nil
			}
			present := 0
			for i := range sub {
				tfs[i], q[i] = 0, p[i]
				for q[i] < len(sub[i]) && sub[i][q[i]].num == num {
					tfs[i] += sub[i][q[i]].tf
					q[i]++
				}
				if q[i] > p[i] {
					present++
				}
			}
			if and && present != len(sub) {
				copy(p, q)
				continue
			}
			length, err := lengths.length(num)
			if err != nil {
				return fmt.Errorf("index: session %d has postings but no length: %w", num, err)
			}
			norm := bm25Norm(length, avgdl)
			score := 0.0
			for i, tf := range tfs {
				if tf > 0 {
					score += termScore(idf[i], float64(tf), norm)
				}
			}
			if !top.full() || score >= top.min() {
				cands = append(cands, scored{num, score})
				for i := range sub {
					candPs[i] = append(candPs[i], sub[i][p[i]:q[i]]...)
				}
			}
			top.push(score)
			copy(p, q)
		}
	}
	for _, j := range best {
		if top.full() && ivs[j].bound < top.min() {
			break // every interval left has a bound at most this one's
		}
		if err := evaluate(j); err != nil {
			return nil, false, err
		}
	}

	// The winners: every score at least the limit-th best, ties with the
	// last winner included (ordered by session id in rankTail).
	kth := math.Inf(-1)
	if top.full() {
		kth = top.min()
	}
	var kept []uint32
	for _, c := range cands {
		if c.score >= kth {
			kept = append(kept, c.num)
		}
	}
	slices.Sort(kept)
	if wandTrace != nil {
		decoded, total := 0, 0
		for i, wt := range wts {
			total += len(wt.segs)
			decoded += decs[i].decoded
		}
		wandTrace(decoded, total)
	}
	// What the winners' scores and snippets need: their postings.
	postings := make([]*termPostings, len(wts))
	for i, ps := range candPs {
		sortPostings(ps)
		tp := &termPostings{}
		for _, p := range ps {
			if _, ok := slices.BinarySearch(kept, p.num); !ok {
				continue
			}
			tp.raw = append(tp.raw, p)
			if l := len(tp.ids); l == 0 || tp.ids[l-1] != p.num {
				tp.ids = append(tp.ids, p.num)
				tp.tf = append(tp.tf, 0)
			}
			tp.tf[len(tp.tf)-1] += p.tf
		}
		postings[i] = tp
		ev.terms[terms[i]] = tp
	}
	out, err := ev.rankTail(kept, postings, idf, avgdl, limit)
	return out, err == nil, err
}

// segDecoder decodes the segments of one term. With one term, each segment
// is one interval and is decoded once, into a reused buffer; with more, the
// intervals of one segment are not visited in a row, so every decoded
// segment is kept (in one arena, by offsets).
type segDecoder struct {
	keep    bool
	seg     int // the segment in buf, +1 (0: none)
	buf     []posting
	spans   map[int][2]int // keep: segment -> its postings in buf
	decoded int            // segments decoded or loaded for the query
}

func (d *segDecoder) postings(wt *wandTerm, j int) ([]posting, error) {
	s := &wt.segs[j]
	if s.loaded { // decoded when the document frequency was counted
		if d.seg != j+1 {
			d.seg = j + 1
			d.decoded++
		}
		return s.ps, nil
	}
	if !d.keep {
		if d.seg != j+1 {
			var err error
			if d.buf, err = decodePayload(d.buf[:0], s.first, s.payload); err != nil {
				return nil, err
			}
			d.seg = j + 1
			d.decoded++
		}
		return d.buf, nil
	}
	sp, ok := d.spans[j]
	if !ok {
		start := len(d.buf)
		var err error
		if d.buf, err = decodePayload(d.buf, s.first, s.payload); err != nil {
			return nil, err
		}
		if d.spans == nil {
			d.spans = map[int][2]int{}
		}
		sp = [2]int{start, len(d.buf)}
		d.spans[j] = sp
		d.decoded++
	}
	return d.buf[sp[0]:sp[1]:sp[1]], nil
}

// wandMinHits is how many times more hits than winners a query needs for
// block-max top-k; below, it is ranked exhaustively.
var wandMinHits = 64

// countBlocks counts the base blocks of term t, from their keys alone.
func countBlocks(r reader, t string) (int, error) { return countKeys(r, blockPrefix(t)) }

// countKeys counts the keys under prefix.
func countKeys(r reader, prefix []byte) (int, error) {
	it, err := prefixIter(r, prefix)
	if err != nil {
		return 0, err
	}
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	return n, it.Close()
}

// wandTrace, when set (by tests), receives how many segments (blocks) of
// the query's terms a block-max top-k decoded, out of how many.
var wandTrace func(decoded, total int)

// minHeap keeps the k greatest scores pushed; min is the k-th greatest once full.
type minHeap struct {
	k int
	h []float64
}

func (m *minHeap) full() bool   { return len(m.h) >= m.k }
func (m *minHeap) min() float64 { return m.h[0] }

func (m *minHeap) push(s float64) {
	h := m.h
	switch {
	case len(h) < m.k:
		h = append(h, s)
		for i := len(h) - 1; i > 0; {
			p := (i - 1) / 2
			if h[p] <= h[i] {
				break
			}
			h[p], h[i] = h[i], h[p]
			i = p
		}
	case s > h[0]:
		h[0] = s
		for i := 0; ; {
			l := 2*i + 1
			if l >= len(h) {
				break
			}
			if r := l + 1; r < len(h) && h[r] < h[l] {
				l = r
			}
			if h[i] <= h[l] {
				break
			}
			h[i], h[l] = h[l], h[i]
			i = l
		}
	}
	m.h = h
}
