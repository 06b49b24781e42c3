package meta

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/taskerfs/taskerfs/blobstore"
)

// snapLookup resolves a path inside snapshot st.
func snapLookup(t *testing.T, st *Store, p string) uint64 {
	t.Helper()
	ino := uint64(RootIno)
	for _, part := range splitPath(p) {
		a, err := st.Lookup(ino, part)
		if err != nil {
			t.Fatalf("snapshot lookup %q: %v", p, err)
		}
		ino = a.Ino
	}
	return ino
}

func splitPath(p string) []string {
	var out []string
	for _, s := range bytes.Split([]byte(p), []byte("/")) {
		out = append(out, string(s))
	}
	return out
}

func (e *env) blobFiles() map[blobstore.Hash]bool {
	e.t.Helper()
	out := map[blobstore.Hash]bool{}
	if err := e.blobs.List("", func(h blobstore.Hash) error { out[h] = true; return nil }); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func TestSnapshotReadsPastAndHoldsBlobs(t *testing.T) {
	e := newEnv(t) // trash off: only the snapshot holds removed files
	e.mkdir("sessions")
	e.mkdir("sessions/s1")
	a := e.writeFile("sessions/s1/a.bin", 1)
	b := e.writeFile("sessions/s1/b.bin", 2)
	e.writeFile("sessions/s1/live.bin", 3)
	if _, err := e.s.Create(e.ino("sessions/s1"), "small", NewNode{Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	small := []byte("inline blob only the snapshot will hold")
	sa := e.attr("sessions/s1/small")
	e.setChunk(sa.Ino, 0, inlineRef(small))
	sa.Size = uint64(len(small))
	if err := e.s.Update(false, func(tx *Tx) error { return tx.PutAttr(&sa) }); err != nil {
		t.Fatal(err)
	}

	info, err := e.s.CreateSnapshot("before")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("snapshot: %d bytes added, took %dns", info.AddedBytes, info.TookNs)
	if _, err := e.s.CreateSnapshot("before"); !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("duplicate: %v", err)
	}
	for _, bad := range []string{"", ".hidden", "a/b", string(make([]byte, 200))} {
		if _, err := e.s.CreateSnapshot(bad); !errors.Is(err, ErrBadSnapshotName) {
			t.Fatalf("name %q: %v", bad, err)
		}
	}
	// A second snapshot holds only what stays live.
	p := e.ino("sessions/s1")
	for _, n := range []string{"a.bin", "small"} {
		if err := e.s.Unlink(p, n); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.s.CreateSnapshot("after-a"); err != nil {
		t.Fatal(err)
	}
	if err := e.s.Unlink(p, "b.bin"); err != nil {
		t.Fatal(err)
	}
	if err := e.s.Rmdir(e.ino("sessions"), "s1"); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Fatalf("rmdir: %v", err)
	}

	before := e.blobFiles()
	res, err := e.s.GC()
	if err != nil || res.Removed != 0 {
		t.Fatalf("gc with snapshots: %+v %v", res, err)
	}
	e.reopen() // snapshots survive a restart

	list, err := e.s.ListSnapshots()
	if err != nil || len(list) != 2 || list[0].Name != "before" || list[1].Name != "after-a" {
		t.Fatalf("list %+v %v", list, err)
	}
	st, release, err := e.s.AcquireSnapshot("before")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]byte{"a.bin": a, "b.bin": b, "small": small} {
		if got := e.content(st, snapLookup(t, st, "sessions/s1/"+name)); !bytes.Equal(got, want) {
			t.Fatalf("snapshot %s differs", name)
		}
	}
	release()
	var problems []string
	if n, err := e.s.CheckSnapshots(func(p SnapshotProblem) { problems = append(problems, p.String()) }); err != nil || n != 2 || len(problems) != 0 {
		t.Fatalf("check snapshots: %d %v %v", n, err, problems)
	}

	// Deleting "before" frees exactly a.bin's blob (b.bin is in after-a).
	if err := e.s.DeleteSnapshot("before"); err != nil {
		t.Fatal(err)
	}
	if err := e.s.DeleteSnapshot("before"); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("second delete: %v", err)
	}
	if _, _, err := e.s.AcquireSnapshot("before"); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("acquire deleted: %v", err)
	}
	res, err = e.s.GC()
	if err != nil || res.Removed != 1 {
		t.Fatalf("gc after delete: %+v %v", res, err)
	}
	after := e.blobFiles()
	ha := blobstore.Sum(a)
	if after[ha] || !before[ha] || len(after) != len(before)-1 {
		t.Fatalf("gc freed the wrong blobs: before %d after %d", len(before), len(after))
	}
	if err := e.s.DeleteSnapshot("after-a"); err != nil {
		t.Fatal(err)
	}
	if res, err = e.s.GC(); err != nil || res.Removed != 1 || e.blobFiles()[blobstore.Sum(b)] {
		t.Fatalf("gc after second delete: %+v %v", res, err)
	}
	e.check()
}

func TestSnapshotCheckFindsLostBlob(t *testing.T) {
	e := newEnv(t)
	e.mkdir("sessions")
	data := e.writeFile("sessions/f", 1)
	if _, err := e.s.CreateSnapshot("s"); err != nil {
		t.Fatal(err)
	}
	if err := e.s.Unlink(RootIno, "sessions"); !errors.Is(err, syscall.EISDIR) {
		t.Fatal(err)
	}
	if err := e.s.Unlink(e.ino("sessions"), "f"); err != nil {
		t.Fatal(err)
	}
	if err := e.blobs.Delete(blobstore.Sum(data)); err != nil {
		t.Fatal(err)
	}
	var problems []SnapshotProblem
	if _, err := e.s.CheckSnapshots(func(p SnapshotProblem) { problems = append(problems, p) }); err != nil {
		t.Fatal(err)
	}
	if len(problems) != 1 || problems[0].Snapshot != "s" || problems[0].Hash != blobstore.Sum(data) {
		t.Fatalf("problems %v", problems)
	}
}

func TestSnapshotLeftoversAndHeldDelete(t *testing.T) {
	e := newEnv(t)
	e.mkdir("sessions")
	if _, err := e.s.CreateSnapshot("x"); err != nil {
		t.Fatal(err)
	}
	// A crash mid-creation leaves a .tmp- dir: not listed, cleaned.
	tmp := filepath.Join(e.s.SnapshotsDir(), ".tmp-y")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	if list, _ := e.s.ListSnapshots(); len(list) != 1 {
		t.Fatalf("list %v", list)
	}
	if err := e.s.CleanSnapshotLeftovers(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatal("leftover kept")
	}
	// Deleting a snapshot a reader holds: the reader keeps reading.
	st, release, err := e.s.AcquireSnapshot("x")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.s.DeleteSnapshot("x"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Lookup(RootIno, "sessions"); err != nil {
		t.Fatalf("held snapshot unreadable: %v", err)
	}
	release()
	release() // idempotent
	if _, err := os.Stat(filepath.Join(e.s.SnapshotsDir(), "x")); !os.IsNotExist(err) {
		t.Fatalf("deleted snapshot's dir kept after the last release: %v", err)
	}
}

// TestTrimCopiedWALs: a checkpoint's WAL copy loses the stale bytes after
// its last record (a reused WAL file keeps its old length) and keeps every
// record.
func TestTrimCopiedWALs(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "ck")
	db, err := pebble.Open(src, &pebble.Options{Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1000; i++ {
		if err := db.Set([]byte(fmt.Sprintf("key-%04d", i)), bytes.Repeat([]byte{byte(i)}, 100), pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Checkpoint(dst, pebble.WithFlushedWAL()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	logs, _ := filepath.Glob(filepath.Join(dst, "*.log"))
	if len(logs) != 1 {
		t.Fatalf("logs %v", logs)
	}
	st, _ := os.Stat(logs[0])
	live := st.Size()
	f, err := os.OpenFile(logs[0], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(bytes.Repeat([]byte{0xAB}, 200<<10)) // stale bytes of an earlier use
	f.Close()
	if err := trimCopiedWALs(dst); err != nil {
		t.Fatal(err)
	}
	st, _ = os.Stat(logs[0])
	if st.Size() > live || st.Size() < 1000*100 {
		t.Fatalf("trimmed log: %d bytes, copied %d", st.Size(), live)
	}
	ck, err := pebble.Open(dst, &pebble.Options{ReadOnly: true, Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	for i := 0; i < 1000; i++ {
		v, closer, err := ck.Get([]byte(fmt.Sprintf("key-%04d", i)))
		if err != nil {
			t.Fatalf("key %d after trimming: %v", i, err)
		}
		if !bytes.Equal(v, bytes.Repeat([]byte{byte(i)}, 100)) {
			t.Fatalf("key %d differs", i)
		}
		closer.Close()
	}
}
