package meta

import (
	"bytes"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/taskerfs/taskerfs/blobstore"
)

// diskUsage is the disk space of everything under dir (not dir itself,
// whose blocks a removal never gives back).
func diskUsage(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		n += st.Blocks * 512
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// inlineRef prepares data as a blob kept in pebble.
func inlineRef(data []byte) *BlobRef {
	codec, enc := blobstore.Encode(data)
	return &BlobRef{Hash: blobstore.Sum(data), Size: uint32(len(data)), Codec: codec,
		Stored: int64(len(enc)), Inline: append([]byte{}, enc...)}
}

// fileRef writes data to the blob store and returns its reference.
func (e *env) fileRef(data []byte) *BlobRef {
	e.t.Helper()
	h := blobstore.Sum(data)
	info, err := e.blobs.Put(h, data)
	if err != nil {
		e.t.Fatal(err)
	}
	return &BlobRef{Hash: h, Size: uint32(len(data)), Codec: info.Codec, Stored: info.Stored}
}

func (e *env) setChunk(ino, index uint64, ref *BlobRef) {
	e.t.Helper()
	if err := e.s.Update(false, func(tx *Tx) error { return setChunkSized(tx, ino, index, ref) }); err != nil {
		e.t.Fatalf("setchunk %d[%d]: %v", ino, index, err)
	}
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func compressible(n int) []byte {
	return bytes.Repeat([]byte("taskerfs keeps sessions; "), n/25+1)[:n]
}

func TestRefcounts(t *testing.T) {
	e := newEnv(t)
	f0 := e.mkfile("f0").Ino
	f1 := e.mkfile("f1").Ino
	data := map[string][]byte{
		"A": compressible(10 << 10),
		"B": randomBytes(1, 3000),
		"C": compressible(200 << 10),
		"D": randomBytes(2, 100<<10),
	}
	refs := map[string]*BlobRef{
		"A": inlineRef(data["A"]),
		"B": inlineRef(data["B"]),
		"C": e.fileRef(data["C"]),
		"D": e.fileRef(data["D"]),
	}
	if refs["A"].Codec != blobstore.CodecZstd || refs["C"].Codec != blobstore.CodecZstd || refs["B"].Codec != blobstore.CodecRaw {
		t.Fatal("test data does not cover both codecs")
	}
	steps := []struct {
		name   string
		do     func(tx *Tx) error
		refs   map[string]uint64
		chunks map[uint64][]string // manifest of each file, by blob name
	}{
		{"first ref", func(tx *Tx) error { return setChunkSized(tx, f0, 0, refs["A"]) },
			map[string]uint64{"A": 1}, map[uint64][]string{f0: {"A"}}},
		{"shared", func(tx *Tx) error { return setChunkSized(tx, f1, 0, refs["A"]) },
			map[string]uint64{"A": 2}, nil},
		{"file blob", func(tx *Tx) error { return setChunkSized(tx, f0, 1, refs["C"]) },
			map[string]uint64{"A": 2, "C": 1}, nil},
		{"shared file blob", func(tx *Tx) error { return setChunkSized(tx, f1, 1, refs["C"]) },
			map[string]uint64{"C": 2}, map[uint64][]string{f1: {"A", "C"}}},
		{"overwrite moves the count", func(tx *Tx) error { return setChunkSized(tx, f0, 0, refs["B"]) },
			map[string]uint64{"A": 1, "B": 1}, map[uint64][]string{f0: {"B", "C"}}},
		{"rewrite of the same blob", func(tx *Tx) error { return setChunkSized(tx, f0, 0, refs["B"]) },
			map[string]uint64{"A": 1, "B": 1}, nil},
		{"one blob twice in a file", func(tx *Tx) error { return setChunkSized(tx, f1, 2, refs["A"]) },
			map[string]uint64{"A": 2}, map[uint64][]string{f1: {"A", "C", "A"}}},
		{"sparse index", func(tx *Tx) error { return setChunkSized(tx, f1, 7, refs["D"]) },
			map[string]uint64{"D": 1}, map[uint64][]string{f1: {"A", "C", "A", "D"}}},
		{"hole", func(tx *Tx) error { return setChunkSized(tx, f0, 1, nil) },
			map[string]uint64{"C": 1}, map[uint64][]string{f0: {"B"}}},
		{"hole over a hole", func(tx *Tx) error { return setChunkSized(tx, f0, 5, nil) },
			map[string]uint64{"C": 1}, map[uint64][]string{f0: {"B"}}},
		{"truncate", func(tx *Tx) error { return tx.TruncateChunks(f1, 1) },
			map[string]uint64{"A": 1, "C": 0, "D": 0}, map[uint64][]string{f1: {"A"}}},
		{"unlink drops refs", func(tx *Tx) error { return tx.Unlink(RootIno, "f0") },
			map[string]uint64{"A": 1, "B": 0}, map[uint64][]string{f0: nil}},
		{"last ref", func(tx *Tx) error { return tx.Unlink(RootIno, "f1") },
			map[string]uint64{"A": 0, "B": 0, "C": 0, "D": 0}, map[uint64][]string{f1: nil}},
	}
	nameOf := map[blobstore.Hash]string{}
	for n, r := range refs {
		nameOf[r.Hash] = n
	}
	for _, st := range steps {
		if err := e.s.Update(false, st.do); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		for n, want := range st.refs {
			r := refs[n]
			info, ok, err := e.s.BlobInfo(r.Hash)
			if err != nil {
				t.Fatal(err)
			}
			if want == 0 {
				if ok {
					t.Fatalf("%s: blob %s still counted: %+v", st.name, n, info)
				}
				if e.hasPayload(r.Hash) {
					t.Fatalf("%s: inline payload of %s kept at refcount 0", st.name, n)
				}
				continue
			}
			wantInfo := BlobInfo{Refs: want, Inline: r.Inline != nil, Size: r.Size, Stored: r.Stored, Codec: r.Codec}
			if r.Inline != nil {
				if info.Payload == 0 {
					t.Fatalf("%s: inline blob %s has no payload id", st.name, n)
				}
				wantInfo.Payload = info.Payload
			}
			if !ok || info != wantInfo {
				t.Fatalf("%s: blob %s info %+v, want %+v", st.name, n, info, wantInfo)
			}
			got, err := e.s.Blob(r.Hash)
			if err != nil || !bytes.Equal(got, data[n]) {
				t.Fatalf("%s: blob %s reads back %d bytes, %v", st.name, n, len(got), err)
			}
		}
		for ino, want := range st.chunks {
			var got []string
			var last uint64
			err := e.s.Chunks(ino, func(i uint64, c ChunkRef) error {
				if len(got) > 0 && i <= last {
					t.Fatalf("%s: chunk index %d after %d", st.name, i, last)
				}
				last = i
				got = append(got, nameOf[c.Hash])
				if c.Size != refs[nameOf[c.Hash]].Size {
					t.Fatalf("%s: chunk %d size %d", st.name, i, c.Size)
				}
				return nil
			})
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: manifest of %d = %v, %v; want %v", st.name, ino, got, err, want)
			}
		}
		e.fsck()
	}
	// File blobs stay on disk until gc.
	for _, n := range []string{"C", "D"} {
		if ok, err := e.blobs.Has(refs[n].Hash); err != nil || !ok {
			t.Fatalf("file blob %s deleted before gc: %v", n, err)
		}
	}
}

func TestChunkLookup(t *testing.T) {
	e := newEnv(t)
	f := e.mkfile("f").Ino
	r := inlineRef([]byte("hello"))
	e.setChunk(f, 3, r)
	tests := []struct {
		index uint64
		ok    bool
	}{{0, false}, {3, true}, {4, false}}
	for _, tt := range tests {
		c, ok, err := e.s.Chunk(f, tt.index)
		if err != nil || ok != tt.ok || ok && (c.Hash != r.Hash || c.Size != 5) {
			t.Fatalf("Chunk(%d) = %+v, %v, %v", tt.index, c, ok, err)
		}
	}
}

// An inline blob that drops to zero and is referenced again in the same
// transaction must keep its payload.
func TestInlineRefDropAndReaddInOneTx(t *testing.T) {
	e := newEnv(t)
	f := e.mkfile("f").Ino
	g := e.mkfile("g").Ino
	data := []byte("moved between files in one batch")
	r := inlineRef(data)
	e.setChunk(f, 0, r)
	err := e.s.Update(false, func(tx *Tx) error {
		if err := setChunkSized(tx, f, 0, nil); err != nil {
			return err
		}
		return setChunkSized(tx, g, 0, r)
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.s.Blob(r.Hash)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Blob = %q, %v", got, err)
	}
	e.fsck()
}

type mapCache struct {
	m    map[blobstore.Hash][]byte
	hits int
}

func (c *mapCache) Get(h blobstore.Hash) ([]byte, bool) {
	d, ok := c.m[h]
	if ok {
		c.hits++
	}
	return d, ok
}
func (c *mapCache) Set(h blobstore.Hash, d []byte) { c.m[h] = d }

func TestBlobReadBack(t *testing.T) {
	e := newEnv(t)
	cache := &mapCache{m: map[blobstore.Hash][]byte{}}
	cached, err := Open(t.TempDir(), Options{Blobs: e.blobs, BlobCache: cache})
	if err != nil {
		t.Fatal(err)
	}
	defer cached.Close()
	tests := []struct {
		name   string
		data   []byte
		inline bool
	}{
		{"inline raw", randomBytes(3, 1000), true},
		{"inline zstd", compressible(InlineMax), true},
		{"inline empty", []byte{}, true},
		{"file raw", randomBytes(4, ChunkSize), false},
		{"file zstd", compressible(ChunkSize), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, s := range []*Store{e.s, cached} {
				f, err := s.Create(RootIno, tt.name, NewNode{Mode: syscall.S_IFREG})
				if err != nil {
					t.Fatal(err)
				}
				r := inlineRef(tt.data)
				if !tt.inline {
					r = e.fileRef(tt.data)
				}
				if err := s.Update(false, func(tx *Tx) error { return setChunkSized(tx, f.Ino, 0, r) }); err != nil {
					t.Fatal(err)
				}
				for range 2 {
					got, err := s.Blob(r.Hash)
					if err != nil || !bytes.Equal(got, tt.data) {
						t.Fatalf("Blob = %d bytes, %v; want %d bytes", len(got), err, len(tt.data))
					}
				}
				// The read path's ways in, from the manifest entry.
				c, ok, err := s.Chunk(f.Ino, 0)
				if err != nil || !ok || c.Hash != r.Hash || c.Size != uint32(len(tt.data)) {
					t.Fatalf("Chunk = %+v, %v, %v", c, ok, err)
				}
				if got, err := s.ChunkData(c); err != nil || !bytes.Equal(got, tt.data) {
					t.Fatalf("ChunkData = %d bytes, %v; want %d bytes", len(got), err, len(tt.data))
				}
				got, lent, err := s.ChunkDataLent(c)
				if err != nil || !bytes.Equal(got, tt.data) {
					t.Fatalf("ChunkDataLent = %d bytes, %v; want %d bytes", len(got), err, len(tt.data))
				}
				lent.Return()
				if got, err := s.ChunkBlob(c); err != nil || !bytes.Equal(got, tt.data) {
					t.Fatalf("ChunkBlob = %d bytes, %v; want %d bytes", len(got), err, len(tt.data))
				}
			}
		})
	}
	// The second Blob of each, and its ChunkData and ChunkDataLent (the
	// lent read asks the cache but does not fill it).
	if want := 3 * len(tests); cache.hits != want {
		t.Fatalf("cache hits %d, want %d", cache.hits, want)
	}
	missing := blobstore.Sum([]byte("never stored"))
	if _, err := e.s.Blob(missing); err == nil {
		t.Fatal("Blob of an unknown hash succeeded")
	}
	if _, err := e.s.ChunkData(ChunkRef{Hash: missing, Size: 12}); err == nil {
		t.Fatal("ChunkData of an unknown hash succeeded")
	}
}

// A damaged inline payload, or one missing under an inline record, is an
// error on every way in, never other bytes.
func TestChunkDataDamage(t *testing.T) {
	data := randomBytes(31, 3000)
	h := blobstore.Sum(data)
	for _, legacy := range []bool{false, true} {
		for _, tt := range []struct {
			name   string
			damage func(tx *Tx, k []byte) error
		}{
			{"payload missing", func(tx *Tx, k []byte) error { return tx.b.Delete(k, nil) }},
			{"payload of other bytes", func(tx *Tx, k []byte) error {
				return tx.b.Set(k, append([]byte{byte(blobstore.CodecRaw)}, randomBytes(32, 3000)...), nil)
			}},
			{"payload cut short", func(tx *Tx, k []byte) error {
				return tx.b.Set(k, append([]byte{byte(blobstore.CodecRaw)}, data[:2999]...), nil)
			}},
			{"payload of an unknown codec", func(tx *Tx, k []byte) error {
				return tx.b.Set(k, append([]byte{0x7f}, data...), nil)
			}},
		} {
			name := tt.name
			if legacy {
				name += " (keyed by hash)"
			}
			t.Run(name, func(t *testing.T) {
				e := newEnv(t)
				f := e.mkfile("f").Ino
				e.setChunk(f, 0, inlineRef(data))
				if legacy {
					e.toLegacyPayload(h)
				}
				info, _, err := e.s.BlobInfo(h)
				if err != nil {
					t.Fatal(err)
				}
				if err := e.s.Update(false, func(tx *Tx) error { return tt.damage(tx, payloadKey(info.Payload, h)) }); err != nil {
					t.Fatal(err)
				}
				checkDamaged(t, e, f, h)
			})
		}
	}
}

// checkDamaged: every way in to f's first chunk, blob h, fails.
func checkDamaged(t *testing.T, e *env, f uint64, h blobstore.Hash) {
	t.Helper()
	c, ok, err := e.s.Chunk(f, 0)
	if err != nil || !ok {
		t.Fatalf("Chunk: %v, %v", ok, err)
	}
	if got, err := e.s.ChunkData(c); err == nil {
		t.Errorf("ChunkData gave %d bytes", len(got))
	}
	if got, _, err := e.s.ChunkDataLent(c); err == nil {
		t.Errorf("ChunkDataLent gave %d bytes", len(got))
	}
	if got, err := e.s.ChunkBlob(c); err == nil {
		t.Errorf("ChunkBlob gave %d bytes", len(got))
	}
	if got, err := e.s.Blob(h); err == nil {
		t.Errorf("Blob gave %d bytes", len(got))
	}
}

// hasPayload reports whether an inline payload of h is stored, under any
// id or its hash.
func (e *env) hasPayload(h blobstore.Hash) bool {
	e.t.Helper()
	found := e.has(inlineKey(h))
	e.scan([]byte{pfxPayload}, func(k, _ []byte) {
		if bytes.Equal(k[9:], h[:]) {
			found = true
		}
	})
	return found
}

// toLegacyPayload rewrites inline blob h as a store from before payload
// ids holds it: the payload under its hash, the record and the manifest
// entries without an id.
func (e *env) toLegacyPayload(h blobstore.Hash) {
	e.t.Helper()
	err := e.s.Update(false, func(tx *Tx) error {
		v, ok, err := get(tx.b, refKey(h))
		if err != nil || !ok {
			return fmt.Errorf("record of %s: %v, %v", h, ok, err)
		}
		rec, err := decodeBlobRecord(v)
		if err != nil || !rec.Inline || rec.Payload == 0 {
			return fmt.Errorf("record of %s: %+v, %v", h, rec, err)
		}
		p, ok, err := get(tx.b, payloadKey(rec.Payload, h))
		if err != nil || !ok {
			return fmt.Errorf("payload of %s: %v, %v", h, ok, err)
		}
		tx.b.Delete(payloadKey(rec.Payload, h), nil)
		tx.b.Set(inlineKey(h), p, nil)
		rec.Payload = 0
		tx.b.Set(refKey(h), rec.encode(), nil)
		var entries [][]byte
		if err := scanKeys(tx.b, []byte{pfxChunk}, func(k, v []byte) error {
			if c, err := decodeChunkRef(v); err == nil && c.Hash == h {
				entries = append(entries, bytes.Clone(k))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range entries {
			v, _, _ := get(tx.b, k)
			c, _ := decodeChunkRef(v)
			c.Payload = 0
			tx.b.Set(k, encodeChunkRef(c), nil)
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// TestLegacyPayloads: a payload keyed by hash (a store from before payload
// ids) is read, shared, checked, listed and freed as one keyed by id is,
// and a new blob beside it gets an id.
func TestLegacyPayloads(t *testing.T) {
	e := newEnv(t)
	old := randomBytes(41, 5000)
	h := blobstore.Sum(old)
	f := e.mkfile("f").Ino
	e.setChunk(f, 0, inlineRef(old))
	e.toLegacyPayload(h)
	if info, _, err := e.s.BlobInfo(h); err != nil || info.Payload != 0 || !e.has(inlineKey(h)) {
		t.Fatalf("legacy setup: %+v, %v", info, err)
	}
	e.fsck()
	g := e.mkfile("g").Ino
	e.setChunk(g, 0, inlineRef(old)) // shares the legacy payload
	fresh := randomBytes(42, 4000)
	e.setChunk(g, 1, inlineRef(fresh))
	for _, at := range []struct {
		ino, idx uint64
		want     []byte
	}{{f, 0, old}, {g, 0, old}, {g, 1, fresh}} {
		c, ok, err := e.s.Chunk(at.ino, at.idx)
		if err != nil || !ok {
			t.Fatalf("Chunk(%d, %d): %v, %v", at.ino, at.idx, ok, err)
		}
		if want := at.idx == 1; (c.Payload != 0) != want {
			t.Errorf("entry %d/%d names payload %d", at.ino, at.idx, c.Payload)
		}
		if got, err := e.s.ChunkBlob(c); err != nil || !bytes.Equal(got, at.want) {
			t.Errorf("ChunkBlob(%d, %d) = %d bytes, %v", at.ino, at.idx, len(got), err)
		}
	}
	e.fsck()
	var problems []Problem
	if err := e.s.Check(func(p Problem) { problems = append(problems, p) }); err != nil || len(problems) > 0 {
		t.Fatalf("Check: %v, %v", problems, err)
	}
	var ids []uint64
	if err := e.s.InlinePayloads(func(ph blobstore.Hash, id uint64, _ []byte) error {
		if (ph == h) != (id == 0) {
			t.Errorf("payload of %s has id %d", ph, id)
		}
		ids = append(ids, id)
		return nil
	}); err != nil || len(ids) != 2 || ids[0] != 0 {
		t.Fatalf("InlinePayloads: ids %v, %v", ids, err)
	}
	for _, n := range []string{"f", "g"} {
		if err := e.s.Unlink(RootIno, n); err != nil {
			t.Fatal(err)
		}
	}
	if e.hasPayload(h) || e.hasPayload(blobstore.Sum(fresh)) {
		t.Fatal("a payload outlived its last reference")
	}
	e.fsck()
}

func TestGC(t *testing.T) {
	e := newEnv(t)
	f := e.mkfile("f").Ino
	g := e.mkfile("g").Ino
	kept := e.fileRef(randomBytes(10, 5000))
	stray := e.fileRef(randomBytes(11, 6000))   // written, never committed
	dropped := e.fileRef(randomBytes(12, 7000)) // referenced, then unlinked
	pinned := e.fileRef(randomBytes(13, 8000))  // an in-flight commit's blob
	inline := inlineRef(randomBytes(14, 100))   // lives in pebble, not in the store
	e.setChunk(f, 0, kept)
	e.setChunk(f, 1, inline)
	e.setChunk(g, 0, dropped)
	checkErr(t, "unlink", e.s.Unlink(RootIno, "g"), 0)
	e.s.Pin(pinned.Hash)
	e.s.Pin(pinned.Hash)

	steps := []struct {
		name    string
		before  func()
		removed []*BlobRef
		present []*BlobRef
	}{
		{"first", nil, []*BlobRef{stray, dropped}, []*BlobRef{kept, pinned}},
		{"one of two pins left", func() { e.s.Unpin(pinned.Hash) }, nil, []*BlobRef{kept, pinned}},
		{"unpinned", func() { e.s.Unpin(pinned.Hash) }, []*BlobRef{pinned}, []*BlobRef{kept}},
		{"nothing left to collect", nil, nil, []*BlobRef{kept}},
	}
	for _, st := range steps {
		if st.before != nil {
			st.before()
		}
		// What gc frees is disk space, not payload bytes: the blob
		// files' blocks and those of the shard directories it empties.
		before := diskUsage(t, e.blobs.Dir())
		res, err := e.s.GC()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		wantFreed := before - diskUsage(t, e.blobs.Dir())
		if len(st.removed) > 0 && wantFreed <= 0 {
			t.Fatalf("%s: the blob store did not shrink (%d bytes)", st.name, wantFreed)
		}
		want := GCResult{Scanned: len(st.removed) + len(st.present), Removed: len(st.removed), BytesFreed: wantFreed}
		if res != want {
			t.Fatalf("%s: gc %+v, want %+v", st.name, res, want)
		}
		for _, r := range st.removed {
			if ok, _ := e.blobs.Has(r.Hash); ok {
				t.Fatalf("%s: blob %s not collected", st.name, r.Hash)
			}
		}
		for _, r := range st.present {
			if ok, _ := e.blobs.Has(r.Hash); !ok {
				t.Fatalf("%s: blob %s collected", st.name, r.Hash)
			}
		}
	}
	for _, r := range []*BlobRef{kept, inline} {
		if _, err := e.s.Blob(r.Hash); err != nil {
			t.Fatalf("referenced blob unreadable after gc: %v", err)
		}
	}
	e.fsck()
}

// DropChunks and TruncateChunks drop exactly the entries in their range,
// by point reads (narrow ranges) or a bounded scan (wide ones).
func TestDropChunks(t *testing.T) {
	cases := []struct {
		name     string
		have     []uint64
		from, to uint64 // to 0: TruncateChunks(from)
		want     []uint64
	}{
		{"point range", []uint64{0, 1, 2, 3}, 2, 4, []uint64{0, 1}},
		{"point range, holes", []uint64{0, 3}, 1, 4, []uint64{0}},
		{"empty range", []uint64{0, 1}, 2, 2, []uint64{0, 1}},
		{"wide range scanned", []uint64{0, 5, 100, 200}, 1, 1000, []uint64{0}},
		{"wide range keeps what is past it", []uint64{0, 100, 2000}, 1, 1000, []uint64{0, 2000}},
		{"truncate from middle", []uint64{0, 1, 7, 9}, 7, 0, []uint64{0, 1}},
		{"truncate all", []uint64{0, 1, 7}, 0, 0, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			f := e.mkfile("f").Ino
			for _, i := range c.have {
				e.setChunk(f, i, inlineRef([]byte("chunk "+fmtU(i))))
			}
			err := e.s.Update(false, func(tx *Tx) error {
				if c.to == 0 {
					return tx.TruncateChunks(f, c.from)
				}
				return tx.DropChunks(f, c.from, c.to)
			})
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			if err := e.s.Chunks(f, func(i uint64, _ ChunkRef) error { got = append(got, i); return nil }); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("chunks left %v, want %v", got, c.want)
			}
		})
	}
}

// TestChunksOfSize: the entries below a size's chunk count, with point
// reads for a small file and a bounded scan for a large one, holes left
// out; an entry past the size is not listed.
func TestChunksOfSize(t *testing.T) {
	cases := []struct {
		name string
		have []uint64
		size uint64
		want []uint64
	}{
		{"empty", nil, 0, nil},
		{"one chunk", []uint64{0}, 10, []uint64{0}},
		{"point reads, a hole", []uint64{0, 2, 3}, 4 * ChunkSize, []uint64{0, 2, 3}},
		{"point reads, entry past the size", []uint64{0, 1, 2}, ChunkSize + 1, []uint64{0, 1}},
		{"scan", []uint64{0, 1, 5, 9}, 10 * ChunkSize, []uint64{0, 1, 5, 9}},
		{"scan, entry past the size", []uint64{0, 6, 9}, 9 * ChunkSize, []uint64{0, 6}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			f := e.mkfile("f").Ino
			for _, i := range c.have {
				e.setChunk(f, i, inlineRef([]byte("chunk "+fmtU(i))))
			}
			var got []uint64
			err := e.s.ChunksOfSize(f, c.size, func(i uint64, r ChunkRef) error {
				if r.Hash != blobstore.Sum([]byte("chunk "+fmtU(i))) {
					t.Errorf("chunk %d: wrong ref", i)
				}
				got = append(got, i)
				return nil
			})
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %v (%v), want %v", got, err, c.want)
			}
		})
	}
}

// TestRefBlobsWithPayload: every referenced blob once, in hash order, an
// inline one with the payload that decodes to it, a blob file's with none,
// and an inline blob whose payload is gone with none (DecodeInline then
// reports it missing).
func TestRefBlobsWithPayload(t *testing.T) {
	e := newEnv(t)
	f := e.mkfile("f").Ino
	want := map[blobstore.Hash][]byte{}
	for i := range 40 {
		data := []byte("inline chunk " + fmtU(uint64(i)))
		e.setChunk(f, uint64(i), inlineRef(data))
		want[blobstore.Sum(data)] = data
	}
	big := randomBytes(7, 300<<10)
	e.setChunk(f, 40, e.fileRef(big))
	gone := blobstore.Sum([]byte("inline chunk 3"))
	info, _, err := e.s.BlobInfo(gone)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.s.db.Delete(payloadKey(info.Payload, gone), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	// One keyed by hash, as a store from before payload ids keeps it.
	e.toLegacyPayload(blobstore.Sum([]byte("inline chunk 5")))
	var order []blobstore.Hash
	err = e.s.RefBlobsWithPayload(func(h blobstore.Hash, info BlobInfo, payload []byte) error {
		order = append(order, h)
		data, err := DecodeInline(h, info, payload)
		switch {
		case h == blobstore.Sum(big):
			if info.Inline || payload != nil {
				t.Errorf("blob file: inline %v, payload %d bytes", info.Inline, len(payload))
			}
		case h == gone:
			if payload != nil || err == nil {
				t.Errorf("missing payload: %d bytes, %v", len(payload), err)
			}
		case err != nil || string(data) != string(want[h]):
			t.Errorf("%s: %q, %v", h, data, err)
		}
		return nil
	})
	seen := map[blobstore.Hash]bool{}
	for _, h := range order {
		seen[h] = true
	}
	if err != nil || len(order) != 41 || len(seen) != 41 {
		t.Fatalf("%d blobs, %d distinct (%v)", len(order), len(seen), err)
	}
}

// TestSetChunkPastEnd: setting entries past a file's committed size
// without reading the old entry leaves the same keys and refcounts as
// SetChunk, and e.fsck (refcounts = entries) holds.
func TestSetChunkPastEnd(t *testing.T) {
	shared := inlineRef([]byte("shared chunk"))
	cases := []struct {
		name string
		refs []*BlobRef // entry i of a new file
	}{
		{"one chunk", []*BlobRef{inlineRef([]byte("a"))}},
		{"a blob twice", []*BlobRef{shared, shared}},
		{"with a hole", []*BlobRef{inlineRef([]byte("b")), nil, inlineRef([]byte("c"))}},
	}
	dump := func(e *env) []string {
		var kv []string
		e.scan(nil, func(k, v []byte) {
			if k[0] != pfxInode { // inode records carry the time of the test
				kv = append(kv, string(k)+"="+string(v))
			}
		})
		return kv
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got [2][]string
			for i, past := range []bool{false, true} {
				e := newEnv(t)
				e.s.nextIno = 100 // the same inode numbers in both stores
				f := e.mkfile("f").Ino
				other := e.mkfile("g").Ino
				e.setChunk(other, 0, shared) // a blob already referenced
				err := e.s.Update(false, func(tx *Tx) error {
					for idx, ref := range c.refs {
						set := tx.SetChunk
						if past {
							set = tx.SetChunkPastEnd
						}
						if err := set(f, uint64(idx), ref); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				e.fsck()
				got[i] = dump(e)
			}
			if !slices.Equal(got[0], got[1]) {
				t.Fatalf("stores differ:\nSetChunk        %q\nSetChunkPastEnd %q", got[0], got[1])
			}
		})
	}
}

// TestReleaseOrphansReadAhead: freeing orphans with their records read
// ahead in inode order leaves the same store as freeing each with
// freeInode (ReleaseOrphan), for files with inline and shared blobs,
// holes, a sparse tail, xattrs, a symlink, an inode that is no longer an
// orphan and a repeated inode; fsck holds after both.
func TestReleaseOrphansReadAhead(t *testing.T) {
	shared := inlineRef([]byte("shared by two orphans"))
	build := func(e *env) (orphans []uint64, keep uint64) {
		e.t.Helper()
		e.s.nextIno = 100 // the same inode numbers in both stores
		a := e.mkfile("a").Ino
		e.setChunk(a, 0, inlineRef([]byte("a0")))
		e.setChunk(a, 1, shared)
		b := e.mkfile("b").Ino
		e.setChunk(b, 0, shared)
		e.setChunk(b, 3, inlineRef([]byte("b3 after a hole")))
		c := e.mkfile("c").Ino // sparse: one entry far out
		e.setChunk(c, 5000, e.fileRef(randomBytes(7, 1000)))
		d := e.mkfile("d").Ino // empty, with xattrs
		for _, n := range []string{"user.one", "user.two"} {
			if err := e.s.SetXattr(d, n, []byte("v"), 0); err != nil {
				e.t.Fatal(err)
			}
		}
		sl, err := e.s.Create(RootIno, "l", NewNode{Mode: syscall.S_IFLNK | 0o777, Target: "target"})
		if err != nil {
			e.t.Fatal(err)
		}
		k := e.mkfile("k").Ino // still named: not an orphan
		e.setChunk(k, 0, shared)
		e.s.SetOpenCheck(func(uint64) bool { return true })
		for _, n := range []string{"a", "b", "c", "d", "l"} {
			if err := e.s.Unlink(RootIno, n); err != nil {
				e.t.Fatal(err)
			}
		}
		e.s.SetOpenCheck(func(uint64) bool { return false })
		return []uint64{d, a, sl.Ino, b, c, a, k}, k
	}
	dump := func(e *env) []string {
		var kv []string
		e.scan(nil, func(k, v []byte) {
			if k[0] == pfxInode { // records carry the time of the test
				kv = append(kv, string(k))
			}
		})
		e.scan(nil, func(k, v []byte) {
			if k[0] != pfxInode {
				kv = append(kv, string(k)+"="+string(v))
			}
		})
		return kv
	}
	var got [2][]string
	for i := range got {
		e := newEnv(t)
		orphans, keep := build(e)
		if i == 0 {
			for _, ino := range orphans {
				if err := e.s.ReleaseOrphan(ino); err != nil {
					t.Fatal(err)
				}
			}
		} else if err := e.s.ReleaseOrphans(orphans); err != nil {
			t.Fatal(err)
		}
		if _, err := e.s.GetAttr(keep); err != nil {
			t.Fatalf("the inode that is no longer an orphan: %v", err)
		}
		for _, ino := range orphans {
			if ino != keep && e.has(inodeKey(ino)) {
				t.Fatalf("orphan %d not freed", ino)
			}
		}
		e.fsck()
		got[i] = dump(e)
	}
	if !slices.Equal(got[0], got[1]) {
		t.Fatalf("stores differ:\nfreeInode each %q\nread ahead     %q", got[0], got[1])
	}
}

// TestPayloadIDsAfterPowerLoss: the next payload id is committed with the
// payloads that use it, so after a power loss (and after a clean reopen)
// no id a surviving payload holds is handed out again, and every payload
// reads back.
func TestPayloadIDsAfterPowerLoss(t *testing.T) {
	mem, open := strictStore(t)
	s := open()
	put := func(sync bool, name string, data []byte) {
		t.Helper()
		a, err := s.Create(RootIno, name, NewNode{Mode: syscall.S_IFREG | 0o644})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Update(sync, func(tx *Tx) error { return setChunkSized(tx, a.Ino, 0, inlineRef(data)) }); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string][]byte{}
	for i := range 5 {
		name := fmt.Sprintf("synced%d", i)
		want[name] = randomBytes(uint64(100+i), 3000)
		put(true, name, want[name])
	}
	for i := range 5 {
		put(false, fmt.Sprintf("lost%d", i), randomBytes(uint64(200+i), 3000)) // never synced
	}
	s = powerLoss(mem, s, open)
	for i := range 3 {
		name := fmt.Sprintf("after%d", i)
		want[name] = randomBytes(uint64(300+i), 3000)
		put(true, name, want[name])
	}
	check := func(when string) {
		t.Helper()
		ids := map[uint64]bool{}
		if err := s.InlinePayloads(func(_ blobstore.Hash, id uint64, _ []byte) error {
			if id == 0 || ids[id] || id >= s.nextPayload {
				t.Errorf("%s: payload id %d (next %d, seen %v)", when, id, s.nextPayload, ids[id])
			}
			ids[id] = true
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for name, data := range want {
			a, err := s.Lookup(RootIno, name)
			if err != nil {
				t.Fatalf("%s: %s: %v", when, name, err)
			}
			c, ok, err := s.Chunk(a.Ino, 0)
			if err != nil || !ok {
				t.Fatalf("%s: %s: chunk %v, %v", when, name, ok, err)
			}
			if got, err := s.ChunkBlob(c); err != nil || !bytes.Equal(got, data) {
				t.Errorf("%s: %s reads %d bytes, %v", when, name, len(got), err)
			}
		}
		var problems []Problem
		if err := s.Check(func(p Problem) { problems = append(problems, p) }); err != nil || len(problems) > 0 {
			t.Fatalf("%s: Check: %v, %v", when, problems, err)
		}
	}
	check("after the power loss")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open()
	defer s.Close()
	put(true, "reopened", randomBytes(400, 3000))
	want["reopened"] = randomBytes(400, 3000)
	check("after a reopen")
}
