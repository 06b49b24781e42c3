package index

import (
	"math/rand/v2"
	"os"
	"testing"

	"github.com/cockroachdb/pebble"

	"github.com/taskerfs/taskerfs/index/internal/oracle"
)

// BenchmarkAgainstOracle runs the queries of bench/scale with the index and
// with the frozen oracle on the same database, interleaved: set
// TASKERFS_SCALE_DB to a DB that bench/scale built (it is opened read-only).
// With TASKERFS_SCALE_SNIPPETS set, also the top 100 with snippets: only on
// a DB the oracle's version built (the oracle cannot read compressed text;
// the index reads both).
func BenchmarkAgainstOracle(b *testing.B) {
	dir := os.Getenv("TASKERFS_SCALE_DB")
	if dir == "" {
		b.Skip("TASKERFS_SCALE_DB not set")
	}
	db, err := pebble.Open(dir, &pebble.Options{ReadOnly: true, Cache: pebble.NewCache(64 << 20)})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	x, o := New(db), oracle.New(db)
	queries := []string{"zanzibar", "quokka", "obsidian", "obsidian vermilion", "zanzibar OR quokka OR vermilion",
		"vermilion -obsidian", `"obsidian vermilion"`, "tag:planning", "month:2025-03"}
	for _, q := range queries {
		opts := []SearchOptions{{NoSnippets: true}, {NoSnippets: true, Limit: 100}}
		if os.Getenv("TASKERFS_SCALE_SNIPPETS") != "" {
			opts = append(opts, SearchOptions{Limit: 100})
		}
		for _, opt := range opts {
			name := q
			if opt.Limit > 0 {
				name += " top100"
			}
			if !opt.NoSnippets {
				name += " snippets"
			}
			b.Run("new "+name, func(b *testing.B) {
				for range b.N {
					if _, err := x.SearchWith(q, opt); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("old "+name, func(b *testing.B) {
				for range b.N {
					if _, err := o.SearchWith(q, oracle.SearchOptions(opt)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkIndexingAgainstOracle indexes the same 40 sessions (the shape of
// BenchmarkUpdateFile: metadata, summary, transcription, a screenshot and an
// audio chunk, compressed envelopes) into a fresh DB in batches of 64 files,
// with the index and with the frozen oracle, interleaved per iteration: the
// CPU of the commit path per session, old against new.
func BenchmarkIndexingAgainstOracle(b *testing.B) {
	r := rand.New(rand.NewPCG(9, 9))
	type file struct {
		sid     string
		kind    Kind
		content []byte
	}
	var files []file
	const sessions = 40
	for i := range sessions {
		for p, c := range benchSession(b, r, i) {
			sid, kind, _ := Classify(p)
			files = append(files, file{sid, kind, c})
		}
	}
	run := func(b *testing.B, update func(db *pebble.DB, batch *pebble.Batch, fid uint64, f file) error) {
		for range b.N {
			b.StopTimer()
			db := openDB(b)
			b.StartTimer()
			batch := db.NewIndexedBatch()
			for i, f := range files {
				if err := update(db, batch, uint64(i+1), f); err != nil {
					b.Fatal(err)
				}
				if (i+1)%64 == 0 || i == len(files)-1 {
					if err := batch.Commit(pebble.NoSync); err != nil {
						b.Fatal(err)
					}
					batch.Close()
					batch = db.NewIndexedBatch()
				}
			}
			batch.Close()
		}
		b.ReportMetric(float64(sessions*b.N)/b.Elapsed().Seconds(), "sessions/s")
	}
	for range 3 {
		b.Run("new", func(b *testing.B) {
			run(b, func(db *pebble.DB, batch *pebble.Batch, fid uint64, f file) error {
				return New(db).UpdateFile(batch, fid, f.sid, f.kind, f.content)
			})
		})
		b.Run("old", func(b *testing.B) {
			run(b, func(db *pebble.DB, batch *pebble.Batch, fid uint64, f file) error {
				return oracle.New(db).UpdateFile(batch, fid, f.sid, oracle.Kind(f.kind), f.content)
			})
		})
	}
}

// BenchmarkBlockMaxTopK times the ranked top 100 of bench/scale's queries
// with block-max skipping and exhaustively (every hit scored), interleaved,
// on a DB that bench/scale built (TASKERFS_SCALE_DB, opened read-only).
// With TASKERFS_SCALE_MIGRATE set, the DB is opened for writing once and
// compacted first, which gives blocks written before block bounds existed
// their bounds. cpu-ms/op is the querying thread's CPU; decoded% the share
// of the query terms' blocks the block-max path decoded.
func BenchmarkBlockMaxTopK(b *testing.B) {
	dir := os.Getenv("TASKERFS_SCALE_DB")
	if dir == "" {
		b.Skip("TASKERFS_SCALE_DB not set")
	}
	if os.Getenv("TASKERFS_SCALE_MIGRATE") != "" {
		db, err := pebble.Open(dir, &pebble.Options{})
		if err != nil {
			b.Fatal(err)
		}
		err = New(db).Compact()
		if cerr := db.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	db, err := pebble.Open(dir, &pebble.Options{ReadOnly: true, Cache: pebble.NewCache(64 << 20)})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	x := New(db)
	for range 3 {
		for _, q := range []string{"obsidian", "vermilion", "obsidian vermilion", "zanzibar OR quokka OR vermilion"} {
			for _, snippets := range []bool{false, true} {
				for _, exhaustive := range []bool{false, true} {
					name := q + " top100"
					if snippets {
						name += " snippets"
					}
					if exhaustive {
						name += " exhaustive"
					} else {
						name += " blockmax"
					}
					b.Run(name, func(b *testing.B) {
						x.exhaustive = exhaustive
						var decoded, total int
						wandTrace = func(d, n int) { decoded, total = d, n }
						defer func() { wandTrace = nil }()
						cpu := startCPU()
						for range b.N {
							if _, err := x.SearchWith(q, SearchOptions{Limit: 100, NoSnippets: !snippets}); err != nil {
								b.Fatal(err)
							}
						}
						cpu.report(b)
						if total > 0 {
							b.ReportMetric(100*float64(decoded)/float64(total), "decoded%")
						}
					})
				}
			}
		}
	}
}
