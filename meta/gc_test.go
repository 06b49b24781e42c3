package meta

import (
	"testing"
	"time"
)

// The collector deletes a blob only after it has been unreferenced and
// unpinned for the grace period, scans only when something can have
// become collectable, and compacts after many inodes went.
func TestCollector(t *testing.T) {
	e := newEnv(t)
	f := e.mkfile("f").Ino
	kept := e.fileRef(randomBytes(20, 5000))
	dropped := e.fileRef(randomBytes(21, 6000))
	revived := e.fileRef(randomBytes(22, 7000))
	pinned := e.fileRef(randomBytes(23, 8000))
	e.setChunk(f, 0, kept)
	e.setChunk(f, 1, dropped)
	e.setChunk(f, 2, revived)
	e.setChunk(f, 3, pinned)

	c := e.s.NewCollector(time.Minute)
	t0 := time.Unix(1_000_000, 0)
	has := func(r *BlobRef) bool { ok, _ := e.blobs.Has(r.Hash); return ok }

	res, err := c.Pass(t0, false)
	if err != nil || res.Scanned != 0 {
		t.Fatalf("nothing freed yet: %+v, %v (want no scan)", res, err)
	}
	e.setChunk(f, 1, nil)
	e.setChunk(f, 2, nil)
	e.s.Pin(pinned.Hash)
	e.setChunk(f, 3, nil)

	steps := []struct {
		name    string
		at      time.Duration
		before  func()
		removed int
		waiting int
	}{
		// waiting counts the pinned blob too: it is looked at again.
		{"first sight starts the grace period", 0, nil, 0, 3},
		{"within the grace period", 30 * time.Second, nil, 0, 3},
		{"revived in the meantime", 40 * time.Second, func() { e.setChunk(f, 2, revived) }, 0, 2},
		{"grace period over, pinned one kept", 61 * time.Second, nil, 1, 1},
		{"unpinned: a new grace period", 62 * time.Second, func() { e.s.Unpin(pinned.Hash) }, 0, 1},
		{"its grace period over", 123 * time.Second, nil, 1, 0},
	}
	for _, st := range steps {
		if st.before != nil {
			st.before()
		}
		res, err := c.Pass(t0.Add(st.at), false)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if res.Removed != st.removed || res.Waiting != st.waiting {
			t.Fatalf("%s: removed %d waiting %d, want %d and %d", st.name, res.Removed, res.Waiting, st.removed, st.waiting)
		}
	}
	for _, r := range []*BlobRef{kept, revived} {
		if !has(r) {
			t.Fatalf("referenced blob %s collected", r.Hash)
		}
	}
	for _, r := range []*BlobRef{dropped, pinned} {
		if has(r) {
			t.Fatalf("blob %s not collected", r.Hash)
		}
	}
	if res, _ := c.Pass(t0.Add(time.Hour), false); res.Scanned != 0 {
		t.Fatalf("idle pass scanned %d blobs", res.Scanned)
	}
	stray := e.fileRef(randomBytes(24, 900)) // never referenced
	if res, _ := c.Pass(t0.Add(2*time.Hour), true); res.Waiting != 1 {
		t.Fatalf("full pass: %+v, want the stray waiting", res)
	}
	if res, _ := c.Pass(t0.Add(3*time.Hour), false); res.Removed != 1 || has(stray) {
		t.Fatalf("stray not collected: %+v", res)
	}

	// Many deleted inodes, against few left: the pass compacts.
	for i := range compactAfterInodes {
		name := "x" + fmtU(uint64(i))
		e.mkfile(name)
		checkErr(t, "unlink", e.s.Unlink(RootIno, name), 0)
	}
	if res, err := c.Pass(t0.Add(4*time.Hour), false); err != nil || !res.Compacted {
		t.Fatalf("after %d unlinks: %+v, %v; want a compaction", compactAfterInodes, res, err)
	}
	e.fsck()
}

func TestCompactWorthIt(t *testing.T) {
	for _, tc := range []struct {
		deleted uint64
		live    int64
		want    bool
	}{
		{0, 0, false},
		{compactAfterInodes - 1, 0, false},
		{compactAfterInodes, 0, true},
		{compactAfterInodes, 2 * compactAfterInodes, true},
		{compactAfterInodes, 2*compactAfterInodes + 2, false},
		{10_000, 36_000, false}, // rm -rf of a small tree beside a big one
		{26_000, 10_000, true},  // rm -rf of most of it
		{400_000, 800_000, true},
		{1_000, 800_000, false}, // a few deletions never rewrite a large store
	} {
		if got := compactWorthIt(tc.deleted, tc.live); got != tc.want {
			t.Errorf("compactWorthIt(%d, %d) = %v, want %v", tc.deleted, tc.live, got, tc.want)
		}
	}
}

// The collector gives the WAL's spare space back once, after
// walQuietPasses passes in a row found nothing written by anyone else, and
// again only after writes resume and stop.
func TestCollectorReleasesWAL(t *testing.T) {
	e := newEnv(t)
	c := e.s.NewCollector(time.Minute)
	t0 := time.Unix(1_000_000, 0)
	pass := func(i int) bool {
		t.Helper()
		res, err := c.Pass(t0.Add(time.Duration(i)*time.Minute), false)
		if err != nil {
			t.Fatal(err)
		}
		return res.ReleasedWAL
	}
	e.mkfile("a")
	want := []bool{false, false, true, false, false}
	for i, w := range want {
		if got := pass(i); got != w {
			t.Fatalf("pass %d after a write: released %v, want %v", i, got, w)
		}
	}
	e.mkfile("b")
	for i, w := range []bool{false, false, true} {
		if got := pass(10 + i); got != w {
			t.Fatalf("pass %d after writes resumed: released %v, want %v", i, got, w)
		}
	}
	if n := e.s.spares.count(); n != 0 {
		t.Fatalf("%d spares after a release", n)
	}
	e.fsck()
}
