package recompress

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/blobstore/storetest"
	"github.com/taskerfs/taskerfs/meta"
	"github.com/taskerfs/taskerfs/vfs"
)

// sessionFiles are two sessions: each with a chunk of JSON big enough to be
// a blob file, a JPEG and a small metadata.json.
var sessionFiles = map[string][]byte{
	"sessions/old/metadata.json":              []byte(`{"id": "old"}`),
	"sessions/old/screenshots/chunk-000.json": storetest.JSON(400<<10, 1),
	"sessions/old/attachments/a.jpg":          storetest.JPEG(200<<10, 1),
	"sessions/new/metadata.json":              []byte(`{"id": "new"}`),
	"sessions/new/screenshots/chunk-000.json": storetest.JSON(400<<10, 2),
}

func openWithSessions(t *testing.T) *vfs.FS {
	t.Helper()
	v, err := vfs.Open(t.TempDir(), vfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	for p, data := range sessionFiles {
		if err := v.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.SyncAll(); err != nil {
		t.Fatal(err)
	}
	// Age "old": its files were last modified ten days ago.
	tenDaysAgo := time.Now().Add(-10 * 24 * time.Hour).UnixNano()
	for p := range sessionFiles {
		if strings.HasPrefix(p, "sessions/old/") {
			a, err := v.Resolve(p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.SetAttr(a.Ino, vfs.SetAttrIn{SetAttrIn: meta.SetAttrIn{Mtime: &tenDaysAgo}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return v
}

func TestPassRecompressesOldSessionsOnly(t *testing.T) {
	v := openWithSessions(t)
	stored := func(p string) int64 {
		t.Helper()
		data, err := v.ReadFileAt(p)
		if err != nil {
			t.Fatal(err)
		}
		info, err := v.BlobStore().Stat(blobstore.Sum(data))
		if err != nil {
			t.Fatal(err)
		}
		return info.Stored
	}
	oldChunk, newChunk := "sessions/old/screenshots/chunk-000.json", "sessions/new/screenshots/chunk-000.json"
	oldBefore, newBefore := stored(oldChunk), stored(newChunk)

	st, err := Pass(v, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.OldSessions != 1 || st.Blobs != 3 || st.Rewritten != 1 || st.Errors != 0 {
		t.Fatalf("pass: %+v; want 1 old session, its 2 file blobs and 1 inline blob looked at, the JSON one rewritten", st)
	}
	if data, err := v.ReadFileAt(oldChunk); err != nil {
		t.Fatal(err)
	} else if info, ok, err := v.BlobInfo(blobstore.Sum(data)); err != nil || !ok || info.Stored != stored(oldChunk) {
		t.Fatalf("meta records %d stored bytes (ok %v, err %v), the store holds %d", info.Stored, ok, err, stored(oldChunk))
	}
	if oldAfter := stored(oldChunk); oldAfter >= oldBefore || st.SavedBytes != oldBefore-oldAfter {
		t.Errorf("old chunk stored in %d bytes, was %d; saved %d reported", oldAfter, oldBefore, st.SavedBytes)
	}
	if stored(newChunk) != newBefore {
		t.Error("a session modified today was recompressed")
	}
	for p, want := range sessionFiles {
		if got, err := v.ReadFileAt(p); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s reads differently after recompression (%v)", p, err)
		}
	}
	if r, err := v.Fsck(vfs.FsckOptions{}); err != nil || r.Damaged() {
		t.Fatalf("fsck after recompression: %+v %v", r, err)
	}

	again, err := Pass(v, Options{})
	if err != nil || again.Rewritten != 0 {
		t.Fatalf("second pass rewrote %d blobs (%v)", again.Rewritten, err)
	}
	later, err := Pass(v, Options{Now: func() time.Time { return time.Now().Add(8 * 24 * time.Hour) }})
	if err != nil || later.OldSessions != 2 || later.Rewritten != 1 {
		t.Fatalf("pass a week later: %+v (%v); want both sessions old, the new chunk rewritten", later, err)
	}
}

func TestWorkerRunsAndStops(t *testing.T) {
	v := openWithSessions(t)
	w, err := Start(v, Options{FirstDelay: time.Millisecond, Interval: time.Hour, CPU: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	for w.Stats().Passes == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	w.Stop()
	if st := w.Stats(); st.Rewritten != 1 || st.OldSessions != 1 {
		t.Fatalf("worker: %+v", st)
	}
}

func TestThrottlePause(t *testing.T) {
	tests := []struct {
		share float64
		used  time.Duration
		want  time.Duration
	}{
		{0.2, 10 * time.Millisecond, 40 * time.Millisecond},
		{0.5, 10 * time.Millisecond, 10 * time.Millisecond},
		{1, 10 * time.Millisecond, 0},
		{0.25, 0, 0},
	}
	for _, tt := range tests {
		th := &throttle{share: tt.share}
		if got := th.pause(tt.used); got != tt.want {
			t.Errorf("share %v after %v: pause %v, want %v", tt.share, tt.used, got, tt.want)
		}
	}
}
