package writeback_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/taskerfs/taskerfs/writeback"
)

// procNice reads a thread's nice value from /proc (field 19 of stat),
// independently of getpriority.
func procNice(t *testing.T, tid int) (int, bool) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/stat", tid))
	if err != nil {
		return 0, false // the thread is gone
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 on
	n, err := strconv.Atoi(f[16])
	if err != nil {
		t.Fatalf("stat of thread %d: %q", tid, s)
	}
	return n, true
}

func TestLowerPriorityOnlyItsOwnThread(t *testing.T) {
	base := writeback.ThreadNice(unix.Gettid())
	want := max(base, 10)
	var tid, got int
	done := make(chan struct{})
	go func() {
		defer close(done)
		got = writeback.LowerPriority(10)
		tid = unix.Gettid()
	}()
	<-done
	if got != want {
		t.Errorf("LowerPriority(10) left the thread at nice %d, want %d", got, want)
	}
	// The goroutine ended locked to its thread: Go ends that thread (or,
	// for the process' main thread, parks it for good), and no other
	// goroutine ever ran at the raised nice value.
	if tid == os.Getpid() {
		t.Logf("the goroutine ran on the main thread, which Go parks instead of ending")
	} else {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n, alive := procNice(t, tid)
			if !alive {
				break
			}
			if n != want {
				t.Fatalf("thread %d runs at nice %d after the goroutine ended; want it gone", tid, n)
			}
			if time.Now().After(deadline) {
				t.Fatalf("thread %d (nice %d) still there 5 s after its locked goroutine ended", tid, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if n := writeback.ThreadNice(unix.Gettid()); n != base {
		t.Errorf("the test's own thread is at nice %d, was %d", n, base)
	}
}

// TestBackgroundCommitsRunNiced: what nobody waits for is prepared on
// the niced workers; an fsync, or a commit while writers are held back,
// is not.
func TestBackgroundCommitsRunNiced(t *testing.T) {
	e := newEnv(t, setup{opts: writeback.Options{Window: 10 * time.Millisecond}})
	var mu sync.Mutex
	var nices []int
	writeback.SetBackgroundHook(e.wb, func() {
		n, _ := procNice(t, unix.Gettid())
		mu.Lock()
		nices = append(nices, n)
		mu.Unlock()
	})
	ran := func() []int {
		mu.Lock()
		defer mu.Unlock()
		return append([]int(nil), nices...)
	}
	waitCommitted := func(n uint64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for e.wb.Stats().ItemsCommitted < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d files committed after 10 s", e.wb.Stats().ItemsCommitted, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	want := max(writeback.ThreadNice(unix.Gettid()), 10)

	files := map[uint64][]byte{}
	for i := range 3 {
		ino, d := e.create(fmt.Sprint("bg", i)), data(200*KiB, uint64(i))
		e.writeFile(ino, d)
		files[ino] = d
	}
	waitCommitted(3)
	got := ran()
	if len(got) != 3 {
		t.Fatalf("%d files prepared in the background, want 3", len(got))
	}
	for _, n := range got {
		if n != want {
			t.Errorf("a background job ran at nice %d, want %d", n, want)
		}
	}

	ino := e.create("fsynced")
	e.openFile(ino)
	files[ino] = data(200*KiB, 10)
	e.write(ino, files[ino], 0)
	e.fsync(ino)
	e.wb.Release(ino)
	if n := len(ran()); n != 3 {
		t.Errorf("an fsync's file was prepared in the background (%d jobs)", n)
	}

	writeback.AddHeldWriters(e.wb, 1)
	ino = e.create("held")
	files[ino] = data(200*KiB, 11)
	e.writeFile(ino, files[ino])
	waitCommitted(5)
	writeback.AddHeldWriters(e.wb, -1)
	if n := len(ran()); n != 3 {
		t.Errorf("a commit with writers held back was prepared in the background (%d jobs)", n)
	}

	e.restart()
	for ino, want := range files {
		sameBytes(t, fmt.Sprint("inode ", ino), committed(t, e.store, ino), want)
	}
	checkRefs(t, e.store)
}

// TestBackgroundOff: a negative BackgroundNice prepares every commit on
// the committer's own goroutines, at the process' priority.
func TestBackgroundOff(t *testing.T) {
	e := newEnv(t, setup{opts: writeback.Options{Window: 10 * time.Millisecond, BackgroundNice: -1}})
	writeback.SetBackgroundHook(e.wb, func() { t.Error("a job ran on a background worker with them off") })
	e.writeFile(e.create("f"), data(100*KiB, 1))
	if err := e.wb.SyncAll(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.wb.Stats().ItemsCommitted < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}
