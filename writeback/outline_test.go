package writeback_test

import (
	"testing"
	"time"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/meta"
	"github.com/taskerfs/taskerfs/writeback"
)

// TestFsyncInlineMovesOut: an fsync'd file's chunks are committed inline
// (no blob file is needed for the fsync), then moved to blob files in the
// background; the content is the same before and after, in the live store
// and in a copy taken as a crash would leave it, and the namespace checks
// clean. A file over the fsync inline budget sends the rest to blob files
// at once.
func TestFsyncInlineMovesOut(t *testing.T) {
	e := newEnv(t, setup{opts: writeback.Options{Window: never, OutlineDelay: time.Millisecond}})
	small, mid := data(200*KiB, 1), data(3*meta.ChunkSize/2, 2)
	a, b := e.create("a"), e.create("b")
	e.writeFile(a, small)
	e.fsync(a)
	sameBytes(t, "fsync'd file", committed(t, e.store, a), small)
	sameBytes(t, "fsync'd file after a crash", committed(t, e.crashCopy(), a), small)
	e.writeFile(b, mid)
	e.fsync(b)
	sameBytes(t, "fsync'd 1.5 MiB file after a crash", committed(t, e.crashCopy(), b), mid)

	hs := []blobstore.Hash{blobstore.Sum(small), blobstore.Sum(mid[meta.ChunkSize:])}
	eventually(t, "the fsync'd blobs to move to files", func() bool {
		for _, h := range hs {
			bi, ok, err := e.store.BlobInfo(h)
			if err != nil || !ok || bi.Inline {
				return false
			}
		}
		return true
	})
	for _, h := range hs {
		if ok, err := e.local.Has(h); err != nil || !ok {
			t.Fatalf("blob %v: no file after the move (%v)", h, err)
		}
	}
	if st := e.wb.Stats(); st.Outlined < 1 {
		t.Fatalf("outlinedBlobs %d", st.Outlined)
	}
	sameBytes(t, "after the move", committed(t, e.store, a), small)
	sameBytes(t, "after the move, crash copy", committed(t, e.crashCopy(), a), small)
	sameBytes(t, "1.5 MiB file after the move", committed(t, e.store, b), mid)
	var problems []meta.Problem
	if err := e.store.Check(func(p meta.Problem) { problems = append(problems, p) }); err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Fatalf("check: %v", problems)
	}
}
