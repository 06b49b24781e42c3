package index

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// sampleFiles returns one file of every kind in a given shape (seed layout:
// plain JSON and bare chunk arrays; real layout: chunk objects in envelopes).
func sampleMetadata() map[string]any {
	return map[string]any{
		"id": "s1", "name": "Morning Coding", "description": "Working on authentication",
		"status": "Completed", "category": "Work", "subCategory": " Deep Work ",
		"tags": []any{"Go", " OAuth ", 7, ""}, "startTime": "2025-10-31T23:30:00.000-02:00",
		"version": 3,
	}
}

func TestExtractKinds(t *testing.T) {
	screens := []any{
		map[string]any{"id": "a", "aiAnalysis": map[string]any{
			"summary": "Editing handler", "detectedActivity": "coding", "extractedText": "func main",
			"detectedEntities": map[string]any{"topics": []any{map[string]any{"name": "Auth", "confidence": 0.9}, "Plain"}},
		}},
		map[string]any{"id": "b", "activity": "Reviewing PR", "topics": []any{"OAuth"}}, // seed fields
		"not a record",
	}
	segments := []any{map[string]any{"transcription": "hello world", "keyPhrases": []any{"token refresh"}}}
	videos := []any{map[string]any{"topic": "Demo", "description": "walkthrough", "transcriptExcerpt": "as you see"}}
	tests := []struct {
		name    string
		kind    Kind
		content []byte
		texts   []string
		topics  []string
	}{
		{"summary", KindSummary, mustJSON(t, map[string]any{
			"narrative": "Fixed login", "achievements": []any{"shipped", 3}, "blockers": "flaky CI",
			"keyInsights": []any{map[string]any{"insight": "cache helps"}, "plain insight"},
		}), []string{"Fixed login", "shipped", "flaky CI", "cache helps", "plain insight"}, nil},
		{"audio insights", KindAudioInsights, mustJSON(t, map[string]any{"narrative": "calm focus", "keyMoments": []any{}}), []string{"calm focus"}, nil},
		{"canvas", KindCanvasSpec, mustJSON(t, map[string]any{"theme": map[string]any{"explanation": "focused blue"}}), []string{"focused blue"}, nil},
		{"transcription string", KindTranscription, mustJSON(t, "the whole talk"), []string{"the whole talk"}, nil},
		{"transcription object", KindTranscription, mustJSON(t, map[string]any{"text": "object talk"}), []string{"object talk"}, nil},
		{"transcription envelope raw", KindTranscription, envelope(t, "raw talk", false), []string{"raw talk"}, nil},
		{"transcription envelope gzip", KindTranscription, envelope(t, "zipped talk", true), []string{"zipped talk"}, nil},
		{"context items", KindContextItems, mustJSON(t, []any{map[string]any{"type": "note", "content": "remember"}}), []string{"remember"}, nil},
		{"screenshots seed", KindScreenshots, mustJSON(t, screens),
			[]string{"Editing handler", "coding", "func main", "Reviewing PR"}, []string{"auth", "plain", "oauth"}},
		{"screenshots real", KindScreenshots, envelope(t, map[string]any{"sessionId": "s1", "chunkIndex": 0, "screenshots": screens}, true),
			[]string{"Editing handler", "coding", "func main", "Reviewing PR"}, []string{"auth", "plain", "oauth"}},
		{"audio seed", KindAudioSegments, mustJSON(t, segments), []string{"hello world", "token refresh"}, nil},
		{"audio real", KindAudioSegments, envelope(t, map[string]any{"sessionId": "s1", "chunkIndex": 1, "segments": segments}, false), []string{"hello world", "token refresh"}, nil},
		{"video seed", KindVideoChunks, mustJSON(t, videos), []string{"Demo", "walkthrough", "as you see"}, nil},
		{"video real", KindVideoChunks, envelope(t, map[string]any{"sessionId": "s1", "chunkIndex": 0, "chunks": videos}, true), []string{"Demo", "walkthrough", "as you see"}, nil},
		{"chunk object under wrong key", KindScreenshots, mustJSON(t, map[string]any{"segments": screens}), nil, nil},
		{"not json", KindSummary, []byte(`{"narrative": "cut`), nil, nil},
		{"empty", KindMetadata, nil, nil, nil},
		{"wrong top-level type", KindSummary, mustJSON(t, []any{"narrative"}), nil, nil},
		{"bad gzip", KindSummary, mustJSON(t, map[string]any{"version": 1, "compressed": true, "data": "GZIP_V1:!!!"}), nil, nil},
	}
	for _, tc := range tests {
		e := extract(tc.kind, tc.content)
		if !reflect.DeepEqual(e.texts, tc.texts) {
			t.Errorf("%s: texts %q, want %q", tc.name, e.texts, tc.texts)
		}
		if !reflect.DeepEqual(e.topics, tc.topics) {
			t.Errorf("%s: topics %q, want %q", tc.name, e.topics, tc.topics)
		}
	}
}

func TestExtractMetadataLayouts(t *testing.T) {
	plain := mustJSON(t, sampleMetadata())
	for name, content := range map[string][]byte{
		"plain":        plain,
		"envelope raw": envelope(t, sampleMetadata(), false),
		"envelope gz":  envelope(t, sampleMetadata(), true),
		"envelope obj": mustJSON(t, map[string]any{"version": 1, "checksum": "x", "data": sampleMetadata()}),
	} {
		e := extract(KindMetadata, content)
		want := &extraction{
			texts:     []string{"Morning Coding", "Working on authentication"},
			textBytes: len("Morning Coding") + len("Working on authentication"),
			tags:      []string{"go", "oauth"},
			status:    "completed", category: "work", sub: "deep work",
			name: "Morning Coding", start: "2025-10-31T23:30:00.000-02:00", date: "2025-11-01", // UTC day
		}
		if !reflect.DeepEqual(e, want) {
			t.Errorf("%s: got %+v\nwant %+v", name, e, want)
		}
	}
}

func TestExtractWrongTypes(t *testing.T) {
	tests := []struct {
		name string
		doc  map[string]any
		tags []string
		day  string
		show string
	}{
		{"tags as a string", map[string]any{"tags": "Go, Rust ,", "startTime": "2025-01-02"}, []string{"go", "rust"}, "2025-01-02", "2025-01-02"},
		{"startTime in epoch ms", map[string]any{"startTime": 1730000000000}, nil, "2024-10-27", "2024-10-27T03:33:20.000Z"},
		{"startTime without zone", map[string]any{"startTime": "2025-03-04T05:06:07"}, nil, "2025-03-04", "2025-03-04T05:06:07"},
		{"startTime garbage", map[string]any{"startTime": "soon"}, nil, "", "soon"},
		{"startTime object", map[string]any{"startTime": map[string]any{"a": 1}}, nil, "", ""},
		{"startTime huge number", map[string]any{"startTime": 1e300}, nil, "", ""},
		{"tags object", map[string]any{"tags": map[string]any{"a": "b"}, "name": 5}, nil, "", ""},
		{"tags null", map[string]any{"tags": nil, "status": []any{"x"}}, nil, "", ""},
	}
	for _, tc := range tests {
		e := extract(KindMetadata, mustJSON(t, tc.doc))
		if !reflect.DeepEqual(e.tags, tc.tags) || e.date != tc.day || e.start != tc.show {
			t.Errorf("%s: tags %q day %q start %q; want %q %q %q", tc.name, e.tags, e.date, e.start, tc.tags, tc.day, tc.show)
		}
	}
}

func TestExtractCaps(t *testing.T) {
	huge := strings.Repeat("word ", maxTextBytes/5+1000)
	e := extract(KindTranscription, mustJSON(t, huge))
	if e.textBytes > maxTextBytes {
		t.Fatalf("text %d bytes, cap %d", e.textBytes, maxTextBytes)
	}
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	if e := extract(KindScreenshots, []byte(deep)); len(e.texts) != 0 {
		t.Fatalf("deep nesting gave %q", e.texts)
	}
	deepOK := `{"narrative":"kept","x":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "}"
	if e := extract(KindSummary, []byte(deepOK)); !reflect.DeepEqual(e.texts, []string{"kept"}) {
		t.Fatalf("nested junk beside a field: %q", e.texts)
	}
	many := "[" + strings.Repeat(`{"transcription":"x"},`, maxListItems+10) + `{"transcription":"x"}]`
	if e := extract(KindAudioSegments, []byte(many)); len(e.texts) != maxListItems {
		t.Fatalf("read %d records, cap %d", len(e.texts), maxListItems)
	}
	var tags []any
	for i := range maxFacetValues + 5 {
		tags = append(tags, strings.Repeat("t", i%50+1)+string(rune('a'+i%26)))
	}
	tags = append(tags, strings.Repeat("/", 100)) // escaped name longer than 255 bytes
	if e := extract(KindMetadata, mustJSON(t, map[string]any{"tags": tags})); len(e.tags) != maxFacetValues {
		t.Fatalf("%d tags kept, cap %d", len(e.tags), maxFacetValues)
	}
	if e := extract(KindMetadata, mustJSON(t, map[string]any{"tags": []any{strings.Repeat("/", 100)}})); len(e.tags) != 0 {
		t.Fatalf("tag too long for a name kept: %q", e.tags)
	}
}

func TestBuildRecord(t *testing.T) {
	rec, text := buildRecord("s1", KindMetadata, mustJSON(t, sampleMetadata()))
	if rec.length != 4 { // "on" is a stop word
		t.Errorf("length %d", rec.length)
	}
	var terms []string
	for _, tf := range rec.terms {
		terms = append(terms, tf.term)
	}
	if strings.Join(terms, " ") != "authentication coding morning working" {
		t.Errorf("terms %q", terms)
	}
	if text != "Morning Coding\nWorking on authentication" {
		t.Errorf("text %q", text)
	}
	back, err := decodeRecord(rec.encode())
	if err != nil || !reflect.DeepEqual(back, rec) {
		t.Errorf("record round trip: %+v, %v", back, err)
	}
	if _, err := decodeRecord(rec.encode()[:10]); err == nil {
		t.Error("truncated record decoded")
	}
}

func TestStoredText(t *testing.T) {
	long := strings.Repeat("a", storedTextCap)
	tests := []struct {
		name  string
		texts []string
		check func(string) bool
	}{
		{"fits", []string{"one", "two"}, func(s string) bool { return s == "one\ntwo" }},
		{"one long field is cut", []string{long + "tail"}, func(s string) bool { return len(s) <= storedTextCap && !strings.Contains(s, "tail") }},
		{"every field keeps its start", []string{"short", long, "last field", long}, func(s string) bool {
			return len(s) <= storedTextCap && strings.HasPrefix(s, "short\naaa") && strings.Contains(s, "\nlast field\naaa")
		}},
		{"runes are not split", []string{strings.Repeat("é", storedTextCap)}, func(s string) bool {
			return utf8.ValidString(s) && len(s) <= storedTextCap && len(s) >= storedTextCap-4
		}},
	}
	for _, tc := range tests {
		if got := storedText(tc.texts); !tc.check(got) {
			t.Errorf("%s: %d bytes: %.60q", tc.name, len(got), got)
		}
	}
}

// TestExtractKeepsFacetBytes: bytes that are not UTF-8 in a facet value stay
// bytes (two different tags never become one U+FFFD tag), escapes still
// decode, and control characters are kept for the names to escape.
func TestExtractKeepsFacetBytes(t *testing.T) {
	content := []byte("{\"tags\": [\"a\xffb\", \"a\xfeb\", \"\\u00C4\xc3\", \"x\\ny\"], \"status\": \"Done\xff\", \"category\": \"c\\\"q\xff\"}")
	e := extract(KindMetadata, content)
	want := []string{"a\xffb", "a\xfeb", "ä\xc3", "x\ny"}
	if !reflect.DeepEqual(e.tags, want) {
		t.Errorf("tags %q, want %q", e.tags, want)
	}
	if e.status != "done\xff" || e.category != "c\"q\xff" {
		t.Errorf("status %q, category %q", e.status, e.category)
	}
	for _, v := range e.tags {
		if name := EscapeName(v); !CleanName(name) {
			t.Errorf("tag %q has the unclean name %q", v, name)
		}
	}
	// Text and names stay what encoding/json made of them: one U+FFFD per byte.
	m := extract(KindMetadata, []byte("{\"name\": \"n\xff\xfe\", \"description\": \"d\xffe\"}"))
	if m.name != "n\uFFFD\uFFFD" || !reflect.DeepEqual(m.texts, []string{"n\uFFFD\uFFFD", "d\uFFFDe"}) {
		t.Errorf("name %q, texts %q", m.name, m.texts)
	}
	if s, ok := jsonString([]byte("\"ok\\u0041\"")); !ok || s != "okA" {
		t.Errorf("jsonString of valid JSON: %q, %v", s, ok)
	}
	if _, ok := jsonString([]byte("\"bad\\\xff\"")); ok {
		t.Errorf("jsonString accepted a backslash before a raw byte")
	}
}

// TestSortTerms holds sortTerms to strings.Compare on terms that share
// their first 8 bytes, are shorter than 8, are prefixes of one another, or
// are not ASCII.
func TestSortTerms(t *testing.T) {
	cases := [][]string{
		{},
		{"b", "a"},
		{"authentication", "authenticate", "authentic", "auth", "au", "authenticated", "authenticator"},
		{"abcdefgh", "abcdefg", "abcdefghi", "abcdefgg", "abcdefhh", "abcdefgh0"},
		{"zz", "z\u00e9", "z\u00e9e", "\u00e9t\u00e9", "\u4e2d\u6587", "zzzzzzzzz", "zzzzzzzz", "0123456789", "01234567"},
	}
	r := rand.New(rand.NewPCG(3, 4))
	var big []string
	for range 2000 {
		n := 2 + r.IntN(14)
		b := make([]byte, n)
		for i := range b {
			b[i] = "aab\u00e9"[r.IntN(5)] // long shared prefixes, bytes above 0x7f
		}
		big = append(big, string(b))
	}
	cases = append(cases, big)
	for _, terms := range cases {
		seen := map[string]bool{}
		var ts []termFreq
		for i, term := range terms {
			if !seen[term] { // a record holds each term once
				seen[term] = true
				ts = append(ts, termFreq{term, uint64(i + 1)})
			}
		}
		var scratch []keyedTerm
		got := sortTerms(slices.Clone(ts), &scratch)
		want := slices.Clone(ts)
		slices.SortFunc(want, func(a, b termFreq) int { return strings.Compare(a.term, b.term) })
		if !slices.Equal(got, want) {
			t.Errorf("sortTerms(%q) = %v, want %v", terms, got, want)
		}
	}
}
