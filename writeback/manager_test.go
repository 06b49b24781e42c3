package writeback_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/taskerfs/taskerfs/meta"
	"github.com/taskerfs/taskerfs/writeback"
)

// never is a window long enough that only explicit requests commit.
const never = time.Hour

const (
	KiB = 1 << 10
	MiB = 1 << 20
)

func TestReadYourWritesBeforeCommit(t *testing.T) {
	for _, size := range []int{1 * KiB, 200 * KiB, 2*MiB + 300*KiB} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			e := newEnv(t, setup{opts: writeback.Options{Window: never}})
			ino := e.create("f")
			want := data(size, uint64(size))
			e.writeFile(ino, want)

			sameBytes(t, "read before commit", e.content(ino), want)
			if got := chunkIndexes(t, e.store, ino); len(got) != 0 {
				t.Fatalf("manifest has chunks %v before any commit", got)
			}
			if st := e.wb.Stats(); st.QueueNormal != 1 || st.ItemsCommitted != 0 {
				t.Fatalf("queue %+v, want one normal item and nothing committed", st)
			}

			e.restart()
			sameBytes(t, "committed after restart", committed(t, e.store, ino), want)
			sameBytes(t, "read after restart", e.content(ino), want)
			checkRefs(t, e.store)
		})
	}
}

// op is one step of a content scenario.
type op struct {
	kind string // "write", "trunc", "fsync" (commit while open)
	off  int64  // write offset or new size
	n    int    // write length
}

func w(off int64, n int) op { return op{kind: "write", off: off, n: n} }
func trunc(size int64) op   { return op{kind: "trunc", off: size} }
func fsyncOp() op           { return op{kind: "fsync"} }
func applyModel(m []byte, o op, payload []byte) []byte {
	switch o.kind {
	case "write":
		if end := int(o.off) + o.n; end > len(m) {
			m = append(m, make([]byte, end-len(m))...)
		}
		copy(m[o.off:], payload)
	case "trunc":
		if int(o.off) < len(m) {
			m = m[:o.off]
		} else {
			m = append(m, make([]byte, int(o.off)-len(m))...)
		}
	}
	return m
}

func TestContentSemantics(t *testing.T) {
	cases := []struct {
		name string
		ops  []op
	}{
		{"overwrite committed middle", []op{w(0, 200*KiB), fsyncOp(), w(100*KiB, 50*KiB)}},
		{"overwrite uncommitted", []op{w(0, 200*KiB), w(5*KiB, 10*KiB)}},
		{"append to committed", []op{w(0, 70*KiB), fsyncOp(), w(70*KiB, 1*MiB)}},
		{"shrink then extend committed reads zeros", []op{w(0, 300*KiB), fsyncOp(), trunc(100 * KiB), trunc(250 * KiB)}},
		{"shrink then extend uncommitted reads zeros", []op{w(0, 300*KiB), trunc(100 * KiB), trunc(250 * KiB)}},
		{"shrink across chunks then extend and write", []op{w(0, 3*MiB), fsyncOp(), trunc(3 * MiB / 2), trunc(4 * MiB), w(7*MiB/2, 10*KiB)}},
		{"shrink to chunk boundary then extend", []op{w(0, 5*MiB/2), fsyncOp(), trunc(1 * MiB), trunc(2 * MiB)}},
		{"shrink, commit, extend", []op{w(0, 300*KiB), fsyncOp(), trunc(100 * KiB), fsyncOp(), trunc(300 * KiB)}},
		{"truncate to zero and rewrite shorter", []op{w(0, 500*KiB), fsyncOp(), trunc(0), w(0, 100*KiB)}},
		{"sparse write far out", []op{w(3*MiB+17, 10*KiB)}},
		{"sparse write far out of a committed file", []op{w(0, 10*KiB), fsyncOp(), w(3*MiB+17, 10*KiB)}},
		{"extend by truncate only", []op{trunc(5 * MiB)}},
		{"write across a chunk boundary", []op{w(0, 2*MiB), fsyncOp(), w(MiB-100, 200)}},
		{"rewrite a spilled chunk", []op{w(0, 2*MiB), w(10, 10)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, setup{opts: writeback.Options{Window: never}})
			ino := e.create("f")
			e.openFile(ino)
			var model []byte
			for i, o := range tc.ops {
				payload := data(o.n, uint64(i+1))
				switch o.kind {
				case "write":
					e.write(ino, payload, o.off)
				case "trunc":
					e.truncate(ino, uint64(o.off))
				case "fsync":
					e.fsync(ino)
					sameBytes(t, fmt.Sprintf("committed after step %d", i), committed(t, e.store, ino), model)
				}
				model = applyModel(model, o, payload)
				sameBytes(t, fmt.Sprintf("read after step %d (%s)", i, o.kind), e.content(ino), model)
			}
			e.wb.Release(ino)
			sameBytes(t, "read after close", e.content(ino), model)
			e.fsync(ino)
			sameBytes(t, "committed after fsync", committed(t, e.store, ino), model)
			for _, idx := range chunkIndexes(t, e.store, ino) {
				chunk := model[idx*meta.ChunkSize : min(uint64(len(model)), (idx+1)*meta.ChunkSize)]
				if !slices.ContainsFunc(chunk, func(b byte) bool { return b != 0 }) {
					t.Errorf("chunk %d is all zeros but stored instead of left a hole", idx)
				}
			}
			e.restart()
			sameBytes(t, "read after restart", e.content(ino), model)
			checkRefs(t, e.store)
		})
	}
}

// TestRandomOpsAgainstModel races a writer against a committer that runs
// every millisecond, checking read-your-writes after every step.
func TestRandomOpsAgainstModel(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			e := newEnv(t, setup{opts: writeback.Options{Window: time.Millisecond}})
			r := rand.New(rand.NewPCG(seed, 7))
			ino := e.create("f")
			e.openFile(ino)
			var model []byte
			for step := range 150 {
				var o op
				switch k := r.IntN(20); {
				case k < 12:
					o = w(r.Int64N(3*MiB), 1+r.IntN(300*KiB))
				case k < 16:
					o = trunc(r.Int64N(3 * MiB))
				case k < 18:
					o = fsyncOp()
				default:
					o = op{kind: "reopen"}
				}
				payload := data(o.n, seed<<32|uint64(step))
				switch o.kind {
				case "write":
					e.write(ino, payload, o.off)
				case "trunc":
					e.truncate(ino, uint64(o.off))
				case "fsync":
					e.fsync(ino)
				case "reopen":
					e.wb.Release(ino)
					e.openFile(ino)
				}
				model = applyModel(model, o, payload)
				sameBytes(t, fmt.Sprintf("read after step %d (%+v)", step, o), e.content(ino), model)
			}
			e.wb.Release(ino)
			if err := e.wb.SyncAll(); err != nil {
				t.Fatal(err)
			}
			sameBytes(t, "committed after sync", committed(t, e.store, ino), model)
			e.restart()
			sameBytes(t, "read after restart", e.content(ino), model)
			checkRefs(t, e.store)
		})
	}
}

func TestCoalescing(t *testing.T) {
	cases := []struct {
		name          string
		files, closes int
		wantCoalesced uint64
	}{
		{"one file closed five times", 1, 5, 4},
		{"five files closed once", 5, 1, 0},
		{"three files closed three times", 3, 3, 6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, setup{opts: writeback.Options{Window: never}})
			want := map[uint64][]byte{}
			for f := range tc.files {
				ino := e.create(fmt.Sprint("f", f))
				for c := range tc.closes {
					want[ino] = data(100*KiB+c, uint64(f*100+c))
					e.writeFile(ino, want[ino])
				}
			}
			st := e.wb.Stats()
			if st.Coalesced != tc.wantCoalesced || st.QueueNormal != tc.files {
				t.Fatalf("before commit: coalesced %d, queued %d; want %d, %d", st.Coalesced, st.QueueNormal, tc.wantCoalesced, tc.files)
			}
			if err := e.wb.SyncAll(); err != nil {
				t.Fatal(err)
			}
			st = e.wb.Stats()
			if st.ItemsCommitted != uint64(tc.files) || st.Batches != 1 {
				t.Fatalf("after sync: %d items in %d batches, want %d in 1", st.ItemsCommitted, st.Batches, tc.files)
			}
			for ino, d := range want {
				sameBytes(t, fmt.Sprint("committed ", ino), committed(t, e.store, ino), d)
			}
			if st.QueueNormal != 0 || st.DirtyBytes != 0 {
				t.Fatalf("after sync: queue %d, dirty %d", st.QueueNormal, st.DirtyBytes)
			}
		})
	}
}

// TestGroupCommitPerWindow lets the window commit many closes: they land
// in fewer batches than files.
func TestGroupCommitPerWindow(t *testing.T) {
	e := newEnv(t, setup{opts: writeback.Options{Window: 50 * time.Millisecond}})
	const n = 40
	want := map[uint64][]byte{}
	for i := range n {
		ino := e.create(fmt.Sprint("f", i))
		want[ino] = data(4*KiB, uint64(i))
		e.writeFile(ino, want[ino])
	}
	eventually(t, "the window to commit every file", func() bool {
		for ino, d := range want {
			if !bytes.Equal(committed(t, e.store, ino), d) {
				return false
			}
		}
		return true
	})
	if st := e.wb.Stats(); st.Batches >= n {
		t.Fatalf("%d files took %d batches: no group commit", n, st.Batches)
	}
}

func TestFsyncIsDurableAndJumpsTheQueue(t *testing.T) {
	e := newEnv(t, setup{opts: writeback.Options{Window: never}})
	a, b, open := e.create("a"), e.create("b"), e.create("open")
	da, db, dopen := data(200*KiB, 1), data(3*KiB, 2), data(MiB+5, 3)
	e.writeFile(a, da)
	e.writeFile(b, db)
	e.openFile(open)
	e.write(open, dopen, 0)

	e.fsync(a)
	sameBytes(t, "a after its fsync", committed(t, e.store, a), da)
	if got := committed(t, e.store, b); len(got) != 0 {
		t.Fatalf("b (normal, window not due) was committed by a's fsync: %d bytes", len(got))
	}
	if st := e.wb.Stats(); st.QueueNormal != 1 {
		t.Fatalf("queue after a's fsync: %+v, want b still queued", st)
	}
	e.fsync(open) // an fsync of an open file makes what it holds durable
	e.fsync(a)    // a clean file: nothing to commit
	if err := e.wb.Fsync(e.create("never-written")); err != nil {
		t.Fatal(err)
	}

	crashed := e.crashCopy()
	sameBytes(t, "a in the crash copy", committed(t, crashed, a), da)
	sameBytes(t, "open file in the crash copy", committed(t, crashed, open), dopen)
	checkRefs(t, crashed)
	e.wb.Release(open)
}

func TestCloseFlushesEverything(t *testing.T) {
	e := newEnv(t, setup{opts: writeback.Options{Window: never}})
	want := map[uint64][]byte{}
	for i := range 5 {
		ino := e.create(fmt.Sprint("closed", i))
		want[ino] = data(60*KiB*(i+1), uint64(i))
		e.writeFile(ino, want[ino])
	}
	still := e.create("still-open")
	want[still] = data(2*MiB+1, 99)
	e.openFile(still)
	e.write(still, want[still], 0)
	shrunk := e.create("shrunk")
	e.writeFile(shrunk, data(300*KiB, 5))
	e.fsync(shrunk)
	e.truncate(shrunk, 10*KiB)
	want[shrunk] = data(300*KiB, 5)[:10*KiB]

	e.restart()
	for ino, d := range want {
		sameBytes(t, fmt.Sprint("after restart ", ino), committed(t, e.store, ino), d)
	}
	checkRefs(t, e.store)
}

func TestBackpressureBoundsDirtyBytes(t *testing.T) {
	const limit = 512 * KiB
	e := newEnv(t, setup{opts: writeback.Options{Window: 10 * time.Millisecond, MaxDirtyBytes: limit},
		putDelay: 5 * time.Millisecond})
	want := map[uint64][]byte{}
	var peak int64
	for i := range 24 {
		ino := e.create(fmt.Sprint("f", i))
		want[ino] = data(200*KiB, uint64(i))
		e.openFile(ino)
		e.write(ino, want[ino], 0)
		peak = max(peak, e.wb.Stats().DirtyBytes)
		e.wb.Release(ino)
	}
	// A writer is admitted while under the limit, so one write may overshoot.
	if peak > limit+ioPiece {
		t.Fatalf("dirty bytes peaked at %d with a limit of %d", peak, limit)
	}
	if st := e.wb.Stats(); st.Throttled == 0 {
		t.Fatalf("%d bytes written against a %d-byte limit and a slow disk, but no writer waited: %+v", 24*200*KiB, limit, st)
	}
	if err := e.wb.SyncAll(); err != nil {
		t.Fatal(err)
	}
	for ino, d := range want {
		sameBytes(t, fmt.Sprint("committed ", ino), committed(t, e.store, ino), d)
	}
	if st := e.wb.Stats(); st.DirtyBytes != 0 {
		t.Fatalf("dirty bytes %d after sync", st.DirtyBytes)
	}
}

// TestBackpressureWithOnlyOpenFiles: when the dirty bytes over the limit
// all belong to files still open (partial chunks, nothing queued), a
// writer must still make progress; nothing else can drain them.
func TestBackpressureWithOnlyOpenFiles(t *testing.T) {
	e := newEnv(t, setup{opts: writeback.Options{Window: 10 * time.Millisecond, MaxDirtyBytes: 256 * KiB}})
	var inos []uint64
	for i := range 3 {
		ino := e.create(fmt.Sprint("f", i))
		e.openFile(ino)
		e.write(ino, data(100*KiB, uint64(i)), 0)
		inos = append(inos, ino)
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.wb.Write(inos[0], []byte("more"), 100*KiB)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		st := e.wb.Stats()
		// Unblock the writer so the test can end: closing queues the files.
		for _, ino := range inos {
			e.wb.Release(ino)
		}
		<-done
		t.Fatalf("a write waited for room that nothing could free (dirty %d, limit %d, queued %d)",
			st.DirtyBytes, 256*KiB, st.QueueNormal+st.QueueCritical+st.QueueLow)
	}
	for _, ino := range inos {
		e.wb.Release(ino)
	}
}

func TestFailedPutsAreRetriedNeverDropped(t *testing.T) {
	for _, fails := range []int{1, 4, 6} {
		t.Run(fmt.Sprint(fails), func(t *testing.T) {
			e := newEnv(t, setup{opts: writeback.Options{Window: never}, faults: true})
			ino := e.create("f")
			want := data(200*KiB, 1)
			e.faults.set(fails, syscall.EIO)
			e.writeFile(ino, want)
			// Each SyncAll is one commit attempt, so the count is exact.
			var errs int
			for e.wb.SyncAll() != nil {
				if errs++; errs > fails {
					t.Fatalf("still failing after %d attempts with %d injected faults", errs, fails)
				}
				sameBytes(t, "read while failing", e.content(ino), want)
			}
			if errs != fails {
				t.Fatalf("%d attempts failed, %d faults injected", errs, fails)
			}
			st := e.wb.Stats()
			if st.Retries != uint64(fails) {
				t.Fatalf("retries %d, want %d", st.Retries, fails)
			}
			if e.logs.count() < fails {
				t.Fatalf("%d failures logged, want %d", e.logs.count(), fails)
			}
			sameBytes(t, "committed after recovery", committed(t, e.store, ino), want)
			if err := e.wb.Flush(ino); err != nil {
				t.Fatalf("close after recovery reports %v", err)
			}
		})
	}
}

func TestPersistentFailureReachesTheWriter(t *testing.T) {
	e := newEnv(t, setup{opts: writeback.Options{Window: never}, faults: true})
	ino := e.create("f")
	want := data(200*KiB, 1)
	e.faults.set(-1, syscall.EIO)
	e.writeFile(ino, want)
	for range 10 {
		e.wb.SyncAll()
	}
	if st := e.wb.Stats(); st.Failures == 0 {
		t.Fatalf("10 failed attempts, but no failure counted: %+v", st)
	}
	if err := e.wb.Flush(ino); err == nil {
		t.Fatal("close() of a file that cannot be persisted reports success")
	}
	sameBytes(t, "read while failing", e.content(ino), want)
	e.faults.set(0, nil)
	if err := e.wb.SyncAll(); err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "committed after recovery", committed(t, e.store, ino), want)
}

func TestBackgroundRetry(t *testing.T) {
	e := newEnv(t, setup{opts: writeback.Options{Window: 10 * time.Millisecond}, faults: true})
	ino := e.create("f")
	want := data(200*KiB, 1)
	e.faults.set(2, syscall.EIO)
	e.writeFile(ino, want)
	eventually(t, "the committer to get past 2 failed puts", func() bool {
		return bytes.Equal(committed(t, e.store, ino), want)
	})
	if st := e.wb.Stats(); st.Retries != 2 {
		t.Fatalf("retries %d, want 2", st.Retries)
	}
}

// TestRetriesBackOffAsLogged: after an fsync's commit failed, the retries
// of the same snapshot wait the backoff the log announced (they are not
// taken again at every window because the snapshot was once critical).
func TestRetriesBackOffAsLogged(t *testing.T) {
	e := newEnv(t, setup{opts: writeback.Options{Window: 5 * time.Millisecond}, faults: true})
	ino := e.create("f")
	e.faults.set(-1, syscall.EIO)
	e.writeFile(ino, data(200*KiB, 1))
	// A sync, not an fsync: an fsync would journal 200 KiB in pebble.
	if err := e.wb.SyncAll(); err == nil {
		t.Fatal("sync while every put fails reported success")
	}
	start := len(e.faults.putTimes())
	eventually(t, "three retries", func() bool { return len(e.faults.putTimes()) >= start+3 })
	e.logs.mu.Lock()
	lines := append([]string(nil), e.logs.lines...)
	e.logs.mu.Unlock()
	times := e.faults.putTimes()
	// Every failed attempt logged "retry in D"; the next background
	// attempt must not come sooner.
	for k := start; k < len(times) && k <= len(lines); k++ {
		m := regexp.MustCompile(`retry in ([0-9.a-zµ]+)`).FindStringSubmatch(lines[k-1])
		if m == nil {
			t.Fatalf("log line without a retry time: %q", lines[k-1])
		}
		want, err := time.ParseDuration(m[1])
		if err != nil {
			t.Fatal(err)
		}
		if gap := times[k].Sub(times[k-1]); gap < want-5*time.Millisecond {
			t.Errorf("attempt %d came %v after attempt %d, which logged %q", k+1, gap, k, lines[k-1])
		}
	}
	e.faults.set(0, nil)
}

func TestENOSPCReachesFsyncAndWrite(t *testing.T) {
	e := newEnv(t, setup{opts: writeback.Options{Window: 10 * time.Millisecond}, faults: true})
	ino, other := e.create("f"), e.create("other")
	// v1 is past what an fsync journals in pebble: a chunk must reach the
	// blob store.
	v0, v1, dother := data(200*KiB, 1), data(2*MiB+300*KiB, 2), data(100*KiB, 3)
	e.writeFile(other, dother)
	e.writeFile(ino, v0)
	e.fsync(ino)
	e.fsync(other)

	e.faults.set(-1, syscall.ENOSPC)
	e.openFile(ino)
	e.truncate(ino, 0)
	e.write(ino, v1, 0)
	if err := e.wb.Fsync(ino); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("fsync on a full disk: %v, want ENOSPC", err)
	}
	if _, err := e.wb.Write(ino, []byte("x"), 0); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write after ENOSPC: %v, want ENOSPC", err)
	}
	if err := e.wb.Flush(ino); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("close after ENOSPC: %v, want ENOSPC", err)
	}
	sameBytes(t, "committed version during ENOSPC", committed(t, e.store, ino), v0)
	sameBytes(t, "other file during ENOSPC", committed(t, e.store, other), dother)
	sameBytes(t, "read during ENOSPC", e.content(ino), v1)

	e.faults.set(0, nil)
	e.fsync(ino)
	sameBytes(t, "committed after space came back", committed(t, e.store, ino), v1)
	if _, err := e.wb.Write(ino, []byte("x"), 0); err != nil {
		t.Fatalf("write after space came back: %v", err)
	}
	e.wb.Release(ino)
	checkRefs(t, e.store)
}

// TestWindowCommitTakesOnlyClosedVersions: a file closed (queued) and
// reopened for a rewrite within the window must not be committed
// half-rewritten: after a crash every file is one version that was
// closed or synced, never a mix.
func TestWindowCommitTakesOnlyClosedVersions(t *testing.T) {
	e := newEnv(t, setup{opts: writeback.Options{Window: 20 * time.Millisecond}})
	ino := e.create("f")
	v1, v2 := data(200*KiB, 1), data(200*KiB, 2)
	e.writeFile(ino, v1)
	e.openFile(ino)
	e.write(ino, v2[:100*KiB], 0) // the rewrite is half done
	// Once a file closed later is committed, a window has considered f.
	other := e.create("other")
	e.writeFile(other, v1)
	eventually(t, "a window commit", func() bool { return bytes.Equal(committed(t, e.store, other), v1) })
	got := committed(t, e.store, ino)
	if !bytes.Equal(got, v1) && len(got) != 0 {
		t.Errorf("the window committed a file being rewritten: %d bytes, neither the closed version nor empty (first 100 KiB from the rewrite: %v)",
			len(got), bytes.Equal(got[:100*KiB], v2[:100*KiB]))
	}
	e.write(ino, v2[100*KiB:], 100*KiB)
	e.wb.Release(ino)
	e.fsync(ino)
	sameBytes(t, "committed after close", committed(t, e.store, ino), v2)
}

// TestCommitNowTakesOnlyClosedVersions: CommitNow (search freshness)
// commits to pebble; a later WAL sync by anyone makes that durable, so it
// must not take a half-written open file either.
func TestCommitNowTakesOnlyClosedVersions(t *testing.T) {
	e := newEnv(t, setup{opts: writeback.Options{Window: never}})
	ino := e.create("f")
	v1, v2 := data(200*KiB, 1), data(200*KiB, 2)
	e.writeFile(ino, v1)
	e.fsync(ino)
	e.openFile(ino)
	e.write(ino, v2[:100*KiB], 0)
	if err := e.wb.CommitNow(func(uint64) bool { return true }); err != nil {
		t.Fatal(err)
	}
	if got := committed(t, e.store, ino); !bytes.Equal(got, v1) {
		t.Errorf("CommitNow committed a half-written open file (%d bytes, not the closed version)", len(got))
	}
	e.wb.Release(ino)
}

// TestSpillFinishingDuringACommit: a full chunk's spill that lands while
// the commit of the same bytes is in flight must leave the file clean
// and forgotten once it is closed and synced.
func TestSpillFinishingDuringACommit(t *testing.T) {
	e := newEnv(t, setup{opts: writeback.Options{Window: never}, faults: true})
	gate := make(chan struct{})
	e.faults.gate = gate
	ino := e.create("f")
	want := data(MiB, 1)
	e.openFile(ino)
	e.write(ino, want, 0) // the full chunk goes to a spill worker
	eventually(t, "the spill's put", func() bool { return e.faults.arrived() == 1 })
	e.wb.Release(ino)
	synced := make(chan error, 1)
	go func() { synced <- e.wb.SyncAll() }()
	eventually(t, "the commit's put", func() bool { return e.faults.arrived() == 2 })
	gate <- struct{}{} // the spill's put, first in line
	eventually(t, "the spill", func() bool { return e.wb.Stats().Spills == 1 })
	// The spilled chunk's buffer is still the commit's: writes of other
	// files must not get it for their chunks (recycled buffers).
	other := e.create("g")
	e.openFile(other)
	otherWant := data(4*MiB, 2)
	e.write(other, otherWant, 0)
	close(gate) // the commit's put and the other file's spills
	if err := <-synced; err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "committed", committed(t, e.store, ino), want)
	e.wb.Release(other)
	if err := e.wb.SyncAll(); err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "the other file", committed(t, e.store, other), otherWant)
	if st := e.wb.Stats(); st.OpenFiles != 0 {
		t.Fatalf("closed and synced, yet the manager still holds %d file(s) (a pinned spilled chunk): %+v", st.OpenFiles, st)
	}
}

// A full chunk's buffer goes back to a pool once its spill is stored;
// a chunk that takes a recycled buffer reads as zeros wherever it was
// not written, before and after its commit.
func TestRecycledChunkBuffersReadAsZeros(t *testing.T) {
	e := newEnv(t, setup{opts: writeback.Options{Window: never}})
	first := e.create("first")
	e.openFile(first)
	e.write(first, data(8*MiB, 3), 0)
	eventually(t, "the spills", func() bool { return e.wb.Stats().Spills == 8 })
	ino := e.create("f")
	e.openFile(ino)
	want := make([]byte, 4*MiB)
	at := func(off int, b []byte) {
		e.write(ino, b, int64(off))
		copy(want[off:], b)
	}
	at(MiB-1, []byte{1})               // chunk 0: one byte at its end
	at(2*MiB, []byte("0123456789"))    // chunk 2: a small buffer ...
	at(3*MiB-10, []byte("abcdefghij")) // ... grown to the chunk's end
	at(3*MiB+MiB/2, data(MiB/2, 4))    // chunk 3: its second half
	sameBytes(t, "read back while open", e.content(ino), want)
	e.wb.Release(ino)
	e.wb.Release(first)
	if err := e.wb.SyncAll(); err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "committed", committed(t, e.store, ino), want)
}

// TestWriteFailsUpFrontWhenTheDiskCannotHoldIt: with the free space known,
// a write that could not be stored once everything queued is fails with
// ENOSPC at write(), rather than being accepted and lost at commit; what
// was accepted before is committed; when space returns, writes go on.
func TestWriteFailsUpFrontWhenTheDiskCannotHoldIt(t *testing.T) {
	var mu sync.Mutex
	size := int64(20 * MiB) // of a disk that holds the blob dir alone
	var blobDir string
	opts := writeback.Options{Window: never, FreeSpace: func() (int64, int64, error) {
		mu.Lock()
		defer mu.Unlock()
		var used int64
		filepath.WalkDir(blobDir, func(_ string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if fi, err := d.Info(); err == nil {
					used += fi.Size()
				}
			}
			return nil
		})
		return size - used, 64 * MiB, nil // reserve: 4 MiB
	}}
	e := newEnv(t, setup{opts: opts})
	mu.Lock()
	blobDir = e.local.Dir()
	mu.Unlock()
	a, b := e.create("a"), e.create("b")
	va := data(10*MiB, 1)
	e.writeFile(a, va) // 10 of the 16 MiB usable
	e.openFile(b)
	var err error
	for off := 0; off < 8*MiB && err == nil; off += ioPiece {
		_, err = e.wb.Write(b, data(ioPiece, uint64(off)), int64(off))
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("writing 8 MiB more with 6 MiB usable: %v, want ENOSPC", err)
	}
	if st := e.wb.Stats(); st.NoSpace == 0 {
		t.Fatalf("stats do not count the refused write: %+v", st)
	}
	e.wb.Release(b)
	if err := e.wb.SyncAll(); err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "what was accepted", committed(t, e.store, a), va)
	mu.Lock()
	size = 200 * MiB
	mu.Unlock()
	time.Sleep(110 * time.Millisecond) // the cached reading expires
	vb := data(8*MiB, 2)
	e.writeFile(b, vb)
	e.fsync(b)
	sameBytes(t, "written once space came back", committed(t, e.store, b), vb)
}

// TestFailedSyncNamesWhatIsNotPersisted: SyncAll's error (what `taskerfs
// sync` and `umount` print) names the files whose changes are not on disk.
func TestFailedSyncNamesWhatIsNotPersisted(t *testing.T) {
	e := newEnv(t, setup{opts: writeback.Options{Window: never}, faults: true})
	ok, bad := e.create("ok"), e.create("recording.webm")
	e.writeFile(ok, data(200*KiB, 1))
	e.fsync(ok)
	e.faults.set(-1, syscall.ENOSPC)
	e.writeFile(bad, data(200*KiB, 2))
	err := e.wb.SyncAll()
	var np *writeback.NotPersistedError
	if !errors.As(err, &np) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("SyncAll on a full disk: %v, want a NotPersistedError wrapping ENOSPC", err)
	}
	if np.Count != 1 || len(np.Paths) != 1 || np.Paths[0] != "recording.webm" {
		t.Fatalf("not persisted: %d %v, want just recording.webm", np.Count, np.Paths)
	}
	e.faults.set(0, nil)
	if err := e.wb.SyncAll(); err != nil {
		t.Fatal(err)
	}
}

// TestWritersWaitOutAnOldBacklog: a writer behind a change queued longer
// than MaxAge waits until the backlog is committed (nothing else would
// commit it here: the window never ends); a young backlog lets writers
// through.
func TestWritersWaitOutAnOldBacklog(t *testing.T) {
	const maxAge = time.Second
	e := newEnv(t, setup{opts: writeback.Options{Window: never, MaxAge: maxAge}})
	a, b := e.create("a"), e.create("b")
	e.writeFile(a, data(KiB, 1))
	e.writeFile(b, data(KiB, 2))
	if st := e.wb.Stats(); st.ItemsCommitted != 0 || st.QueueNormal != 2 {
		t.Fatalf("after two young changes: %+v, want both queued", st)
	}
	time.Sleep(maxAge + maxAge/5)
	e.openFile(b)
	e.write(b, data(KiB, 3), 0)
	if st := e.wb.Stats(); st.ItemsCommitted < 2 {
		t.Fatalf("a write behind a backlog older than MaxAge went on without waiting: %+v", st)
	}
	e.wb.Release(b)
}
