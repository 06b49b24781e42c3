package meta

import (
	"reflect"
	"testing"
)

// TestScanFiles holds ScanFiles to what a walk of the namespace with
// PathOf and ChunksOfSize gives, over renamed directories, hard links,
// unlinked files, empty, one-chunk, holed and many-chunk files.
func TestScanFiles(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"a", "a/b", "a/b/c", "z"} {
		e.mkdir(p)
	}
	one := e.mkfile("a/b/one")
	e.setChunk(one.Ino, 0, inlineRef([]byte(`{"id": "s1"}`)))
	two := e.mkfile("a/b/c/two")
	e.setChunk(two.Ino, 0, e.fileRef(randomBytes(1, ChunkSize)))
	e.setChunk(two.Ino, 1, inlineRef([]byte("tail")))
	holed := e.mkfile("z/holed")
	e.setChunk(holed.Ino, 1, inlineRef([]byte("after a hole")))
	e.mkfile("top") // empty
	linked := e.mkfile("a/linked")
	e.setChunk(linked.Ino, 0, inlineRef([]byte("linked")))
	if _, err := e.s.Link(linked.Ino, e.ino("z"), "second"); err != nil {
		t.Fatal(err)
	}
	gone := e.mkfile("z/gone")
	e.setChunk(gone.Ino, 0, inlineRef([]byte("gone")))
	if err := e.s.Unlink(e.ino("z"), "gone"); err != nil {
		t.Fatal(err)
	}
	if err := e.s.Unlink(e.ino("z"), "second"); err != nil { // linked keeps its path
		t.Fatal(err)
	}
	lost := e.mkfile("z/lost")
	if _, err := e.s.Link(lost.Ino, e.ino("a"), "other"); err != nil {
		t.Fatal(err)
	}
	if err := e.s.Unlink(e.ino("z"), "lost"); err != nil { // its recorded path goes: none
		t.Fatal(err)
	}
	if err := e.rename("a/b", "z/moved", 0); err != nil {
		t.Fatal(err)
	}

	type file struct {
		Ino, Size uint64
		Path      string
		First     ChunkRef
		HasFirst  bool
	}
	var want []file
	seen := map[uint64]bool{}
	if err := e.s.WalkFiles(RootIno, func(a Attr) error {
		if seen[a.Ino] {
			return nil
		}
		seen[a.Ino] = true
		p, ok := e.pathOf(a.Ino)
		if !ok {
			return nil
		}
		f := file{Ino: a.Ino, Size: a.Size, Path: p}
		err := e.s.ChunksOfSize(a.Ino, a.Size, func(i uint64, c ChunkRef) error {
			if i == 0 {
				f.First, f.HasFirst = c, true
			}
			return nil
		})
		want = append(want, f)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var got []file
	if err := e.s.ScanFiles(func(f *ScannedFile) error {
		got = append(got, file{f.Ino, f.Size, f.Path, f.First, f.HasFirst})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	byIno := func(fs []file) map[uint64]file {
		m := map[uint64]file{}
		for _, f := range fs {
			m[f.Ino] = f
		}
		return m
	}
	if len(got) != 5 || !reflect.DeepEqual(byIno(got), byIno(want)) {
		t.Fatalf("ScanFiles:\n got %+v\nwant %+v", got, want)
	}
	for i := 1; i < len(got); i++ {
		if got[i-1].Ino >= got[i].Ino {
			t.Fatalf("not in inode order: %+v", got)
		}
	}
}
