package meta

import (
	"encoding/binary"
	"slices"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/taskerfs/taskerfs/blobstore"
)

// TestCheckFindsDamage breaks one invariant of a small tree at a time,
// writing the keys directly, and asks Check to name it (and a clean tree
// to pass). The tree: directories, files with inline and file blobs, a
// shared blob, a hard link, an empty file and an open unlinked file.
func TestCheckFindsDamage(t *testing.T) {
	type tree struct {
		dir, sub, file, linked, empty, orphan Attr
		inline, shared                        blobstore.Hash
	}
	build := func(e *env) *tree {
		var tr tree
		tr.dir = e.mkdir("d")
		tr.sub = e.mkdir("d/sub")
		tr.file = e.mkfile("d/sub/f")
		in := inlineRef([]byte(`{"id": "one"}`))
		tr.inline = in.Hash
		e.setChunk(tr.file.Ino, 0, in)
		shared := e.fileRef(randomBytes(3, 5000))
		tr.shared = shared.Hash
		e.setChunk(tr.file.Ino, 1, shared)
		tr.linked = e.mkfile("d/l")
		e.setChunk(tr.linked.Ino, 0, shared)
		if _, err := e.s.Link(tr.linked.Ino, RootIno, "l2"); err != nil {
			e.t.Fatal(err)
		}
		tr.empty = e.mkfile("empty")
		tr.orphan = e.mkfile("gone")
		e.setChunk(tr.orphan.Ino, 0, inlineRef([]byte("still open")))
		e.s.SetOpenCheck(func(ino uint64) bool { return ino == tr.orphan.Ino })
		if err := e.s.Unlink(RootIno, "gone"); err != nil {
			e.t.Fatal(err)
		}
		e.s.SetOpenCheck(func(uint64) bool { return false })
		tr.file, tr.linked, tr.sub = e.attr("d/sub/f"), e.attr("d/l"), e.attr("d/sub")
		return &tr
	}
	raw := func(e *env, fn func(b *pebble.Batch)) {
		e.t.Helper()
		b := e.s.db.NewBatch()
		fn(b)
		if err := b.Commit(pebble.Sync); err != nil {
			e.t.Fatal(err)
		}
	}
	putAttr := func(b *pebble.Batch, a Attr) { b.Set(inodeKey(a.Ino), a.encode(), nil) }
	tests := []struct {
		name   string
		damage func(e *env, tr *tree)
		want   []ProblemKind // each must be reported
	}{
		{"clean", func(*env, *tree) {}, nil},
		{"entry to a missing inode", func(e *env, tr *tree) {
			raw(e, func(b *pebble.Batch) { b.Delete(inodeKey(tr.empty.Ino), nil) })
		}, []ProblemKind{ProblemEntry}},
		{"entry of the wrong type", func(e *env, tr *tree) {
			raw(e, func(b *pebble.Batch) {
				v := binary.BigEndian.AppendUint64(nil, tr.empty.Ino)
				b.Set(direntKey(RootIno, "empty"), append(v, byte(syscall.S_IFLNK>>12)), nil)
			})
		}, []ProblemKind{ProblemEntry}},
		{"malformed entry", func(e *env, tr *tree) {
			raw(e, func(b *pebble.Batch) { b.Set(direntKey(RootIno, "bad"), []byte{1, 2}, nil) })
		}, []ProblemKind{ProblemEntry}},
		{"directory recording another name", func(e *env, tr *tree) {
			a := tr.sub
			a.Name = "elsewhere"
			raw(e, func(b *pebble.Batch) { putAttr(b, a) })
		}, []ProblemKind{ProblemEntry}},
		{"directory reached twice", func(e *env, tr *tree) {
			raw(e, func(b *pebble.Batch) {
				v := binary.BigEndian.AppendUint64(nil, tr.sub.Ino)
				b.Set(direntKey(RootIno, "again"), append(v, byte(syscall.S_IFDIR>>12)), nil)
			})
		}, []ProblemKind{ProblemEntry}},
		{"wrong link count", func(e *env, tr *tree) {
			a := tr.linked
			a.Nlink = 3
			raw(e, func(b *pebble.Batch) { putAttr(b, a) })
		}, []ProblemKind{ProblemNlink}},
		{"orphan record of a linked file", func(e *env, tr *tree) {
			raw(e, func(b *pebble.Batch) { b.Set(orphanKey(tr.file.Ino), nil, nil) })
		}, []ProblemKind{ProblemOrphan, ProblemRecord}},
		{"orphan without its record", func(e *env, tr *tree) {
			raw(e, func(b *pebble.Batch) { b.Delete(orphanKey(tr.orphan.Ino), nil) })
		}, []ProblemKind{ProblemOrphan}},
		{"manifest entry of a missing inode", func(e *env, tr *tree) {
			raw(e, func(b *pebble.Batch) {
				v, _, _ := get(e.s.db, chunkKey(tr.file.Ino, 0))
				b.Set(chunkKey(999, 0), v, nil)
				b.Set(userKey(tr.inline, 999, 0), nil, nil)
			})
		}, []ProblemKind{ProblemManifest, ProblemRefcount}},
		{"manifest entry past the size", func(e *env, tr *tree) {
			a := tr.file
			a.Size = 10
			raw(e, func(b *pebble.Batch) { putAttr(b, a) })
		}, []ProblemKind{ProblemManifest}},
		{"malformed manifest entry", func(e *env, tr *tree) {
			raw(e, func(b *pebble.Batch) { b.Set(chunkKey(tr.empty.Ino, 0), []byte{1}, nil) })
		}, []ProblemKind{ProblemManifest}},
		{"missing reverse entry", func(e *env, tr *tree) {
			raw(e, func(b *pebble.Batch) { b.Delete(userKey(tr.shared, tr.linked.Ino, 0), nil) })
		}, []ProblemKind{ProblemUser}},
		{"reverse entry without its manifest entry", func(e *env, tr *tree) {
			raw(e, func(b *pebble.Batch) { b.Set(userKey(tr.shared, tr.empty.Ino, 0), nil, nil) })
		}, []ProblemKind{ProblemUser}},
		{"reverse entry naming another blob", func(e *env, tr *tree) {
			raw(e, func(b *pebble.Batch) {
				b.Delete(userKey(tr.shared, tr.file.Ino, 1), nil)
				b.Set(userKey(tr.inline, tr.file.Ino, 1), nil, nil)
			})
		}, []ProblemKind{ProblemUser}},
		{"wrong refcount", func(e *env, tr *tree) {
			raw(e, func(b *pebble.Batch) {
				v, _, _ := get(e.s.db, refKey(tr.shared))
				rec, _ := decodeBlobRecord(v)
				rec.Refs++
				b.Set(refKey(tr.shared), rec.encode(), nil)
			})
		}, []ProblemKind{ProblemRefcount}},
		{"referenced blob without a refcount", func(e *env, tr *tree) {
			raw(e, func(b *pebble.Batch) { b.Delete(refKey(tr.shared), nil) })
		}, []ProblemKind{ProblemRefcount}},
		{"inline payload missing", func(e *env, tr *tree) {
			info, _, _ := e.s.BlobInfo(tr.inline)
			raw(e, func(b *pebble.Batch) { b.Delete(payloadKey(info.Payload, tr.inline), nil) })
		}, []ProblemKind{ProblemInline}},
		{"inline payload keyed by hash missing", func(e *env, tr *tree) {
			e.toLegacyPayload(tr.inline)
			raw(e, func(b *pebble.Batch) { b.Delete(inlineKey(tr.inline), nil) })
		}, []ProblemKind{ProblemInline}},
		{"inline payload under another id", func(e *env, tr *tree) {
			info, _, _ := e.s.BlobInfo(tr.inline)
			raw(e, func(b *pebble.Batch) {
				v, _, _ := get(e.s.db, payloadKey(info.Payload, tr.inline))
				b.Delete(payloadKey(info.Payload, tr.inline), nil)
				b.Set(payloadKey(info.Payload+1000, tr.inline), v, nil)
			})
		}, []ProblemKind{ProblemInline}},
		{"manifest entry naming another payload id", func(e *env, tr *tree) {
			raw(e, func(b *pebble.Batch) {
				v, _, _ := get(e.s.db, chunkKey(tr.file.Ino, 0))
				c, _ := decodeChunkRef(v)
				c.Payload += 7
				b.Set(chunkKey(tr.file.Ino, 0), encodeChunkRef(c), nil)
			})
		}, []ProblemKind{ProblemManifest}},

		{"inline payload of a blob kept in a file", func(e *env, tr *tree) {
			raw(e, func(b *pebble.Batch) { b.Set(inlineKey(tr.shared), []byte{0, 'x'}, nil) })
		}, []ProblemKind{ProblemInline}},
		{"inline payload of an unreferenced blob", func(e *env, tr *tree) {
			h := blobstore.Sum([]byte("nobody"))
			raw(e, func(b *pebble.Batch) { b.Set(inlineKey(h), []byte{0, 'x'}, nil) })
		}, []ProblemKind{ProblemInline}},
		{"xattr of a missing inode", func(e *env, tr *tree) {
			raw(e, func(b *pebble.Batch) { b.Set(xattrKey(12345, "user.x"), []byte("v"), nil) })
		}, []ProblemKind{ProblemRecord}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			tr := build(e)
			tt.damage(e, tr)
			var got []Problem
			if err := e.s.Check(func(p Problem) { got = append(got, p) }); err != nil {
				t.Fatal(err)
			}
			kinds := map[ProblemKind]bool{}
			for _, p := range got {
				kinds[p.Kind] = true
			}
			for _, k := range tt.want {
				if !kinds[k] {
					t.Errorf("no %q problem among %v", k, got)
				}
			}
			if len(tt.want) == 0 && len(got) > 0 {
				t.Errorf("a clean tree: %v", got)
			}
			for _, p := range got {
				if p.Kind != ProblemCounters && !slices.Contains(tt.want, p.Kind) && len(tt.want) > 0 {
					t.Logf("also: %v", p)
				}
			}
		})
	}
}

// TestRepairPayloadIDs: RepairRefcounts gives manifest entries that name
// another payload id their blob's, and rebuilds a lost refcount record of
// an inline blob from its payload keyed by id; Check is clean after.
func TestRepairPayloadIDs(t *testing.T) {
	e := newEnv(t)
	f := e.mkfile("f")
	g := e.mkfile("g")
	a, b := inlineRef([]byte("shared inline content")), inlineRef([]byte("raw content of g"))
	b.Codec, b.Inline, b.Stored = blobstore.CodecRaw, []byte("raw content of g"), int64(len("raw content of g"))+1
	e.setChunk(f.Ino, 0, a)
	e.setChunk(g.Ino, 0, a)
	e.setChunk(g.Ino, 1, b)
	bt := e.s.db.NewBatch()
	v, _, _ := get(e.s.db, chunkKey(g.Ino, 0))
	c, _ := decodeChunkRef(v)
	c.Payload += 5
	bt.Set(chunkKey(g.Ino, 0), encodeChunkRef(c), nil)
	bt.Delete(refKey(b.Hash), nil) // b's payload stays, keyed by id
	if err := bt.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	var before []Problem
	if err := e.s.Check(func(p Problem) { before = append(before, p) }); err != nil || len(before) == 0 {
		t.Fatalf("Check before repair: %v, %v", before, err)
	}
	res, err := e.s.RepairRefcounts()
	if err != nil {
		t.Fatal(err)
	}
	if res.PayloadIDs != 1 || res.Created != 1 || res.Unrecoverable != 0 {
		t.Errorf("repair: %+v", res)
	}
	var after []Problem
	if err := e.s.Check(func(p Problem) { after = append(after, p) }); err != nil {
		t.Fatal(err)
	}
	for _, p := range after {
		if p.Kind != ProblemCounters {
			t.Errorf("after repair: %v", p)
		}
	}
	for _, at := range []struct{ ino, idx uint64 }{{f.Ino, 0}, {g.Ino, 0}, {g.Ino, 1}} {
		c, ok, err := e.s.Chunk(at.ino, at.idx)
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		if _, err := e.s.ChunkData(c); err != nil {
			t.Errorf("%d/%d after repair: %v", at.ino, at.idx, err)
		}
	}
}
