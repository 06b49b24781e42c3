package index

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"github.com/cockroachdb/pebble"
)

// Hit is one matching session.
type Hit struct {
	SessionID string
	Name      string // from metadata.json
	StartTime string // from metadata.json, as stored (a number becomes ISO 8601 UTC)
	Snippet   string // up to snippetRunes runes around the first matched word
	Score     float64
}

// SearchOptions tunes a search.
type SearchOptions struct {
	Limit      int  // at most this many hits (0: all), the best ones
	NoSnippets bool // skip snippets (a directory listing needs only the order)
}

// BM25 parameters (the usual defaults).
const (
	bm25K1 = 1.2
	bm25B  = 0.75
)

// Search parses query and returns the matching sessions in relevance order
// (BM25 over the full text; ties, and queries with no words, by session id),
// with snippets. Errors of a query that does not parse wrap ErrBadQuery.
func (x *Index) Search(query string) ([]Hit, error) {
	return x.SearchWith(query, SearchOptions{})
}

// SearchWith is Search with options.
func (x *Index) SearchWith(query string, opt SearchOptions) ([]Hit, error) {
	q, err := ParseQuery(query)
	if err != nil {
		return nil, err
	}
	return x.SearchQuery(q, opt)
}

// SearchQuery runs a parsed query on a consistent snapshot of the index.
func (x *Index) SearchQuery(q Query, opt SearchOptions) ([]Hit, error) {
	if q.root == nil {
		return nil, nil
	}
	snap := x.db.NewSnapshot()
	defer snap.Close()
	ev := &evaluator{r: snap, terms: map[string]*termPostings{}, content: x.content}
	g, err := loadGlobal(snap)
	if err != nil {
		return nil, err
	}
	var ranked []ranked
	var scoring []string
	done := false
	if terms, and, ok := wandShape(q.root); ok && opt.Limit > 0 && g.flags&flagLengths != 0 && !x.exhaustive {
		scoring = terms
		if ranked, done, err = ev.blockMaxTopK(terms, and, g, opt.Limit); err != nil {
			return nil, err
		}
	}
	if !done {
		set, err := ev.eval(q.root)
		if err != nil {
			return nil, err
		}
		ids := set.ids
		if set.neg {
			all, err := allSessions(snap, g)
			if err != nil {
				return nil, err
			}
			ids = minus(all, set.ids)
		}
		scoring = scoringTerms(q.root, false, nil)
		if ranked, err = ev.rank(ids, scoring, g, opt.Limit); err != nil {
			return nil, err
		}
	}
	hits := make([]Hit, len(ranked))
	for i, r := range ranked {
		hits[i] = r.hit
	}
	if !opt.NoSnippets {
		if err := ev.snippets(hits, ranked, scoring); err != nil {
			return nil, err
		}
	}
	return hits, nil
}

// snippets fills in the hits' snippets on every CPU: a snippet is cut from
// its file's content (SetContentSource), which parses a JSON file, and a
// top 100 would otherwise parse a hundred one after the other. The
// evaluator's postings are only read here.
func (ev *evaluator) snippets(hits []Hit, ranked []ranked, scoring []string) error {
	// More workers than CPUs: a blob held in S3 is a request away.
	workers := min(len(hits), max(runtime.GOMAXPROCS(0), snippetWorkers))
	var next atomic.Int64
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(hits) {
					return
				}
				s, err := ev.snippet(ranked[i].num, ranked[i].agg, scoring)
				if err != nil {
					errs[w] = err
					next.Store(int64(len(hits))) // the others stop too
					return
				}
				hits[i].Snippet = s
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// idSet is a sorted set of session numbers, or (neg) every session but those.
type idSet struct {
	ids []uint32
	neg bool
}

type evaluator struct {
	r       reader
	terms   map[string]*termPostings // the lists read so far
	dead    *deadSet                 // the dead marks, once read (deadSet)
	content ContentSource            // see SetContentSource
}

func (ev *evaluator) eval(n node) (idSet, error) {
	switch n := n.(type) {
	case *wordNode:
		out := idSet{neg: true}
		for _, t := range n.tokens {
			tp, err := ev.term(t)
			if err != nil {
				return idSet{}, err
			}
			out = and(out, idSet{ids: tp.ids})
		}
		return out, nil
	case *fieldNode:
		if n.field == "month" {
			ids, err := daySessions(ev.r, n.value+"-00", n.value+"-99")
			return idSet{ids: ids}, err
		}
		ids, err := scanSessions(ev.r, facetPrefix(facetFields[n.field], n.value, ""))
		return idSet{ids: ids}, err
	case *dayNode:
		from, to := n.day, "~" // '~' sorts after every digit
		if n.before {
			from, to = "", n.day
		}
		ids, err := daySessions(ev.r, from, to)
		return idSet{ids: ids}, err
	case *notNode:
		s, err := ev.eval(n.x)
		s.neg = !s.neg
		return s, err
	case *andNode:
		return ev.evalAnd(n.xs)
	case *orNode:
		out, err := ev.eval(n.xs[0])
		for _, x := range n.xs[1:] {
			if err != nil {
				break
			}
			var s idSet
			s, err = ev.eval(x)
			out = or(out, s)
		}
		return out, err
	}
	return idSet{}, nil
}

// evalAnd intersects the conditions, the positive ones first.
func (ev *evaluator) evalAnd(xs []node) (idSet, error) {
	acc := idSet{neg: true}
	var negs []idSet
	for _, x := range xs {
		s, err := ev.eval(x)
		if err != nil {
			return idSet{}, err
		}
		if s.neg {
			negs = append(negs, s)
			continue
		}
		acc = and(acc, s)
	}
	for _, s := range negs {
		acc = and(acc, s)
	}
	return acc, nil
}

func and(a, b idSet) idSet {
	switch {
	case !a.neg && !b.neg:
		return idSet{ids: intersect(a.ids, b.ids)}
	case !a.neg:
		return idSet{ids: minus(a.ids, b.ids)}
	case !b.neg:
		return idSet{ids: minus(b.ids, a.ids)}
	}
	return idSet{ids: union(a.ids, b.ids), neg: true}
}

func or(a, b idSet) idSet {
	switch {
	case !a.neg && !b.neg:
		return idSet{ids: union(a.ids, b.ids)}
	case !a.neg:
		return idSet{ids: minus(b.ids, a.ids), neg: true}
	case !b.neg:
		return idSet{ids: minus(a.ids, b.ids), neg: true}
	}
	return idSet{ids: intersect(a.ids, b.ids), neg: true}
}

func intersect[T cmp.Ordered](a, b []T) []T {
	var out []T
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

func union[T cmp.Ordered](a, b []T) []T {
	out := make([]T, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] < b[j]:
			out = append(out, a[i])
			i++
		case a[i] > b[j]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

func minus[T cmp.Ordered](a, b []T) []T {
	var out []T
	j := 0
	for _, s := range a {
		for j < len(b) && b[j] < s {
			j++
		}
		if j < len(b) && b[j] == s {
			continue
		}
		out = append(out, s)
	}
	return out
}

// allSessions lists the numbers of every session the index knows, sorted:
// from the length column when it is complete, else from the aggregates.
func allSessions(r reader, g globalStats) ([]uint32, error) {
	if g.flags&flagLengths != 0 {
		return columnSessions(r)
	}
	prefix := tableKey(tblNum)
	it, err := prefixIter(r, prefix)
	if err != nil {
		return nil, err
	}
	var ids []uint32
	for ok := it.First(); ok; ok = it.Next() {
		if len(it.Key()) != len(prefix)+4 {
			_ = it.Close()
			return nil, errCorrupt
		}
		ids = append(ids, binary.BigEndian.Uint32(it.Key()[len(prefix):]))
	}
	return ids, it.Close()
}

// scoringTerms lists, in query order and distinct, the tokens of words that
// are not negated: they rank the hits and pick the snippet.
func scoringTerms(n node, negated bool, out []string) []string {
	switch n := n.(type) {
	case *wordNode:
		if !negated {
			for _, t := range n.tokens {
				if !contains(out, t) {
					out = append(out, t)
				}
			}
		}
	case *notNode:
		return scoringTerms(n.x, !negated, out)
	case *andNode:
		for _, x := range n.xs {
			out = scoringTerms(x, negated, out)
		}
	case *orNode:
		for _, x := range n.xs {
			out = scoringTerms(x, negated, out)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// ranked is a hit with what its snippet needs.
type ranked struct {
	hit Hit
	num uint32
	agg sessionAgg
}

// rank scores the sessions ids with BM25 over the scoring terms and sorts
// them (score descending, then session id). With limit > 0 only the best
// limit are returned, and only they (and any tied with the last of them)
// have their aggregate decoded: scoring needs the session's length alone,
// which the length column holds for 256 sessions per key.
func (ev *evaluator) rank(ids []uint32, scoring []string, g globalStats, limit int) ([]ranked, error) {
	n := float64(g.sessions)
	avgdl := 1.0
	if g.sessions > 0 && g.length > 0 {
		avgdl = float64(g.length) / n
	}
	idf := make([]float64, len(scoring))
	postings := make([]*termPostings, len(scoring))
	for i, t := range scoring {
		tp, err := ev.term(t)
		if err != nil {
			return nil, err
		}
		postings[i] = tp
		idf[i] = bm25IDF(n, float64(len(tp.ids)))
	}
	reset, score := scorer(postings, idf, avgdl)
	aggs, err := newAggReader(ev.r)
	if err != nil {
		return nil, err
	}
	defer aggs.close()
	if limit > 0 && len(ids) > limit && len(scoring) > 0 {
		// Score everything from the lengths; decode only the winners.
		// (Without scoring terms every score is 0: all tie, so the order is
		// by session id and every aggregate is read anyway.)
		lengths := &lengthReader{r: ev.r}
		defer lengths.close()
		scores := make([]float64, len(ids))
		reset()
		for k, num := range ids {
			var length uint64
			if g.flags&flagLengths != 0 {
				if length, err = lengths.length(num); err != nil {
					return nil, fmt.Errorf("index: session %d has postings but no length: %w", num, err)
				}
			} else {
				v, err := aggs.value(num)
				if err != nil {
					return nil, err
				}
				if length, err = aggLength(v); err != nil {
					return nil, err
				}
			}
			scores[k] = score(num, length)
		}
		// The winners: every score at least the limit-th best, ties with the
		// last winner included (ordered by session id below).
		kth := kthLargest(scores, limit)
		kept := make([]uint32, 0, limit)
		for k, num := range ids {
			if scores[k] >= kth {
				kept = append(kept, num)
			}
		}
		ids = kept
	}
	return ev.rankTail(ids, postings, idf, avgdl, limit)
}

// scorer returns BM25 over the terms' postings for ascending session
// numbers between calls of reset.
func scorer(postings []*termPostings, idf []float64, avgdl float64) (reset func(), score func(num uint32, length uint64) float64) {
	cursors := make([]tfCursor, len(postings))
	reset = func() {
		for i, tp := range postings {
			cursors[i] = tfCursor{tp: tp}
		}
	}
	score = func(num uint32, length uint64) float64 {
		score := 0.0
		norm := bm25Norm(length, avgdl)
		for i := range cursors {
			if tf := float64(cursors[i].tf(num)); tf > 0 {
				score += termScore(idf[i], tf, norm)
			}
		}
		return score
	}
	return reset, score
}

// rankTail decodes the aggregates of the sessions ids (ascending), scores
// them from their aggregates' lengths and sorts them (score descending, then
// session id), keeping the best limit (0: all).
func (ev *evaluator) rankTail(ids []uint32, postings []*termPostings, idf []float64, avgdl float64, limit int) ([]ranked, error) {
	reset, score := scorer(postings, idf, avgdl)
	aggs, err := newAggReader(ev.r)
	if err != nil {
		return nil, err
	}
	defer aggs.close()
	out := make([]ranked, 0, len(ids))
	reset()
	for _, num := range ids {
		v, err := aggs.value(num)
		if err != nil {
			return nil, err
		}
		agg, err := decodeAgg(v)
		if err != nil {
			return nil, err
		}
		out = append(out, ranked{hit: Hit{SessionID: agg.sid, Name: agg.name, StartTime: agg.start, Score: score(num, agg.length)}, num: num, agg: agg})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].hit, out[j].hit
		if a.Score != b.Score {
			return a.Score > b.Score
		}
		return a.SessionID < b.SessionID
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// kthLargest returns the k-th largest of scores (1 <= k <= len(scores)),
// keeping a min-heap of the k best.
func kthLargest(scores []float64, k int) float64 {
	top := &minHeap{k: k, h: make([]float64, 0, k)}
	for _, s := range scores {
		top.push(s)
	}
	return top.min()
}

// aggReader reads session aggregates in ascending session order.
type aggReader struct {
	it  *pebble.Iterator
	key []byte
}

func newAggReader(r reader) (*aggReader, error) {
	prefix := tableKey(tblNum)
	it, err := prefixIter(r, prefix)
	if err != nil {
		return nil, err
	}
	return &aggReader{it: it, key: prefix}, nil
}

// value returns the aggregate of session num, valid until the next call.
// Seeks in ascending order let pebble step instead of searching.
func (a *aggReader) value(num uint32) ([]byte, error) {
	a.key = appendNum(a.key[:2], num)
	if !a.it.SeekGE(a.key) || string(a.it.Key()) != string(a.key) {
		if err := a.it.Error(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("index: session %d has postings but no aggregate: %w", num, errCorrupt)
	}
	return a.it.Value(), nil
}

func (a *aggReader) close() { _ = a.it.Close() }

// aggSid reads the sid of an encoded sessionAgg without decoding the rest.
func aggSid(v []byte) (string, error) {
	n, k := binary.Uvarint(v)
	if k <= 0 || n > uint64(len(v)-k) {
		return "", errCorrupt
	}
	return string(v[k : k+int(n)]), nil
}

// aggLength reads the length field of an encoded sessionAgg (after its sid)
// without decoding the rest.
func aggLength(v []byte) (uint64, error) {
	n, k := binary.Uvarint(v)
	if k <= 0 || n > uint64(len(v)-k) {
		return 0, errCorrupt
	}
	length, m := binary.Uvarint(v[k+int(n):])
	if m <= 0 {
		return 0, errCorrupt
	}
	return length, nil
}

// snippetRunes is the longest snippet, ellipses included.
const snippetRunes = 160

// snippet finds the first scoring term the session holds in the stored text
// of a file that posts it, and cuts a window around it. Without such a word
// (a query of filters only) it shows the start of the session's metadata text.
func (ev *evaluator) snippet(num uint32, agg sessionAgg, scoring []string) (string, error) {
	var fallback string
	for _, t := range scoring {
		if _, ok := slices.BinarySearch(ev.terms[t].ids, num); !ok {
			continue
		}
		for _, fid := range ev.terms[t].files(num, maxSnippetFiles) {
			text, err := ev.fileText(fid)
			if err != nil {
				return "", err
			}
			if at := findTerm(string(text), t); at >= 0 {
				return window(string(text), at), nil
			}
			if fallback == "" {
				fallback = window(string(text), 0)
			}
		}
	}
	if fallback != "" || !agg.hasMeta {
		return fallback, nil
	}
	text, err := ev.fileText(agg.metaFid)
	return window(string(text), 0), err
}

// fileText returns the snippet text of file fid: stored in the index, or
// extracted again from the file's content (see SetContentSource). Content
// that cannot be read gives no snippet, not an error: the hit stands.
func (ev *evaluator) fileText(fid uint64) ([]byte, error) {
	text, ok, err := get(ev.r, textKey(fid))
	if err != nil || ok || ev.content == nil {
		return decodeText(text), err
	}
	rec, err := loadRecord(ev.r, fid)
	if err != nil || rec == nil {
		return nil, err
	}
	content, err := ev.content(fid)
	if err != nil {
		return nil, nil
	}
	return []byte(storedText(extract(rec.kind, content).texts)), nil
}

// snippetWorkers is the least number of snippets cut at once.
const snippetWorkers = 8

// maxSnippetFiles bounds the files tried for one snippet.
const maxSnippetFiles = 4

// findTerm returns the byte offset of the first word of text whose token is t.
func findTerm(text, t string) int {
	at := -1
	scanTokenBytes(text, func(tok []byte, start, _ int) bool {
		if string(tok) == t {
			at = start
			return false
		}
		return true
	})
	return at
}

// window cuts at most snippetRunes runes of text, starting a little before
// byte offset at on a word boundary, with whitespace runs collapsed and "…"
// where text was cut off.
func window(text string, at int) string {
	begin := at
	for n := 0; n < 40 && begin > 0; n++ {
		_, size := utf8.DecodeLastRuneInString(text[:begin])
		begin -= size
	}
	if begin > 0 {
		if i := strings.IndexFunc(text[begin:at], unicode.IsSpace); i >= 0 {
			begin += i
		}
	}
	var rs []rune
	space := false
	for _, r := range text[begin:] {
		if unicode.IsSpace(r) {
			space = len(rs) > 0
			continue
		}
		if space {
			rs = append(rs, ' ')
			space = false
		}
		rs = append(rs, r)
		if len(rs) > snippetRunes {
			break
		}
	}
	budget := snippetRunes
	if begin > 0 {
		budget--
	}
	if len(rs) > budget {
		rs = append([]rune(strings.TrimRightFunc(string(rs[:budget-1]), unicode.IsSpace)), '…')
	}
	if begin > 0 {
		return "…" + string(rs)
	}
	return string(rs)
}
