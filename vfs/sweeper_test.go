package vfs

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestIndexSweeper: with the sweeper running, the writers leave the fold to
// it (the backlog stays below their own bound) and it folds the whole
// delta table in its own transactions; searches give the same answers
// before, during and after.
func TestIndexSweeper(t *testing.T) {
	f := newTFS(t)
	f.v.index.SetBackgroundSweep(true) // as the sweeper sets it; it starts below
	const sessions, words = 70, 1000   // 70,000 postings: past the 65,536 that start a sweep
	for i := range sessions {
		var b strings.Builder
		for k := range words {
			fmt.Fprintf(&b, " w%dx%d", k, i)
		}
		f.mkdir(fmt.Sprintf("sessions/s%02d", i), 0o755, 0, 0)
		f.write(fmt.Sprintf("sessions/s%02d/metadata.json", i),
			fmt.Sprintf(`{"id":"s%02d","name":"n%d","description":%q}`, i, i, b.String()), 0o644, 0, 0)
	}
	if err := f.v.SyncAll(); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		for _, i := range []int{0, 33, sessions - 1} {
			hits, err := f.v.Snippets(fmt.Sprintf("w%dx%d", i*7%words, i))
			if err != nil || len(hits) != 1 || hits[0].SessionID != fmt.Sprintf("s%02d", i) {
				t.Fatalf("%s: search for session %d: %v, %v", when, i, hits, err)
			}
		}
	}
	check("written")
	if due, err := f.v.index.SweepDue(); err != nil || !due {
		t.Fatalf("no sweep due after %d postings: %v", sessions*words, err)
	}
	f.v.StartIndexSweeper() // Close (the test's cleanup) stops it
	deadline := time.Now().Add(30 * time.Second)
	for {
		due, err := f.v.index.SweepDue()
		if err != nil {
			t.Fatal(err)
		}
		if !due {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sweeper did not finish the sweep in 30 s")
		}
		check("sweeping") // searches read beside the sweeper's steps
		time.Sleep(time.Millisecond)
	}
	check("swept")
	r, err := f.v.Fsck(FsckOptions{})
	if err != nil || len(r.Index) > 0 {
		t.Fatalf("fsck after the sweep: %v, %v", r.Index, err)
	}
}
