package index

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cockroachdb/pebble"
)

func meta(name, desc string, extra ...any) []byte {
	m := map[string]any{"name": name, "description": desc}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i].(string)] = extra[i+1]
	}
	b, _ := jsonMarshal(m)
	return b
}

// keysUnderX lists every index key, to check that nothing is left behind.
func keysUnderX(t *testing.T, db *pebble.DB) []string {
	t.Helper()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte("X"), UpperBound: []byte("Y")})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []string
	for ok := it.First(); ok; ok = it.Next() {
		out = append(out, fmt.Sprintf("%q", it.Key()))
	}
	return out
}

func TestSearchBasics(t *testing.T) {
	f := newFixture(t)
	f.put(1, "sessions/s1/metadata.json", meta("OAuth login fix", "Token refresh for OAuth", "tags", []any{"Go"}, "startTime", "2025-10-01T10:00:00Z"))
	f.put(2, "sessions/s2/metadata.json", meta("Design review", "OAuth mentioned once"))
	f.put(3, "sessions/s3/summary.json", mustJSON(t, map[string]any{"narrative": "Nothing relevant"}))

	if got := f.ids("oauth"); !reflect.DeepEqual(got, []string{"s1", "s2"}) {
		t.Fatalf("oauth: %v (s1 has it twice and ranks first)", got)
	}
	hits, err := f.x.Search("oauth")
	if err != nil {
		t.Fatal(err)
	}
	h := hits[0]
	if h.Name != "OAuth login fix" || h.StartTime != "2025-10-01T10:00:00Z" || h.Score <= hits[1].Score {
		t.Fatalf("hit %+v", h)
	}
	if !strings.Contains(h.Snippet, "OAuth") {
		t.Fatalf("snippet %q", h.Snippet)
	}
	if got := f.ids("-oauth"); !reflect.DeepEqual(got, []string{"s3"}) {
		t.Fatalf("-oauth: %v", got)
	}
	if got := f.ids("tag:go"); !reflect.DeepEqual(got, []string{"s1"}) {
		t.Fatalf("tag:go: %v", got)
	}
	if got := f.ids("nosuchword"); len(got) != 0 {
		t.Fatalf("nosuchword: %v", got)
	}
	if _, err := f.x.Search("oauth OR"); !errors.Is(err, ErrBadQuery) {
		t.Fatalf("bad query error %v", err)
	}
	hits, err = f.x.SearchWith("oauth", SearchOptions{Limit: 1, NoSnippets: true})
	if err != nil || len(hits) != 1 || hits[0].SessionID != "s1" || hits[0].Snippet != "" {
		t.Fatalf("limited search %+v %v", hits, err)
	}
}

func TestTiesBySessionID(t *testing.T) {
	f := newFixture(t)
	for _, sid := range []string{"c", "a", "b"} {
		f.put(uint64(sid[0]), "sessions/"+sid+"/metadata.json", meta("same words", "here"))
	}
	if got := f.ids("same"); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Fatalf("ties: %v", got)
	}
}

func TestUpdateReplacesContribution(t *testing.T) {
	f := newFixture(t)
	f.put(1, "sessions/s1/metadata.json", meta("alpha", "beta", "tags", []any{"old"}, "status", "active", "startTime", "2025-01-05"))
	f.put(1, "sessions/s1/metadata.json", meta("gamma", "beta", "tags", []any{"new"}, "status", "completed", "startTime", "2025-02-05"))
	for q, want := range map[string][]string{
		"alpha": {}, "gamma": {"s1"}, "beta": {"s1"}, "tag:old": {}, "tag:new": {"s1"},
		"status:active": {}, "status:completed": {"s1"}, "month:2025-01": {}, "month:2025-02": {"s1"},
	} {
		if got := f.ids(q); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v, want %v", q, got, want)
		}
	}
	tags, _ := f.x.FacetValues("tag")
	months, _ := f.x.FacetValues("month")
	if !reflect.DeepEqual(tags, []string{"new"}) || !reflect.DeepEqual(months, []string{"2025-02"}) {
		t.Fatalf("facets after update: %v %v", tags, months)
	}
	hits, _ := f.x.Search("gamma")
	if hits[0].Name != "gamma" {
		t.Fatalf("name after update %q", hits[0].Name)
	}
	if p, err := f.x.Check(func(fn func(uint64, string, Kind, []byte) error) error {
		return fn(1, "s1", KindMetadata, meta("gamma", "beta", "tags", []any{"new"}, "status", "completed", "startTime", "2025-02-05"))
	}); err != nil || len(p) != 0 {
		t.Fatalf("check: %v %v", p, err)
	}
}

func TestRemoveLeavesNothing(t *testing.T) {
	f := newFixture(t)
	f.put(1, "sessions/s1/metadata.json", meta("alpha", "beta", "tags", []any{"x"}, "category", "work", "subCategory", "code", "startTime", "2025-01-05"))
	f.put(2, "sessions/s1/screenshots/chunk-000.json", envelope(t, map[string]any{"screenshots": []any{
		map[string]any{"aiAnalysis": map[string]any{"summary": "alpha shot", "detectedEntities": map[string]any{"topics": []any{map[string]any{"name": "T"}}}}},
	}}, true))
	f.put(3, "sessions/s2/metadata.json", meta("other", "session"))
	f.remove(2)
	if got := f.ids("shot"); len(got) != 0 {
		t.Fatalf("removed chunk still found: %v", got)
	}
	if got := f.ids("alpha"); !reflect.DeepEqual(got, []string{"s1"}) {
		t.Fatalf("alpha after chunk removal: %v", got)
	}
	f.remove(1)
	for _, q := range []string{"alpha", "tag:x", "category:work", "sub:code", "month:2025-01", "after:2000-01-01"} {
		if got := f.ids(q); len(got) != 0 {
			t.Errorf("%s after removal: %v", q, got)
		}
	}
	if got := f.ids("-alpha"); !reflect.DeepEqual(got, []string{"s2"}) {
		t.Fatalf("session s1 still known: %v", got)
	}
	for _, field := range []string{"tag", "topic", "category", "month", "sub"} {
		if v, err := f.x.FacetValues(field); err != nil || len(v) != 0 {
			t.Errorf("facet %s after removal: %v %v", field, v, err)
		}
	}
	if v, _ := f.x.SubCategories("work"); len(v) != 0 {
		t.Errorf("subcategories after removal: %v", v)
	}
	f.remove(1) // unknown: no-op
	f.remove(3)
	if keys := keysUnderX(t, f.db); len(keys) != 0 {
		t.Fatalf("keys left behind: %v", keys)
	}
	if s, n, _, err := f.x.Stats(); err != nil || s != 0 || n != 0 {
		t.Fatalf("stats %d %d %v", s, n, err)
	}
}

func TestSessionKnownWithoutMetadata(t *testing.T) {
	f := newFixture(t)
	f.put(1, "sessions/s1/transcription.json", []byte("not json at all"))
	hits, err := f.x.Search("-anything")
	if err != nil || len(hits) != 1 || hits[0].SessionID != "s1" || hits[0].Name != "" {
		t.Fatalf("hits %+v %v", hits, err)
	}
}

func TestSameSessionFilesInOneBatch(t *testing.T) {
	f := newFixture(t)
	f.batch(func(b *pebble.Batch) {
		for i, path := range []string{"sessions/s1/metadata.json", "sessions/s1/summary.json", "sessions/s1/audio-insights.json"} {
			sid, kind, _ := Classify(path)
			content := meta("shared name", "x")
			if kind != KindMetadata {
				content = mustJSON(t, map[string]any{"narrative": fmt.Sprintf("word%d shared", i)})
			}
			if err := f.x.UpdateFile(b, uint64(i+1), sid, kind, content); err != nil {
				t.Fatal(err)
			}
		}
	})
	for _, q := range []string{"word1", "word2", "shared"} {
		if got := f.ids(q); !reflect.DeepEqual(got, []string{"s1"}) {
			t.Errorf("%s: %v", q, got)
		}
	}
	if s, n, _, _ := f.x.Stats(); s != 1 || n != 3 {
		t.Fatalf("stats: %d sessions %d files", s, n)
	}
}

func TestAtomicSaveKeepsName(t *testing.T) {
	f := newFixture(t)
	f.put(10, "sessions/s1/metadata.json", meta("first", "x"))
	// An editor writes a new inode and renames it over the old one: the
	// caller indexes the new file and drops the old one in one batch.
	f.batch(func(b *pebble.Batch) {
		if err := f.x.UpdateFile(b, 11, "s1", KindMetadata, meta("second", "x")); err != nil {
			t.Fatal(err)
		}
		if err := f.x.RemoveFile(b, 10); err != nil {
			t.Fatal(err)
		}
	})
	hits, _ := f.x.Search("second")
	if len(hits) != 1 || hits[0].Name != "second" {
		t.Fatalf("hits %+v", hits)
	}
	if got := f.ids("first"); len(got) != 0 {
		t.Fatalf("old name still found: %v", got)
	}
}

func TestRenameBetweenSessions(t *testing.T) {
	f := newFixture(t)
	f.put(1, "sessions/a/summary.json", mustJSON(t, map[string]any{"narrative": "moving words"}))
	f.put(1, "sessions/b/summary.json", mustJSON(t, map[string]any{"narrative": "moving words"}))
	if got := f.ids("moving"); !reflect.DeepEqual(got, []string{"b"}) {
		t.Fatalf("after move: %v", got)
	}
	if got := f.ids("-moving"); len(got) != 0 {
		t.Fatalf("session a still known: %v", got)
	}
	if sid, ok, err := f.x.FileSession(1); sid != "b" || !ok || err != nil {
		t.Fatalf("FileSession: %q %v %v", sid, ok, err)
	}
	if _, ok, err := f.x.FileSession(99); ok || err != nil {
		t.Fatalf("FileSession of unknown: %v %v", ok, err)
	}
}

func TestNeedsIndexedBatch(t *testing.T) {
	f := newFixture(t)
	b := f.db.NewBatch()
	defer b.Close()
	if err := f.x.UpdateFile(b, 1, "s", KindMetadata, nil); err == nil {
		t.Fatal("plain batch accepted")
	}
}

func TestClearInBatch(t *testing.T) {
	f := newFixture(t)
	f.put(1, "sessions/s1/metadata.json", meta("gone", "x"))
	f.batch(func(b *pebble.Batch) {
		if err := f.x.Clear(b); err != nil {
			t.Fatal(err)
		}
		if err := f.x.UpdateFile(b, 2, "s2", KindMetadata, meta("kept", "x")); err != nil {
			t.Fatal(err)
		}
	})
	if got := f.ids("gone"); len(got) != 0 {
		t.Fatalf("cleared word found: %v", got)
	}
	if got := f.ids("kept"); !reflect.DeepEqual(got, []string{"s2"}) {
		t.Fatalf("kept: %v", got)
	}
	if s, n, _, _ := f.x.Stats(); s != 1 || n != 1 {
		t.Fatalf("stats after clear: %d %d", s, n)
	}
}

func TestFacets(t *testing.T) {
	f := newFixture(t)
	f.put(1, "sessions/s1/metadata.json", meta("a1", "", "tags", []any{"Go", "c/c++"}, "status", "active", "category", "Work", "subCategory", "Code", "startTime", "2025-10-02"))
	f.put(2, "sessions/s2/metadata.json", meta("a2", "", "tags", []any{"go"}, "status", "completed", "category", "work", "subCategory", "Review", "startTime", "2025-09-30T23:00:00-05:00"))
	f.put(3, "sessions/s3/metadata.json", meta("a3", "", "category", "life", "startTime", 1730000000000))
	f.put(4, "sessions/s1/screenshots/chunk-000.json", mustJSON(t, []any{map[string]any{"aiAnalysis": map[string]any{"detectedEntities": map[string]any{"topics": []any{map[string]any{"name": "Auth"}}}}}}))
	f.put(5, "sessions/s1/screenshots/chunk-001.json", mustJSON(t, []any{map[string]any{"aiAnalysis": map[string]any{"detectedEntities": map[string]any{"topics": []any{map[string]any{"name": "auth"}}}}}}))
	check := func(what string, got []string, err error, want ...string) {
		t.Helper()
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %q %v, want %q", what, got, err, want)
		}
	}
	v, err := f.x.FacetValues("tag")
	check("tags", v, err, "c/c++", "go")
	v, err = f.x.FacetValues("topic")
	check("topics", v, err, "auth")
	v, err = f.x.FacetValues("status")
	check("statuses", v, err, "active", "completed")
	v, err = f.x.FacetValues("category")
	check("categories", v, err, "life", "work")
	v, err = f.x.FacetValues("sub")
	check("subs", v, err, "code", "review")
	v, err = f.x.FacetValues("month")
	check("months", v, err, "2024-10", "2025-10")
	v, err = f.x.SubCategories("work")
	check("work subs", v, err, "code", "review")
	v, err = f.x.SubCategories("life")
	check("life subs", v, err)
	v, err = f.x.FacetSessions("tag", "go")
	check("tag go", v, err, "s1", "s2")
	v, err = f.x.FacetSessions("tag", "c/c++")
	check("tag c/c++", v, err, "s1")
	v, err = f.x.FacetSessions("topic", "auth")
	check("topic auth", v, err, "s1")
	v, err = f.x.FacetSessions("month", "2025-10")
	check("month", v, err, "s1", "s2")
	v, err = f.x.FacetSessions("month", "bogus")
	check("bad month", v, err)
	v, err = f.x.SubCategorySessions("work", "review")
	check("work/review", v, err, "s2")
	if _, err := f.x.FacetValues("color"); err == nil {
		t.Error("unknown facet field accepted")
	}
	f.remove(4)
	v, err = f.x.FacetSessions("topic", "auth")
	check("topic auth after one chunk removed", v, err, "s1")
	f.remove(5)
	v, err = f.x.FacetValues("topic")
	check("topics after both chunks removed", v, err)
}

func TestDateBounds(t *testing.T) {
	f := newFixture(t)
	for i, day := range []string{"2025-01-31T23:59:59Z", "2025-02-01T00:00:00Z", "2025-02-28T12:00:00Z", "2025-03-01T00:00:00Z"} {
		f.put(uint64(i+1), fmt.Sprintf("sessions/d%d/metadata.json", i), meta("x", "", "startTime", day))
	}
	f.put(9, "sessions/nodate/metadata.json", meta("x", ""))
	for q, want := range map[string][]string{
		"after:2025-02-01":                   {"d1", "d2", "d3"},
		"before:2025-02-01":                  {"d0"},
		"after:2025-02-01 before:2025-03-01": {"d1", "d2"},
		"month:2025-02":                      {"d1", "d2"},
		"-month:2025-02":                     {"d0", "d3", "nodate"},
	} {
		if got := f.ids(q); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v, want %v", q, got, want)
		}
	}
}

func TestSnippet(t *testing.T) {
	f := newFixture(t)
	long := strings.Repeat("filler words here ", 30) + "the needle sits in the middle " + strings.Repeat("more trailing text ", 30)
	f.put(1, "sessions/s1/metadata.json", meta("Title", "short description"))
	f.put(2, "sessions/s1/summary.json", mustJSON(t, map[string]any{"narrative": long}))
	hits, err := f.x.Search("needle")
	if err != nil || len(hits) != 1 {
		t.Fatal(hits, err)
	}
	s := hits[0].Snippet
	if !strings.Contains(s, "needle sits") || utf8.RuneCountInString(s) > snippetRunes || !strings.HasPrefix(s, "…") || !strings.HasSuffix(s, "…") {
		t.Fatalf("snippet %q (%d runes)", s, utf8.RuneCountInString(s))
	}
	hits, _ = f.x.Search("-needle2")
	if hits[0].Snippet != "Title short description" {
		t.Fatalf("filter-only snippet %q", hits[0].Snippet)
	}
}

func TestWindow(t *testing.T) {
	tests := []struct {
		text string
		at   int
		want string
	}{
		{"short text", 0, "short text"},
		{"  lots   of\n\nspace  ", 2, "lots of space"},
		{"", 0, ""},
	}
	for _, tc := range tests {
		if got := window(tc.text, tc.at); got != tc.want {
			t.Errorf("window(%q, %d) = %q, want %q", tc.text, tc.at, got, tc.want)
		}
	}
	long := strings.Repeat("ü", 500)
	if got := window(long, 600); utf8.RuneCountInString(got) != snippetRunes || !utf8.ValidString(got) {
		t.Errorf("window of a long word: %d runes", utf8.RuneCountInString(got))
	}
}

func TestCheckFindsProblems(t *testing.T) {
	f := newFixture(t)
	files := map[uint64][]byte{
		1: meta("alpha", "beta", "tags", []any{"t1"}, "startTime", "2025-01-01"),
		2: mustJSON(t, map[string]any{"narrative": "gamma delta"}),
		3: meta("epsilon", "zeta"),
	}
	paths := map[uint64]string{1: "sessions/s1/metadata.json", 2: "sessions/s1/summary.json", 3: "sessions/s2/metadata.json"}
	for fid, c := range files {
		f.put(fid, paths[fid], c)
	}
	all := func(fn func(uint64, string, Kind, []byte) error) error {
		for fid := uint64(1); fid <= 3; fid++ {
			if c, ok := files[fid]; ok {
				sid, kind, _ := Classify(paths[fid])
				if err := fn(fid, sid, kind, c); err != nil {
					return err
				}
			}
		}
		return nil
	}
	problems, err := f.x.Check(all)
	if err != nil || len(problems) != 0 {
		t.Fatalf("clean index: %v %v", problems, err)
	}
	// Damage the index in several ways, then check and rebuild.
	f.batch(func(b *pebble.Batch) {
		_ = b.Delete(withNumFid(termPrefix("gamma"), f.num("s1"), 2), nil)
		_ = b.Set(withNumFid(termPrefix("stray"), f.num("s1"), 2), []byte{1}, nil)
		_ = b.Set(withNumFid(facetPrefix(fieldTag, "ghost", ""), 99, 77), nil, nil)
	})
	files[2] = mustJSON(t, map[string]any{"narrative": "changed on disk"}) // stale
	files[4] = meta("new", "file")                                         // missing
	paths[4] = "sessions/s3/metadata.json"
	delete(files, 3) // orphan
	all = func(fn func(uint64, string, Kind, []byte) error) error {
		for fid := uint64(1); fid <= 4; fid++ {
			if c, ok := files[fid]; ok {
				sid, kind, _ := Classify(paths[fid])
				if err := fn(fid, sid, kind, c); err != nil {
					return err
				}
			}
		}
		return nil
	}
	problems, err = f.x.Check(all)
	if err != nil {
		t.Fatal(err)
	}
	report := strings.Join(problems, "\n")
	for _, want := range []string{"stale: file 2", "missing: file 4", "orphan: file 3", `stray key "Xv`, `"s3" has files but is not indexed`} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if err := f.x.Rebuild(all); err != nil {
		t.Fatal(err)
	}
	if problems, err := f.x.Check(all); err != nil || len(problems) != 0 {
		t.Fatalf("after rebuild: %v %v", problems, err)
	}
	if got := f.ids("changed"); !reflect.DeepEqual(got, []string{"s1"}) {
		t.Fatalf("after rebuild: %v", got)
	}
}

// TestCheckTermPostings: Check compares the term postings as a whole (sums
// of hashes) and, when they differ, names each posting a record lists that
// is missing or wrong, in either layer, and each posting no record lists.
func TestCheckTermPostings(t *testing.T) {
	content := meta("alpha beta beta", "gamma")
	cases := []struct {
		name    string
		compact bool // fold the deltas into packed blocks first
		damage  func(f *fixture, b *pebble.Batch)
		want    string
	}{
		{"grouped delta deleted", false, func(f *fixture, b *pebble.Batch) {
			_ = b.DeleteRange(groupPrefix("beta"), prefixEnd(groupPrefix("beta")), nil)
		}, `file 1 (session "s1"): posting of "beta" missing or wrong`},
		{"grouped delta hidden by a later group", false, func(f *fixture, b *pebble.Batch) {
			_ = setGrouped(b, "beta", f.num("s1"), 1, 0)
		}, `file 1 (session "s1"): posting of "beta" missing or wrong`},
		{"grouped delta tf wrong (same count)", false, func(f *fixture, b *pebble.Batch) {
			_ = setGrouped(b, "beta", f.num("s1"), 1, 5)
		}, `file 1 (session "s1"): posting of "beta" missing or wrong`},
		{"stray grouped posting", false, func(f *fixture, b *pebble.Batch) {
			_ = setGrouped(b, "stray", f.num("s1"), 1, 1)
		}, `stray posting of "stray"`},
		{"per-posting delta tf wrong (an older build's key)", true, func(f *fixture, b *pebble.Batch) {
			_ = b.Set(withNumFid(termPrefix("beta"), f.num("s1"), 1), []byte{5}, nil)
		}, `file 1 (session "s1"): posting of "beta" missing or wrong`},
		{"block posting removed by a delta", true, func(f *fixture, b *pebble.Batch) {
			_ = b.Set(withNumFid(termPrefix("gamma"), f.num("s1"), 1), tombstone, nil)
		}, `file 1 (session "s1"): posting of "gamma" missing or wrong`},
		{"block tf overridden", true, func(f *fixture, b *pebble.Batch) {
			_ = b.Set(withNumFid(termPrefix("alpha"), f.num("s1"), 1), []byte{3}, nil)
		}, `file 1 (session "s1"): posting of "alpha" missing or wrong`},
		{"stray posting", false, func(f *fixture, b *pebble.Batch) {
			_ = b.Set(withNumFid(termPrefix("stray"), f.num("s1"), 1), []byte{1}, nil)
		}, `stray posting of "stray"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			f.put(1, "sessions/s1/metadata.json", content)
			all := func(fn func(uint64, string, Kind, []byte) error) error {
				return fn(1, "s1", KindMetadata, content)
			}
			if c.compact {
				if err := f.x.Compact(); err != nil {
					t.Fatal(err)
				}
			}
			if problems, err := f.x.Check(all); err != nil || len(problems) != 0 {
				t.Fatalf("before the damage: %v %v", problems, err)
			}
			f.batch(func(b *pebble.Batch) { c.damage(f, b) })
			problems, err := f.x.Check(all)
			if err != nil {
				t.Fatal(err)
			}
			if report := strings.Join(problems, "\n"); !strings.Contains(report, c.want) {
				t.Fatalf("report lacks %q:\n%s", c.want, report)
			}
		})
	}
}

// TestPostingLayers: long posting lists answer the same from delta keys
// only, after a full compaction into base blocks, and with rewrites and
// removals written as deltas over the blocks; and compaction leaves no delta.
func TestPostingLayers(t *testing.T) {
	f := newFixture(t)
	f.x.sweepMin = 1 << 40 // no sweep: everything stays in delta keys
	const n = 3000
	f.batch(func(b *pebble.Batch) {
		for i := range n {
			words := "filler"
			if i%5 < 3 {
				words += " common" // 60% of sessions
			}
			if i%500 == 0 {
				words += " rare"
			}
			if err := f.x.UpdateFile(b, uint64(i+1), fmt.Sprintf("s%04d", i), KindMetadata, meta(words, "")); err != nil {
				t.Fatal(err)
			}
		}
	})
	queries := []string{"rare common", "rare -common", "common rare filler", "rare OR common", "common", "-common", "filler"}
	search := func() map[string][]Hit {
		out := map[string][]Hit{}
		for _, q := range queries {
			for _, limit := range []int{0, 10} {
				hits, err := f.x.SearchWith(q, SearchOptions{Limit: limit})
				if err != nil {
					t.Fatal(err)
				}
				out[fmt.Sprint(q, limit)] = hits
			}
		}
		return out
	}
	same := func(stage string, got, want map[string][]Hit) {
		t.Helper()
		for q, w := range want {
			if !reflect.DeepEqual(got[q], w) {
				t.Fatalf("%s: %q differs", stage, q)
			}
		}
	}
	deltaOnly := search()
	if err := f.x.Compact(); err != nil {
		t.Fatal(err)
	}
	if n, err := countKeys(f.db, tableKey(tblTerm)); err != nil || n != 0 {
		t.Fatalf("%d delta keys left after Compact (%v)", n, err)
	}
	same("compacted", search(), deltaOnly)

	// Rewrites and removals land as deltas (and tombstones) over the blocks;
	// a fresh index of the same files must answer the same.
	g := newFixture(t)
	g.x.sweepMin = 1 << 40
	content := func(i int) []byte {
		words := "filler"
		switch {
		case i%7 == 0:
			words += " rare common"
		case i%5 < 3:
			words += " common"
		}
		return meta(words, "")
	}
	for _, x := range []*fixture{f, g} {
		x.batch(func(b *pebble.Batch) {
			for i := range n {
				var err error
				switch {
				case i%11 == 0:
					err = x.x.RemoveFile(b, uint64(i+1))
				case x == g || i%3 == 0:
					err = x.x.UpdateFile(b, uint64(i+1), fmt.Sprintf("s%04d", i), KindMetadata, content(i))
				}
				if x == g && i%3 != 0 && i%11 != 0 && err == nil {
					// g holds the same files as f: those f did not rewrite keep their first content.
					words := "filler"
					if i%5 < 3 {
						words += " common"
					}
					if i%500 == 0 {
						words += " rare"
					}
					err = x.x.UpdateFile(b, uint64(i+1), fmt.Sprintf("s%04d", i), KindMetadata, meta(words, ""))
				}
				if err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	want := func() map[string][]Hit { f, g = g, f; defer func() { f, g = g, f }(); return search() }()
	same("deltas over blocks", search(), want)
	f.x.sweepMin = 1 // a sweep on every update from here
	f.put(1_000_000, "sessions/zz/metadata.json", meta("filler", ""))
	g.put(1_000_000, "sessions/zz/metadata.json", meta("filler", ""))
	want = func() map[string][]Hit { f, g = g, f; defer func() { f, g = g, f }(); return search() }()
	same("after a sweep step", search(), want)
	if err := f.x.Compact(); err != nil {
		t.Fatal(err)
	}
	same("compacted again", search(), want)
}

// TestSearchWhileWriting runs searches and facet listings while one writer
// commits updates and removals; with -race it checks that readers share no
// state with the writer, and every search must see a consistent snapshot.
func TestSearchWhileWriting(t *testing.T) {
	f := newFixture(t)
	done := make(chan struct{})
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			for {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				hits, err := f.x.Search("alpha -beta")
				if err == nil {
					_, err = f.x.FacetSessions("tag", "t")
				}
				for _, h := range hits {
					if h.Name == "" {
						err = fmt.Errorf("hit %q without its metadata", h.SessionID)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := range 200 {
		sid := fmt.Sprintf("s%d", i%20)
		if i%7 == 3 {
			f.remove(uint64(i%20 + 1))
			continue
		}
		f.put(uint64(i%20+1), "sessions/"+sid+"/metadata.json", meta("alpha", fmt.Sprint(i), "tags", []any{"t"}))
	}
	close(done)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestCheckLengthColumn: Check finds a wrong or missing length column entry.
func TestCheckLengthColumn(t *testing.T) {
	f := newFixture(t)
	content := meta("alpha beta", "")
	f.put(1, "sessions/s1/metadata.json", content)
	all := func(fn func(uint64, string, Kind, []byte) error) error { return fn(1, "s1", KindMetadata, content) }
	if problems, err := f.x.Check(all); err != nil || len(problems) != 0 {
		t.Fatalf("problems %v %v", problems, err)
	}
	for _, v := range []uint64{99, 0} {
		f.batch(func(b *pebble.Batch) {
			if _, err := setLength(b, &globalStats{}, f.num("s1"), v); err != nil {
				t.Fatal(err)
			}
		})
		problems, err := f.x.Check(all)
		if err != nil || !strings.Contains(strings.Join(problems, "\n"), "length column") {
			t.Fatalf("length %d: problems %v %v", v, problems, err)
		}
	}
}
