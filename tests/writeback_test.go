package tests

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Write-back behaviour seen through the mount: the queue never loses a
// closed file at unmount, a slow disk does not slow close() while the
// queue has room, and writers wait once it is full.

// wbFile is one file a test wrote and expects back.
type wbFile struct {
	name string
	data []byte
}

func writeWBFiles(t *testing.T, dir string, n int, size func(i int) int, seed uint64) []wbFile {
	t.Helper()
	files := make([]wbFile, n)
	for i := range files {
		files[i] = wbFile{name: fmt.Sprintf("f%04d", i), data: crashContent(size(i), seed<<20|uint64(i))}
		mustWrite(t, filepath.Join(dir, files[i].name), files[i].data)
	}
	return files
}

func checkWBFiles(t *testing.T, dir string, files []wbFile) {
	t.Helper()
	for _, f := range files {
		got, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			t.Errorf("%s: %v", f.name, err)
			continue
		}
		if !bytes.Equal(got, f.data) {
			t.Errorf("%s: %d bytes, want %d, equal prefix %v", f.name, len(got), len(f.data),
				bytes.HasPrefix(f.data, got))
		}
	}
}

// mustQueue reads the queue figures, which the daemon must expose.
func mustQueue(t *testing.T, m *Mount) queueFigures {
	t.Helper()
	q, ok := readQueue(m)
	if !ok {
		t.Fatalf("cannot read the write-back figures from %s", m.Path(".taskerfs", "stats.json"))
	}
	return q
}

func TestWritebackUnmountWithFullQueueLosesNothing(t *testing.T) {
	// A window far longer than the test: only the unmount commits.
	m := mountFS(t, newDataDir(t), "--writeback-window", "1h", "--max-queue-age", "1h")
	dir := mustMkdirAll(t, m.Path("queue"))
	r := rand.New(rand.NewPCG(3, 3))
	files := writeWBFiles(t, dir, 150, func(int) int { return 1 + r.IntN(300<<10) }, 3)
	// A file overwritten while queued, and one renamed while queued.
	files[0].data = crashContent(5000, 1<<40)
	mustWrite(t, filepath.Join(dir, files[0].name), files[0].data)
	if err := os.Rename(filepath.Join(dir, files[1].name), filepath.Join(dir, "renamed")); err != nil {
		t.Fatal(err)
	}
	files[1].name = "renamed"
	checkWBFiles(t, dir, files) // read-your-writes before any commit

	// The rename committed the renamed file's content first (a name never
	// commits ahead of its content); nothing else is committed.
	q := mustQueue(t, m)
	if q.ItemsCommitted != 1 || q.queued() == 0 {
		t.Fatalf("before unmount: %d committed, %d queued; the test needs a full queue with only the renamed file committed", q.ItemsCommitted, q.queued())
	}
	m.Remount()
	checkWBFiles(t, dir, files)
}

// slowDisk is the injected delay of every blob write.
const slowDisk = 50 * time.Millisecond

func TestWritebackSlowDiskDoesNotDelayClose(t *testing.T) {
	m := mountFS(t, newDataDir(t), "--debug-blob-put-delay", slowDisk.String())
	dir := mustMkdirAll(t, m.Path("slow"))
	// Above the inline limit, so that each file's commit writes a blob.
	const n, size = 40, 200 << 10
	files := writeWBFiles(t, dir, n, func(int) int { return size }, 4)
	// Committing n files takes at least n blob writes of slowDisk each; had
	// close() waited for its commit, all n would be committed by now.
	q := mustQueue(t, m)
	t.Logf("after %d closes: %d committed, %d queued, %d dirty bytes", n, q.ItemsCommitted, q.queued(), q.DirtyBytes)
	if q.ItemsCommitted >= n {
		t.Fatalf("all %d files were committed by the time their close() returned, on a disk that needs %v per blob", n, slowDisk)
	}
	checkWBFiles(t, dir, files)
	m.Remount()
	checkWBFiles(t, dir, files)
}

func TestWritebackWritersWaitWhenQueueFull(t *testing.T) {
	const limit = 8 << 20
	// Slower than slowDisk: with three blob writes at a time the disk
	// takes 10 MiB/s, which a writer outruns even on a loaded machine
	// (at 50 ms a blob, 60 MiB/s, a CI run beside a reindex wrote slower
	// than the spills drained, and no writer had to wait).
	const disk = 300 * time.Millisecond
	m := mountFS(t, newDataDir(t), "--debug-blob-put-delay", disk.String(), "--max-dirty-bytes", fmt.Sprint(limit))
	dir := mustMkdirAll(t, m.Path("full"))
	// 3x the limit in files of whole chunks, written as fast as possible.
	const n, size = 12, 2 << 20
	start := time.Now()
	files := writeWBFiles(t, dir, n, func(int) int { return size }, 5)
	elapsed := time.Since(start)
	q := mustQueue(t, m)
	// Every byte past the limit had to reach the disk before its write
	// was admitted; at most three blob writes run at once (the committer
	// and two spill workers), so this is a floor, not a speed claim.
	floor := time.Duration((n*size-limit)>>20-1) * disk / 3
	t.Logf("%d MiB against a %d MiB limit: %v (floor %v), %d throttled writes, %d spilled chunks",
		n*size>>20, limit>>20, elapsed, floor, q.Throttled, q.Spills)
	if q.Throttled == 0 {
		t.Fatalf("%d MiB written against a %d MiB limit on a slow disk, yet no writer waited", n*size>>20, limit>>20)
	}
	if elapsed < floor {
		t.Fatalf("writing took %v, below the %v the slow disk needs for what exceeds the limit: writers did not wait", elapsed, floor)
	}
	m.Remount()
	checkWBFiles(t, dir, files)
}
