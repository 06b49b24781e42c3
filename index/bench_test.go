package index

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble"
)

// benchSession returns the files of a session i of about 1,700 words: metadata,
// a summary, a transcription, a screenshot chunk of 10 records with OCR text and
// an audio chunk of 30 segments, in the real app's layout (compressed envelopes).
// sessionFile is one file of a generated session (benchSession), classified.
type sessionFile struct {
	fid     uint64 // its place in the list, from 1
	sid     string
	kind    Kind
	content []byte
}

// benchFiles generates n sessions with benchSession and lists their files,
// each session's in path order.
func benchFiles(t testing.TB, r *rand.Rand, n int) []sessionFile {
	var files []sessionFile
	for i := range n {
		s := benchSession(t, r, i)
		for _, p := range slices.Sorted(maps.Keys(s)) {
			sid, kind, ok := Classify(p)
			if !ok {
				t.Fatalf("%s does not classify", p)
			}
			files = append(files, sessionFile{fid: uint64(len(files) + 1), sid: sid, kind: kind, content: s[p]})
		}
	}
	return files
}

func benchSession(t testing.TB, r *rand.Rand, i int) map[string][]byte {
	words := func(n int) string {
		w := make([]string, n)
		for j := range w {
			w[j] = benchWord(r)
		}
		return strings.Join(w, " ")
	}
	// Session ids shaped like the real app's UUIDs.
	sid := fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", r.Uint32(), r.IntN(1<<16), r.IntN(1<<12), r.IntN(1<<12), r.Int64N(1<<48))
	dir := "sessions/" + sid + "/"
	desc := words(12)
	if i%1000 == 0 {
		desc += " needle" // planted in 0.1% of sessions
	}
	var shots []any
	for range 10 {
		shots = append(shots, map[string]any{"id": "x", "timestamp": "2025-10-01T10:00:00Z", "attachmentId": "a", "analysisStatus": "complete",
			"aiAnalysis": map[string]any{"summary": words(10), "detectedActivity": words(3), "extractedText": words(60),
				"detectedEntities": map[string]any{"topics": []any{map[string]any{"name": fmt.Sprintf("topic%d", r.IntN(50))}}}}})
	}
	var segs []any
	for range 30 {
		segs = append(segs, map[string]any{"id": "x", "duration": 10, "transcription": words(15)})
	}
	return map[string][]byte{
		dir + "metadata.json": envelope(t, map[string]any{"id": sid, "name": words(3), "description": desc,
			"status": []string{"active", "completed"}[i%2], "category": fmt.Sprintf("cat%d", i%7), "subCategory": fmt.Sprintf("sub%d", i%5),
			"tags": []any{fmt.Sprintf("tag%d", i%100), fmt.Sprintf("tag%d", i%13)}, "startTime": fmt.Sprintf("2025-%02d-%02dT10:00:00.000Z", 1+i%12, 1+i%28)}, true),
		dir + "summary.json":                  envelope(t, map[string]any{"narrative": words(100), "achievements": []any{words(8)}, "keyInsights": []any{map[string]any{"insight": words(10)}}}, true),
		dir + "transcription.json":            envelope(t, words(400), true),
		dir + "screenshots/chunk-000.json":    envelope(t, map[string]any{"sessionId": sid, "chunkIndex": 0, "screenshots": shots}, true),
		dir + "audio-segments/chunk-000.json": envelope(t, map[string]any{"sessionId": sid, "chunkIndex": 0, "segments": segs}, true),
	}
}

// benchWord draws from a Zipf-like vocabulary of 20k words, so that the
// common words are in most sessions and the rare ones in few.
func benchWord(r *rand.Rand) string {
	return "w" + strconv.Itoa(int(float64(20000)*r.Float64()*r.Float64()*r.Float64()))
}

// BenchmarkUpdateFile indexes session files and commits each in its own batch:
// new files; the same file rewritten unchanged; and a screenshot chunk
// rewritten with one more record, as the real app does on every capture.
func BenchmarkUpdateFile(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	files := benchFiles(b, r, 50)
	update := func(b *testing.B, f *fixture, fid uint64, fl sessionFile) {
		batch := f.db.NewIndexedBatch()
		defer batch.Close()
		if err := f.x.UpdateFile(batch, fid, fl.sid, fl.kind, fl.content); err != nil {
			b.Fatal(err)
		}
		if err := batch.Commit(pebble.NoSync); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("new", func(b *testing.B) {
		f := newFixture(b)
		for i := 0; i < b.N; i++ {
			update(b, f, uint64(i+1), files[i%len(files)])
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		f := newFixture(b)
		for i, fl := range files {
			update(b, f, uint64(i+1), fl)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			update(b, f, uint64(i%len(files)+1), files[i%len(files)])
		}
	})
	b.Run("chunk-append", func(b *testing.B) {
		f := newFixture(b)
		var shots []any
		for range 20 {
			shots = append(shots, map[string]any{"aiAnalysis": map[string]any{"summary": benchWord(r) + " " + benchWord(r),
				"extractedText": strings.Repeat(benchWord(r)+" ", 60)}})
		}
		chunks := make([][]byte, 21)
		for n := range chunks {
			chunks[n] = envelope(b, map[string]any{"sessionId": "s", "chunkIndex": 0, "screenshots": shots[:n]}, true)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			update(b, f, uint64(i/20+1), sessionFile{sid: "s", kind: KindScreenshots, content: chunks[i%20+1]})
		}
	})
	// remove: a removal's commit (the files are indexed beforehand, b.N of
	// them, and stay unpurged, as during an rm -rf); keys/op is what the
	// removal's batch holds.
	b.Run("remove", func(b *testing.B) {
		f := newFixture(b)
		f.x.sweepMin, f.x.purgeMin = 1<<40, 1<<40
		for i := 0; i < b.N; i++ {
			update(b, f, uint64(i+1), files[i%len(files)])
		}
		keys := 0
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			batch := f.db.NewIndexedBatch()
			if err := f.x.RemoveFile(batch, uint64(i+1)); err != nil {
				b.Fatal(err)
			}
			keys += int(batch.Count())
			if err := batch.Commit(pebble.NoSync); err != nil {
				b.Fatal(err)
			}
			batch.Close()
		}
		b.ReportMetric(float64(keys)/float64(b.N), "keys/op")
	})
}

// benchIndex builds (or reuses, via INDEX_BENCH_DIR) an index of n sessions.
func benchIndex(b *testing.B, n int) *Index {
	dir := b.TempDir()
	if d := os.Getenv("INDEX_BENCH_DIR"); d != "" {
		dir = fmt.Sprintf("%s/%d", d, n)
	}
	// Larger memtables than pebble's default only make the build faster.
	db, err := pebble.Open(dir, &pebble.Options{MemTableSize: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	x := New(db)
	if s, _, _, err := x.Stats(); err == nil && s == int64(n) {
		return x
	}
	r := rand.New(rand.NewPCG(7, 7))
	batch := db.NewIndexedBatch()
	var fid uint64
	for i := range n {
		for p, c := range benchSession(b, r, i) {
			sid, kind, _ := Classify(p)
			fid++
			if err := x.UpdateFile(batch, fid, sid, kind, c); err != nil {
				b.Fatal(err)
			}
		}
		if i%20 == 19 {
			if err := batch.Commit(pebble.NoSync); err != nil {
				b.Fatal(err)
			}
			_ = batch.Close()
			batch = db.NewIndexedBatch()
		}
	}
	if err := batch.Commit(pebble.Sync); err != nil {
		b.Fatal(err)
	}
	_ = batch.Close()
	if err := db.Compact([]byte("X"), []byte("Y"), true); err != nil {
		b.Fatal(err)
	}
	sessions, files, size, err := x.Stats()
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%d sessions, %d files, index %d bytes = %d bytes/session", sessions, files, size, size/sessions)
	return x
}

func BenchmarkSearch(b *testing.B) {
	sizes := []int{10000}
	if s := os.Getenv("INDEX_BENCH_SESSIONS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		sizes = []int{n}
	}
	queries := []string{
		"needle",                 // rare word: 0.1% of sessions
		"needle tag:tag0",        // rare word and a facet
		"needle OR w19990",       // two rare words
		"needle w1",              // rare word and a common one
		"tag:tag42",              // facet, 1%
		"month:2025-03 tag:tag3", // facet intersection
		"w5000",                  // mid-frequency word
		"-w1",                    // negation only
	}
	for _, n := range sizes {
		x := benchIndex(b, n)
		for _, q := range queries {
			b.Run(fmt.Sprintf("%d/%s", n, q), func(b *testing.B) {
				hits := 0
				for i := 0; i < b.N; i++ {
					h, err := x.SearchWith(q, SearchOptions{NoSnippets: true})
					if err != nil {
						b.Fatal(err)
					}
					hits = len(h)
				}
				b.ReportMetric(float64(hits), "hits")
			})
		}
		b.Run(fmt.Sprintf("%d/snippets/needle", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := x.Search("needle"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRebuild rebuilds the index of 300 generated sessions (taskerfs
// reindex's path): extraction on every CPU, term postings held in memory
// and written as packed blocks. "flushes" holds a few sessions' postings at
// a time, so that most terms are written in several blocks and held over.
func BenchmarkRebuild(b *testing.B) {
	files := benchFiles(b, rand.New(rand.NewPCG(11, 12)), 300)
	src := func(fn func(uint64, string, Kind, []byte) error) error {
		for _, f := range files {
			if err := fn(f.fid, f.sid, f.kind, f.content); err != nil {
				return err
			}
		}
		return nil
	}
	for _, bc := range []struct {
		name   string
		budget int
	}{{"default", rebuildPostings}, {"flushes", 4096}} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFixture(b)
			for b.Loop() {
				if err := f.x.rebuildWith(fromContent(src), nil, newRebuilder(bc.budget)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(300*b.N)/b.Elapsed().Seconds(), "sessions/s")
		})
	}
}
