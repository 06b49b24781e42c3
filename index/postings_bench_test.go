package index

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
)

// Benchmarks of the query hot paths over packed postings: block decoding,
// merging the delta layer, top-k selection, and whole queries on an index of
// small sessions (a word in 50% of them, one in 1%, a tag in 10%), compacted
// or with a tenth of the postings still in delta keys.

func BenchmarkDecodeBlock(b *testing.B) {
	ps := make([]posting, blockPostings)
	fid := uint64(1000)
	for i := range ps {
		fid += uint64(1 + i%3)
		ps[i] = posting{num: uint32(100 + 2*i), fid: fid, tf: uint64(1 + i%4)}
	}
	v := encodeBlock(nil, ps, func(uint32) (uint64, bool) { return 100, true }, 0)
	b.ReportMetric(float64(len(v))/float64(len(ps)), "bytes/posting")
	b.ResetTimer()
	var dst []posting
	for range b.N {
		var err error
		if dst, err = decodeBlock(dst[:0], 100, v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMergePostings(b *testing.B) {
	base := make([]posting, 50000)
	for i := range base {
		base[i] = posting{num: uint32(2 * i), fid: uint64(i), tf: 1}
	}
	delta := make([]posting, 5000)
	for i := range delta {
		delta[i] = posting{num: uint32(20 * i), fid: uint64(10 * i), tf: uint64(i % 2)}
	}
	var dst []posting
	for range b.N {
		dst = mergePostings(dst[:0], base, delta)
	}
}

func BenchmarkKthLargest(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	scores := make([]float64, 50000)
	for i := range scores {
		scores[i] = r.Float64()
	}
	for range b.N {
		kthLargest(scores, 100)
	}
}

// hotIndex indexes n sessions of one metadata file each.
func hotIndex(b *testing.B, n int, compact bool) *Index {
	f := newFixture(b)
	f.x.sweepMin = 1 << 40
	r := rand.New(rand.NewPCG(5, 6))
	batch := f.db.NewIndexedBatch()
	for i := range n {
		words := fmt.Sprintf("filler w%d", r.IntN(1000))
		if i%2 == 0 {
			words += " common"
		}
		if i%100 == 0 {
			words += " rare"
		}
		for range r.IntN(5) {
			words += " common"
		}
		for range r.IntN(30) { // lengths vary, as real sessions' do: few ties
			words += fmt.Sprintf(" f%d", r.IntN(50))
		}
		tags := []string{fmt.Sprintf("t%d", i%10)}
		content := mustJSON(b, map[string]any{"name": fmt.Sprintf("session %d", i), "description": words,
			"startTime": "2025-03-01T10:00:00Z", "tags": tags})
		if err := f.x.UpdateFile(batch, uint64(i+1), fmt.Sprintf("s%06d", i), KindMetadata, content); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			if err := batch.Commit(pebble.NoSync); err != nil {
				b.Fatal(err)
			}
			_ = batch.Close()
			batch = f.db.NewIndexedBatch()
			if compact && i == n*9/10-1 {
				if err := f.x.Compact(); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	if err := batch.Commit(pebble.NoSync); err != nil {
		b.Fatal(err)
	}
	_ = batch.Close()
	return f.x
}

func BenchmarkQueryHotPaths(b *testing.B) {
	const n = 50000
	for _, compact := range []bool{true, false} {
		layout := "compacted90%"
		if !compact {
			layout = "deltaonly"
		}
		x := hotIndex(b, n, compact)
		for _, c := range []struct {
			name, q string
			opt     SearchOptions
		}{
			{"top100/50%", "common", SearchOptions{Limit: 100}},
			{"top100-nosnippets/50%", "common", SearchOptions{Limit: 100, NoSnippets: true}},
			{"listing/50%", "common", SearchOptions{NoSnippets: true}},
			{"listing/1%", "rare", SearchOptions{NoSnippets: true}},
			{"top100/AND", "common filler", SearchOptions{Limit: 100}},
			{"top100/OR3", "rare OR w1 OR w2", SearchOptions{Limit: 100}},
			{"top100/NOT", "filler -common", SearchOptions{Limit: 100}},
			{"top100/tag", "tag:t3 common", SearchOptions{Limit: 100}},
		} {
			b.Run(layout+"/"+c.name, func(b *testing.B) {
				hits := 0
				cpu := startCPU()
				for range b.N {
					h, err := x.SearchWith(c.q, c.opt)
					if err != nil {
						b.Fatal(err)
					}
					hits = len(h)
				}
				cpu.report(b)
				b.ReportMetric(float64(hits), "hits")
			})
		}
		b.Run(layout+"/facet/tag10%", func(b *testing.B) {
			cpu := startCPU()
			for range b.N {
				if _, err := x.FacetSessions("tag", "t3"); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b)
		})
	}
}

// cpuClock measures the CPU time of the benchmark's OS thread (the query runs
// on it alone), reported as cpu-ms/op next to the wall time: on a loaded
// machine the wall time mostly measures the wait for a core.
type cpuClock struct{ start time.Duration }

func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() *cpuClock {
	runtime.LockOSThread()
	return &cpuClock{start: threadCPU()}
}

func (c *cpuClock) report(b *testing.B) {
	d := threadCPU() - c.start
	runtime.UnlockOSThread()
	b.ReportMetric(float64(d.Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// BenchmarkBlockMaxHot is the top 100 of BenchmarkQueryHotPaths' queries
// with block-max skipping and exhaustively, interleaved, on an index of
// BLOCKMAX_SESSIONS (default 20000) small sessions, compacted: how the
// ranked top-k grows with the collection (decoded% is the share of the
// query terms' blocks the block-max path decoded).
func BenchmarkBlockMaxHot(b *testing.B) {
	n := 20000
	if v, err := strconv.Atoi(os.Getenv("BLOCKMAX_SESSIONS")); err == nil && v > 0 {
		n = v
	}
	x := hotIndex(b, n, true)
	if err := x.Compact(); err != nil {
		b.Fatal(err)
	}
	for range 3 {
		for _, c := range []struct {
			name, q string
			opt     SearchOptions
		}{
			{"top100-nosnippets/common", "common", SearchOptions{Limit: 100, NoSnippets: true}},
			{"top100/common", "common", SearchOptions{Limit: 100}},
			{"top100-nosnippets/AND", "common filler", SearchOptions{Limit: 100, NoSnippets: true}},
			{"top100-nosnippets/OR3", "rare OR w1 OR w2", SearchOptions{Limit: 100, NoSnippets: true}},
		} {
			for _, exhaustive := range []bool{false, true} {
				name := c.name + "/blockmax"
				if exhaustive {
					name = c.name + "/exhaustive"
				}
				b.Run(name, func(b *testing.B) {
					x.exhaustive = exhaustive
					var decoded, total int
					wandTrace = func(d, n int) { decoded, total = d, n }
					defer func() { wandTrace = nil }()
					cpu := startCPU()
					for range b.N {
						if _, err := x.SearchWith(c.q, c.opt); err != nil {
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

// BenchmarkCompactTerm: folding a few new postings into a term of 2,000
// blocks (a common word at about 250k sessions), as a sweep, a purge or
// an ingest's fold does for the newest sessions.
func BenchmarkCompactTerm(b *testing.B) {
	db := openDB(b)
	var ps []posting
	for num := uint32(1); num <= 256000; num++ {
		ps = append(ps, posting{num: num, fid: uint64(num) * 8, tf: 1})
	}
	g := globalStats{}
	batch := db.NewIndexedBatch()
	if err := writeBlocks(batch, newBlockWriter(batch, g), blockPrefix("common"), ps); err != nil {
		b.Fatal(err)
	}
	if err := batch.Commit(pebble.NoSync); err != nil {
		b.Fatal(err)
	}
	batch.Close()
	if err := db.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		batch := db.NewIndexedBatch()
		delta := []posting{{num: 256001 + uint32(i), fid: 1, tf: 1}}
		if err := compactTerm(batch, newBlockWriter(batch, g), "common", delta); err != nil {
			b.Fatal(err)
		}
		batch.Close() // (not committed: every round folds into the same blocks)
	}
}
