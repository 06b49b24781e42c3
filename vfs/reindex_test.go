package vfs

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/index"
	"github.com/taskerfs/taskerfs/meta"
)

// TestReindexTwoPasses: a reindex prepares the inline files in the inline
// table's order and indexes every file in inode order, and gives the
// index the commits built: the same check, counts and ranked hits. The
// store holds what takes each path: inline files, the same content in
// several sessions and under two kinds, a file in the blob store, a file
// of several chunks, files that are not indexed. The spill is gone after.
func TestReindexTwoPasses(t *testing.T) {
	f := newTFS(t)
	shared := `{"summary":"the shared retrospective about zebra migrations"}`
	big := `{"name":"large","description":"` + strings.Repeat("blobstore quokka ", 5000) + `"}`     // > InlineMax
	huge := `{"name":"chunked","description":"` + strings.Repeat("manifest narwhal ", 80000) + `"}` // > ChunkSize
	if len(big) <= meta.InlineMax || len(huge) <= meta.ChunkSize {
		t.Fatal("the test's files do not take their paths")
	}
	for i := range 30 {
		dir := fmt.Sprintf("sessions/s%02d", i)
		f.mkdir(dir, 0o755, 0, 0)
		f.write(dir+"/metadata.json", fmt.Sprintf(`{"name":"session %d","description":"walrus %d %s","tags":["t%d"]}`, i, i, strings.Repeat("kelp ", i), i%3), 0o644, 0, 0)
		if i%5 == 0 {
			f.write(dir+"/summary.json", shared, 0o644, 0, 0)
			f.write(dir+"/audio-insights.json", shared, 0o644, 0, 0) // the same blob, another kind
		}
		f.write(dir+"/notes.txt", "not indexed walrus", 0o644, 0, 0)
	}
	f.mkdir("sessions/s30", 0o755, 0, 0)
	f.write("sessions/s30/metadata.json", big, 0o644, 0, 0)
	f.mkdir("sessions/s31", 0o755, 0, 0)
	f.write("sessions/s31/metadata.json", huge, 0o644, 0, 0)
	if err := f.v.wb.SyncAll(); err != nil {
		t.Fatal(err)
	}
	queries := []string{"walrus", "kelp walrus", "zebra", "quokka", "narwhal", "tag:t1", "session OR retrospective", "walrus -kelp"}
	hits := func() [][]index.Hit {
		var all [][]index.Hit
		for _, q := range queries {
			h, err := f.v.TopSnippets(q, 0)
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			all = append(all, h)
		}
		return all
	}
	want := hits()
	for i, q := range queries {
		if len(want[i]) == 0 {
			t.Fatalf("%s finds nothing before the reindex", q)
		}
	}
	_, wantFiles, _, _ := f.v.index.Stats()

	var last index.RebuildProgress
	maxPrepared := 0
	if err := f.v.ReindexWith(func(p index.RebuildProgress) {
		last = p
		maxPrepared = max(maxPrepared, p.Prepared)
	}); err != nil {
		t.Fatal(err)
	}
	// Inline and of one chunk: 30 metadata, 6+6 shared, not the two big ones.
	if maxPrepared != 42 || last.Files != int(wantFiles) || wantFiles != 44 {
		t.Errorf("progress: %d prepared, last %+v; %d files indexed before", maxPrepared, last, wantFiles)
	}
	if problems, err := f.v.index.Check(f.v.IndexSource()); err != nil || len(problems) > 0 {
		t.Fatalf("after reindex: %v %v", problems, err)
	}
	if sessions, files, _, _ := f.v.index.Stats(); sessions != 32 || files != wantFiles {
		t.Errorf("index holds %d sessions, %d files; want 32, %d", sessions, files, wantFiles)
	}
	if got := hits(); !reflect.DeepEqual(got, want) {
		for i := range got {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Errorf("%s after reindex:\n%+v\nbefore:\n%+v", queries[i], got[i], want[i])
			}
		}
	}
	if _, err := os.Stat(filepath.Join(f.v.Dir, "reindex.spill")); !os.IsNotExist(err) {
		t.Errorf("the spill is left: %v", err)
	}
}

// TestReindexLeavesOutWhatItCannotRead: a damaged inline blob is left out
// by both passes, as the one-pass reindex left it out, and the others are
// indexed.
func TestReindexLeavesOutWhatItCannotRead(t *testing.T) {
	f := newTFS(t)
	for i := range 4 {
		dir := fmt.Sprintf("sessions/s%d", i)
		f.mkdir(dir, 0o755, 0, 0)
		f.write(dir+"/metadata.json", fmt.Sprintf(`{"name":"session %d","description":"ocelot"}`, i), 0o644, 0, 0)
	}
	if err := f.v.wb.SyncAll(); err != nil {
		t.Fatal(err)
	}
	a := f.mustWalk(rootCtx(), "sessions/s2/metadata.json")
	var h blobstore.Hash
	if err := f.v.meta.ChunksOfSize(a.Node.Ino(), a.Attr.Size, func(_ uint64, c meta.ChunkRef) error {
		h = c.Hash
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.v.meta.Update(true, func(tx *meta.Tx) error {
		return tx.Batch().Set(append([]byte{'B'}, h[:]...), []byte{0, 'x'}, nil) // its inline payload
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.v.Reindex(); err != nil {
		t.Fatal(err)
	}
	if sessions, files, _, _ := f.v.index.Stats(); sessions != 3 || files != 3 {
		t.Errorf("index holds %d sessions, %d files; want 3, 3", sessions, files)
	}
}

// TestOpenRemovesAnInterruptedReindex: what a reindex killed midway leaves
// in the data dir (its spill, its tables) is removed by the next open.
func TestOpenRemovesAnInterruptedReindex(t *testing.T) {
	dir := t.TempDir()
	v, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, spillName), []byte("prepared records"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "reindex.tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "reindex.tmp", "records-1.sst"), []byte("a table"), 0o600); err != nil {
		t.Fatal(err)
	}
	if v, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for _, name := range []string{spillName, "reindex.tmp"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s is left after open: %v", name, err)
		}
	}
}
