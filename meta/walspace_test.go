package meta

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/taskerfs/taskerfs/blobstore"
)

// walFiles lists the WALs and spares in a store's dir.
func walFiles(t *testing.T, fs vfs.FS, dir string) (logs, spares []string) {
	t.Helper()
	names, err := fs.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		switch {
		case strings.HasSuffix(n, ".log"):
			logs = append(logs, n)
		case isSpareName(n):
			spares = append(spares, n)
		case n == "archive":
			t.Errorf("pebble archived a file (%s): the cleaner is not the store's", n)
		}
	}
	return logs, spares
}

// strictStore returns a strict in-memory filesystem (vfs.NewStrictMem:
// ResetToSyncedState drops what was not synced, as a power loss does) and
// a function that opens a store with small memtables on it.
func strictStore(t *testing.T) (*vfs.MemFS, func() *Store) {
	t.Helper()
	mem := vfs.NewStrictMem()
	if err := mem.MkdirAll("/db", 0o755); err != nil {
		t.Fatal(err)
	}
	return mem, func() *Store {
		s, err := Open("/db", Options{Blobs: testBlobs(t), MemTableBytes: 256 << 10, FS: mem})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// powerLoss drops everything s has not synced on mem, as a power loss
// does, and opens the store again.
func powerLoss(mem *vfs.MemFS, s *Store, open func() *Store) *Store {
	mem.SetIgnoreSyncs(true)
	s.db.Close()
	mem.ResetToSyncedState()
	mem.SetIgnoreSyncs(false)
	return open()
}

// fillWAL writes n synced batches of about size bytes each under prefix.
func fillWAL(t *testing.T, db *pebble.DB, prefix string, n, size int) {
	t.Helper()
	val := make([]byte, size)
	for i := range n {
		for j := range val {
			val[j] = byte(i + j)
		}
		if err := db.Set([]byte(fmt.Sprintf("%s%06d", prefix, i)), val, pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
}

func testBlobs(t *testing.T) *blobstore.Local {
	t.Helper()
	b, err := blobstore.OpenLocal(filepath.Join(t.TempDir(), "blobs"), blobstore.LocalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// liveReusedCount reads reuses under the lock (a refill runs beside the test).
func (w *walSpares) liveReusedCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reuses
}

func allocated(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// TestWALSpares: retired WALs become spares (never more than
// maxWALSpares), pebble's next WALs are written over them, and ReleaseWAL
// leaves one live WAL that holds no reserved space; the data survives a
// reopen throughout.
func TestWALSpares(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "meta")
	open := func() *Store {
		s, err := Open(dir, Options{Blobs: testBlobs(t), MemTableBytes: 256 << 10})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	fillWAL(t, s.db, "a", 400, 8<<10) // about 12 memtables
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	var logs, spares []string
	for range 100 { // pebble retires WALs in the background
		if logs, spares = walFiles(t, vfs.Default, dir); len(spares) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(spares) == 0 || len(spares) > maxWALSpares {
		t.Fatalf("%d spares after a dozen WALs (logs %v), want 1..%d", len(spares), logs, maxWALSpares)
	}
	if s.spares.reuses == 0 {
		t.Fatal("no spare was written over")
	}
	reuses := s.spares.reuses
	if err := s.ReleaseWAL(); err != nil {
		t.Fatal(err)
	}
	if s.spares.reuses != reuses+1 {
		t.Fatalf("ReleaseWAL's flush wrote %d spares over, want the short one", s.spares.reuses-reuses)
	}
	logs, spares = walFiles(t, vfs.Default, dir)
	if len(spares) != 0 || len(logs) != 1 {
		t.Fatalf("after ReleaseWAL: logs %v, spares %v; want one log, no spare", logs, spares)
	}
	if a := allocated(t, filepath.Join(dir, logs[0])); a > walKeep+16<<10 {
		t.Fatalf("the live WAL of a released store holds %d bytes of disk, want at most %d", a, walKeep)
	}
	if s.spares.liveReused() {
		t.Fatal("the short spare a release keeps counts as a whole one")
	}
	// The first write after a release wakes the spares: a whole spare is
	// written in the background and pebble's WAL moves onto it.
	reuses = s.spares.reuses
	fillWAL(t, s.db, "c", 1, 100)
	for i := 0; s.spares.liveReusedCount() <= reuses; i++ {
		if i == 200 {
			t.Fatalf("no WAL moved onto a refilled spare (refills %d)", s.spares.refills)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if logs, _ = walFiles(t, vfs.Default, dir); len(logs) == 0 {
		t.Fatal("no WAL")
	}
	if !s.spares.liveReused() || s.spares.refills != 1 {
		t.Fatalf("after the wake: live WAL reused %v, refills %d; want a whole spare, one refill", s.spares.liveReused(), s.spares.refills)
	}
	// Writes after a release: spares come back with the work.
	fillWAL(t, s.db, "b", 200, 8<<10)
	for range 100 {
		if _, spares = walFiles(t, vfs.Default, dir); len(spares) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(spares) == 0 {
		t.Fatal("no spare kept once writes resumed after a release")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, spares = walFiles(t, vfs.Default, dir); len(spares) != 0 {
		t.Fatalf("spares left after Close: %v", spares)
	}
	// A spare left by a daemon that died is deleted at the next open.
	if err := os.WriteFile(filepath.Join(dir, "spare-99.wal"), []byte("stale"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = open()
	defer s.Close()
	if _, err := os.Stat(filepath.Join(dir, "spare-99.wal")); !os.IsNotExist(err) {
		t.Fatalf("a stale spare was kept at open (stat: %v)", err)
	}
	for _, p := range []struct {
		prefix string
		n      int
	}{{"a", 400}, {"b", 200}} {
		for i := range p.n {
			if _, ok, err := get(s.db, []byte(fmt.Sprintf("%s%06d", p.prefix, i))); err != nil || !ok {
				t.Fatalf("%s%06d lost (err %v)", p.prefix, i, err)
			}
		}
	}
}

// TestWALSparePowerLoss: a WAL written over a spare still holds the old
// log's records past its own; after a power loss, replay must stop at
// them. Keys deleted after the old log was written must stay deleted, and
// every synced write must be there.
func TestWALSparePowerLoss(t *testing.T) {
	for seed := range 4 {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			mem, open := strictStore(t)
			s := open()
			fillWAL(t, s.db, "old", 150, 8<<10) // several WALs, retired to spares
			for i := range 150 {
				if err := s.db.Delete([]byte(fmt.Sprintf("old%06d", i)), pebble.Sync); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.db.Flush(); err != nil {
				t.Fatal(err)
			}
			before := s.spares.reuses
			n := 40 + 37*seed // a few records into WALs written over spares
			fillWAL(t, s.db, "new", n, 8<<10)
			if s.spares.reuses == before {
				t.Fatal("the writes after the deletes went to no spare")
			}
			s = powerLoss(mem, s, open)
			defer s.Close()
			for i := range 150 {
				if _, ok, _ := get(s.db, []byte(fmt.Sprintf("old%06d", i))); ok {
					t.Fatalf("old%06d came back from a spare's stale records", i)
				}
			}
			for i := range n {
				if _, ok, err := get(s.db, []byte(fmt.Sprintf("new%06d", i))); err != nil || !ok {
					t.Fatalf("synced new%06d lost (err %v)", i, err)
				}
			}
		})
	}
}
