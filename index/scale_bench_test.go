package index

import (
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
