package index

import (
	"fmt"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble"
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
		dead, err := loadDead(fx.db)
		if err != nil {
			t.Fatal(err)
		}
		if err := eachTerm(fx.db, func(term string) error {
			ps, err := readPostings(fx.db, dead, term)
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
		folded = max(folded, mustCountKeys(t, f.db, tableKey(tblBlock)))
	}
	if folded == 0 {
		t.Fatal("no sweep step folded anything: the test tests nothing")
	}
	if err := f.x.Compact(); err != nil {
		t.Fatal(err)
	}
	if n := mustCountKeys(t, f.db, tableKey(tblTerm)); n > 0 {
		t.Fatalf("%d delta keys left after a full compaction", n)
	}
	for _, q := range []string{"w01", "w02 w05", "w10 OR w33", "w07 -w08"} {
		if got, want := f.ids(q), g.ids(q); !slices.Equal(got, want) {
			t.Errorf("%q: %v, want %v", q, got, want)
		}
	}
}

// TestBackgroundSweep: with background sweeps, writers only count their
// delta postings (no block is written) until Sweep folds them; the
// postings then equal those of an index that never sweeps; and when nobody
// calls Sweep, the writers fold again once the backlog passes sweepBacklog
// thresholds.
func TestBackgroundSweep(t *testing.T) {
	blocks := func(fx *fixture) int { return mustCountKeys(t, fx.db, tableKey(tblBlock)) }
	f, g := newFixture(t), newFixture(t)
	f.x.sweepMin, f.x.stepMin = 2000, 8
	f.x.SetBackgroundSweep(true)
	g.x.sweepMin = 1 << 40
	put := func(i int) {
		words := fmt.Sprintf("word%d common other%d", i, i%7)
		for k := range 100 { // more postings per file than the backlog bound grows by (4 x 16)
			words += fmt.Sprintf(" k%dx%d", k, i%13)
		}
		content := meta(words, "")
		path := fmt.Sprintf("sessions/s%03d/metadata.json", i)
		f.put(uint64(i+1), path, content)
		g.put(uint64(i+1), path, content)
	}
	for i := range 60 {
		put(i)
	}
	if n := blocks(f); n != 0 {
		t.Fatalf("writers wrote %d blocks with background sweeps", n)
	}
	if due, err := f.x.SweepDue(); err != nil || !due {
		t.Fatalf("SweepDue = %v, %v after 60 files over a threshold of 2000 postings", due, err)
	}
	steps := 0
	for more := true; more; steps++ {
		f.batch(func(b *pebble.Batch) {
			var err error
			if more, err = f.x.Sweep(b, 8); err != nil {
				t.Fatal(err)
			}
		})
	}
	if steps < 2 || blocks(f) == 0 {
		t.Fatalf("%d sweep steps, %d blocks: the sweep did not fold in steps", steps, blocks(f))
	}
	if due, err := f.x.SweepDue(); err != nil || due {
		t.Fatalf("SweepDue = %v, %v after the sweep", due, err)
	}
	if n := mustCountKeys(t, f.db, tableKey(tblTerm)); n > 0 {
		t.Fatalf("%d delta keys left after the sweep", n)
	}
	for _, q := range []string{"common", "word7", "other3 common", "common -other2"} {
		if got, want := f.ids(q), g.ids(q); !slices.Equal(got, want) {
			t.Errorf("%q: %v, want %v", q, got, want)
		}
	}
	// Nobody sweeps now: the writers take over past the backlog.
	before := blocks(f)
	for i := 60; i < 400 && blocks(f) == before; i++ {
		put(i)
	}
	if blocks(f) == before {
		t.Fatal("the writers never folded with the backlog past its bound")
	}
	for _, q := range []string{"common", "word77", "other3 common"} {
		if got, want := f.ids(q), g.ids(q); !slices.Equal(got, want) {
			t.Errorf("%q: %v, want %v", q, got, want)
		}
	}
}

// mustCountKeys is countKeys (wand.go) failing the test on an error.
func mustCountKeys(t *testing.T, r reader, prefix []byte) int {
	t.Helper()
	n, err := countKeys(r, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
