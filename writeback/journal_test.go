package writeback_test

import (
	"testing"
	"time"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/writeback"
)

// An fsync keeps its file's blob inline (one WAL sync makes it durable);
// the manager then moves it to a blob file, and reads, the crash copies
// and the refcounts agree at every step.
func TestFsyncJournalsThenMovesOut(t *testing.T) {
	e := newEnv(t, setup{opts: writeback.Options{Window: never}})
	a, big := e.create("a"), e.create("big")
	da := data(200*KiB, 11)
	dbig := data(3*MiB+5, 12)
	e.writeFile(a, da)
	e.fsync(a)
	if st := e.wb.Stats(); st.Journaled != 1 {
		t.Fatalf("after a 200 KiB fsync: %d blobs journaled, want 1", st.Journaled)
	}
	crashed := e.crashCopy()
	sameBytes(t, "a in the crash copy after its fsync", committed(t, crashed, a), da)
	checkRefs(t, crashed)

	// A large fsync journals only its budget; the rest goes to files.
	e.writeFile(big, dbig)
	e.fsync(big)
	if st := e.wb.Stats(); st.Journaled != 2 {
		t.Fatalf("after a 3 MiB fsync: %d blobs journaled in all, want 2 (one 1 MiB chunk)", st.Journaled)
	}

	deadline := time.Now().Add(10 * time.Second)
	for e.wb.Stats().MovedOut < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("journaled blobs never moved out: %+v", e.wb.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, d := range [][]byte{da, dbig[:MiB]} {
		h := blobstore.Sum(d)
		info, ok, err := e.store.BlobInfo(h)
		if err != nil || !ok || info.Inline {
			t.Fatalf("blob %s after the move: %+v, %v, %v", h, info, ok, err)
		}
		if has, err := e.local.Has(h); err != nil || !has {
			t.Fatalf("blob %s has no file after the move: %v", h, err)
		}
	}
	if hs, err := e.store.Journaled(10); err != nil || len(hs) != 0 {
		t.Fatalf("marks left after the move: %v, %v", hs, err)
	}
	sameBytes(t, "a after the move", committed(t, e.store, a), da)
	sameBytes(t, "big after the move", committed(t, e.store, big), dbig)
	crashed = e.crashCopy()
	sameBytes(t, "a in the crash copy after the move", committed(t, crashed, a), da)
	sameBytes(t, "big in the crash copy after the move", committed(t, crashed, big), dbig)
	checkRefs(t, crashed)
}

// A background commit (no fsync waiting) journals nothing.
func TestWindowCommitJournalsNothing(t *testing.T) {
	e := newEnv(t, setup{opts: writeback.Options{Window: time.Millisecond}})
	a := e.create("a")
	e.writeFile(a, data(200*KiB, 13))
	if err := e.wb.SyncAll(); err != nil {
		t.Fatal(err)
	}
	if st := e.wb.Stats(); st.Journaled != 0 {
		t.Fatalf("a window commit journaled %d blobs", st.Journaled)
	}
}
