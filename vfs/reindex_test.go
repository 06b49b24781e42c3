package vfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/taskerfs/taskerfs/index"
	"github.com/taskerfs/taskerfs/meta"
	"github.com/taskerfs/taskerfs/writeback"
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
	var c0 meta.ChunkRef
	if err := f.v.meta.ChunksOfSize(a.Node.Ino(), a.Attr.Size, func(_ uint64, c meta.ChunkRef) error {
		c0 = c
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.v.meta.Update(true, func(tx *meta.Tx) error {
		return tx.Batch().Set(meta.InlinePayloadKey(c0), []byte{0, 'x'}, nil) // its inline payload
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

// TestReindexRefusesAFullDisk: a reindex that would not find the room to
// write the new index refuses before it clears the old one, which stays
// whole (searches give the same hits, the index is not marked incomplete,
// the check is clean) and leaves no spill; with room it runs.
func TestReindexRefusesAFullDisk(t *testing.T) {
	var avail atomic.Int64
	avail.Store(1 << 40)
	v, err := Open(t.TempDir(), Options{Writeback: writeback.Options{FreeSpace: func() (int64, int64, error) {
		return avail.Load(), 1 << 40, nil
	}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	f := &tfs{t: t, v: v, o: v.Ops()}
	for i := range 20 {
		dir := fmt.Sprintf("sessions/s%02d", i)
		f.mkdir(dir, 0o755, 0, 0)
		f.write(dir+"/metadata.json", fmt.Sprintf(`{"name":"session %d","description":"walrus %d","tags":["t%d"]}`, i, i, i%3), 0o644, 0, 0)
	}
	f.mkdir("sessions/big", 0o755, 0, 0)
	f.write("sessions/big/metadata.json", `{"name":"large","description":"`+strings.Repeat("blobstore quokka ", 5000)+`"}`, 0o644, 0, 0)
	if err := v.wb.SyncAll(); err != nil {
		t.Fatal(err)
	}
	want, err := v.TopSnippets("walrus OR quokka", 0)
	if err != nil || len(want) != 21 {
		t.Fatalf("before: %d hits, %v", len(want), err)
	}

	// What the first pass leaves: 20 records prepared, the big file not.
	sp, err := v.prepareInline(v.meta.FS(), filepath.Join(v.Dir, spillName), nil)
	if err != nil {
		t.Fatal(err)
	}
	need := reindexNeed(sp.bytes, sp.others)
	sp.close()
	if len(sp.at) != 20 || sp.others != 1 || sp.bytes <= 0 || need <= reindexMargin+reindexPerOther {
		t.Fatalf("spill: %d prepared, %d others, %d bytes, need %d", len(sp.at), sp.others, sp.bytes, need)
	}

	avail.Store(need - 1)
	err = v.Reindex()
	if !errors.Is(err, errNoRoom) {
		t.Fatalf("reindex with %d bytes free of %d needed: %v", need-1, need, err)
	}
	if incomplete, err := v.index.Incomplete(); err != nil || incomplete {
		t.Errorf("the refused reindex left the index incomplete=%v (%v)", incomplete, err)
	}
	if got, err := v.TopSnippets("walrus OR quokka", 0); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("after the refusal: %d hits (%v), want %d", len(got), err, len(want))
	}
	if problems, err := v.index.Check(v.IndexSource()); err != nil || len(problems) > 0 {
		t.Errorf("after the refusal: %v %v", problems, err)
	}
	if _, err := os.Stat(filepath.Join(v.Dir, spillName)); !os.IsNotExist(err) {
		t.Errorf("the refused reindex left its spill: %v", err)
	}

	avail.Store(need)
	if err := v.Reindex(); err != nil {
		t.Fatalf("reindex with the room it needs: %v", err)
	}
	if got, err := v.TopSnippets("walrus OR quokka", 0); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("after the reindex: %d hits (%v), want %d", len(got), err, len(want))
	}
}
