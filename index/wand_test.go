package index

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble"
)

// wandData builds an index of n sessions: a metadata file holding the
// query words (and, correlated, fewer filler words in lower sessions, so
// that the best sessions are the first ones) and, for every third session, a
// summary holding filler only.
func wandData(t *testing.T, n int, correlated bool) *fixture {
	t.Helper()
	f := newFixture(t)
	f.x.sweepMin = 1 << 40 // no sweeps: the test decides when to compact
	r := rand.New(rand.NewPCG(7, 8))
	f.batch(func(b *pebble.Batch) {
		for i := range n {
			words := "filler"
			switch {
			case correlated:
				words += " common"
				for range i / 40 {
					words += " pad"
				}
			default:
				if i%2 == 0 {
					words += " common"
				}
				for range r.IntN(4) {
					words += " common"
				}
				if i%3 == 0 {
					words += " other"
				}
				if i%97 == 0 {
					words += " rare"
				}
				for range r.IntN(25) {
					words += fmt.Sprintf(" f%d", r.IntN(40))
				}
			}
			sid := fmt.Sprintf("s%05d", i)
			if err := f.x.UpdateFile(b, uint64(2*i+1), sid, KindMetadata, meta(words, "")); err != nil {
				t.Fatal(err)
			}
			if i%3 == 0 {
				sum := mustJSON(t, map[string]any{"narrative": "padding padding padding padding words words"})
				if err := f.x.UpdateFile(b, uint64(2*i+2), sid, KindSummary, sum); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
	return f
}

// wandSearch runs query with block-max top-k and exhaustively, and fails
// unless both give the same hits (sessions, order, scores, snippets). It
// returns the share of blocks the block-max path decoded (1 if the query
// was ranked exhaustively, too few hits: see wandMinHits) and whether it ran.
func wandSearch(t *testing.T, f *fixture, query string, limit int) (float64, bool) {
	t.Helper()
	var decoded, total int
	wandTrace = func(d, n int) { decoded, total = d, n }
	defer func() { wandTrace = nil }()
	f.x.exhaustive = false
	got, err := f.x.SearchWith(query, SearchOptions{Limit: limit})
	if err != nil {
		t.Fatal(err)
	}
	f.x.exhaustive = true
	want, err := f.x.SearchWith(query, SearchOptions{Limit: limit})
	f.x.exhaustive = false
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q limit %d: block-max top-k differs from the exhaustive ranking:\n got %v\nwant %v", query, limit, got, want)
	}
	if len(want) > limit {
		t.Fatalf("%q limit %d: %d hits", query, limit, len(want))
	}
	if total == 0 {
		return 1, false
	}
	return float64(decoded) / float64(total), true
}

// stripHeaders rewrites every base block in the format before block bounds.
func stripHeaders(t *testing.T, f *fixture) {
	t.Helper()
	f.batch(func(b *pebble.Batch) {
		it, err := prefixIter(b, tableKey(tblBlock))
		if err != nil {
			t.Fatal(err)
		}
		defer it.Close()
		for ok := it.First(); ok; ok = it.Next() {
			_, payload, err := parseBlockHead(it.Value())
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Set(slices.Clone(it.Key()), slices.Clone(payload), nil); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// blockHeads counts the base blocks with a header as new as the last shrink
// and a known minimum length, and all base blocks.
func blockHeads(t *testing.T, f *fixture) (current, all int) {
	t.Helper()
	shrunk, err := readShrunk(f.db)
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for _, s := range shrunk {
		last = max(last, s.gen)
	}
	it, err := prefixIter(f.db, tableKey(tblBlock))
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		h, _, err := parseBlockHead(it.Value())
		if err != nil {
			t.Fatal(err)
		}
		all++
		if h.has && h.gen >= last && h.lengthsKnown() {
			current++
		}
	}
	return current, all
}

func TestBlockMaxTopK(t *testing.T) {
	defer func(v int) { wandMinHits = v }(wandMinHits)
	wandMinHits = 0 // block-max for every query (see TestBlockMaxFallback)
	const n = 3000
	queries := []string{"common", "rare", "other", "common other", "common f1 f2", "rare OR other OR f3",
		"common OR nosuchword", "nosuchword", `"common other"`, "filler"}
	limits := []int{1, 7, 100}
	for _, c := range []struct {
		name       string
		correlated bool
		layout     func(t *testing.T, f *fixture)
		maxDecoded float64 // the share of blocks "common" top 7 may decode
	}{
		{"compacted", false, func(t *testing.T, f *fixture) { compact(t, f) }, 1},
		{"correlated/compacted", true, func(t *testing.T, f *fixture) { compact(t, f) }, 0.2},
		{"delta only", false, func(t *testing.T, f *fixture) {}, 1},
		{"deltas over blocks", false, func(t *testing.T, f *fixture) {
			compact(t, f)
			r := rand.New(rand.NewPCG(1, 1))
			for range 40 { // rewrites, removals, new sessions: delta keys and tombstones
				i := r.IntN(n + 50)
				switch r.IntN(3) {
				case 0:
					f.remove(uint64(2*i + 1))
				default:
					f.put(uint64(2*i+1), fmt.Sprintf("sessions/s%05d/metadata.json", i), meta("common common filler other", ""))
				}
			}
		}, 1},
		{"correlated/deltas over blocks", true, func(t *testing.T, f *fixture) {
			compact(t, f)
			f.put(2*2500+1, "sessions/s02500/metadata.json", meta("common common common", ""))
			f.remove(2*3 + 1)
		}, 0.2},
		{"blocks before bounds", false, func(t *testing.T, f *fixture) {
			compact(t, f)
			stripHeaders(t, f)
		}, 1},
		{"correlated/shorter sessions since compaction", true, func(t *testing.T, f *fixture) {
			compact(t, f)
			// Sessions get shorter without their "common" postings changing:
			// the blocks' minimum lengths are stale, the bounds take length 0.
			for _, i := range []int{2400, 2700, 2997} {
				f.put(uint64(2*i+2), fmt.Sprintf("sessions/s%05d/summary.json", i), mustJSON(t, map[string]any{"narrative": "x"}))
			}
		}, 0.2},
		{"correlated/a best session got shorter", true, func(t *testing.T, f *fixture) {
			// Session 1800 is short but for a long summary; once compacted,
			// the summary goes: it becomes the best session, its "common"
			// block untouched (its minimum length too high).
			f.put(2*1800+1, "sessions/s01800/metadata.json", meta("common", ""))
			long := strings.Repeat("padding ", 300)
			f.put(2*1800+2, "sessions/s01800/summary.json", mustJSON(t, map[string]any{"narrative": long}))
			compact(t, f)
			f.put(2*1800+2, "sessions/s01800/summary.json", mustJSON(t, map[string]any{"narrative": "x"}))
			hits, err := f.x.SearchWith("common", SearchOptions{Limit: 1, NoSnippets: true})
			if err != nil || len(hits) != 1 || hits[0].SessionID != "s01800" {
				t.Fatalf("best hit %+v (%v), want s01800", hits, err)
			}
		}, 0.2},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := wandData(t, n, c.correlated)
			c.layout(t, f)
			for _, q := range queries {
				for _, limit := range limits {
					share, _ := wandSearch(t, f, q, limit)
					if q == "common" && limit == 7 && share > c.maxDecoded {
						t.Errorf("%q top %d decoded %.0f%% of the blocks, want at most %.0f%%", q, limit, 100*share, 100*c.maxDecoded)
					}
				}
			}
		})
	}
}

func compact(t *testing.T, f *fixture) {
	t.Helper()
	if err := f.x.Compact(); err != nil {
		t.Fatal(err)
	}
}

// TestBlockBoundsWritten checks that compaction writes bounds, that Compact
// gives blocks written before bounds existed (or before a session got
// shorter) their bounds, and that the headers hold what the blocks hold.
func TestBlockBoundsWritten(t *testing.T) {
	f := wandData(t, 1000, true)
	compact(t, f)
	for _, step := range []struct {
		name   string
		change func()
		stale  bool // some blocks are left without a current bound until Compact
	}{
		{"compacted", func() {}, false},
		{"headers stripped", func() { stripHeaders(t, f) }, true},
		{"a session got shorter", func() {
			f.put(2*999+2, "sessions/s00999/summary.json", mustJSON(t, map[string]any{"narrative": "x"}))
		}, true},
	} {
		step.change()
		current, all := blockHeads(t, f)
		if all == 0 || (current == all) == step.stale {
			t.Fatalf("%s: %d of %d blocks have current bounds", step.name, current, all)
		}
		compact(t, f)
		if current, all := blockHeads(t, f); current != all {
			t.Fatalf("%s, compacted: %d of %d blocks have current bounds", step.name, current, all)
		}
		checkBlockHeads(t, f)
	}
}

// checkBlockHeads verifies every header against its block and the lengths.
func checkBlockHeads(t *testing.T, f *fixture) {
	t.Helper()
	g, err := loadGlobal(f.db)
	if err != nil {
		t.Fatal(err)
	}
	lr := &lengthReader{r: f.db}
	defer lr.close()
	it, err := prefixIter(f.db, tableKey(tblBlock))
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		first := uint32(k[len(k)-4])<<24 | uint32(k[len(k)-3])<<16 | uint32(k[len(k)-2])<<8 | uint32(k[len(k)-1])
		h, _, err := parseBlockHead(it.Value())
		if err != nil {
			t.Fatal(err)
		}
		ps, err := decodeBlock(nil, first, it.Value())
		if err != nil {
			t.Fatal(err)
		}
		type sess struct{ tf, length uint64 }
		var ss []sess
		for i, p := range ps {
			if i == 0 || p.num != ps[i-1].num {
				l, err := lr.length(p.num)
				if err != nil {
					t.Fatal(err)
				}
				ss = append(ss, sess{length: l})
			}
			ss[len(ss)-1].tf += p.tf
		}
		if h.sessions != uint64(len(ss)) || h.gen > g.lengthGen || h.n < 1 || h.n > maxPoints {
			t.Fatalf("block %q: header %+v, block holds %d sessions (gen %d)", k, h, len(ss), g.lengthGen)
		}
		for _, se := range ss { // every session has a point that dominates it
			ok := false
			for _, pt := range h.points[:h.n] {
				ok = ok || pt.tf >= se.tf && pt.minLen > 0 && pt.minLen-1 <= se.length
			}
			if !ok {
				t.Fatalf("block %q: header %+v does not bound a session of tf %d, length %d", k, h, se.tf, se.length)
			}
		}
		for _, pt := range h.points[:h.n] { // and every point is a session's tf and a session's length
			tfOK, lenOK := false, false
			for _, se := range ss {
				tfOK = tfOK || se.tf == pt.tf
				lenOK = lenOK || se.length+1 == pt.minLen
			}
			if !tfOK || !lenOK {
				t.Fatalf("block %q: point %+v is not tight", k, pt)
			}
		}
	}
}

// TestBlockMaxFallback: a query with too few hits for skipping is ranked
// exhaustively from the lists block-max read, with the same results.
func TestBlockMaxFallback(t *testing.T) {
	f := wandData(t, 3000, false)
	compact(t, f)
	for _, c := range []struct {
		q        string
		limit    int
		blockMax bool // ranked by block-max (else exhaustively)
	}{
		{"common", 7, true},
		{"common", 100, false}, // about 2400 hits, fewer than 64*100
		{"rare", 7, false},
		{"common other", 7, true},
		{"rare OR other", 7, true},
		{"rare OR rare", 7, false},
	} {
		if _, ran := wandSearch(t, f, c.q, c.limit); ran != c.blockMax {
			t.Errorf("%q top %d: block-max %v, want %v", c.q, c.limit, !c.blockMax, c.blockMax)
		}
	}
}
