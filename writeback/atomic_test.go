package writeback_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/meta"
	"github.com/taskerfs/taskerfs/writeback"
)

// TestNamespaceNeverAheadOfContent: a rename or link of a file whose
// closed content is still queued must not land before that content. The
// WAL sync that follows (anyone's fsync, or pebble's own flush that a kill
// -9 does not undo) makes the namespace change durable; the crash copy then
// shows what a crash would leave.
func TestNamespaceNeverAheadOfContent(t *testing.T) {
	v0, v1 := data(300*KiB, 1), data(200*KiB, 2)
	cases := []struct {
		name string
		op   func(e *env, tmp uint64) error
		// name that must now show v1
		check string
	}{
		{"rename over", func(e *env, _ uint64) error { return e.store.Rename(meta.RootIno, "tmp", meta.RootIno, "orig", 0) }, "orig"},
		{"rename to a new name", func(e *env, _ uint64) error {
			return e.store.Rename(meta.RootIno, "tmp", meta.RootIno, "new", meta.RenameNoReplace)
		}, "new"},
		{"exchange", func(e *env, _ uint64) error {
			return e.store.Rename(meta.RootIno, "tmp", meta.RootIno, "orig", meta.RenameExchange)
		}, "orig"},
		{"link", func(e *env, tmp uint64) error { _, err := e.store.Link(tmp, meta.RootIno, "new"); return err }, "new"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, setup{opts: writeback.Options{Window: never}})
			orig := e.create("orig")
			e.writeFile(orig, v0)
			e.fsync(orig)
			tmp := e.create("tmp")
			e.writeFile(tmp, v1) // closed, no fsync: queued
			if err := c.op(e, tmp); err != nil {
				t.Fatal(err)
			}
			if err := e.store.SyncWAL(); err != nil {
				t.Fatal(err)
			}
			crashed := e.crashCopy()
			a, err := crashed.Lookup(meta.RootIno, c.check)
			if err != nil {
				t.Fatalf("after the crash %s: %v", c.check, err)
			}
			sameBytes(t, c.check+" after a crash right after the "+c.name, committed(t, crashed, a.Ino), v1)
			if c.name == "exchange" {
				b, err := crashed.Lookup(meta.RootIno, "tmp")
				if err != nil {
					t.Fatal(err)
				}
				sameBytes(t, "the exchanged original", committed(t, crashed, b.Ino), v0)
			}
		})
	}
}

// TestRenameFailsWhenItsContentCannotBeStored: when the moved file's
// queued content cannot be committed, the rename reports the error and
// changes nothing, rather than pointing the name at older content.
func TestRenameFailsWhenItsContentCannotBeStored(t *testing.T) {
	e := newEnv(t, setup{opts: writeback.Options{Window: never}, faults: true})
	orig := e.create("orig")
	v0, v1 := data(300*KiB, 1), data(200*KiB, 2)
	e.writeFile(orig, v0)
	e.fsync(orig)
	tmp := e.create("tmp")
	e.writeFile(tmp, v1)
	e.faults.set(-1, syscall.ENOSPC)
	err := e.store.Rename(meta.RootIno, "tmp", meta.RootIno, "orig", 0)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("rename whose content cannot be stored: %v, want ENOSPC", err)
	}
	a, err := e.store.Lookup(meta.RootIno, "orig")
	if err != nil || a.Ino != orig {
		t.Fatalf("orig after a failed rename: inode %d (%v), want the original %d", a.Ino, err, orig)
	}
	sameBytes(t, "orig after a failed rename", committed(t, e.store, orig), v0)
	e.faults.set(0, nil)
	if err := e.store.Rename(meta.RootIno, "tmp", meta.RootIno, "orig", 0); err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "orig once space came back", committed(t, e.store, tmp), v1)
}

// TestTruncateOfAnOpenFileIsNotACommit: O_TRUNC and ftruncate of an open
// file become part of its next close or fsync, never a commit of their
// own: a commit of anything else (another file's fsync, a search's
// CommitNow) must not make the file empty.
func TestTruncateOfAnOpenFileIsNotACommit(t *testing.T) {
	for _, size := range []uint64{0, 100 * KiB} {
		e := newEnv(t, setup{opts: writeback.Options{Window: never}})
		ino, other := e.create("f"), e.create("other")
		v0 := data(300*KiB, 1)
		e.writeFile(ino, v0)
		e.fsync(ino)
		e.openFile(ino)
		e.truncate(ino, size)
		e.writeFile(other, v0)
		e.fsync(other)
		if err := e.wb.CommitNow(func(uint64) bool { return true }); err != nil {
			t.Fatal(err)
		}
		if err := e.store.SyncWAL(); err != nil {
			t.Fatal(err)
		}
		sameBytes(t, "a file truncated while open, after other commits", committed(t, e.crashCopy(), ino), v0)
		e.wb.Release(ino)
	}
}

// TestRewriteHealsADamagedBlob: when a blob on disk is damaged, a new
// write of the same content replaces it instead of deduplicating onto it:
// the rewrite's fsync succeeds and the content then reads back (it used
// to read EIO).
func TestRewriteHealsADamagedBlob(t *testing.T) {
	e := newEnv(t, setup{opts: writeback.Options{Window: never}})
	v := data(300*KiB, 1)
	a := e.create("a")
	e.writeFile(a, v)
	if err := e.wb.SyncAll(); err != nil { // to a blob file (an fsync journals it first)
		t.Fatal(err)
	}
	h := blobstore.Sum(v)
	p := filepath.Join(e.local.Dir(), h.String()[:2], h.String())
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	c := e.create("copy")
	e.writeFile(c, v)
	e.fsync(c)
	sameBytes(t, "the rewritten copy", committed(t, e.store, c), v)
	sameBytes(t, "the original, healed", committed(t, e.store, a), v)
}
