package vfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/index"
	"github.com/taskerfs/taskerfs/meta"
)

// fsckFixture is a small session tree on disk: two attachments big enough
// to be blob files, and JSON small enough to be inline blobs.
type fsckFixture struct {
	dir          string
	shot, audio  blobstore.Hash // file blobs
	shotData     []byte
	shotPath     string
	metadataPath string
}

func newFsckFixture(t *testing.T) *fsckFixture {
	t.Helper()
	f := &fsckFixture{dir: t.TempDir(), shotPath: "sessions/s1/attachments/a1.jpg", metadataPath: "sessions/s1/metadata.json"}
	v, err := Open(f.dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	shot, audio := random(200<<10), random(120<<10)
	f.shot, f.audio = blobstore.Sum(shot), blobstore.Sum(audio)
	f.shotData = shot
	files := map[string][]byte{
		f.metadataPath:                           []byte(`{"id": "s1", "name": "Fixing the parser", "status": "completed", "tags": ["go"]}`),
		"sessions/s1/screenshots/chunk-000.json": []byte(`[{"id": "sh1", "aiAnalysis": {"summary": "editing lexer code"}}]`),
		f.shotPath:                               shot,
		"sessions/s1/attachments/a2.mp3":         audio,
		"sessions/s1/attachments/a3.jpg":         shot, // a duplicate: refcount 2
		"notes.txt":                              []byte("not a session file\n"),
	}
	for p, data := range files {
		if err := v.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fsckFixture) open(t *testing.T) *FS {
	t.Helper()
	v, err := Open(f.dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (f *fsckFixture) blobFile(h blobstore.Hash) string {
	s := h.String()
	return filepath.Join(f.dir, "blobs", s[:2], s)
}

// bumpRefcount rewrites a refcount record with one reference too many.
// The record's value starts with the count as a uvarint (meta/content.go).
func bumpRefcount(t *testing.T, v *FS, h blobstore.Hash) {
	t.Helper()
	key := append([]byte{'r'}, h[:]...)
	err := v.meta.Update(true, func(tx *meta.Tx) error {
		val, closer, err := tx.Batch().Get(key)
		if err != nil {
			return err
		}
		refs, n := binary.Uvarint(val)
		rest := append([]byte(nil), val[n:]...)
		closer.Close()
		return tx.Batch().Set(key, append(binary.AppendUvarint(nil, refs+1), rest...), nil)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestFsckFindsAndRepairsDamage(t *testing.T) {
	tests := []struct {
		name        string
		damage      func(t *testing.T, f *fsckFixture)
		found       func(r *FsckReport, f *fsckFixture) bool
		repairable  bool
		reclaimOnly bool // no damage: space for gc
	}{
		{
			name:       "clean",
			damage:     func(*testing.T, *fsckFixture) {},
			found:      func(r *FsckReport, f *fsckFixture) bool { return true },
			repairable: true,
		},
		{
			name: "flipped byte in a blob file",
			damage: func(t *testing.T, f *fsckFixture) {
				file, err := os.OpenFile(f.blobFile(f.shot), os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer file.Close()
				b := make([]byte, 1)
				file.ReadAt(b, 5000)
				b[0] ^= 0x40
				if _, err := file.WriteAt(b, 5000); err != nil {
					t.Fatal(err)
				}
			},
			found: func(r *FsckReport, f *fsckFixture) bool {
				return len(r.Corrupt) == 1 && r.Corrupt[0].Hash == f.shot.String() && len(r.Corrupt[0].Paths) == 2
			},
		},
		{
			name: "deleted blob",
			damage: func(t *testing.T, f *fsckFixture) {
				if err := os.Remove(f.blobFile(f.audio)); err != nil {
					t.Fatal(err)
				}
			},
			found: func(r *FsckReport, f *fsckFixture) bool {
				return len(r.Missing) == 1 && len(r.Missing[0].Paths) == 1 && strings.HasSuffix(r.Missing[0].Paths[0], "a2.mp3")
			},
		},
		{
			name: "wrong refcount",
			damage: func(t *testing.T, f *fsckFixture) {
				v := f.open(t)
				defer v.Close()
				bumpRefcount(t, v, f.shot)
			},
			found: func(r *FsckReport, f *fsckFixture) bool {
				return len(r.Namespace) == 1 && strings.Contains(r.Namespace[0], "refcount 3, manifests hold 2")
			},
			repairable: true,
		},
		{
			name: "wrong stats counters",
			damage: func(t *testing.T, f *fsckFixture) {
				v := f.open(t)
				defer v.Close()
				// The counters record (meta/counters.go): version 1, then
				// nine zigzag varints, all zero here.
				err := v.meta.Update(true, func(tx *meta.Tx) error {
					return tx.Batch().Set([]byte("mcounters"), []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0}, nil)
				})
				if err != nil {
					t.Fatal(err)
				}
			},
			found: func(r *FsckReport, f *fsckFixture) bool {
				return len(r.Namespace) == 1 && strings.HasPrefix(r.Namespace[0], "counters: ")
			},
			repairable: true,
		},
		{
			name: "stale index entry",
			damage: func(t *testing.T, f *fsckFixture) {
				v := f.open(t)
				defer v.Close()
				a, err := v.Resolve(f.metadataPath)
				if err != nil {
					t.Fatal(err)
				}
				err = v.meta.Update(true, func(tx *meta.Tx) error {
					return v.index.UpdateFile(tx.Batch(), a.Ino, "s1", index.KindMetadata, []byte(`{"id": "s1", "name": "something else"}`))
				})
				if err != nil {
					t.Fatal(err)
				}
			},
			found: func(r *FsckReport, f *fsckFixture) bool {
				return len(r.Index) > 0 && strings.HasPrefix(r.Index[0], "stale:")
			},
			repairable: true,
		},
		{
			name: "unreferenced blob file",
			damage: func(t *testing.T, f *fsckFixture) {
				v := f.open(t)
				defer v.Close()
				data := []byte(strings.Repeat("left behind by a crash ", 5000))
				if _, err := v.blobs.Put(blobstore.Sum(data), data); err != nil {
					t.Fatal(err)
				}
			},
			found:       func(r *FsckReport, f *fsckFixture) bool { return len(r.Reclaimable) == 1 && r.ReclaimableBytes > 0 },
			repairable:  true,
			reclaimOnly: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFsckFixture(t)
			tt.damage(t, f)

			v := f.open(t)
			r, err := v.Fsck(FsckOptions{})
			v.Close()
			if err != nil {
				t.Fatal(err)
			}
			if damaged := tt.name != "clean" && !tt.reclaimOnly; r.Damaged() != damaged || !tt.found(&r, f) {
				t.Fatalf("fsck: damaged %v, report %+v", r.Damaged(), r)
			}
			if r.Blobs < 4 || r.BlobFiles < 1 {
				t.Errorf("checked %d blobs, %d blob files", r.Blobs, r.BlobFiles)
			}

			v = f.open(t)
			r, err = v.Fsck(FsckOptions{Repair: true})
			v.Close()
			if err != nil {
				t.Fatal(err)
			}
			if (r.Unrepaired == 0) != tt.repairable {
				t.Fatalf("repair left %d problems (repairable %v): %+v", r.Unrepaired, tt.repairable, r)
			}

			v = f.open(t)
			defer v.Close()
			r, err = v.Fsck(FsckOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if r.Damaged() == tt.repairable || len(r.Reclaimable) > 0 {
				t.Fatalf("after repair: damaged %v, report %+v", r.Damaged(), r)
			}
			if tt.repairable {
				if data, err := v.ReadFileAt(f.shotPath); err != nil || blobstore.Sum(data) != f.shot {
					t.Errorf("after repair %s reads wrong (%v)", f.shotPath, err)
				}
			}
		})
	}
}

// TestReindexRestoresSearch rebuilds an index that lost everything.
// TestFsckHealsFromAGoodCopy: a damaged blob and a missing one are
// looked for under --from (here: a backup holding the original of one of
// them); the one found is restored and reads back, the other stays
// reported.
func TestFsckHealsFromAGoodCopy(t *testing.T) {
	f := newFsckFixture(t)
	flip, err := os.ReadFile(f.blobFile(f.shot))
	if err != nil {
		t.Fatal(err)
	}
	flip[len(flip)-100] ^= 0x40
	if err := os.WriteFile(f.blobFile(f.shot), flip, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(f.blobFile(f.audio)); err != nil {
		t.Fatal(err)
	}
	v := f.open(t)
	backup := t.TempDir()
	os.WriteFile(filepath.Join(backup, "unrelated"), []byte("nothing to see"), 0o600)
	os.WriteFile(filepath.Join(backup, "a1.jpg"), f.shotData, 0o600)
	r, err := v.Fsck(FsckOptions{Repair: true, From: []string{backup}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Healed) != 1 || r.Healed[0].Hash != f.shot.String() || len(r.Corrupt) != 0 {
		t.Fatalf("healed %+v, corrupt %+v: want the damaged blob healed from the backup", r.Healed, r.Corrupt)
	}
	if len(r.Missing) != 1 || r.Unrepaired != 1 {
		t.Fatalf("missing %+v, unrepaired %d: the blob with no good copy must stay reported", r.Missing, r.Unrepaired)
	}
	a, err := v.Resolve(f.shotPath)
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.ReadFile(a.Ino)
	if err != nil || string(got) != string(f.shotData) {
		t.Fatalf("the healed file reads %d bytes, %v", len(got), err)
	}
	v.Close()
}

func TestReindexRestoresSearch(t *testing.T) {
	f := newFsckFixture(t)
	v := f.open(t)
	defer v.Close()
	err := v.meta.Update(true, func(tx *meta.Tx) error { return v.index.Clear(tx.Batch()) })
	if err != nil {
		t.Fatal(err)
	}
	if problems, _ := v.index.Check(v.IndexSource()); len(problems) == 0 {
		t.Fatal("a cleared index passes its check")
	}
	if err := v.Reindex(); err != nil {
		t.Fatal(err)
	}
	if problems, err := v.index.Check(v.IndexSource()); err != nil || len(problems) > 0 {
		t.Fatalf("after reindex: %v %v", problems, err)
	}
	if sessions, files, _, _ := v.index.Stats(); sessions != 1 || files != 2 {
		t.Errorf("index holds %d sessions, %d files; want 1, 2", sessions, files)
	}
}

// TestIndexSource: every session file once, with its committed content, in
// the order of a walk; nothing else; an error of fn stops the walk and is
// returned, with no reader left behind.
func TestIndexSource(t *testing.T) {
	f := newTFS(t)
	want := map[uint64]string{}
	var order []uint64
	for i := range 40 {
		dir := fmt.Sprintf("sessions/s%02d", i)
		f.mkdir(dir, 0o755, 0, 0)
		body := fmt.Sprintf(`{"name":"session %d","description":"%s"}`, i, strings.Repeat("x", i*100))
		f.write(dir+"/metadata.json", body, 0o644, 0, 0)
		f.write(dir+"/notes.txt", "not indexed", 0o644, 0, 0)
		want[f.mustWalk(rootCtx(), dir+"/metadata.json").Node.Ino()] = body
	}
	f.write("elsewhere.json", "{}", 0o644, 0, 0)
	if err := f.v.wb.SyncAll(); err != nil { // IndexSource reads committed content
		t.Fatal(err)
	}
	// Inode order.
	for ino := range want {
		order = append(order, ino)
	}
	slices.Sort(order)
	var got []uint64
	err := f.v.IndexSource()(func(fid uint64, sid string, kind index.Kind, content []byte) error {
		if string(content) != want[fid] || kind != index.KindMetadata || !strings.HasPrefix(sid, "s") {
			t.Errorf("file %d (%s, %s): %q", fid, sid, kind, content)
		}
		got = append(got, fid)
		return nil
	})
	if err != nil || !slices.Equal(got, order) {
		t.Fatalf("yielded %v (%v), want %v", got, err, order)
	}
	stop := errors.New("enough")
	calls := 0
	err = f.v.IndexSource()(func(uint64, string, index.Kind, []byte) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Fatalf("after an error of fn: %v, %d calls", err, calls)
	}
}

// TestFsckSource: fsck's index check gets the files IndexSource yields,
// with the content sum of every empty or one-chunk file whose blob the
// blob check verified, and none for a file whose blob is damaged; a
// file's content still reads when asked.
func TestFsckSource(t *testing.T) {
	f := newTFS(t)
	want := map[uint64]string{}
	for i := range 30 {
		dir := fmt.Sprintf("sessions/s%02d", i)
		f.mkdir(dir, 0o755, 0, 0)
		body := fmt.Sprintf(`{"name":"session %d","description":"%s"}`, i, strings.Repeat("x", i*100))
		if i == 7 {
			body = "" // empty: its sum is known without a blob
		}
		f.write(dir+"/metadata.json", body, 0o644, 0, 0)
		f.write(dir+"/notes.txt", "not indexed", 0o644, 0, 0)
		want[f.mustWalk(rootCtx(), dir+"/metadata.json").Node.Ino()] = body
	}
	big := strings.Repeat(`{"summary":"a chunk file of two chunks"},`, meta.ChunkSize/40) // two chunks: read
	f.mkdir("sessions/s00/screenshots", 0o755, 0, 0)
	f.write("sessions/s00/screenshots/chunk-000.json", "["+big+"{}]", 0o644, 0, 0)
	bigIno := f.mustWalk(rootCtx(), "sessions/s00/screenshots/chunk-000.json").Node.Ino()
	want[bigIno] = "[" + big + "{}]"
	if err := f.v.wb.SyncAll(); err != nil {
		t.Fatal(err)
	}
	// Damage one inline blob: its file gets no sum.
	damaged := f.mustWalk(rootCtx(), "sessions/s03/metadata.json").Node.Ino()
	var dc meta.ChunkRef
	if err := f.v.meta.ChunksOfSize(damaged, uint64(len(want[damaged])), func(_ uint64, c meta.ChunkRef) error {
		dc = c
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.v.meta.Update(true, func(tx *meta.Tx) error {
		return tx.Batch().Set(meta.InlinePayloadKey(dc), []byte{0, 'x'}, nil)
	}); err != nil {
		t.Fatal(err)
	}

	var r FsckReport
	sums := &blobSums{}
	if err := f.v.checkBlobs(&r, sums, nil); err != nil {
		t.Fatal(err)
	}
	if len(r.Corrupt) != 1 {
		t.Fatalf("corrupt blobs: %+v", r.Corrupt)
	}
	got := map[uint64]bool{}
	err := f.v.fsckSource(sums)(func(sf index.SourceFile) error {
		body, ok := want[sf.ID]
		if !ok || got[sf.ID] {
			t.Errorf("yielded file %d (%s) again or unasked", sf.ID, sf.Session)
		}
		got[sf.ID] = true
		wantSum := index.ContentSum([]byte(body))
		if sf.ID == damaged || sf.ID == bigIno {
			wantSum = 0
		}
		if sf.Sum != wantSum {
			t.Errorf("file %d (%s): sum %x, want %x", sf.ID, sf.Session, sf.Sum, wantSum)
		}
		if sf.ID != damaged {
			if content, err := sf.Content(); err != nil || string(content) != body {
				t.Errorf("file %d reads %d bytes, %v", sf.ID, len(content), err)
			}
		}
		return nil
	})
	if err != nil || len(got) != len(want) {
		t.Fatalf("yielded %d files of %d: %v", len(got), len(want), err)
	}
}

// TestBlobSums: lookups by hash over entries appended in hash order, past
// a page; a blob not verified, one not added and two that share the first
// 8 bytes of their hashes have no sum.
func TestBlobSums(t *testing.T) {
	var hs []blobstore.Hash
	for i := range 3*blobSumPage + 5 {
		hs = append(hs, blobstore.Sum(fmt.Appendf(nil, "blob %d", i)))
	}
	twin := hs[100]
	twin[31] ^= 1 // same first 8 bytes as hs[100]
	hs = append(hs, twin)
	slices.SortFunc(hs, func(a, b blobstore.Hash) int { return slices.Compare(a[:], b[:]) })
	var s blobSums
	unverified := hs[7]
	// Added in another order than the hashes' (the payload table's).
	for k := range hs {
		i := (k * 7919) % len(hs)
		e := s.add(hs[i])
		if hs[i] != unverified {
			e.sum = uint64(i + 1)
		}
	}
	s.sort()
	for i, h := range hs {
		want := uint64(i + 1)
		if h == unverified || h == twin || [8]byte(h[:8]) == [8]byte(twin[:8]) {
			want = 0
		}
		if got := s.lookup(h); got != want {
			t.Fatalf("lookup(hs[%d]) = %d, want %d", i, got, want)
		}
	}
	if got := s.lookup(blobstore.Sum([]byte("never added"))); got != 0 {
		t.Fatalf("a hash never added: %d", got)
	}
	var none *blobSums
	if none.lookup(hs[0]) != 0 || none.add(hs[0]) == nil {
		t.Fatal("a nil blobSums knows nothing")
	}
}
