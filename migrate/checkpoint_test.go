package migrate

import (
	"sync/atomic"
	"testing"

	"github.com/taskerfs/taskerfs/gen"
)

// countingTree counts the durable points an import makes.
type countingTree struct {
	VFSTree
	checkpoints *atomic.Int64
	bulk        *atomic.Int64 // SetBulk(true) minus SetBulk(false)
}

func (t countingTree) Checkpoint() error {
	t.checkpoints.Add(1)
	return t.VFSTree.Checkpoint()
}

func (t countingTree) SetBulk(on bool) {
	if on {
		t.bulk.Add(1)
	} else {
		t.bulk.Add(-1)
	}
	t.VFSTree.SetBulk(on)
}

// TestImportCheckpoints: into an unmounted data dir, an import syncs once
// per CheckpointEvery sessions and once at the end (not per session), and
// leaves bulk mode off; every session is then on disk after a reopen.
func TestImportCheckpoints(t *testing.T) {
	o := smallOptions()
	o.Sessions = 5
	src, m := generate(t, gen.LayoutLegacy, o)
	v := openData(t)
	dir := v.Dir
	tree := countingTree{VFSTree{v}, new(atomic.Int64), new(atomic.Int64)}
	rep := importDir(t, src, tree, ImportOptions{CheckpointEvery: 2, Workers: 1})
	if rep.Sessions != o.Sessions {
		t.Fatalf("imported %d sessions, want %d", rep.Sessions, o.Sessions)
	}
	if got := tree.checkpoints.Load(); got != 3 { // after sessions 2 and 4, and at the end
		t.Fatalf("%d checkpoints for %d sessions every 2, want 3", got, o.Sessions)
	}
	if tree.bulk.Load() != 0 {
		t.Fatal("bulk mode left on after the import")
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	v = reopen(t, dir)
	for _, s := range m.Sessions {
		if _, err := v.Resolve("sessions/" + s.ID + "/metadata.json"); err != nil {
			t.Fatalf("session %s after reopen: %v", s.ID, err)
		}
	}
}
