package index

import (
	"fmt"
	"slices"
	"testing"
)

// TestPartialSweepSteps folds the delta keys a few terms at a time (each
// step stops well before the last term) while files are added, rewritten
// and removed, and holds every term's merged postings, after every update,
// to those of an index that never sweeps. A step that folds or deletes
// more or less than the terms it read fails it.
func TestPartialSweepSteps(t *testing.T) {
	f, g := newFixture(t), newFixture(t)
	f.x.sweepMin, f.x.stepMin = 1, 8
	g.x.sweepMin = 1 << 40
	words := func(i, gen int) string {
		var s []string
		for w := range 12 {
			s = append(s, fmt.Sprintf("w%02d", (i*7+w*3+gen)%40))
		}
		return fmt.Sprint(s)
	}
	postings := func(fx *fixture) map[string][]posting {
		out := map[string][]posting{}
		if err := eachTerm(fx.db, func(term string) error {
			ps, err := readPostings(fx.db, term)
			if len(ps) > 0 {
				out[term] = ps
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	folded := 0
	for step := range 120 {
		i := step % 30
		fid := uint64(i + 1)
		path := fmt.Sprintf("sessions/s%02d/metadata.json", i%10)
		if i%3 == 1 {
			path = fmt.Sprintf("sessions/s%02d/summary.json", i%10)
		}
		if step%11 == 5 {
			f.remove(fid)
			g.remove(fid)
		} else {
			content := meta(words(i, step/30), "")
			f.put(fid, path, content)
			g.put(fid, path, content)
		}
		got, want := postings(f), postings(g)
		if len(got) != len(want) {
			t.Fatalf("step %d: %d terms with postings, want %d", step, len(got), len(want))
		}
		for term, ps := range want {
			if !slices.Equal(got[term], ps) {
				t.Fatalf("step %d: term %q: postings %v, want %v", step, term, got[term], ps)
			}
		}
		var blocks int
		it, err := prefixIter(f.db, tableKey(tblBlock))
		if err != nil {
			t.Fatal(err)
		}
		for ok := it.First(); ok; ok = it.Next() {
			blocks++
		}
		it.Close()
		folded = max(folded, blocks)
	}
	if folded == 0 {
		t.Fatal("no sweep step folded anything: the test tests nothing")
	}
	if err := f.x.Compact(); err != nil {
		t.Fatal(err)
	}
	it, err := prefixIter(f.db, tableKey(tblTerm))
	if err != nil {
		t.Fatal(err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		t.Fatalf("delta key %q left after a full compaction", it.Key())
	}
	it.Close()
	for _, q := range []string{"w01", "w02 w05", "w10 OR w33", "w07 -w08"} {
		if got, want := f.ids(q), g.ids(q); !slices.Equal(got, want) {
			t.Errorf("%q: %v, want %v", q, got, want)
		}
	}
}
