package tests

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/taskerfs/taskerfs/gen"
)

// The search tests compare what the mount's search/ and facet directories
// list with a brute-force scan of the same JSON files, done here from the
// files alone (not through the index package), following DESIGN.md "Index
// and query directories" and the grammar documented in search/README.md.

// ---------------------------------------------------------------- brute force

// bruteDoc is everything the brute-force scan knows about one session.
type bruteDoc struct {
	id       string
	words    map[string]bool // tokens of every indexed text field
	tags     map[string]bool // facet values, lowercased and trimmed
	topics   map[string]bool
	status   string
	category string
	sub      string
	start    time.Time // zero if startTime is missing or unparseable
	name     string
	startRaw string // startTime as the file has it
}

type bruteCorpus map[string]*bruteDoc

var bruteStopWords = map[string]bool{"the": true, "a": true, "an": true, "and": true, "or": true,
	"but": true, "in": true, "on": true, "at": true, "to": true, "for": true}

// bruteTokens is the tokenizer of DESIGN.md: lowercase, split on anything
// but letters and digits, drop tokens under two runes and stop words.
func bruteTokens(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r)
	}) {
		if utf8.RuneCountInString(f) >= 2 && !bruteStopWords[f] {
			out = append(out, f)
		}
	}
	return out
}

func facetValue(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// unwrapEnvelope removes the real app's {version, checksum, timestamp,
// compressed, data} envelope whose data is "GZIP_V1:"+base64(gzip(json)).
func unwrapEnvelope(t testing.TB, raw []byte) []byte {
	t.Helper()
	var env struct {
		Version    json.RawMessage `json:"version"`
		Compressed json.RawMessage `json:"compressed"`
		Data       json.RawMessage `json:"data"`
	}
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) && json.Unmarshal(raw, &env) == nil &&
		env.Version != nil && env.Compressed != nil && env.Data != nil {
		var s string
		if json.Unmarshal(env.Data, &s) != nil {
			return env.Data
		}
		b64, ok := strings.CutPrefix(s, "GZIP_V1:")
		if !ok {
			return []byte(s)
		}
		gz, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatalf("envelope base64: %v", err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Fatalf("envelope gzip: %v", err)
		}
		out, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("envelope gzip: %v", err)
		}
		return out
	}
	return raw
}

// records returns a chunk's records: a bare array (seed layout) or the
// array under key of a chunk object (real app).
func records(t testing.TB, payload []byte, key string) []json.RawMessage {
	t.Helper()
	var recs []json.RawMessage
	if bytes.HasPrefix(bytes.TrimSpace(payload), []byte("{")) {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(payload, &obj); err != nil {
			t.Fatalf("chunk object: %v", err)
		}
		payload = obj[key]
	}
	if err := json.Unmarshal(payload, &recs); err != nil {
		t.Fatalf("chunk array: %v", err)
	}
	return recs
}

func mustUnmarshal(t testing.TB, path string, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// scanSessions reads every session under root/sessions. The full-text fields
// are DESIGN.md's (name, description, summary narrative, achievements,
// blockers and key insights, transcription, screenshot aiAnalysis summary,
// detectedActivity and extractedText, audio transcription and keyPhrases)
// plus what the index also reads: the audio insights narrative, the canvas
// theme explanation and video chunks' topic, description and excerpt.
func scanSessions(t testing.TB, root string) bruteCorpus {
	t.Helper()
	c := bruteCorpus{}
	dirs, err := os.ReadDir(filepath.Join(root, "sessions"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		doc := &bruteDoc{id: d.Name(), words: map[string]bool{}, tags: map[string]bool{}, topics: map[string]bool{}}
		c[doc.id] = doc
		text := func(ss ...string) {
			for _, s := range ss {
				for _, w := range bruteTokens(s) {
					doc.words[w] = true
				}
			}
		}
		dir := filepath.Join(root, "sessions", d.Name())
		err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			raw, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b := unwrapEnvelope(t, raw)
			switch rel {
			case "metadata.json":
				var md struct {
					Name, Description, Status, Category, SubCategory, StartTime string
					Tags                                                        []string
				}
				mustUnmarshal(t, p, b, &md)
				doc.name, doc.startRaw = md.Name, md.StartTime
				text(md.Name, md.Description)
				for _, tg := range md.Tags {
					doc.tags[facetValue(tg)] = true
				}
				doc.status, doc.category, doc.sub = facetValue(md.Status), facetValue(md.Category), facetValue(md.SubCategory)
				if st, err := time.Parse(time.RFC3339Nano, md.StartTime); err == nil {
					doc.start = st.UTC()
				}
			case "summary.json":
				var s struct {
					Narrative              string
					Achievements, Blockers []string
					KeyInsights            []struct{ Insight string }
				}
				mustUnmarshal(t, p, b, &s)
				text(s.Narrative)
				text(s.Achievements...)
				text(s.Blockers...)
				for _, k := range s.KeyInsights {
					text(k.Insight)
				}
			case "audioInsights.json", "audio-insights.json":
				var s struct{ Narrative string }
				mustUnmarshal(t, p, b, &s)
				text(s.Narrative)
			case "canvasSpec.json", "canvas-spec.json":
				var s struct{ Theme struct{ Explanation string } }
				mustUnmarshal(t, p, b, &s)
				text(s.Theme.Explanation)
			case "transcription.json":
				var s string
				mustUnmarshal(t, p, b, &s)
				text(s)
			default:
				switch filepath.Dir(rel) {
				case "screenshots":
					for _, r := range records(t, b, "screenshots") {
						var s struct {
							AIAnalysis struct {
								Summary, DetectedActivity, ExtractedText string
								DetectedEntities                         struct{ Topics []struct{ Name string } }
							}
						}
						mustUnmarshal(t, p, r, &s)
						a := s.AIAnalysis
						text(a.Summary, a.DetectedActivity, a.ExtractedText)
						for _, tp := range a.DetectedEntities.Topics {
							doc.topics[facetValue(tp.Name)] = true
						}
					}
				case "audioSegments", "audio-segments":
					for _, r := range records(t, b, "segments") {
						var s struct {
							Transcription string
							KeyPhrases    []string
						}
						mustUnmarshal(t, p, r, &s)
						text(s.Transcription)
						text(s.KeyPhrases...)
					}
				case "videoChunks", "video-chunks":
					for _, r := range records(t, b, "chunks") {
						var s struct{ Topic, Description, TranscriptExcerpt string }
						mustUnmarshal(t, p, r, &s)
						text(s.Topic, s.Description, s.TranscriptExcerpt)
					}
				default:
					t.Fatalf("scan: unexpected file %s", p)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// checkScanAgainstManifest makes sure the scan itself is right: it must see
// what the generator says it planted.
func checkScanAgainstManifest(t testing.TB, c bruteCorpus, m gen.Manifest, planted []string) {
	t.Helper()
	for _, s := range m.Sessions {
		d := c[s.ID]
		if d == nil {
			t.Fatalf("scan misses session %s", s.ID)
		}
		for _, w := range planted {
			if d.words[w] != slices.Contains(s.Words, w) {
				t.Fatalf("scan: session %s has %q = %v, manifest says %v", s.ID, w, d.words[w], s.Words)
			}
		}
		if d.status != facetValue(s.Status) || d.category != facetValue(s.Category) || d.sub != facetValue(s.SubCategory) ||
			d.start.Format("2006-01") != s.Month || len(d.tags) != len(s.Tags) || len(d.topics) != len(s.Topics) {
			t.Fatalf("scan: session %s facets disagree with the manifest: %+v vs %+v", s.ID, d, s)
		}
	}
}

// pred is a query evaluated by brute force on one session.
type pred func(d *bruteDoc) bool

func word(w string) pred {
	toks := bruteTokens(w)
	return func(d *bruteDoc) bool {
		for _, tk := range toks {
			if !d.words[tk] {
				return false
			}
		}
		return true
	}
}
func allOf(ps ...pred) pred {
	return func(d *bruteDoc) bool {
		for _, p := range ps {
			if !p(d) {
				return false
			}
		}
		return true
	}
}
func anyOf(ps ...pred) pred {
	return func(d *bruteDoc) bool {
		for _, p := range ps {
			if p(d) {
				return true
			}
		}
		return false
	}
}
func not(p pred) pred          { return func(d *bruteDoc) bool { return !p(d) } }
func hasTag(v string) pred     { return func(d *bruteDoc) bool { return d.tags[facetValue(v)] } }
func hasTopic(v string) pred   { return func(d *bruteDoc) bool { return d.topics[facetValue(v)] } }
func isStatus(v string) pred   { return func(d *bruteDoc) bool { return d.status == facetValue(v) } }
func isCategory(v string) pred { return func(d *bruteDoc) bool { return d.category == facetValue(v) } }
func isSub(v string) pred      { return func(d *bruteDoc) bool { return d.sub == facetValue(v) } }
func inMonth(ym string) pred {
	return func(d *bruteDoc) bool { return !d.start.IsZero() && d.start.Format("2006-01") == ym }
}

// after is inclusive, before exclusive (the grammar's documentation).
func after(day string) pred {
	return func(d *bruteDoc) bool { return !d.start.IsZero() && d.start.Format("2006-01-02") >= day }
}
func before(day string) pred {
	return func(d *bruteDoc) bool { return !d.start.IsZero() && d.start.Format("2006-01-02") < day }
}

func (c bruteCorpus) match(p pred) []string {
	var ids []string
	for id, d := range c {
		if p(d) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// ---------------------------------------------------------------- the mount side

// escapeFacet is search/README.md's escaping of a facet value as a name:
// '/', '%', NUL and bytes that are not UTF-8 as %XX (upper-case hex), and a
// leading '.' too.
func escapeFacet(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); {
		r, size := utf8.DecodeRuneInString(v[i:])
		c := v[i]
		if (r == utf8.RuneError && size == 1) || c == '/' || c == '%' || c == 0 || (c == '.' && i == 0) {
			fmt.Fprintf(&b, "%%%02X", c)
			i++
			continue
		}
		b.WriteString(v[i : i+size])
		i += size
	}
	return b.String()
}

const resultsJSON = ".results.json"

// linkNames lists the session links of a result or facet dir in the order
// readdir returns them (the relevance order for search/), leaving out
// .results.json and, if dirsToo is false, subdirectories.
func linkNames(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	for _, n := range readNames(t, dir) {
		if n == resultsJSON {
			continue
		}
		fi, err := os.Lstat(filepath.Join(dir, n))
		if err != nil {
			t.Fatalf("lstat %s/%s (listed): %v", dir, n, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			out = append(out, n)
		}
	}
	return out
}

// subdirNames lists the directories in dir, sorted.
func subdirNames(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	for _, n := range readNames(t, dir) {
		fi, err := os.Lstat(filepath.Join(dir, n))
		if err != nil {
			t.Fatalf("lstat %s/%s (listed): %v", dir, n, err)
		}
		if fi.IsDir() {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func sortedCopy(xs []string) []string {
	out := slices.Clone(xs)
	sort.Strings(out)
	return out
}

// diffSets describes how got differs from want (both sorted), or "".
func diffSets(got, want []string) string {
	g, w := map[string]bool{}, map[string]bool{}
	for _, x := range got {
		g[x] = true
	}
	for _, x := range want {
		w[x] = true
	}
	var extra, missing []string
	for _, x := range got {
		if !w[x] {
			extra = append(extra, x)
		}
	}
	for _, x := range want {
		if !g[x] {
			missing = append(missing, x)
		}
	}
	if len(extra) == 0 && len(missing) == 0 && len(got) == len(want) {
		return ""
	}
	clip := func(xs []string) []string {
		if len(xs) > 5 {
			return append(xs[:5:5], "...")
		}
		return xs
	}
	return fmt.Sprintf("got %d, want %d; %d extra %q, %d missing %q", len(got), len(want), len(extra), clip(extra), len(missing), clip(missing))
}

// checkLinks checks that every link in dir points depth levels up into
// sessions/<id>, and that the first few resolve to that session's directory
// inside the mount (the rest differ only in the id).
func checkLinks(t testing.TB, m *Mount, dir string, ids []string, depth int) {
	t.Helper()
	want := strings.Repeat("../", depth) + "sessions/"
	for i, id := range ids {
		p := filepath.Join(dir, id)
		target, err := os.Readlink(p)
		if err != nil {
			t.Fatalf("readlink %s: %v", p, err)
		}
		if target != want+id {
			t.Fatalf("%s -> %q, want %q", p, target, want+id)
		}
		if i >= 10 {
			continue
		}
		resolved, err := filepath.EvalSymlinks(p)
		if err != nil {
			t.Fatalf("%s does not resolve: %v", p, err)
		}
		if resolved != m.Path("sessions", id) {
			t.Fatalf("%s resolves to %s, outside %s", p, resolved, m.Path("sessions"))
		}
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			t.Fatalf("%s: stat through the link: %v", p, err)
		}
	}
}

type resultRow struct {
	Rank      int     `json:"rank"`
	ID        string  `json:"id"`
	Name      string  `json:"name"`
	Score     float64 `json:"score"`
	StartTime string  `json:"startTime"`
	Snippet   string  `json:"snippet"`
}

// readResults reads a query's .results.json, insisting on every documented key.
func readResults(t testing.TB, dir string) []resultRow {
	t.Helper()
	raw := mustRead(t, filepath.Join(dir, resultsJSON))
	var generic []map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatalf("%s/%s is not a JSON array: %v\n%.500s", dir, resultsJSON, err, raw)
	}
	for i, row := range generic {
		for _, k := range []string{"rank", "id", "name", "score", "startTime", "snippet"} {
			if _, ok := row[k]; !ok {
				t.Fatalf("%s/%s row %d lacks %q: %v", dir, resultsJSON, i, k, row)
			}
		}
	}
	var rows []resultRow
	if err := json.Unmarshal(raw, &rows); err != nil {
		t.Fatalf("%s/%s: %v", dir, resultsJSON, err)
	}
	return rows
}

// cliSearch runs `taskerfs search --json` and returns the ranked ids.
func cliSearch(t testing.TB, dataDir, q string) []string {
	t.Helper()
	out, err := exec.Command(taskerfsBin, "search", "--data", dataDir, "--json", "--", q).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("taskerfs search %q: %v\n%s", q, err, stderr)
	}
	var hits []struct{ SessionID string }
	if err := json.Unmarshal(out, &hits); err != nil {
		t.Fatalf("taskerfs search --json %q: %v\n%.500s", q, err, out)
	}
	ids := make([]string, len(hits))
	for i, h := range hits {
		ids[i] = h.SessionID
	}
	return ids
}

// cliSearchTable runs `taskerfs search` without --json and returns the id
// column of its table.
func cliSearchTable(t testing.TB, dataDir, q string) []string {
	t.Helper()
	out := run(t, "", taskerfsBin, "search", "--data", dataDir, "--", q)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "RANK") {
		t.Fatalf("taskerfs search %q: no header:\n%s", q, out)
	}
	var ids []string
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < 2 {
			t.Fatalf("taskerfs search %q: bad line %q", q, l)
		}
		ids = append(ids, f[1])
	}
	return ids
}

// ---------------------------------------------------------------- dataset

// searchPlants are planted words and the share of sessions that get them.
var searchPlants = []gen.Plant{
	{Word: "zanzibar", Share: 0.30}, {Word: "quokka", Share: 0.25},
	{Word: "vermilion", Share: 0.40}, {Word: "obsidian", Share: 0.10},
	{Word: "xylograph", Share: 0.02},
}

// oddSession is a hand-made session whose facet values need escaping.
type oddSession struct {
	id, name, category, sub, start string
	tags, topics                   []string
}

var oddSessions = []oddSession{
	{id: "odd-slash", name: "Escaping slashes zanzibar", category: "R&D/Labs", sub: "x/y",
		start: "2024-03-05T10:00:00.000Z", tags: []string{"ci/cd", "100%", "Mixed Case"}, topics: []string{"a/b testing", ".dotfiles"}},
	{id: "odd-dot", name: "Leading dots", category: ".hidden", sub: "50%",
		start: "2024-03-31T23:59:59.999Z", tags: []string{".profile", "café", "ci/cd"}, topics: []string{"naïve/unicode"}},
	{id: "odd-spaces", name: "Spaces everywhere quokka", category: "Development", sub: "Back End",
		start: "2024-04-01T00:00:00.000Z", tags: []string{"  padded  ", "deep-work"}, topics: []string{"search"}},
}

func writeOddSessions(t testing.TB, root string) {
	t.Helper()
	for _, o := range oddSessions {
		dir := mustMkdirAll(t, filepath.Join(root, "sessions", o.id))
		md, _ := json.MarshalIndent(map[string]any{"id": o.id, "name": o.name, "description": "hand made session",
			"status": "completed", "category": o.category, "subCategory": o.sub, "startTime": o.start, "tags": o.tags}, "", "  ")
		mustWrite(t, filepath.Join(dir, "metadata.json"), md)
		var topics []map[string]any
		for _, tp := range o.topics {
			topics = append(topics, map[string]any{"name": tp, "confidence": 0.9})
		}
		shots, _ := json.Marshal([]map[string]any{{"id": o.id + "-s1", "aiAnalysis": map[string]any{
			"summary": "looking at escapes", "detectedEntities": map[string]any{"topics": topics}}}})
		mustMkdirAll(t, filepath.Join(dir, "screenshots"))
		mustWrite(t, filepath.Join(dir, "screenshots", "chunk-000.json"), shots)
	}
}

// searchVocabulary is gen's vocabulary followed by a long tail of rare
// words: prose draws early words most often, so the tail words each occur
// in only part of the sessions and give word queries something to select.
var searchVocabulary = func() []string {
	v := slices.Clone(gen.DefaultVocabulary)
	for i := 0; i < 3000; i++ {
		v = append(v, fmt.Sprintf("lex%04d", i))
	}
	return v
}()

// searchDataset generates sessions in both layouts plus the odd ones under
// one root.
func searchDataset(t testing.TB, perLayout int) (string, []gen.Manifest) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "src")
	var ms []gen.Manifest
	for i, layout := range []gen.Layout{gen.LayoutSeed, gen.LayoutApp} {
		opts := gen.Options{Sessions: perLayout, Screenshots: 12, AudioSegments: 3, Seed: uint64(11 + i),
			JSONOnly: true, Layout: layout, Plant: searchPlants, Vocabulary: searchVocabulary}
		m, err := gen.Generate(root, opts)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	writeOddSessions(t, root)
	return root, ms
}

// pickBy returns the key of counts whose count is closest to target.
func pickBy(counts map[string]int, target int, skip ...string) string {
	best, bestDiff := "", math.MaxInt
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if slices.Contains(skip, k) {
			continue
		}
		if d := counts[k] - target; max(d, -d) < bestDiff {
			best, bestDiff = k, max(d, -d)
		}
	}
	return best
}

// ---------------------------------------------------------------- tests

// TestSearchEquivalence: every kind of query and every facet directory
// lists exactly the sessions a brute-force scan of the files selects.
func TestSearchEquivalence(t *testing.T) {
	requireMountable(t)
	src, manifests := searchDataset(t, 150)
	corpus := scanSessions(t, src)
	var planted []string
	for _, p := range searchPlants {
		planted = append(planted, p.Word)
	}
	for _, m := range manifests {
		checkScanAgainstManifest(t, corpus, m, planted)
	}

	m := mountFS(t, newDataDir(t))
	mustMkdirAll(t, m.Path("sessions"))
	run(t, "", "cp", "-r", filepath.Join(src, "sessions")+"/.", m.Path("sessions"))

	// Pick vocabulary words, tags and topics that select some but not all
	// sessions, so that AND, OR and NOT have something to tell apart.
	n := len(corpus)
	wordDF, tagDF, topicDF := map[string]int{}, map[string]int{}, map[string]int{}
	days := map[string]int{}
	for _, d := range corpus {
		for _, w := range searchVocabulary {
			if d.words[w] {
				wordDF[w]++
			}
		}
		for tg := range d.tags {
			tagDF[tg]++
		}
		for tp := range d.topics {
			topicDF[tp]++
		}
		days[d.start.Format("2006-01-02")]++
	}
	v1 := pickBy(wordDF, n/2)
	v2 := pickBy(wordDF, n/3, v1)
	tag1, tag2 := pickBy(tagDF, n/8), pickBy(tagDF, n/10, pickBy(tagDF, n/8))
	topic1 := pickBy(topicDF, n/6)
	t.Logf("%d sessions; vocabulary words %s (%d) and %s (%d); tags %s, %s; topic %s", n, v1, wordDF[v1], v2, wordDF[v2], tag1, tag2, topic1)
	// A day on which some session started, to test that after: includes
	// it and before: excludes it.
	edge := pickBy(days, 2)

	type query struct {
		q    string
		want pred
	}
	queries := []query{
		{"zanzibar", word("zanzibar")},
		{"ZANZIBAR", word("zanzibar")},
		{"xylograph", word("xylograph")},
		{"nosuchwordanywhere", word("nosuchwordanywhere")},
		{v1, word(v1)},
		{v1 + " " + v2, allOf(word(v1), word(v2))},
		{"zanzibar quokka", allOf(word("zanzibar"), word("quokka"))},
		{"zanzibar AND quokka", allOf(word("zanzibar"), word("quokka"))},
		{"zanzibar OR quokka", anyOf(word("zanzibar"), word("quokka"))},
		{"zanzibar OR quokka OR obsidian", anyOf(word("zanzibar"), word("quokka"), word("obsidian"))},
		{"zanzibar -quokka", allOf(word("zanzibar"), not(word("quokka")))},
		{"zanzibar NOT quokka", allOf(word("zanzibar"), not(word("quokka")))},
		{"-vermilion", not(word("vermilion"))},
		{"NOT vermilion", not(word("vermilion"))},
		{"-vermilion -zanzibar", allOf(not(word("vermilion")), not(word("zanzibar")))},
		// Words side by side are ANDed and OR binds tighter.
		{"vermilion zanzibar OR quokka", allOf(word("vermilion"), anyOf(word("zanzibar"), word("quokka")))},
		{"zanzibar OR quokka vermilion", allOf(anyOf(word("zanzibar"), word("quokka")), word("vermilion"))},
		{"(zanzibar OR quokka) -(vermilion OR obsidian)",
			allOf(anyOf(word("zanzibar"), word("quokka")), not(anyOf(word("vermilion"), word("obsidian"))))},
		{"((zanzibar vermilion) OR (quokka -vermilion)) " + v1,
			allOf(anyOf(allOf(word("zanzibar"), word("vermilion")), allOf(word("quokka"), not(word("vermilion")))), word(v1))},
		{"the zanzibar", word("zanzibar")},
		{"zanzibar " + v1 + " -" + v2, allOf(word("zanzibar"), word(v1), not(word(v2)))},
		{"tag:" + tag1, hasTag(tag1)},
		{"tag:" + strings.ToUpper(tag1), hasTag(tag1)},
		{"TAG:" + tag1, hasTag(tag1)},
		{"tag:" + tag1 + " OR tag:" + tag2, anyOf(hasTag(tag1), hasTag(tag2))},
		{"tag:" + tag1 + " -tag:" + tag2, allOf(hasTag(tag1), not(hasTag(tag2)))},
		{"tag:ci%2Fcd", hasTag("ci/cd")},
		{"tag:100%25", hasTag("100%")},
		{"tag:%2Eprofile", hasTag(".profile")},
		{"tag:café", hasTag("café")},
		{"topic:" + topic1, hasTopic(topic1)},
		{"topic:a%2Fb", hasTopic("a/b")},
		{"topic:" + topic1 + " zanzibar", allOf(hasTopic(topic1), word("zanzibar"))},
		{"status:completed", isStatus("completed")},
		{"status:active OR status:paused", anyOf(isStatus("active"), isStatus("paused"))},
		{"-status:completed", not(isStatus("completed"))},
		{"category:development", isCategory("development")},
		{"category:Development sub:backend", allOf(isCategory("development"), isSub("backend"))},
		{"sub:debugging OR sub:ui", anyOf(isSub("debugging"), isSub("ui"))},
		{"category:r&d%2Flabs", isCategory("r&d/labs")},
		{"category:R&D%2FLabs sub:x%2Fy", allOf(isCategory("r&d/labs"), isSub("x/y"))},
		{"month:2024-03", inMonth("2024-03")},
		{"month:2025-06 OR month:2025-07", anyOf(inMonth("2025-06"), inMonth("2025-07"))},
		{"after:2025-01-01", after("2025-01-01")},
		{"before:2024-04-01", before("2024-04-01")},
		{"after:2024-06-01 before:2024-07-01", allOf(after("2024-06-01"), before("2024-07-01"))},
		{"after:" + edge, after(edge)},
		{"before:" + edge, before(edge)},
		{"after:" + edge + " before:" + edge, allOf(after(edge), before(edge))},
		{"zanzibar after:2024-06-01 -status:completed", allOf(word("zanzibar"), after("2024-06-01"), not(isStatus("completed")))},
		{"(tag:" + tag1 + " OR topic:" + topic1 + ") month:2024-05 OR month:2025-05",
			allOf(anyOf(hasTag(tag1), hasTopic(topic1)), anyOf(inMonth("2024-05"), inMonth("2025-05")))},
		{"(quokka OR status:interrupted) (category:design OR -vermilion) before:2025-06-01",
			allOf(anyOf(word("quokka"), isStatus("interrupted")), anyOf(isCategory("design"), not(word("vermilion"))), before("2025-06-01"))},
	}
	for _, s := range []string{"completed", "interrupted", "paused", "active"} {
		queries = append(queries, query{"status:" + s, isStatus(s)})
	}

	nontrivial := 0
	for _, tc := range queries {
		want := corpus.match(tc.want)
		if len(want) > 0 && len(want) < n {
			nontrivial++
		}
		dir := m.Path("search", tc.q)
		got := linkNames(t, dir)
		if d := diffSets(sortedCopy(got), want); d != "" {
			t.Errorf("search/%s: %s%s", tc.q, d, explainDiff(t, src, tc.q, sortedCopy(got), want))
			continue
		}
		checkLinks(t, m, dir, got, 2)
		rows := readResults(t, dir)
		if len(rows) != len(got) {
			t.Errorf("search/%s: %d links but %d rows in %s", tc.q, len(got), len(rows), resultsJSON)
			continue
		}
		for i, r := range rows {
			d := corpus[r.ID]
			switch {
			case r.ID != got[i]:
				t.Errorf("search/%s: %s row %d is %s, the listing has %s there", tc.q, resultsJSON, i, r.ID, got[i])
			case r.Rank != i+1:
				t.Errorf("search/%s: row %d has rank %d", tc.q, i, r.Rank)
			case i > 0 && r.Score > rows[i-1].Score:
				t.Errorf("search/%s: not in relevance order: rank %d scores %v > rank %d %v", tc.q, r.Rank, r.Score, i, rows[i-1].Score)
			case r.Name != d.name || r.StartTime != d.startRaw:
				t.Errorf("search/%s: row %d: name %q startTime %q, metadata.json has %q %q", tc.q, i, r.Name, r.StartTime, d.name, d.startRaw)
			}
		}
		if cli := cliSearch(t, m.Data, tc.q); !slices.Equal(cli, got) {
			t.Errorf("taskerfs search %q while mounted: %s differs from the listing", tc.q, diffOrder(cli, got))
		}
	}
	if nontrivial < len(queries)*3/4 {
		t.Errorf("only %d of %d queries select some but not all sessions: the dataset does not test much", nontrivial, len(queries))
	}
	// A plain `ls` agrees with the raw readdir.
	if out := run(t, "", "ls", m.Path("search", "quokka")); len(strings.Fields(out)) != len(corpus.match(word("quokka"))) {
		t.Errorf("ls search/quokka printed %d names, want %d", len(strings.Fields(out)), len(corpus.match(word("quokka"))))
	}

	checkFacets(t, m, corpus)

	// The CLI answers the same after unmount, from the data dir.
	ranked := map[string][]string{}
	for _, tc := range queries {
		ranked[tc.q] = linkNames(t, m.Path("search", tc.q))
	}
	m.Unmount()
	for _, tc := range queries[:12] {
		if cli := cliSearch(t, m.Data, tc.q); !slices.Equal(cli, ranked[tc.q]) {
			t.Errorf("taskerfs search --json %q unmounted: %s", tc.q, diffOrder(cli, ranked[tc.q]))
		}
		if cli := cliSearchTable(t, m.Data, tc.q); !slices.Equal(cli, ranked[tc.q]) {
			t.Errorf("taskerfs search %q unmounted: %s", tc.q, diffOrder(cli, ranked[tc.q]))
		}
	}
}

// explainDiff tells, for the first few sessions on which the mount and the
// brute force disagree, which of their files hold the query's words.
func explainDiff(t testing.TB, src, q string, got, want []string) string {
	t.Helper()
	var b strings.Builder
	shown := 0
	for _, id := range append(slices.Clone(got), want...) {
		if slices.Contains(got, id) == slices.Contains(want, id) || shown == 3 {
			continue
		}
		shown++
		fmt.Fprintf(&b, "\n  %s (listed %v):", id, slices.Contains(got, id))
		dir := filepath.Join(src, "sessions", id)
		filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			raw, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			words := map[string]bool{}
			for _, w := range bruteTokens(string(unwrapEnvelope(t, raw))) {
				words[w] = true
			}
			for _, w := range bruteTokens(q) {
				if words[w] {
					rel, _ := filepath.Rel(dir, p)
					fmt.Fprintf(&b, " %s in %s;", w, rel)
				}
			}
			return nil
		})
	}
	return b.String()
}

// diffOrder says where two rankings first differ.
func diffOrder(got, want []string) string {
	for i := 0; i < min(len(got), len(want)); i++ {
		if got[i] != want[i] {
			return fmt.Sprintf("first difference at rank %d: %s vs %s (%d vs %d results)", i+1, got[i], want[i], len(got), len(want))
		}
	}
	return fmt.Sprintf("%d vs %d results", len(got), len(want))
}

// checkFacets compares every facet directory with the brute-force sets.
func checkFacets(t *testing.T, m *Mount, corpus bruteCorpus) {
	t.Helper()
	type facet struct {
		dir    string
		values func(d *bruteDoc) []string
	}
	one := func(v string) []string {
		if v == "" {
			return nil
		}
		return []string{v}
	}
	keys := func(set map[string]bool) []string {
		var out []string
		for k := range set {
			out = append(out, k)
		}
		return out
	}
	facets := []facet{
		{"by-tag", func(d *bruteDoc) []string { return keys(d.tags) }},
		{"by-topic", func(d *bruteDoc) []string { return keys(d.topics) }},
		{"by-status", func(d *bruteDoc) []string { return one(d.status) }},
		{"by-date", func(d *bruteDoc) []string { return one(d.start.Format("2006-01")) }},
		{"by-category", func(d *bruteDoc) []string { return one(d.category) }},
	}
	for _, f := range facets {
		want := map[string][]string{} // escaped name -> ids
		for id, d := range corpus {
			for _, v := range f.values(d) {
				want[escapeFacet(v)] = append(want[escapeFacet(v)], id)
			}
		}
		var names []string
		for name := range want {
			names = append(names, name)
		}
		sort.Strings(names)
		if d := diffSets(sortedCopy(subdirNames(t, m.Path(f.dir))), names); d != "" {
			t.Errorf("%s/ values: %s", f.dir, d)
		}
		for _, name := range names {
			dir := m.Path(f.dir, name)
			got := linkNames(t, dir)
			if d := diffSets(sortedCopy(got), sortedCopy(want[name])); d != "" {
				t.Errorf("%s/%s: %s", f.dir, name, d)
				continue
			}
			checkLinks(t, m, dir, got, 2)
		}
	}
	// by-category/<category>/<sub>/ three levels down.
	subs := map[string]map[string][]string{}
	for id, d := range corpus {
		if d.category == "" || d.sub == "" {
			continue
		}
		c, s := escapeFacet(d.category), escapeFacet(d.sub)
		if subs[c] == nil {
			subs[c] = map[string][]string{}
		}
		subs[c][s] = append(subs[c][s], id)
	}
	for c, bySub := range subs {
		var names []string
		for s := range bySub {
			names = append(names, s)
		}
		sort.Strings(names)
		if d := diffSets(subdirNames(t, m.Path("by-category", c)), names); d != "" {
			t.Errorf("by-category/%s/ subcategories: %s", c, d)
		}
		for s, ids := range bySub {
			dir := m.Path("by-category", c, s)
			got := linkNames(t, dir)
			if d := diffSets(sortedCopy(got), sortedCopy(ids)); d != "" {
				t.Errorf("by-category/%s/%s: %s", c, s, d)
				continue
			}
			checkLinks(t, m, dir, got, 3)
		}
	}
	// The README documents the escaping that the names above assume.
	readme := string(mustRead(t, m.Path("search", "README.md")))
	if !strings.Contains(readme, "%2F") {
		t.Errorf("search/README.md does not say how '/' is escaped:\n%s", readme)
	}
}

// rywMetadata is a minimal metadata.json for read-your-writes tests.
func rywMetadata(id, word, tag, status string) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "name": "Session " + word, "description": "about " + word,
		"status": status, "category": "Testing", "subCategory": "Ryw", "startTime": "2025-02-03T04:05:06.000Z", "tags": []string{tag}})
	return b
}

// expectMembers checks, by readdir and by lookup, that search/<q> and a
// facet dir hold exactly ids; it looks the names up first so that any entry
// the kernel kept from an earlier round would show.
func expectMembers(t *testing.T, m *Mount, dir string, ids []string, absent ...string) {
	t.Helper()
	for _, id := range absent {
		if _, err := os.Lstat(filepath.Join(dir, id)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("lstat %s/%s: %v, want ENOENT (stale entry)", dir, id, err)
		}
	}
	for _, id := range ids {
		if _, err := os.Lstat(filepath.Join(dir, id)); err != nil {
			t.Fatalf("lstat %s/%s: %v", dir, id, err)
		}
	}
	got, err := linkNamesErr(dir)
	if len(ids) == 0 && errors.Is(err, fs.ErrNotExist) {
		return // a facet value with no session left is gone
	}
	if err != nil {
		t.Fatalf("list %s: %v", dir, err)
	}
	if d := diffSets(sortedCopy(got), sortedCopy(ids)); d != "" {
		t.Fatalf("%s: %s", dir, d)
	}
}

// linkNamesErr is readdir without failing the test.
func linkNamesErr(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	return slices.DeleteFunc(names, func(n string) bool { return n == resultsJSON }), err
}

// TestSearchReadYourWrites: writes, rewrites, renames and removals reach
// search/ and the facets at once, with no sleep, many times in a row.
func TestSearchReadYourWrites(t *testing.T) {
	requireMountable(t)
	m := mountFS(t, newDataDir(t))
	sessions := mustMkdirAll(t, m.Path("sessions"))
	// A bystander session keeps every facet non-empty.
	mustMkdirAll(t, filepath.Join(sessions, "bystander"))
	mustWrite(t, filepath.Join(sessions, "bystander", "metadata.json"), rywMetadata("bystander", "bystanderword", "bystag", "completed"))

	rounds := 100
	if testing.Short() {
		rounds = 5
	}
	for i := 0; i < rounds; i++ {
		id, moved := fmt.Sprintf("ryw-%03d", i), fmt.Sprintf("moved-%03d", i)
		w1, w2, w3 := fmt.Sprintf("firstword%d", i), fmt.Sprintf("secondword%d", i), fmt.Sprintf("thirdword%d", i)
		tag1, tag2, tag3 := fmt.Sprintf("tag-a%d", i), fmt.Sprintf("tag-b%d", i), fmt.Sprintf("tag-c%d", i)
		dir := filepath.Join(sessions, id)
		md := filepath.Join(dir, "metadata.json")

		// Prime the kernel with lookups of names that will change.
		for _, w := range []string{w1, w2, w3} {
			expectMembers(t, m, m.Path("search", w), nil, id, moved)
		}

		// Create.
		mustMkdirAll(t, dir)
		mustWrite(t, md, rywMetadata(id, w1, tag1, "active"))
		expectMembers(t, m, m.Path("search", w1), []string{id})
		expectMembers(t, m, m.Path("by-tag", tag1), []string{id})
		expectMembers(t, m, m.Path("search", "tag:"+tag1+" "+w1), []string{id})
		if rows := readResults(t, m.Path("search", w1)); len(rows) != 1 || rows[0].ID != id {
			t.Fatalf("round %d: %s after create: %+v", i, resultsJSON, rows)
		}

		// Editor-style save: a temp file renamed over the original.
		tmp := md + ".swp"
		mustWrite(t, tmp, rywMetadata(id, w2, tag2, "paused"))
		if err := os.Rename(tmp, md); err != nil {
			t.Fatal(err)
		}
		expectMembers(t, m, m.Path("search", w1), nil, id)
		expectMembers(t, m, m.Path("search", w2), []string{id})
		expectMembers(t, m, m.Path("by-tag", tag1), nil, id)
		expectMembers(t, m, m.Path("by-tag", tag2), []string{id})
		if rows := readResults(t, m.Path("search", w1)); len(rows) != 0 {
			t.Fatalf("round %d: %s of the old word after rename-over: %+v", i, resultsJSON, rows)
		}

		// In-place truncate and write.
		f, err := os.OpenFile(md, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(rywMetadata(id, w3, tag3, "completed")); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		expectMembers(t, m, m.Path("search", w2), nil, id)
		expectMembers(t, m, m.Path("search", w3), []string{id})
		expectMembers(t, m, m.Path("by-tag", tag2), nil, id)
		expectMembers(t, m, m.Path("by-tag", tag3), []string{id})
		expectMembers(t, m, m.Path("search", "status:completed "+w3), []string{id})

		// Rename the session: results follow the new id.
		if err := os.Rename(dir, filepath.Join(sessions, moved)); err != nil {
			t.Fatal(err)
		}
		expectMembers(t, m, m.Path("search", w3), []string{moved}, id)
		expectMembers(t, m, m.Path("by-tag", tag3), []string{moved}, id)
		expectMembers(t, m, m.Path("by-status", "completed"), []string{"bystander", moved}, id)
		checkLinks(t, m, m.Path("search", w3), []string{moved}, 2)

		// Remove it.
		run(t, "", "rm", "-rf", filepath.Join(sessions, moved))
		expectMembers(t, m, m.Path("search", w3), nil, moved, id)
		expectMembers(t, m, m.Path("by-tag", tag3), nil, moved)
		expectMembers(t, m, m.Path("by-status", "completed"), []string{"bystander"}, moved)
		expectMembers(t, m, m.Path("by-category", "testing", "ryw"), []string{"bystander"}, moved)
		if _, err := os.Lstat(m.Path("by-tag", tag3)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("round %d: by-tag/%s still exists after its only session was removed: %v", i, tag3, err)
		}
	}
	m.Alive()
}

// TestSearchBadInput: queries that do not parse do not exist; hostile JSON
// is stored verbatim, indexed as far as it makes sense, and the daemon lives.
func TestSearchBadInput(t *testing.T) {
	requireMountable(t)
	m := mountFS(t, newDataDir(t))
	sessions := mustMkdirAll(t, m.Path("sessions"))

	for _, q := range []string{"(unbalanced", "unbalanced)", "foo OR", "OR foo", "foo AND", "NOT", "-", "tag:",
		"month:2024-13", "month:24-01", "after:2024-1-1", "before:yesterday", "bogus:field", `"unterminated`} {
		p := m.Path("search", q)
		if _, err := os.Stat(p); !errors.Is(err, syscall.ENOENT) {
			t.Errorf("stat search/%s: %v, want ENOENT", q, err)
		}
		if err := os.Mkdir(p, 0o755); !errors.Is(err, syscall.EROFS) {
			t.Errorf("mkdir search/%s: %v, want EROFS (search/ is read-only)", q, err)
		}
		if err := os.Mkdir(m.Path("saved", q), 0o755); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("mkdir saved/%s: %v, want EINVAL", q, err)
		}
	}
	for _, name := range readNames(t, m.Path("search")) {
		if name != "README.md" {
			t.Errorf("search/ lists %q after failed mkdirs", name)
		}
	}
	if names := readNames(t, m.Path("saved")); len(names) != 0 {
		t.Errorf("saved/ lists %q after failed mkdirs", names)
	}

	huge := strings.Repeat("lorem ipsum dolor ", 10<<20/18)
	files := []struct {
		session, file string
		content       []byte
		findable      []string // queries that must find the session
	}{
		{"bad-malformed", "metadata.json", []byte(`{"name": "malformedword", "tags": ["x"`), nil},
		{"bad-notjson", "summary.json", []byte("\x00\xff\xfe not json at all \x89PNG"), nil},
		{"bad-huge", "metadata.json", []byte(`{"name": "hugeword session", "description": "` + huge + ` hugetailword", "tags": ["huge"]}`),
			[]string{"hugeword", "hugeword ipsum", "tag:huge"}},
		{"bad-longtoken", "metadata.json", []byte(`{"name": "longtokenword", "description": "` + strings.Repeat("x", 10<<20) + `"}`),
			[]string{"longtokenword"}},
		{"bad-deep", "metadata.json", []byte(`{"name": "deepword", "x": ` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}`), nil},
		{"bad-deepopen", "summary.json", []byte(strings.Repeat("[", 100000)), nil},
		{"bad-types", "metadata.json", []byte(`{"name": "wrongtypesword", "tags": "solo-tag-string", "startTime": 1717243200000, "status": 7, "category": ["x"], "description": {"a": 1}}`),
			[]string{"wrongtypesword", "tag:solo-tag-string", "month:2024-06", "wrongtypesword after:2024-06-01 before:2024-06-02"}},
		{"bad-types", "screenshots/chunk-000.json", []byte(`[{"aiAnalysis": "a string"}, 5, null, {"aiAnalysis": {"summary": 12, "extractedText": "typedchunkword"}}]`),
			[]string{"typedchunkword"}},
		{"bad-types", "transcription.json", []byte(`{"unexpected": ["shape"]}`), nil},
	}
	sums := map[string][32]byte{}
	for _, f := range files {
		p := filepath.Join(sessions, f.session, f.file)
		mustMkdirAll(t, filepath.Dir(p))
		mustWrite(t, p, f.content)
		sums[p] = sha256.Sum256(f.content)
	}
	m.Alive()
	for p, sum := range sums {
		if got := sha256.Sum256(mustRead(t, p)); got != sum {
			t.Errorf("%s does not read back verbatim", p)
		}
	}
	for _, f := range files {
		for _, q := range f.findable {
			if got := linkNames(t, m.Path("search", q)); !slices.Contains(got, f.session) {
				t.Errorf("search/%s: %v, want it to include %s", q, got, f.session)
			}
		}
	}
	// Text past the indexing cap may be dropped; the listing must still work.
	for _, q := range []string{"malformedword", "deepword", "hugetailword", "-nothing"} {
		t.Logf("search/%s: %v", q, linkNames(t, m.Path("search", q)))
	}
	for _, d := range []string{"by-tag", "by-status", "by-category", "by-date", "by-topic"} {
		readNames(t, m.Path(d))
	}
	m.Alive()
	m.Remount()
	for p, sum := range sums {
		if got := sha256.Sum256(mustRead(t, p)); got != sum {
			t.Errorf("%s does not read back verbatim after remount", p)
		}
	}
	if got := linkNames(t, m.Path("search", "wrongtypesword")); !slices.Equal(got, []string{"bad-types"}) {
		t.Errorf("search/wrongtypesword after remount: %v", got)
	}
}

// TestSearchSavedQueries: mkdir saved/<q> saves, rmdir forgets, a lookup
// saves nothing, saved queries are listed in saved/ and search/ and
// survive a remount; search/ itself takes no mkdir or rmdir.
func TestSearchSavedQueries(t *testing.T) {
	requireMountable(t)
	m := mountFS(t, newDataDir(t))
	mustMkdirAll(t, m.Path("sessions", "s1"))
	mustWrite(t, m.Path("sessions", "s1", "metadata.json"), rywMetadata("s1", "savedword", "saved-tag", "completed"))

	saved := func(dir string) []string {
		t.Helper()
		var out []string
		for _, n := range readNames(t, m.Path(dir)) {
			if n != "README.md" {
				out = append(out, n)
			}
		}
		sort.Strings(out)
		return out
	}
	expectSaved := func(when string, want ...string) {
		t.Helper()
		for _, dir := range []string{"search", "saved"} {
			if got := saved(dir); !slices.Equal(got, want) {
				t.Fatalf("%s: ls %s/ = %q, want %q", when, dir, got, want)
			}
		}
	}

	// Lookups, listings and reads of queries never save them.
	for _, q := range []string{"savedword", "tag:saved-tag", "lookedup OR only"} {
		linkNames(t, m.Path("search", q))
		readResults(t, m.Path("search", q))
		if _, err := os.Stat(m.Path("search", q, "s1")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
	}
	run(t, "", "ls", "-la", m.Path("search", "savedword")+"/")
	expectSaved("after lookups")

	qA, qB := "savedword tag:saved-tag", "(savedword OR other) -status:active"
	for _, q := range []string{qA, qB} {
		if err := os.Mkdir(m.Path("saved", q), 0o755); err != nil {
			t.Fatalf("mkdir saved/%s: %v", q, err)
		}
	}
	expectSaved("after mkdir", qB, qA)
	if err := os.Mkdir(m.Path("saved", qA), 0o755); !errors.Is(err, fs.ErrExist) {
		t.Errorf("mkdir of a saved query again: %v, want EEXIST", err)
	}
	for _, dir := range []string{"search", "saved"} {
		if got := linkNames(t, m.Path(dir, qA)); !slices.Equal(got, []string{"s1"}) {
			t.Errorf("saved %s/%s lists %v", dir, qA, got)
		}
	}
	if err := os.Remove(m.Path("search", qB)); !errors.Is(err, syscall.EROFS) {
		t.Errorf("rmdir search/%s: %v, want EROFS (rmdir in saved/)", qB, err)
	}
	if err := os.Remove(m.Path("saved", qB)); err != nil {
		t.Fatalf("rmdir saved/%s: %v", qB, err)
	}
	expectSaved("after rmdir", qA)
	// Forgetting a query leaves the sessions alone, and it can still be looked up.
	if got := linkNames(t, m.Path("search", qB)); !slices.Equal(got, []string{"s1"}) {
		t.Errorf("search/%s after rmdir lists %v", qB, got)
	}
	expectSaved("after a lookup of the forgotten query", qA)

	m.Remount()
	expectSaved("after remount", qA)
	if got := linkNames(t, m.Path("search", qA)); !slices.Equal(got, []string{"s1"}) {
		t.Errorf("saved search/%s after remount lists %v", qA, got)
	}
	if err := os.Remove(m.Path("saved", qA)); err != nil {
		t.Fatalf("rmdir saved/%s: %v", qA, err)
	}
	m.Remount()
	expectSaved("after rmdir and remount")
}
