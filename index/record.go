package index

import (
	"encoding/binary"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"
)

// storedTextCap bounds the text kept per file for snippets.
const storedTextCap = 4 << 10

// maxTermsPerFile caps the distinct terms one file can post (OCR noise can
// produce many); further new terms still count towards the file's length.
const maxTermsPerFile = 1 << 16

type termFreq struct {
	term string
	tf   uint64
}

type facet struct {
	field byte
	value string
	sub   string // only for fieldCatSub
}

// fileRecord is what one file contributes to the index. It is stored under
// X F fid so that an update can diff against it and a removal can delete
// exactly the keys it names.
type fileRecord struct {
	sid    string
	num    uint32 // the session's number, set when the record is applied
	kind   Kind
	length uint64     // number of tokens, for BM25
	terms  []termFreq // sorted by term
	facets []facet    // sorted and distinct
	day    string     // YYYY-MM-DD of startTime, metadata only
	name   string     // metadata only
	start  string     // metadata only

	// encoded, when set, is the record's encoded form (encode) with its
	// session number at numAt: a record decoded from a prepared one
	// (decodePrepared) is applied with only its number changed, and
	// encode patches that in instead of encoding the terms again. Nothing
	// else may change in a record that has it.
	encoded []byte
	numAt   int

	// sum is a hash of the content the record was built from and textSum
	// one of the snippet text it gave (0: no text), so that fsck can tell
	// that a record is the file's without extracting the file again. A
	// version 1 record has neither (sum 0).
	sum, textSum uint64
}

// contentSum is the sum of a record built from content; never 0.
func contentSum(content []byte) uint64 { return max(xxhash.Sum64(content), 1) }

// textSumOf is the textSum of snippet text; 0 only for no text.
func textSumOf(text []byte) uint64 {
	if len(text) == 0 {
		return 0
	}
	return max(xxhash.Sum64(text), 1)
}

// buildRecord extracts content and returns the file's record and the text
// stored for snippets.
func buildRecord(sid string, kind Kind, content []byte) (*fileRecord, string) {
	e := extract(kind, content)
	rec := &fileRecord{sid: sid, kind: kind, day: e.date, name: e.name, start: e.start, sum: contentSum(content)}
	// A term's place in terms; lookups by a []byte do not allocate, and a
	// new term allocates its string alone. The map and the unsorted terms
	// are scratch, reused by the next file (pooled: a fresh map sized for
	// the text was a tenth of the extraction's time).
	sc := termScratch.Get().(*termCounts)
	at, terms := sc.at, sc.terms[:0]
	for _, s := range e.texts {
		scanTokenBytes(s, func(tok []byte, _, _ int) bool {
			rec.length++
			if i, ok := at[string(tok)]; ok {
				terms[i].tf++
			} else if len(terms) < maxTermsPerFile {
				t := string(tok)
				at[t] = int32(len(terms))
				terms = append(terms, termFreq{t, 1})
			}
			return true
		})
	}
	rec.terms = sortTerms(terms, &sc.keys)
	if len(terms) <= maxPooledTerms { // a huge one is left to the collector
		clear(at)
		clear(terms) // (no term string stays reachable from the pool)
		sc.terms = terms[:0]
		termScratch.Put(sc)
	}

	for _, t := range e.tags {
		rec.facets = append(rec.facets, facet{field: fieldTag, value: t})
	}
	for _, t := range e.topics {
		rec.facets = append(rec.facets, facet{field: fieldTopic, value: t})
	}
	if e.status != "" {
		rec.facets = append(rec.facets, facet{field: fieldStatus, value: e.status})
	}
	if e.category != "" {
		rec.facets = append(rec.facets, facet{field: fieldCategory, value: e.category})
		if e.sub != "" {
			rec.facets = append(rec.facets, facet{field: fieldCatSub, value: e.category, sub: e.sub})
		}
	}
	if e.sub != "" {
		rec.facets = append(rec.facets, facet{field: fieldSub, value: e.sub})
	}
	sort.Slice(rec.facets, func(i, j int) bool { return facetLess(rec.facets[i], rec.facets[j]) })
	rec.facets = compactFacets(rec.facets)
	text := storedText(e.texts)
	rec.textSum = textSumOf([]byte(text))
	return rec, text
}

// termCounts is buildRecord's scratch: a term's place in terms, the terms
// in the order met, and sortTerms' keys.
type termCounts struct {
	at    map[string]int32
	terms []termFreq
	keys  []keyedTerm
}

var termScratch = sync.Pool{New: func() any { return &termCounts{at: make(map[string]int32, 1024)} }}

// maxPooledTerms: scratch that held more distinct terms than this is not
// kept (a map never shrinks).
const maxPooledTerms = 1 << 13

// keyedTerm is a term's first 8 bytes, big-endian, and its place.
type keyedTerm struct {
	key uint64
	at  int32
}

// sortTerms returns ts sorted by term (in a new slice; scratch holds the
// keys). It sorts each
// term's first 8 bytes as a big-endian integer with the term's place
// beside it, and compares whole terms only where those are equal: a
// quarter less time than sorting the terms themselves (16-byte elements
// and an integer compare, instead of 24-byte ones and strings.Compare). A
// term has no NUL byte (tokens are word runes), so a shorter term's zero
// padding sorts it first, as strings.Compare does.
func sortTerms(ts []termFreq, scratch *[]keyedTerm) []termFreq {
	ks := (*scratch)[:0]
	for i, t := range ts {
		var p [8]byte
		copy(p[:], t.term)
		ks = append(ks, keyedTerm{binary.BigEndian.Uint64(p[:]), int32(i)})
	}
	*scratch = ks[:0]
	slices.SortFunc(ks, func(a, b keyedTerm) int {
		if a.key != b.key {
			if a.key < b.key {
				return -1
			}
			return 1
		}
		return strings.Compare(ts[a.at].term, ts[b.at].term)
	})
	out := make([]termFreq, len(ts))
	for i, k := range ks {
		out[i] = ts[k.at]
	}
	return out
}

func facetLess(a, b facet) bool {
	if a.field != b.field {
		return a.field < b.field
	}
	if a.value != b.value {
		return a.value < b.value
	}
	return a.sub < b.sub
}

func compactFacets(fs []facet) []facet {
	out := fs[:0]
	for i, f := range fs {
		if i == 0 || f != fs[i-1] {
			out = append(out, f)
		}
	}
	return out
}

// storedText joins the file's fields for snippets, within storedTextCap.
// When they do not fit, each field is cut to the same length, as long as
// possible, so that every field of a chunk (each screenshot's summary,
// activity, OCR text) keeps its beginning.
func storedText(texts []string) string {
	total := len(texts) // newlines
	for _, s := range texts {
		total += len(s)
	}
	limit := storedTextCap
	if total > storedTextCap {
		// The largest per-field cut that fits: binary search.
		lo, hi := 0, storedTextCap
		for lo < hi {
			mid := (lo + hi + 1) / 2
			if fitted(texts, mid) <= storedTextCap {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		limit = lo
	}
	var b strings.Builder
	for _, s := range texts {
		s = cutUTF8(s, limit)
		if s == "" || b.Len()+len(s)+1 > storedTextCap {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(s)
	}
	return b.String()
}

// fitted is the stored size when every field is cut to limit bytes.
func fitted(texts []string, limit int) int {
	n := 0
	for _, s := range texts {
		n += min(len(s), limit) + 1
	}
	return n
}

// Record versions: 3 is the plain encoding below, the one written: the
// fields of version 1, then sum and textSum (8 bytes each, little endian).
// 1 (no sums) and 2 (a version 1 body, after its version byte, compressed
// with zstd) are still read. Compressing records saved 1.6% of the indexed
// JSON bytes but cost about a seventh of the commit path's CPU (a record is
// decoded and encoded again on every rewrite of its file), so they are
// written plain.
const (
	recordVersion     = 3
	recordVersionV1   = 1
	recordVersionZstd = 2
	maxRecordBytes    = 64 << 20 // decoded size cap of a compressed record
	textZstdMin       = 256      // shorter snippet text is stored as is
)

var (
	// Prepare encodes on every CPU at once (the write-back's prepare
	// workers, reindex's extractors): one encoder state each.
	textEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
	zstdDecoder, _ = zstd.NewReader(nil, zstd.WithDecoderMaxMemory(maxRecordBytes), zstd.WithDecoderConcurrency(0))
)

// Snippet text (X x fid) is stored as 0x00 + a zstd frame when it is at
// least textZstdMin bytes, else as is: it is written once per version of a
// file and read only for snippets, and zstd keeps it in about 70% of what
// pebble's snappy blocks make of it. Text stored before compression was
// introduced, or that happens to start with 0x00, reads as is: decodeText
// only decompresses what decompresses.
func encodeText(text string) []byte {
	if len(text) < textZstdMin {
		return []byte(text)
	}
	return textEncoder.EncodeAll([]byte(text), []byte{0})
}

// storedForm is text as the index stores it: encodeText, or nothing when
// snippets come from the files (SetContentSource; the record's textSum
// still names the text, for fsck).
func (x *Index) storedForm(text string) []byte {
	if x.content != nil {
		return nil
	}
	return encodeText(text)
}

func decodeText(v []byte) []byte {
	if len(v) > 4 && v[0] == 0 {
		if text, err := zstdDecoder.DecodeAll(v[1:], nil); err == nil && len(text) <= storedTextCap {
			return text
		}
	}
	return v
}

// encode returns the stored form of the record (version 3).
func (r *fileRecord) encode() []byte {
	if r.encoded != nil {
		b := slices.Clone(r.encoded)
		binary.BigEndian.PutUint32(b[r.numAt:], r.num)
		return b
	}
	w := &byteWriter{}
	w.byte1(recordVersion)
	r.encodeFields(w)
	w.b = binary.LittleEndian.AppendUint64(w.b, r.sum)
	w.b = binary.LittleEndian.AppendUint64(w.b, r.textSum)
	return w.bytes()
}

// fields returns what the record says of its file, without the
// sums: two records built from content that extracts the same agree here.
func (r *fileRecord) fields() []byte {
	w := &byteWriter{}
	r.encodeFields(w)
	return w.bytes()
}

func (r *fileRecord) encodeFields(w *byteWriter) {
	w.str(r.sid)
	w.num(r.num)
	w.uint(uint64(r.kind))
	w.uint(r.length)
	w.str(r.day)
	w.str(r.name)
	w.str(r.start)
	// Terms are sorted: front-code them (bytes shared with the previous term, then the rest).
	w.uint(uint64(len(r.terms)))
	prev := ""
	for _, t := range r.terms {
		shared := 0
		for shared < len(prev) && shared < len(t.term) && prev[shared] == t.term[shared] {
			shared++
		}
		w.uint(uint64(shared))
		w.str(t.term[shared:])
		w.uint(t.tf)
		prev = t.term
	}
	w.uint(uint64(len(r.facets)))
	for _, f := range r.facets {
		w.byte1(f.field)
		w.str(f.value)
		w.str(f.sub)
	}
}

func decodeRecord(b []byte) (*fileRecord, error) {
	if len(b) > 0 && b[0] == recordVersionZstd {
		body, err := zstdDecoder.DecodeAll(b[1:], []byte{recordVersionV1})
		if err != nil || len(body) > maxRecordBytes {
			return nil, errCorrupt
		}
		b = body
	}
	r := newReader(b)
	version := r.byte1()
	if version != recordVersion && version != recordVersionV1 {
		return nil, errCorrupt
	}
	rec := &fileRecord{sid: r.str(), num: r.num(), kind: Kind(r.uint()), length: r.uint(), day: r.str(), name: r.str(), start: r.str()}
	n := r.uint()
	if n > uint64(len(b)) {
		return nil, errCorrupt
	}
	// The terms are cut from one string: two allocations per record, not
	// two per term (a rebuild from prepared records decodes 125 million
	// terms at 100k sessions). A term's bytes are kept as long as any term
	// of its record is.
	rec.terms = make([]termFreq, n)
	ends := make([]int, n)
	buf := make([]byte, 0, 2*len(r.b))
	prev := 0 // where the previous term starts in buf
	for i := range n {
		shared := r.uint()
		if shared > uint64(len(buf)-prev) {
			return nil, errCorrupt
		}
		start := len(buf)
		buf = append(buf, buf[prev:prev+int(shared)]...)
		buf = append(buf, r.bytes()...)
		ends[i] = len(buf)
		rec.terms[i].tf = r.uint()
		prev = start
		if r.err != nil {
			return nil, errCorrupt
		}
	}
	all := string(buf)
	start := 0
	for i, end := range ends {
		rec.terms[i].term = all[start:end]
		start = end
	}
	n = r.uint()
	if n > uint64(len(b)) {
		return nil, errCorrupt
	}
	for range n {
		rec.facets = append(rec.facets, facet{field: r.byte1(), value: r.str(), sub: r.str()})
	}
	if version == recordVersion {
		if r.err != nil || len(r.b) != 16 {
			return nil, errCorrupt
		}
		rec.sum = binary.LittleEndian.Uint64(r.b)
		rec.textSum = binary.LittleEndian.Uint64(r.b[8:])
		r.b = r.b[16:]
	}
	if r.err != nil || len(r.b) != 0 {
		return nil, errCorrupt
	}
	return rec, nil
}

// kv is one posting key and its value.
type kv struct {
	key, value []byte
}

// postings lists the posting keys a record owns, in key order (days, terms,
// facets: the tables sort 'd' < 't' < 'v', and escaping keeps string order).
func (r *fileRecord) postings(fid uint64) []kv {
	if r == nil {
		return nil
	}
	var out []kv
	r.eachPosting(fid, func(key, value []byte) error {
		out = append(out, kv{append([]byte(nil), key...), append([]byte(nil), value...)})
		return nil
	})
	return out
}

// postingCount is len(r.postings(fid)) without building the keys' copies.
func (r *fileRecord) postingCount(fid uint64) int {
	n := 0
	if r != nil {
		r.eachPosting(fid, func(_, _ []byte) error { n++; return nil })
	}
	return n
}

// keyBuilder builds the posting keys of one file into a reused buffer; the
// key passed on is only valid until the next call.
type keyBuilder struct {
	tail []byte // num fid
	buf  []byte
	val  []byte
}

func newKeyBuilder(num uint32, fid uint64) *keyBuilder {
	return &keyBuilder{tail: withNumFid(nil, num, fid)}
}

func (k *keyBuilder) term(t string) []byte {
	k.buf = append(appendEsc(append(k.buf[:0], keyPrefix, tblTerm), t), k.tail...)
	return k.buf
}

func (k *keyBuilder) facet(f facet) []byte {
	k.buf = append(k.buf[:0], keyPrefix, tblFacet, f.field)
	k.buf = appendEsc(k.buf, f.value)
	if f.field == fieldCatSub {
		k.buf = appendEsc(k.buf, f.sub)
	}
	k.buf = append(k.buf, k.tail...)
	return k.buf
}

func (k *keyBuilder) day(d string) []byte {
	k.buf = append(append(append(k.buf[:0], keyPrefix, tblDay), d...), k.tail...)
	return k.buf
}

func (k *keyBuilder) tf(n uint64) []byte {
	k.val = binary.AppendUvarint(k.val[:0], n)
	return k.val
}

// eachOtherPosting is eachPosting without the term postings: the day and
// the facets.
func (r *fileRecord) eachOtherPosting(fid uint64, fn func(key, value []byte) error) error {
	return r.postingsOf(fid, false, fn)
}

// eachPosting calls fn with every posting key and value of the record, in key order.
func (r *fileRecord) eachPosting(fid uint64, fn func(key, value []byte) error) error {
	return r.postingsOf(fid, true, fn)
}

// postingsOf is eachPosting, with the term postings only when terms.
func (r *fileRecord) postingsOf(fid uint64, terms bool, fn func(key, value []byte) error) error {
	k := newKeyBuilder(r.num, fid)
	if r.day != "" {
		if err := fn(k.day(r.day), nil); err != nil {
			return err
		}
	}
	for i := 0; terms && i < len(r.terms); i++ {
		if err := fn(k.term(r.terms[i].term), k.tf(r.terms[i].tf)); err != nil {
			return err
		}
	}
	for _, f := range r.facets {
		if err := fn(k.facet(f), nil); err != nil {
			return err
		}
	}
	return nil
}

// sessPart is the value of X s sid fid: the file's share of its session.
type sessPart struct {
	kind   Kind
	length uint64
	name   string
	start  string
	day    string
}

func (r *fileRecord) part() sessPart {
	return sessPart{kind: r.kind, length: r.length, name: r.name, start: r.start, day: r.day}
}

func (p sessPart) encode() []byte {
	w := &byteWriter{}
	w.uint(uint64(p.kind))
	w.uint(p.length)
	w.str(p.name)
	w.str(p.start)
	w.str(p.day)
	return w.bytes()
}

func decodePart(b []byte) (sessPart, error) {
	r := newReader(b)
	p := sessPart{kind: Kind(r.uint()), length: r.uint(), name: r.str(), start: r.str(), day: r.str()}
	if r.err != nil || len(r.b) != 0 {
		return sessPart{}, errCorrupt
	}
	return p, nil
}

// sessionAgg is the value of X N num: the sum of the session's parts, so that
// a search reads one key per hit.
type sessionAgg struct {
	sid     string
	length  uint64
	files   uint64
	hasMeta bool // a metadata.json is indexed; name/start/day come from it
	metaFid uint64
	name    string
	start   string
	day     string
}

func (a sessionAgg) encode() []byte {
	w := &byteWriter{}
	w.str(a.sid)
	w.uint(a.length)
	w.uint(a.files)
	if a.hasMeta {
		w.byte1(1)
	} else {
		w.byte1(0)
	}
	w.fid(a.metaFid)
	w.str(a.name)
	w.str(a.start)
	w.str(a.day)
	return w.bytes()
}

func decodeAgg(b []byte) (sessionAgg, error) {
	r := newReader(b)
	a := sessionAgg{sid: r.str(), length: r.uint(), files: r.uint(), hasMeta: r.byte1() == 1, metaFid: r.fid(), name: r.str(), start: r.str(), day: r.str()}
	if r.err != nil || len(r.b) != 0 {
		return sessionAgg{}, errCorrupt
	}
	return a, nil
}

// globalStats is the value of X g; BM25 needs the session count and the
// average session length. lastNum is the last session number handed out.
// flags, pending and cursor (compact.go) follow in values written since the
// posting blocks; an older value reads with them zero.
type globalStats struct {
	sessions, files, length uint64
	lastNum                 uint32
	flags                   uint64
	pending                 uint64 // delta postings written since the last sweep
	cursor                  string // the last term a sweep under way compacted
	lengthGen               uint64 // how many times a session's length went down (blocks.go)
	dead                    uint64 // dead marks (dead.go)
	deadPostings            uint64 // the term postings they hide
	seq                     uint64 // groups of delta postings written (groups.go)

	// held, in a rebuild, holds the keys every file rewrites (not stored:
	// heldKeys).
	held *heldKeys
}

func (g globalStats) encode() []byte {
	w := &byteWriter{}
	w.uint(g.sessions)
	w.uint(g.files)
	w.uint(g.length)
	w.uint(uint64(g.lastNum))
	w.uint(g.flags)
	w.uint(g.pending)
	w.str(g.cursor)
	if g.lengthGen != 0 || g.dead != 0 || g.seq != 0 {
		w.uint(g.lengthGen)
	}
	if g.dead != 0 || g.seq != 0 {
		w.uint(g.dead)
		w.uint(g.deadPostings)
	}
	if g.seq != 0 {
		w.uint(g.seq)
	}
	return w.bytes()
}

func decodeGlobal(b []byte) (globalStats, error) {
	r := newReader(b)
	g := globalStats{sessions: r.uint(), files: r.uint(), length: r.uint(), lastNum: uint32(r.uint())}
	if r.err == nil && len(r.b) > 0 {
		g.flags, g.pending, g.cursor = r.uint(), r.uint(), r.str()
	}
	if r.err == nil && len(r.b) > 0 {
		g.lengthGen = r.uint()
	}
	if r.err == nil && len(r.b) > 0 {
		g.dead, g.deadPostings = r.uint(), r.uint()
	}
	if r.err == nil && len(r.b) > 0 {
		g.seq = r.uint()
	}
	if r.err != nil || len(r.b) != 0 {
		return globalStats{}, errCorrupt
	}
	return g, nil
}
