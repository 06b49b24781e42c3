package blobstore

import (
	"errors"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/vfs"
)

// strictLocal returns a strict in-memory filesystem (vfs.NewStrictMem:
// ResetToSyncedState drops what was not synced, as a power loss does)
// holding a durable /data, and a function that opens a store in it.
func strictLocal(t *testing.T) (*vfs.MemFS, func() *Local) {
	t.Helper()
	mem := vfs.NewStrictMem()
	if err := mem.MkdirAll("/data", 0o700); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"/", "/data"} {
		f, err := mem.OpenDir(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	return mem, func() *Local {
		l, err := OpenLocal("/data/blobs", LocalOptions{FS: mem})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
}

// TestRacingPutKeepsDurableBlob: a second Put of a blob that lost the race
// to the first (both found no file, both wrote one) must not replace the
// first's file, whose bytes are synced and which a committed manifest may
// rely on. Renamed over it, the name pointed at the second file's unsynced
// bytes, and a fsync of the shard directory for any other blob made that
// durable: after a power loss the blob read back empty.
func TestRacingPutKeepsDurableBlob(t *testing.T) {
	mem, open := strictLocal(t)
	l := open()
	data := make([]byte, 100<<10)
	for i := range data {
		data[i] = byte(i*7 + i>>9)
	}
	h := Sum(data)
	if _, err := l.Put(h, data); err != nil {
		t.Fatal(err)
	}
	if err := l.SyncBlobs([]Hash{h}); err != nil {
		t.Fatal(err)
	}
	// The loser of the race writes its own copy and moves it into place.
	codec, payload := Encode(data)
	if err := l.writeFile(h, codec, len(data), payload, false); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second placement of %v: %v, want an error matching fs.ErrExist", h, err)
	}
	// Another blob of the shard is synced: the directory goes to disk.
	if err := l.fs.fsync(filepath.Dir(l.path(h))); err != nil {
		t.Fatal(err)
	}
	mem.SetIgnoreSyncs(true)
	l.Close()
	mem.ResetToSyncedState()
	mem.SetIgnoreSyncs(false)
	l = open()
	defer l.Close()
	if got, err := l.Get(h); err != nil || string(got) != string(data) {
		t.Fatalf("after power loss: Get(%v) = %d bytes, %v", h, len(got), err)
	}
}
