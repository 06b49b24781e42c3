package vfs

import (
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/meta"
)

// An inode the kernel holds outlives its last name until the kernel
// forgets it: OPEN after a racing unlink succeeds, and the orphan is freed
// at the later of the last close and the forget.
func TestHeldInodeOutlivesUnlink(t *testing.T) {
	for _, tt := range []struct {
		name        string
		closeFirst  bool
		openAfterRm bool
	}{
		{name: "open after unlink, close then forget", closeFirst: true, openAfterRm: true},
		{name: "open after unlink, forget then close", openAfterRm: true},
		{name: "no open: forget frees"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := openTestFS(t)
			a := heldUnlinked(t, v, "f", []byte("content"))
			if tt.openAfterRm {
				if err := v.OpenFile(a.Ino); err != nil {
					t.Fatalf("open of a held, unlinked inode: %v", err)
				}
				buf := make([]byte, 16)
				if n, err := v.wb.Read(a.Ino, buf, 0, nil); err != nil || string(buf[:n]) != "content" {
					t.Fatalf("read %q, %v", buf[:n], err)
				}
				if tt.closeFirst {
					if err := v.Release(a.Ino); err != nil {
						t.Fatal(err)
					}
					if _, err := v.GetAttr(a.Ino); err != nil {
						t.Fatalf("freed at close while the kernel holds it: %v", err)
					}
					if err := v.Forget(a.Ino); err != nil {
						t.Fatal(err)
					}
				} else {
					if err := v.Forget(a.Ino); err != nil {
						t.Fatal(err)
					}
					if _, err := v.GetAttr(a.Ino); err != nil {
						t.Fatalf("freed at forget while open: %v", err)
					}
					if err := v.Release(a.Ino); err != nil {
						t.Fatal(err)
					}
				}
			} else {
				if _, err := v.GetAttr(a.Ino); err != nil {
					t.Fatalf("freed at unlink while the kernel holds it: %v", err)
				}
				if err := v.Forget(a.Ino); err != nil {
					t.Fatal(err)
				}
			}
			v.reap.wait() // a forgotten orphan is freed by the reaper, off the FORGET path
			if _, err := v.meta.GetAttr(a.Ino); !errors.Is(err, syscall.ENOENT) {
				t.Fatalf("inode after last close and forget: %v, want ENOENT", err)
			}
			if err := v.OpenFile(a.Ino); err == nil {
				t.Fatal("open of a freed inode succeeded")
			}
		})
	}
}

// A gc right after the kernel forgot a removed file reclaims its blob
// (here a journaled, inline one, which goes with its last reference; a
// file blob then goes in the same gc): GC frees the orphans queued for the
// reaper instead of finding them still referenced while the reaper lets
// forgets gather. The reaper's goroutine is kept from starting (running
// set), so the orphan is still queued when GC runs, as it is for the
// reaper's gathering pause after a forget.
func TestGCFreesForgottenOrphans(t *testing.T) {
	for _, gc := range gcEntries {
		t.Run(gc.name, func(t *testing.T) {
			testGCFreesForgottenOrphans(t, gc.run)
		})
	}
}

// gcEntries are the ways to a collection: GCUndo is what `taskerfs gc`
// runs (a route of its own once shadowed GC's, so a fix in GC alone never
// reached the verb).
var gcEntries = []struct {
	name string
	run  func(v *FS) error
}{
	{"GC", func(v *FS) error { _, err := v.GC(); return err }},
	{"GCUndo", func(v *FS) error { _, err := v.GCUndo(false); return err }},
}

func testGCFreesForgottenOrphans(t *testing.T, gc func(v *FS) error) {
	v := openTestFS(t)
	data := patterned(200<<10, 7)
	a := heldUnlinked(t, v, "big", data)
	v.reap.mu.Lock()
	v.reap.running = true
	v.reap.mu.Unlock()
	if err := v.Forget(a.Ino); err != nil {
		t.Fatal(err)
	}
	if _, err := v.meta.GetAttr(a.Ino); err != nil {
		t.Fatalf("the orphan before gc: %v (the reaper freed it already)", err)
	}
	if err := gc(v); err != nil {
		t.Fatal(err)
	}
	if _, err := v.meta.GetAttr(a.Ino); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("the forgotten orphan after gc: %v, want ENOENT", err)
	}
	if _, ok, err := v.meta.BlobInfo(blobstore.Sum(data)); err != nil || ok {
		t.Fatalf("the removed file's blob is still referenced after gc (%v, %v)", ok, err)
	}
}

// TestGCWaitsForHeldOrphans: the kernel sends FORGET (and RELEASE) after
// the unlink (close) has returned, so a gc right after an rm may find the
// removed files still held; it waits for them to be let go, and gives up
// on an orphan held for longer without touching it.
func TestGCWaitsForHeldOrphans(t *testing.T) {
	for _, gc := range gcEntries {
		t.Run(gc.name, func(t *testing.T) {
			testGCWaitsForHeldOrphans(t, gc.run)
		})
	}
}

func testGCWaitsForHeldOrphans(t *testing.T, gc func(v *FS) error) {
	v := openTestFS(t)
	data := patterned(200<<10, 13)
	a := heldUnlinked(t, v, "late", data)
	forgot := make(chan error, 1)
	waited := false
	gcWaiting = func() {
		// The kernel's FORGET arrives while gc waits.
		if !waited {
			waited = true
			go func() { forgot <- v.Forget(a.Ino) }()
		}
	}
	defer func() { gcWaiting = nil }()
	if err := gc(v); err != nil {
		t.Fatal(err)
	}
	if !waited {
		t.Fatal("gc did not wait for the held orphan")
	}
	if err := <-forgot; err != nil {
		t.Fatal(err)
	}
	if _, ok, err := v.meta.BlobInfo(blobstore.Sum(data)); err != nil || ok {
		t.Fatalf("the removed file's blob is still referenced after gc (%v, %v)", ok, err)
	}

	// An orphan held past the wait keeps its content.
	kept := patterned(100<<10, 29)
	b := heldUnlinked(t, v, "open", kept)
	defer func(w time.Duration) { gcOrphanWait = w }(gcOrphanWait)
	gcOrphanWait = 20 * time.Millisecond
	gcWaiting = nil
	if err := gc(v); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := v.meta.BlobInfo(blobstore.Sum(kept)); err != nil || !ok {
		t.Fatalf("a held orphan's blob after gc: %v, %v; want kept", ok, err)
	}
	if _, err := v.meta.GetAttr(b.Ino); err != nil {
		t.Fatalf("the held orphan after gc: %v", err)
	}
}

// heldUnlinked writes sessions/s/NAME, takes a kernel reference to it (a
// lookup) and unlinks it: an orphan the kernel still holds.
func heldUnlinked(t *testing.T, v *FS, name string, data []byte) meta.Attr {
	t.Helper()
	if err := v.WriteFile("sessions/s/"+name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := v.Resolve("sessions/s/" + name)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := v.Resolve("sessions/s")
	if err != nil {
		t.Fatal(err)
	}
	v.Hold(a.Ino)
	if err := v.meta.Unlink(dir.Ino, name); err != nil {
		t.Fatal(err)
	}
	return a
}

// patterned is n bytes of a pattern that step picks (distinct steps give
// distinct contents).
func patterned(n, step int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * step)
	}
	return b
}
