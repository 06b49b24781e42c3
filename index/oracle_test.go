package index

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/taskerfs/taskerfs/index/internal/oracle"
)

// oracleQueries are the query shapes of tests/search_test.go run on the
// dataset of equiv_test.go.
var oracleQueries = []string{
	"alpha", "alpha bravo", "alpha OR bravo OR charlie", "alpha -bravo", "NOT alpha", `"alpha bravo"`,
	"tag:go alpha", "month:2025-03 OR month:2024-06", "zephyr OR quasar OR nebula", "(zephyr OR quasar) -status:active",
	"after:2024-06-01", "category:work -tag:rust", "deploy", "w1", "-w1",
}

// differential indexes the same files into the index and into the frozen
// oracle (the implementation before issue 14), and requires every query to
// return the same sessions in the same order with the same scores, and the
// same snippets.
type differential struct {
	t       *testing.T
	f       *fixture
	odb     *pebble.DB
	o       *oracle.Index
	content map[uint64][]byte // committed content per file, for SetContentSource
}

func newDifferential(t *testing.T, contentSource bool) *differential {
	d := &differential{t: t, f: newFixture(t), odb: openDB(t), content: map[uint64][]byte{}}
	d.o = oracle.New(d.odb)
	if contentSource {
		d.f.x.SetContentSource(func(fid uint64) ([]byte, error) {
			c, ok := d.content[fid]
			if !ok {
				return nil, fmt.Errorf("no file %d", fid)
			}
			return c, nil
		})
	}
	return d
}

// apply runs the same changes on both sides, in one batch each.
func (d *differential) apply(puts map[string]genFile, removes []uint64) {
	d.t.Helper()
	for _, side := range []bool{false, true} {
		db := d.f.db
		if side {
			db = d.odb
		}
		b := db.NewIndexedBatch()
		for _, p := range sortedKeys(puts) {
			sid, kind, ok := Classify(p)
			if !ok {
				continue
			}
			var err error
			if side {
				err = d.o.UpdateFile(b, puts[p].fid, sid, oracle.Kind(kind), puts[p].content)
			} else {
				err = d.f.x.UpdateFile(b, puts[p].fid, sid, kind, puts[p].content)
				d.content[puts[p].fid] = puts[p].content
			}
			if err != nil {
				d.t.Fatal(err)
			}
		}
		for _, fid := range removes {
			var err error
			if side {
				err = d.o.RemoveFile(b, fid)
			} else {
				err = d.f.x.RemoveFile(b, fid)
				delete(d.content, fid)
			}
			if err != nil {
				d.t.Fatal(err)
			}
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			d.t.Fatal(err)
		}
		b.Close()
	}
}

func (d *differential) compare(queries []string) {
	d.t.Helper()
	defer func(v int) { wandMinHits = v }(wandMinHits)
	for _, q := range queries {
		for _, opt := range []SearchOptions{{}, {Limit: 7}, {NoSnippets: true}, {Limit: 7, NoSnippets: true}} {
			// Block-max top-k for every limited query (wandMinHits 0), and as
			// it runs (most of these have too few hits: exhaustive).
			wandMinHits = 0
			if opt.NoSnippets {
				wandMinHits = 64
			}
			got, err := d.f.x.SearchWith(q, opt)
			if err != nil {
				d.t.Fatalf("%q: %v", q, err)
			}
			want, err := d.o.SearchWith(q, oracle.SearchOptions(opt))
			if err != nil {
				d.t.Fatalf("oracle %q: %v", q, err)
			}
			if len(got) != len(want) {
				d.t.Errorf("%q %+v: %d hits, oracle %d", q, opt, len(got), len(want))
				continue
			}
			for i := range got {
				if !reflect.DeepEqual(got[i], Hit(want[i])) {
					d.t.Errorf("%q %+v: hit %d is %+v, oracle %+v", q, opt, i, got[i], want[i])
					break
				}
			}
		}
	}
	for _, field := range []string{"tag", "topic", "status", "category", "sub", "month"} {
		got, err1 := d.f.x.FacetValues(field)
		want, err2 := d.o.FacetValues(field)
		if err1 != nil || err2 != nil || !reflect.DeepEqual(got, want) {
			d.t.Errorf("facet %s: %v (%v), oracle %v (%v)", field, got, err1, want, err2)
		}
	}
}

func TestDifferentialWithOracle(t *testing.T) {
	for _, contentSource := range []bool{false, true} {
		t.Run(fmt.Sprintf("contentSource=%v", contentSource), func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			ds := &dataset{rng: r, files: map[string]genFile{}}
			for i := range 200 {
				ds.session(t, fmt.Sprintf("s%03d", i))
			}
			for _, sid := range []string{"with space (copy)", "ünï%code", ".dot", "s"} {
				ds.session(t, sid)
			}
			d := newDifferential(t, contentSource)
			paths := sortedKeys(ds.files)
			for i := 0; i < len(paths); i += 64 {
				batch := map[string]genFile{}
				for _, p := range paths[i:min(i+64, len(paths))] {
					batch[p] = ds.files[p]
				}
				d.apply(batch, nil)
			}
			queries := append(append([]string(nil), fixedQueries...), oracleQueries...)
			for range 200 {
				queries = append(queries, randomQuery(r, 0))
			}
			d.compare(queries)
			if t.Failed() {
				return
			}

			// Rewrites and removals, as in TestEquivalenceWithBruteForce.
			for i := range 30 {
				sid := fmt.Sprintf("s%03d", r.IntN(200))
				if i%3 == 0 {
					var gone []uint64
					for p, file := range ds.files {
						if strings.HasPrefix(p, "sessions/"+sid+"/") {
							gone = append(gone, file.fid)
							delete(ds.files, p)
						}
					}
					d.apply(nil, gone)
					continue
				}
				before := map[string]genFile{}
				for p, file := range ds.files {
					if strings.HasPrefix(p, "sessions/"+sid+"/") {
						before[p] = file
					}
				}
				ds.session(t, sid)
				changed := map[string]genFile{}
				for p, file := range ds.files {
					if old, ok := before[p]; strings.HasPrefix(p, "sessions/"+sid+"/") && (!ok || string(old.content) != string(file.content)) {
						changed[p] = file
					}
				}
				d.apply(changed, nil)
			}
			d.compare(queries)
			problems, err := d.f.x.Check(allFiles(ds.files))
			if err != nil || len(problems) != 0 {
				t.Fatalf("check: %v %v", problems, err)
			}

			// A parallel rebuild gives the same index.
			var last RebuildProgress
			calls := 0
			if err := d.f.x.RebuildWith(allFiles(ds.files), func(p RebuildProgress) { last = p; calls++ }); err != nil {
				t.Fatal(err)
			}
			indexable := 0
			for p := range ds.files {
				if _, _, ok := Classify(p); ok {
					indexable++
				}
			}
			if last.Files != indexable || calls != indexable {
				t.Errorf("rebuild progress: %d files in %d calls, want %d", last.Files, calls, indexable)
			}
			d.compare(queries)
			if problems, err := d.f.x.Check(allFiles(ds.files)); err != nil || len(problems) != 0 {
				t.Fatalf("check after rebuild: %v %v", problems, err)
			}

			// The rebuild holds term postings in memory and writes them as
			// blocks: flushed often, inside a session too, with rare terms
			// held over, and with a source that meets a session again after
			// its flush (its postings then go in as delta keys).
			// Records and texts go through ingested tables or through
			// batches; a source out of file order ingests again and again.
			ingestDir := filepath.Join(t.TempDir(), "ingest")
			for _, tc := range []struct {
				budget      int
				interleaved bool
				ingest      bool
				prepared    bool // every other file's record prepared by the source
			}{{40, false, true, false}, {2000, false, false, true}, {300, true, true, false}, {300, false, true, true}, {300, true, false, true}} {
				src := allFiles(ds.files)
				if tc.interleaved {
					src = interleavedFiles(ds.files)
				}
				rsrc := fromContent(src)
				if tc.prepared {
					rsrc = preparedEvery(d.f.x, src, 2)
				}
				d.f.x.SetIngest(nil, "")
				if tc.ingest {
					d.f.x.SetIngest(vfs.Default, ingestDir)
				}
				rb := newRebuilder(tc.budget)
				if err := d.f.x.rebuildWith(rsrc, nil, rb); err != nil {
					t.Fatal(err)
				}
				if rb.flushes < 5 || tc.budget == 40 && rb.forced == 0 || tc.interleaved && rb.late == 0 {
					t.Errorf("budget %d: %d flushes, %d forced, %d files late: the test misses a path", tc.budget, rb.flushes, rb.forced, rb.late)
				}
				if tc.ingest && rb.merged == 0 || !tc.ingest && rb.merged != 0 {
					t.Errorf("budget %d, ingest %v: %d runs merged", tc.budget, tc.ingest, rb.merged)
				}
				if tc.ingest && (rb.tables == nil || rb.tables.ingests == 0 || tc.interleaved && rb.tables.ingests < 3) {
					t.Errorf("budget %d, interleaved %v: tables ingested %+v", tc.budget, tc.interleaved, rb.tables)
				}
				d.compare(queries)
				if problems, err := d.f.x.Check(allFiles(ds.files)); err != nil || len(problems) != 0 {
					t.Fatalf("check after rebuild (budget %d): %v %v", tc.budget, problems, err)
				}
				deltas, err := countKeys(d.f.db, tableKey(tblTerm))
				if err != nil || deltas != 0 {
					t.Fatalf("budget %d: %d delta keys left (%v)", tc.budget, deltas, err)
				}
			}
		})
	}
}

// TestTokenizeMatchesOracle: the allocation-free tokenizer splits, cuts and
// lowercases exactly as before.
func TestTokenizeMatchesOracle(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	alphabet := []string{"a", "B", "z", "Ü", "ß", "İ", "Σ", "日", "9", " ", "-", "\u0301", "\xff", "the", "AND", "x", "Ǆ", "ﬁ"}
	inputs := []string{"", "a", "ab", "The quick brown FOX", strings.Repeat("A", 70), strings.Repeat("é", 40) + "x", strings.Repeat("ab", 31) + "Ǆ"}
	for range 3000 {
		var b strings.Builder
		for range r.IntN(40) {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		inputs = append(inputs, b.String())
	}
	for _, s := range inputs {
		got, want := Tokenize(s), oracle.Tokenize(s)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Tokenize(%q) = %q, oracle %q", s, got, want)
		}
	}
}

// TestRecordVersions: records are written plain with the sums of their
// content and text (version 3); version 1 (plain, no sums) and version 2
// (compressed, written by an earlier build) still read, with no sums, and a
// damaged one is corrupt, not a panic.
func TestRecordVersions(t *testing.T) {
	content := mustJSON(t, map[string]any{"narrative": strings.Repeat("alpha beta gamma delta ", 40)})
	rec, text := buildRecord("s1", KindSummary, content)
	if rec.sum != contentSum(content) || rec.sum == 0 || rec.textSum != textSumOf([]byte(text)) || rec.textSum == 0 {
		t.Fatalf("sums %x %x", rec.sum, rec.textSum)
	}
	plain := rec.encode()
	if plain[0] != recordVersion {
		t.Fatalf("record written as version %d", plain[0])
	}
	if got, err := decodeRecord(plain); err != nil || !reflect.DeepEqual(got, rec) {
		t.Fatalf("version 3 record: %+v, %v", got, err)
	}
	for _, cut := range []int{1, 8, 16, 17} {
		if _, err := decodeRecord(plain[:len(plain)-cut]); err == nil {
			t.Fatalf("a version 3 record %d bytes short decodes", cut)
		}
	}
	noSums := *rec
	noSums.sum, noSums.textSum = 0, 0
	v1 := append([]byte{recordVersionV1}, rec.fields()...)
	if got, err := decodeRecord(v1); err != nil || !reflect.DeepEqual(got, &noSums) {
		t.Fatalf("version 1 record: %+v, %v", got, err)
	}
	v2 := textEncoder.EncodeAll(v1[1:], []byte{recordVersionZstd})
	got, err := decodeRecord(v2)
	if err != nil || !reflect.DeepEqual(got, &noSums) {
		t.Fatalf("version 2 record: %+v, %v", got, err)
	}
	if _, err := decodeRecord(append(v2[:len(v2)-3:len(v2)-3], 1, 2, 3)); err == nil {
		t.Fatal("a damaged version 2 record decodes")
	}
	text = strings.Repeat("snippet text ", 50)
	if got := string(decodeText(encodeText(text))); got != text {
		t.Fatalf("text round trip: %q", got)
	}
	if got := string(decodeText([]byte("short"))); got != "short" {
		t.Fatalf("plain text: %q", got)
	}
}

// interleavedFiles yields the files of the odd-numbered half of the paths
// first, then the rest: most sessions are met twice, far apart.
// preparedEvery is src with the record of every nth file prepared (as a
// source that reads them in another order does), encoded and yielded in
// place of its content.
func preparedEvery(x *Index, src FileSource, n int) RecordSource {
	return func(fn func(f *RebuildFile) error) error {
		i := 0
		return src(func(fid uint64, sid string, kind Kind, content []byte) error {
			f := &RebuildFile{ID: fid, SessionID: sid, Kind: kind, Size: len(content), Content: content}
			if i++; i%n == 0 {
				f.Prepared, f.Content = x.Prepare(sid, kind, content).Append([]byte{7}), nil
				f.Prepared = f.Prepared[1:] // not at the start of its buffer
			}
			return fn(f)
		})
	}
}

func interleavedFiles(files map[string]genFile) FileSource {
	return func(fn func(uint64, string, Kind, []byte) error) error {
		paths := sortedKeys(files)
		for pass := range 2 {
			for i, path := range paths {
				if i%2 != pass {
					continue
				}
				if sid, kind, ok := Classify(path); ok {
					if err := fn(files[path].fid, sid, kind, files[path].content); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
}

// TestRebuildInterrupted: a rebuild that stops half-way (its source fails)
// leaves an index that Check calls incomplete, not a whole one with files
// missing from it; a rebuild to the end clears that.
func TestRebuildInterrupted(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	ds := &dataset{rng: r, files: map[string]genFile{}}
	for i := range 30 {
		ds.session(t, fmt.Sprintf("s%03d", i))
	}
	f := newFixture(t)
	ingestDir := filepath.Join(t.TempDir(), "ingest")
	f.x.SetIngest(vfs.Default, ingestDir) // the tables half-written are dropped
	failing := errors.New("disk gone")
	n := 0
	half := func(fn func(uint64, string, Kind, []byte) error) error {
		return allFiles(ds.files)(func(fid uint64, sid string, kind Kind, content []byte) error {
			if n++; n > 40 {
				return failing
			}
			return fn(fid, sid, kind, content)
		})
	}
	if err := f.x.rebuildWith(fromContent(half), nil, newRebuilder(500)); !errors.Is(err, failing) {
		t.Fatalf("rebuild: %v", err)
	}
	if incomplete, err := f.x.Incomplete(); err != nil || !incomplete {
		t.Fatalf("Incomplete after an interrupted rebuild: %v %v", incomplete, err)
	}
	if _, err := os.Stat(ingestDir); !os.IsNotExist(err) {
		t.Fatalf("tables left after an interrupted rebuild: %v", err)
	}
	problems, err := f.x.Check(allFiles(ds.files))
	if err != nil || !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, "a rebuild (taskerfs reindex) was interrupted") }) {
		t.Fatalf("after an interrupted rebuild: %v %v", problems, err)
	}
	if err := f.x.Rebuild(allFiles(ds.files)); err != nil {
		t.Fatal(err)
	}
	if problems, err := f.x.Check(allFiles(ds.files)); err != nil || len(problems) != 0 {
		t.Fatalf("after a whole rebuild: %v %v", problems, err)
	}
	if incomplete, err := f.x.Incomplete(); err != nil || incomplete {
		t.Fatalf("Incomplete after a whole rebuild: %v %v", incomplete, err)
	}
	// An empty source leaves no key behind.
	if err := f.x.Rebuild(func(func(uint64, string, Kind, []byte) error) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if keys := keysUnderX(t, f.db); len(keys) != 0 {
		t.Fatalf("empty rebuild left %v", keys)
	}
}
