package meta

import (
	"bytes"
	"errors"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/taskerfs/taskerfs/blobstore"
)

// env is a store on a temp dir with a real local blob store behind it.
type env struct {
	t     testing.TB
	dir   string
	blobs *blobstore.Local
	s     *Store
}

func newEnv(t testing.TB) *env {
	t.Helper()
	blobs, err := blobstore.OpenLocal(filepath.Join(t.TempDir(), "blobs"), blobstore.LocalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: t.TempDir(), blobs: blobs}
	e.open()
	t.Cleanup(func() {
		if e.s != nil {
			if err := e.s.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		}
		blobs.Close()
	})
	return e
}

func (e *env) open() {
	e.t.Helper()
	s, err := Open(e.dir, Options{Blobs: e.blobs})
	if err != nil {
		e.t.Fatal(err)
	}
	e.s = s
}

// reopen closes pebble and opens it again, as a daemon restart would.
func (e *env) reopen() {
	e.t.Helper()
	s := e.s
	e.s = nil
	if err := s.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.open()
}

// ino resolves a slash-separated path from the root ("" is the root).
func (e *env) ino(p string) uint64 {
	e.t.Helper()
	ino, err := e.lookupPath(p)
	if err != nil {
		e.t.Fatalf("resolve %q: %v", p, err)
	}
	return ino
}

func (e *env) lookupPath(p string) (uint64, error) {
	ino := uint64(RootIno)
	if p == "" {
		return ino, nil
	}
	for _, part := range strings.Split(p, "/") {
		a, err := e.s.Lookup(ino, part)
		if err != nil {
			return 0, err
		}
		ino = a.Ino
	}
	return ino, nil
}

// split resolves the parent of p and returns it with p's last element.
func (e *env) split(p string) (uint64, string) {
	e.t.Helper()
	dir, name := path.Split(p)
	return e.ino(strings.TrimSuffix(dir, "/")), name
}

func (e *env) attr(p string) Attr {
	e.t.Helper()
	a, err := e.s.GetAttr(e.ino(p))
	if err != nil {
		e.t.Fatalf("getattr %q: %v", p, err)
	}
	return a
}

func (e *env) create(p string, mode uint32) Attr {
	e.t.Helper()
	parent, name := e.split(p)
	a, err := e.s.Create(parent, name, NewNode{Mode: mode})
	if err != nil {
		e.t.Fatalf("create %q: %v", p, err)
	}
	return a
}

func (e *env) mkdir(p string) Attr { e.t.Helper(); return e.create(p, syscall.S_IFDIR|0o755) }
func (e *env) mkfile(p string) Attr {
	e.t.Helper()
	return e.create(p, syscall.S_IFREG|0o644)
}

func (e *env) rename(from, to string, flags uint32) error {
	e.t.Helper()
	op, on := e.split(from)
	np, nn := e.split(to)
	return e.s.Rename(op, on, np, nn, flags)
}

// names lists a directory in ReadDir order.
func (e *env) names(dir uint64) []string {
	e.t.Helper()
	var out []string
	if err := e.s.ReadDir(dir, "", func(d DirEntry) bool { out = append(out, d.Name); return true }); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) pathOf(ino uint64) (string, bool) {
	e.t.Helper()
	p, ok, err := e.s.PathOf(ino)
	if err != nil {
		e.t.Fatalf("pathof %d: %v", ino, err)
	}
	return p, ok
}

// snapshot renders the reachable tree with inode numbers and attributes
// other than times, to show that a failed operation changed nothing.
func (e *env) snapshot() string {
	e.t.Helper()
	var b strings.Builder
	var walk func(dir uint64, prefix string)
	walk = func(dir uint64, prefix string) {
		var kids []DirEntry
		if err := e.s.ReadDir(dir, "", func(d DirEntry) bool { kids = append(kids, d); return true }); err != nil {
			e.t.Fatal(err)
		}
		for _, k := range kids {
			a, err := e.s.GetAttr(k.Ino)
			if err != nil {
				e.t.Fatalf("getattr %s%s: %v", prefix, k.Name, err)
			}
			b.WriteString(strings.Join([]string{prefix + k.Name, fmtU(a.Ino), fmtU(uint64(a.Mode)), fmtU(uint64(a.Nlink)),
				fmtU(a.Parent), a.Name}, " ") + "\n")
			if a.IsDir() {
				walk(k.Ino, prefix+k.Name+"/")
			}
		}
	}
	root, err := e.s.GetAttr(RootIno)
	if err != nil {
		e.t.Fatal(err)
	}
	b.WriteString("/ " + fmtU(uint64(root.Nlink)) + "\n")
	walk(RootIno, "")
	return b.String()
}

func fmtU(v uint64) string { return strconv.FormatUint(v, 10) }

// fsck checks the invariants every operation must keep: directory link
// counts are 2 + subdirectories, file link counts equal their names,
// directories record their exact parent and name, unreachable inodes are
// orphans with no links, and blob refcounts equal the manifest entries
// pointing at them with inline payloads present exactly while referenced.
func (e *env) fsck() {
	e.t.Helper()
	t := e.t
	names := map[uint64]int{}
	subdirs := map[uint64]int{}
	seen := map[uint64]bool{RootIno: true}
	var walk func(dir uint64)
	walk = func(dir uint64) {
		var kids []DirEntry
		if err := e.s.ReadDir(dir, "", func(d DirEntry) bool { kids = append(kids, d); return true }); err != nil {
			t.Fatal(err)
		}
		for _, k := range kids {
			names[k.Ino]++
			a, err := e.s.GetAttr(k.Ino)
			if err != nil {
				t.Errorf("fsck: entry %q in %d points at %d: %v", k.Name, dir, k.Ino, err)
				continue
			}
			if a.Mode&syscall.S_IFMT != k.Mode {
				t.Errorf("fsck: entry %q type %o, inode %d type %o", k.Name, k.Mode, k.Ino, a.Mode&syscall.S_IFMT)
			}
			if !a.IsDir() {
				continue
			}
			subdirs[dir]++
			if a.Parent != dir || a.Name != k.Name {
				t.Errorf("fsck: dir %d found as %d/%q records %d/%q", k.Ino, dir, k.Name, a.Parent, a.Name)
			}
			if seen[k.Ino] {
				t.Errorf("fsck: dir %d reached twice", k.Ino)
				continue
			}
			seen[k.Ino] = true
			walk(k.Ino)
		}
	}
	walk(RootIno)
	err := e.s.AllInodes(func(a Attr) error {
		_, orphan, err := get(e.s.db, orphanKey(a.Ino))
		if err != nil {
			return err
		}
		want := uint32(names[a.Ino])
		if a.IsDir() && (want > 0 || a.Ino == RootIno) {
			want = 2 + uint32(subdirs[a.Ino])
		}
		if a.Nlink != want {
			t.Errorf("fsck: inode %d (%q) nlink %d, want %d", a.Ino, a.Name, a.Nlink, want)
		}
		if (a.Nlink == 0) != orphan {
			t.Errorf("fsck: inode %d nlink %d but orphan record %v", a.Ino, a.Nlink, orphan)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	refs := map[blobstore.Hash]uint64{}
	ids := map[blobstore.Hash]map[uint64]bool{} // payload ids the manifest entries name
	e.scan([]byte{pfxChunk}, func(k, v []byte) {
		c, err := decodeChunkRef(v)
		if err != nil {
			t.Fatalf("fsck: chunk %x: %v", k, err)
		}
		if _, err := e.s.GetAttr(keyIno(k)); err != nil {
			t.Errorf("fsck: chunk of missing inode %d", keyIno(k))
		}
		if !e.has(userKey(c.Hash, keyIno(k), keyIno(k[8:]))) {
			t.Errorf("fsck: chunk %x has no reverse entry", k)
		}
		refs[c.Hash]++
		if ids[c.Hash] == nil {
			ids[c.Hash] = map[uint64]bool{}
		}
		ids[c.Hash][c.Payload] = true
	})
	e.scan([]byte{pfxUser}, func(k, _ []byte) {
		v, ok, err := get(e.s.db, chunkKey(keyIno(k[32:]), keyIno(k[40:])))
		if c, derr := decodeChunkRef(v); err != nil || !ok || derr != nil || !bytes.Equal(c.Hash[:], k[1:33]) {
			t.Errorf("fsck: reverse entry %x without its manifest entry", k)
		}
	})
	err = e.s.RefBlobs(func(h blobstore.Hash, info BlobInfo) error {
		if info.Refs != refs[h] {
			t.Errorf("fsck: blob %s refs %d, manifests hold %d", h, info.Refs, refs[h])
		}
		delete(refs, h)
		_, hasInline, err := get(e.s.db, payloadKey(info.Payload, h))
		if err != nil {
			return err
		}
		if hasInline != info.Inline {
			t.Errorf("fsck: blob %s inline record %v, payload present %v", h, info.Inline, hasInline)
		}
		if info.Inline && (len(ids[h]) != 1 || !ids[h][info.Payload]) {
			t.Errorf("fsck: inline blob %s has payload %d, its manifest entries name %v", h, info.Payload, ids[h])
		}
		return nil
	})
	// Every payload keyed by id is the one its blob's record names.
	e.scan([]byte{pfxPayload}, func(k, _ []byte) {
		if len(k) != payloadKeyLen {
			t.Errorf("fsck: payload key %x", k)
			return
		}
		info, ok, err := e.s.BlobInfo(blobstore.Hash(k[9:]))
		if err != nil || !ok || !info.Inline || info.Payload != keyIno(k) {
			t.Errorf("fsck: payload %x: record %+v, %v, %v", k, info, ok, err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for h, n := range refs {
		t.Errorf("fsck: blob %s referenced %d times has no refcount", h, n)
	}
	// Every per-inode record belongs to a live inode of the right kind.
	owner := map[byte]func(a *Attr) bool{
		pfxDirent:  (*Attr).IsDir,
		pfxXattr:   func(*Attr) bool { return true },
		pfxSymlink: (*Attr).IsSymlink,
		pfxOrphan:  func(a *Attr) bool { return a.Nlink == 0 },
	}
	for pfx, ok := range owner {
		e.scan([]byte{pfx}, func(k, _ []byte) {
			ino := keyIno(k)
			a, err := e.s.GetAttr(ino)
			if err != nil || !ok(&a) {
				t.Errorf("fsck: %q record %x of inode %d (%+v, %v)", pfx, k, ino, a, err)
			}
		})
	}
	e.scan([]byte{pfxInline}, func(k, _ []byte) {
		var h blobstore.Hash
		copy(h[:], k[1:])
		if _, ok, _ := e.s.BlobInfo(h); !ok {
			t.Errorf("fsck: inline payload %s without refcount", h)
		}
	})
}

// keyIno reads the big-endian number that follows the first byte of key.
func keyIno(key []byte) uint64 {
	var ino uint64
	for _, c := range key[1:9] {
		ino = ino<<8 | uint64(c)
	}
	return ino
}

func (e *env) scan(prefix []byte, fn func(k, v []byte)) {
	e.t.Helper()
	it, err := e.s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		e.t.Fatal(err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		fn(it.Key(), it.Value())
	}
	if err := it.Error(); err != nil {
		e.t.Fatal(err)
	}
}

// has reports whether key is in pebble.
func (e *env) has(key []byte) bool {
	e.t.Helper()
	_, ok, err := get(e.s.db, key)
	if err != nil {
		e.t.Fatal(err)
	}
	return ok
}

// checkErr fails unless err is want (0 meaning success).
func checkErr(t testing.TB, what string, err error, want syscall.Errno) {
	t.Helper()
	if want == 0 {
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s: err %v, want %v", what, err, want)
	}
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}

// setChunkSized is tx.SetChunk as the write-back commit does it: the
// file's size covers every entry it has (freeInode relies on that), so
// an entry set past the end grows the size to reach it.
func setChunkSized(tx *Tx, ino, index uint64, ref *BlobRef) error {
	if err := tx.SetChunk(ino, index, ref); err != nil {
		return err
	}
	if ref == nil {
		return nil
	}
	a, err := tx.GetAttr(ino)
	if err != nil {
		return err
	}
	if end := index*ChunkSize + uint64(ref.Size); a.Size < end {
		a.Size = end
		return tx.PutAttr(&a)
	}
	return nil
}
