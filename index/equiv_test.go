package index

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/klauspost/compress/gzip"
)

// The equivalence test: a generated dataset of sessions in both layouts with
// planted words and known facets is indexed, and every kind of query must
// return exactly the set that a brute-force scan of the same JSON files
// computes. The oracle below shares only the tokenizer and the parser with the
// index (both unit-tested on their own); it reads the files with
// map[string]any and evaluates the query per session.

var (
	vocab = []string{
		"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
		"kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
		"uniform", "victor", "whiskey", "xray", "yankee", "zulu", "größe", "日本語", "café", "naïve",
		"deploy", "refactor", "oauth", "token", "cache", "latency", "kernel", "fuse", "pebble", "index",
	}
	planted  = []string{"zephyr", "quasar", "nebula", "pulsar", "quark"}
	tagPool  = []string{"Go", "rust", " Infra ", "c/c++", "100%", ".net", "machine learning", "UI"}
	topics   = []string{"Auth", "Storage", "networking", "Search", "billing"}
	statuses = []string{"active", "Paused", "completed", "interrupted"}
	cats     = []string{"Work", "personal", "Learning"}
	subs     = []string{"coding", "Review", "meetings", "reading"}
)

type genFile struct {
	fid     uint64
	content []byte
}

type dataset struct {
	rng     *rand.Rand
	files   map[string]genFile // path -> file
	nextFid uint64
}

func (d *dataset) words(n int) string {
	w := make([]string, n)
	for i := range w {
		w[i] = vocab[d.rng.IntN(len(vocab))]
		if d.rng.IntN(40) == 0 {
			w[i] = planted[d.rng.IntN(len(planted))]
		}
		if d.rng.IntN(5) == 0 {
			w[i] = strings.ToUpper(w[i][:1]) + w[i][1:]
		}
	}
	sep := []string{" ", ", ", " the ", "-", "\n"}[d.rng.IntN(5)]
	return strings.Join(w, sep)
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func (d *dataset) put(path string, content []byte) {
	f, ok := d.files[path]
	if !ok {
		d.nextFid++
		f.fid = d.nextFid
	}
	f.content = content
	d.files[path] = f
}

// encode writes v in the session's layout: the real app wraps every file in
// an envelope, compressed or not.
func (d *dataset) encode(t testing.TB, real bool, v any) []byte {
	if !real {
		return mustJSON(t, v)
	}
	return envelope(t, v, d.rng.IntN(3) != 0)
}

func (d *dataset) startTime() any {
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(d.rng.IntN(700*24)) * time.Hour).Add(time.Duration(d.rng.IntN(3600)) * time.Second)
	switch d.rng.IntN(8) {
	case 0:
		return base.UnixMilli()
	case 1:
		return base.In(time.FixedZone("x", -5*3600)).Format(time.RFC3339)
	case 2:
		return base.Format("2006-01-02T15:04:05.000Z07:00")
	case 3:
		return base.Format("2006-01-02")
	case 4:
		return base.Format("2006-01-02T15:04:05")
	case 5:
		return "not a date"
	case 6:
		return nil
	}
	return base.Format(time.RFC3339Nano)
}

// session writes one session's files, in the seed's layout or the real app's.
func (d *dataset) session(t testing.TB, sid string) {
	r := d.rng
	real := r.IntN(2) == 0
	dir := "sessions/" + sid + "/"
	name := func(seed, realName string) string {
		if real {
			return realName
		}
		return seed
	}
	if r.IntN(10) != 0 {
		m := map[string]any{"id": sid, "name": d.words(1 + r.IntN(3)), "description": d.words(r.IntN(8))}
		if st := d.startTime(); st != nil {
			m["startTime"] = st
		}
		var tags []any
		for range r.IntN(4) {
			tags = append(tags, pick(r, tagPool))
		}
		switch r.IntN(6) {
		case 0:
			m["tags"] = "Go, rust" // wrong type: a string
		case 1:
		default:
			m["tags"] = tags
		}
		if r.IntN(8) != 0 {
			m["status"] = pick(r, statuses)
		} else {
			m["status"] = 3 // wrong type
		}
		if r.IntN(4) != 0 {
			m["category"] = pick(r, cats)
		}
		if r.IntN(3) != 0 {
			m["subCategory"] = pick(r, subs)
		}
		d.put(dir+"metadata.json", d.encode(t, real, m))
	}
	if r.IntN(2) == 0 {
		d.put(dir+"summary.json", d.encode(t, real, map[string]any{
			"narrative": d.words(5 + r.IntN(10)), "achievements": []any{d.words(2), d.words(3)},
			"blockers": []any{d.words(2)}, "keyInsights": []any{map[string]any{"insight": d.words(3), "timestamp": "x"}},
			"recommendedTasks": []any{map[string]any{"title": "ignored " + planted[0]}}, // not indexed
		}))
	}
	if r.IntN(3) == 0 {
		d.put(dir+name("audioInsights.json", "audio-insights.json"), d.encode(t, real, map[string]any{"narrative": d.words(6)}))
	}
	if r.IntN(3) == 0 {
		var v any = d.words(12)
		if !real && r.IntN(2) == 0 {
			v = map[string]any{"text": d.words(12)}
		}
		d.put(dir+"transcription.json", d.encode(t, real, v))
	}
	if r.IntN(5) == 0 {
		d.put(dir+name("contextItems.json", "context-items.json"), d.encode(t, real, []any{map[string]any{"type": "note", "content": d.words(4)}}))
	}
	if r.IntN(5) == 0 {
		d.put(dir+name("canvasSpec.json", "canvas-spec.json"), d.encode(t, real, map[string]any{"theme": map[string]any{"explanation": d.words(4), "primary": "#ff0000"}}))
	}
	for c := range r.IntN(3) {
		var recs []any
		for range 1 + r.IntN(4) {
			var ts []any
			for range r.IntN(3) {
				ts = append(ts, map[string]any{"name": pick(r, topics), "confidence": 0.5})
			}
			rec := map[string]any{"id": "x", "aiAnalysis": map[string]any{
				"summary": d.words(4), "detectedActivity": d.words(2), "extractedText": d.words(6),
				"keyElements": []any{"not indexed " + planted[1]}, "detectedEntities": map[string]any{"topics": ts},
			}}
			if !real && r.IntN(3) == 0 {
				rec["activity"] = d.words(2)
				rec["topics"] = []any{pick(r, topics)}
			}
			recs = append(recs, rec)
		}
		var v any = recs
		if real {
			v = map[string]any{"sessionId": sid, "chunkIndex": c, "screenshots": recs}
		}
		d.put(fmt.Sprintf("%sscreenshots/chunk-%03d.json", dir, c), d.encode(t, real, v))
	}
	for c := range r.IntN(2) {
		segs := []any{map[string]any{"transcription": d.words(5), "keyPhrases": []any{d.words(2)}, "duration": 10}}
		var v any = segs
		if real {
			v = map[string]any{"sessionId": sid, "chunkIndex": c, "segments": segs}
		}
		d.put(fmt.Sprintf("%s%s/chunk-%03d.json", dir, name("audioSegments", "audio-segments"), c), d.encode(t, real, v))
	}
	if r.IntN(4) == 0 {
		vids := []any{map[string]any{"topic": d.words(2), "description": d.words(3), "transcriptExcerpt": d.words(3)}}
		var v any = vids
		if real {
			v = map[string]any{"sessionId": sid, "chunkIndex": 0, "chunks": vids}
		}
		d.put(dir+name("videoChunks", "video-chunks")+"/chunk-000.json", d.encode(t, real, v))
	}
	if r.IntN(15) == 0 {
		d.put(dir+"summary.json", []byte(`{"narrative": "broken `+planted[2])) // invalid JSON: nothing
	}
	if r.IntN(20) == 0 {
		d.put(dir+"attachments/photo.json", []byte(`{"narrative":"not classified `+planted[3]+`"}`))
	}
}

// oracleDoc is what the brute-force scan knows about one session.
type oracleDoc struct {
	tokens                map[string]bool
	tags, topics, subs    map[string]bool
	status, category, day string
	catSubs               map[[2]string]bool
	categoryForSub        string
}

func oracleUnwrap(content []byte) (any, bool) {
	var v any
	if json.Unmarshal(content, &v) != nil {
		return nil, false
	}
	for range 4 {
		m, ok := v.(map[string]any)
		if !ok {
			break
		}
		data, has := m["data"]
		n := 0
		for _, k := range []string{"version", "checksum", "timestamp", "compressed"} {
			if _, ok := m[k]; ok {
				n++
			}
		}
		if !has || n < 2 {
			break
		}
		s, isString := data.(string)
		if !isString {
			v = data
			continue
		}
		if rest, ok := strings.CutPrefix(s, "GZIP_V1:"); ok {
			raw, err := base64.StdEncoding.DecodeString(rest)
			if err != nil {
				return nil, false
			}
			zr, err := gzip.NewReader(strings.NewReader(string(raw)))
			if err != nil {
				return nil, false
			}
			plain, err := io.ReadAll(zr)
			if err != nil || json.Unmarshal(plain, &v) != nil {
				return nil, false
			}
			continue
		}
		if json.Unmarshal([]byte(s), &v) != nil {
			return s, true
		}
	}
	return v, true
}

func str(v any) string { s, _ := v.(string); return s }

func strList(v any) []string {
	if s, ok := v.(string); ok {
		return []string{s}
	}
	var out []string
	arr, _ := v.([]any)
	for _, e := range arr {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func obj(v any) map[string]any { m, _ := v.(map[string]any); return m }

func records(v any, key string) []any {
	if arr, ok := v.([]any); ok {
		return arr
	}
	arr, _ := obj(v)[key].([]any)
	return arr
}

func norm(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func oracleDay(v any) string {
	switch t := v.(type) {
	case string:
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
			if p, err := time.Parse(layout, t); err == nil {
				return p.UTC().Format("2006-01-02")
			}
		}
	case float64:
		return time.UnixMilli(int64(t)).UTC().Format("2006-01-02")
	}
	return ""
}

func oracleScan(files map[string]genFile) map[string]*oracleDoc {
	docs := map[string]*oracleDoc{}
	for path, f := range files {
		sid, kind, ok := Classify(path)
		if !ok {
			continue
		}
		d := docs[sid]
		if d == nil {
			d = &oracleDoc{tokens: map[string]bool{}, tags: map[string]bool{}, topics: map[string]bool{}, subs: map[string]bool{}, catSubs: map[[2]string]bool{}}
			docs[sid] = d
		}
		v, ok := oracleUnwrap(f.content)
		if !ok {
			continue
		}
		var texts []string
		m := obj(v)
		switch kind {
		case KindMetadata:
			texts = append(texts, str(m["name"]), str(m["description"]))
			tags := strList(m["tags"])
			if s, ok := m["tags"].(string); ok {
				tags = strings.Split(s, ",")
			}
			for _, tg := range tags {
				if n := norm(tg); n != "" {
					d.tags[n] = true
				}
			}
			d.status, d.category = norm(str(m["status"])), norm(str(m["category"]))
			if sub := norm(str(m["subCategory"])); sub != "" {
				d.subs[sub] = true
				if d.category != "" {
					d.catSubs[[2]string{d.category, sub}] = true
				}
			}
			d.day = oracleDay(m["startTime"])
		case KindSummary:
			texts = append(texts, str(m["narrative"]), str(m["summary"]))
			texts = append(texts, strList(m["achievements"])...)
			texts = append(texts, strList(m["blockers"])...)
			for _, ki := range m["keyInsights"].([]any) {
				texts = append(texts, str(obj(ki)["insight"]))
			}
		case KindAudioInsights:
			texts = append(texts, str(m["narrative"]))
		case KindCanvasSpec:
			texts = append(texts, str(obj(m["theme"])["explanation"]))
		case KindTranscription:
			texts = append(texts, str(v), str(m["text"]))
		case KindContextItems:
			for _, it := range records(v, "contextItems") {
				texts = append(texts, str(obj(it)["content"]))
			}
		case KindScreenshots:
			for _, rec := range records(v, "screenshots") {
				a := obj(obj(rec)["aiAnalysis"])
				texts = append(texts, str(a["summary"]), str(a["detectedActivity"]), str(a["extractedText"]), str(obj(rec)["activity"]))
				for _, tp := range records(obj(a["detectedEntities"])["topics"], "") {
					d.topics[norm(str(obj(tp)["name"]))] = true
				}
				for _, tp := range strList(obj(rec)["topics"]) {
					d.topics[norm(tp)] = true
				}
			}
		case KindAudioSegments:
			for _, rec := range records(v, "segments") {
				texts = append(texts, str(obj(rec)["transcription"]))
				texts = append(texts, strList(obj(rec)["keyPhrases"])...)
			}
		case KindVideoChunks:
			for _, rec := range records(v, "chunks") {
				texts = append(texts, str(obj(rec)["topic"]), str(obj(rec)["description"]), str(obj(rec)["transcriptExcerpt"]))
			}
		}
		for _, s := range texts {
			for _, tok := range Tokenize(s) {
				d.tokens[tok] = true
			}
		}
	}
	return docs
}

func oracleMatch(n node, d *oracleDoc) bool {
	switch n := n.(type) {
	case *wordNode:
		for _, t := range n.tokens {
			if !d.tokens[t] {
				return false
			}
		}
		return true
	case *fieldNode:
		switch n.field {
		case "tag":
			return d.tags[n.value]
		case "topic":
			return d.topics[n.value]
		case "status":
			return d.status == n.value
		case "category":
			return d.category == n.value
		case "sub":
			return d.subs[n.value]
		case "month":
			return d.day != "" && d.day[:7] == n.value
		}
	case *dayNode:
		if d.day == "" {
			return false
		}
		if n.before {
			return d.day < n.day
		}
		return d.day >= n.day
	case *notNode:
		return !oracleMatch(n.x, d)
	case *andNode:
		for _, x := range n.xs {
			if !oracleMatch(x, d) {
				return false
			}
		}
		return true
	case *orNode:
		for _, x := range n.xs {
			if oracleMatch(x, d) {
				return true
			}
		}
		return false
	}
	panic(fmt.Sprintf("oracle: unknown node %T", n))
}

// randomQuery builds a query string from the grammar.
func randomQuery(r *rand.Rand, depth int) string {
	if depth > 2 || r.IntN(3) == 0 {
		switch r.IntN(12) {
		case 0:
			return "tag:" + quoteIfNeeded(EscapeName(norm(pick(r, tagPool))))
		case 1:
			return "topic:" + pick(r, topics)
		case 2:
			return "status:" + pick(r, statuses)
		case 3:
			return "category:" + pick(r, cats)
		case 4:
			return "sub:" + pick(r, subs)
		case 5:
			return fmt.Sprintf("month:%d-%02d", 2024+r.IntN(2), 1+r.IntN(12))
		case 6:
			return fmt.Sprintf("after:%d-%02d-%02d", 2024+r.IntN(2), 1+r.IntN(12), 1+r.IntN(28))
		case 7:
			return fmt.Sprintf("before:%d-%02d-%02d", 2024+r.IntN(2), 1+r.IntN(12), 1+r.IntN(28))
		case 8:
			return pick(r, planted)
		case 9:
			return `"` + pick(r, vocab) + " " + pick(r, vocab) + `"`
		}
		return pick(r, vocab)
	}
	a, b := randomQuery(r, depth+1), randomQuery(r, depth+1)
	switch r.IntN(5) {
	case 0:
		return a + " OR " + b
	case 1:
		return "-" + a + " " + b
	case 2:
		return "(" + a + " OR " + b + ") " + randomQuery(r, depth+1)
	case 3:
		return "NOT (" + a + " " + b + ")"
	}
	return a + " " + b
}

var fixedQueries = []string{
	"zephyr", "quasar nebula", "zephyr OR quasar", "-zephyr", "NOT zephyr quasar", "(zephyr OR pulsar) -quark",
	"größe", "日本語", "CAFÉ", "naïve", "the", "ignored", "not indexed", "broken", "classified",
	"tag:go", "tag:rust", "tag:infra", "tag:c%2Fc++", "tag:100%25", "tag:%2Enet", `tag:"machine learning"`, "tag:ui",
	"topic:auth", "topic:storage", "-topic:auth", "status:paused", "status:active OR status:completed",
	"category:work", "category:personal sub:coding", "sub:review", "-category:work -category:learning",
	"month:2024-06", "month:2025-03", "after:2025-01-01", "before:2024-03-01", "after:2024-05-01 before:2024-06-01",
	"-after:2024-01-01", "deploy (tag:go OR topic:search) -status:active", "-(alpha bravo)", "--alpha",
	"alpha OR -bravo", "-alpha OR -bravo", "(alpha OR bravo) (charlie OR delta)",
}

// compareWithOracle runs the queries twice: on the index as the updates left
// it (base blocks and delta keys mixed, see blocks.go), and after a full
// compaction, which must not change any answer.
func compareWithOracle(t *testing.T, x *Index, files map[string]genFile, queries []string) {
	t.Helper()
	compareQueries(t, x, files, queries)
	if err := x.Compact(); err != nil {
		t.Fatal(err)
	}
	compareQueries(t, x, files, queries)
}

func compareQueries(t *testing.T, x *Index, files map[string]genFile, queries []string) {
	t.Helper()
	docs := oracleScan(files)
	for _, qs := range queries {
		q, err := ParseQuery(qs)
		if err != nil {
			t.Fatalf("query %q: %v", qs, err)
		}
		want := []string{}
		for sid, d := range docs {
			if oracleMatch(q.root, d) {
				want = append(want, sid)
			}
		}
		sort.Strings(want)
		hits, err := x.SearchQuery(q, SearchOptions{NoSnippets: true})
		if err != nil {
			t.Fatalf("search %q: %v", qs, err)
		}
		got := []string{}
		for i, h := range hits {
			got = append(got, h.SessionID)
			if i > 0 && (h.Score > hits[i-1].Score || h.Score == hits[i-1].Score && h.SessionID < hits[i-1].SessionID) {
				t.Errorf("%q: hits out of order at %d", qs, i)
			}
		}
		sort.Strings(got)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q (%s): index %d sessions, scan %d\nindex only: %v\nscan only:  %v", qs, q, len(got), len(want), minus(got, want), minus(want, got))
		}
	}
	compareFacets(t, x, docs)
}

func compareFacets(t *testing.T, x *Index, docs map[string]*oracleDoc) {
	t.Helper()
	values := map[string]map[string][]string{"tag": {}, "topic": {}, "status": {}, "category": {}, "sub": {}, "month": {}}
	catSubs := map[string]map[string][]string{}
	for sid, d := range docs {
		addTo := func(field, v string) {
			if v != "" {
				values[field][v] = append(values[field][v], sid)
			}
		}
		for v := range d.tags {
			addTo("tag", v)
		}
		for v := range d.topics {
			addTo("topic", v)
		}
		for v := range d.subs {
			addTo("sub", v)
		}
		addTo("status", d.status)
		addTo("category", d.category)
		if d.day != "" {
			addTo("month", d.day[:7])
		}
		for cs := range d.catSubs {
			if catSubs[cs[0]] == nil {
				catSubs[cs[0]] = map[string][]string{}
			}
			catSubs[cs[0]][cs[1]] = append(catSubs[cs[0]][cs[1]], sid)
		}
	}
	for field, byValue := range values {
		want := sortedKeys(byValue)
		got, err := x.FacetValues(field)
		if err != nil || !reflect.DeepEqual(nonNil(got), want) {
			t.Errorf("FacetValues(%s) = %q %v, want %q", field, got, err, want)
		}
		for v, sids := range byValue {
			sort.Strings(sids)
			got, err := x.FacetSessions(field, v)
			if err != nil || !reflect.DeepEqual(got, sids) {
				t.Errorf("FacetSessions(%s, %q) = %v %v, want %v", field, v, got, err, sids)
			}
		}
	}
	for _, c := range sortedKeys(values["category"]) {
		want := sortedKeys(catSubs[c])
		got, err := x.SubCategories(c)
		if err != nil || !reflect.DeepEqual(nonNil(got), want) {
			t.Errorf("SubCategories(%q) = %q %v, want %q", c, got, err, want)
		}
		for sub, sids := range catSubs[c] {
			sort.Strings(sids)
			got, err := x.SubCategorySessions(c, sub)
			if err != nil || !reflect.DeepEqual(got, sids) {
				t.Errorf("SubCategorySessions(%q, %q) = %v, want %v", c, sub, got, sids)
			}
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := []string{}
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func allFiles(files map[string]genFile) FileSource {
	return func(fn func(uint64, string, Kind, []byte) error) error {
		for _, path := range sortedKeys(files) {
			if sid, kind, ok := Classify(path); ok {
				if err := fn(files[path].fid, sid, kind, files[path].content); err != nil {
					return err
				}
			}
		}
		return nil
	}
}

func TestEquivalenceWithBruteForce(t *testing.T) {
	// Batches registered (the mount's transactions: one group per term
	// and batch) and not (each call writes its own groups).
	for _, perCall := range []bool{false, true} {
		t.Run(fmt.Sprintf("perCall=%v", perCall), func(t *testing.T) { testEquivalence(t, perCall) })
	}
}

func testEquivalence(t *testing.T, perCall bool) {
	r := rand.New(rand.NewPCG(1, 2))
	d := &dataset{rng: r, files: map[string]genFile{}}
	for i := range 300 {
		d.session(t, fmt.Sprintf("s%03d", i))
	}
	for _, sid := range []string{"with space (copy)", "ünï%code", ".dot", "s"} {
		d.session(t, sid)
	}
	f := newFixture(t)
	f.perCall = perCall
	indexAll := func(paths []string) {
		f.batch(func(b *pebble.Batch) {
			for _, p := range paths {
				sid, kind, ok := Classify(p)
				if _, exists := d.files[p]; !ok || !exists {
					continue // not indexable, or deleted since
				}
				if err := f.x.UpdateFile(b, d.files[p].fid, sid, kind, d.files[p].content); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	// Index in batches of 50 files, as a writer would.
	paths := sortedKeys(d.files)
	for i := 0; i < len(paths); i += 50 {
		indexAll(paths[i:min(i+50, len(paths))])
	}
	queries := append([]string(nil), fixedQueries...)
	for range 300 {
		queries = append(queries, randomQuery(r, 0))
	}
	compareWithOracle(t, f.x, d.files, queries)
	if t.Failed() {
		return
	}

	// Incremental changes: rewrite some sessions, delete files and whole
	// sessions, move a file between sessions; the index must follow.
	var changed []string
	for i := range 40 {
		sid := fmt.Sprintf("s%03d", r.IntN(300))
		if i%4 == 0 {
			var gone []uint64
			for p, file := range d.files {
				if strings.HasPrefix(p, "sessions/"+sid+"/") {
					gone = append(gone, file.fid)
					delete(d.files, p)
				}
			}
			f.batch(func(b *pebble.Batch) {
				for _, fid := range gone {
					if err := f.x.RemoveFile(b, fid); err != nil {
						t.Fatal(err)
					}
				}
			})
			continue
		}
		before := map[string]genFile{}
		for p, file := range d.files {
			if strings.HasPrefix(p, "sessions/"+sid+"/") {
				before[p] = file
			}
		}
		d.session(t, sid) // overwrites some files, adds others
		for p, file := range d.files {
			if old, ok := before[p]; !ok || string(old.content) != string(file.content) {
				changed = append(changed, p)
			}
		}
	}
	sort.Strings(changed)
	indexAll(changed)
	// Move one file to another session (same file id).
	for _, p := range sortedKeys(d.files) {
		if strings.HasSuffix(p, "/summary.json") {
			to := "sessions/moved/summary.json"
			d.files[to] = d.files[p]
			delete(d.files, p)
			indexAll([]string{to})
			break
		}
	}
	compareWithOracle(t, f.x, d.files, queries)

	problems, err := f.x.Check(allFiles(d.files))
	if err != nil || len(problems) != 0 {
		t.Fatalf("check after updates: %v %v", problems, err)
	}
	sessions, files, _, err := f.x.Stats()
	if want := len(oracleScan(d.files)); err != nil || sessions != int64(want) {
		t.Fatalf("stats: %d sessions (%d files), want %d: %v", sessions, files, want, err)
	}
}
