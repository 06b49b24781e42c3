package meta

import (
	"errors"
	"strconv"
	"syscall"
	"testing"
)

func BenchmarkLookup(b *testing.B) {
	e := newEnv(b)
	names := fillDir(b, e.s, RootIno, 10_000)
	for i := 0; b.Loop(); i++ {
		if _, err := e.s.Lookup(RootIno, names[i*7919%len(names)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreate is one transaction per create, as a FUSE create is.
func BenchmarkCreate(b *testing.B) {
	e := newEnv(b)
	node := NewNode{Mode: syscall.S_IFREG | 0o644}
	for i := 0; b.Loop(); i++ {
		if _, err := e.s.Create(RootIno, "f"+fmtU(uint64(i)), node); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadDir10k(b *testing.B) {
	e := newEnv(b)
	d := e.mkdir("d")
	fillDir(b, e.s, d.Ino, 10_000)
	for b.Loop() {
		n := 0
		if err := e.s.ReadDir(d.Ino, "", func(DirEntry) bool { n++; return true }); err != nil {
			b.Fatal(err)
		}
		if n != 10_000 {
			b.Fatalf("read %d entries", n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10_000, "ns/entry")
}

// BenchmarkRewriteChunk is fsx's pattern: one chunk rewritten and the file
// truncated after each write, one commit per step. "scan" finds the
// entries to drop with an iterator from the start of the file's manifest
// (how commits did it), "point" with DropChunks' point reads; the scan
// steps over every older version of chunk 0 in the memtable.
func BenchmarkRewriteChunk(b *testing.B) {
	for _, mode := range []string{"scan", "point"} {
		b.Run(mode, func(b *testing.B) {
			e := newEnv(b)
			f := e.mkfile("f").Ino
			refs := make([]*BlobRef, 64)
			for i := range refs {
				refs[i] = inlineRef(randomBytes(uint64(i), 512))
			}
			for i := 0; b.Loop(); i++ {
				err := e.s.Update(false, func(tx *Tx) error {
					if mode == "scan" {
						if err := scanChunks(tx.b, f, func(uint64, ChunkRef) error { return nil }); err != nil {
							return err
						}
					} else if err := tx.DropChunks(f, 1, 1); err != nil {
						return err
					}
					return tx.SetChunk(f, 0, refs[i%len(refs)])
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCommitContent is a content commit (a chunk and the new size) of
// a file four levels down, the path a session file takes; with the trash
// on, the counters look up whether its directory is in the trash tree.
func BenchmarkCommitContent(b *testing.B) {
	for _, trash := range []bool{false, true} {
		b.Run("trash="+strconv.FormatBool(trash), func(b *testing.B) {
			e := newEnv(b)
			if trash {
				e.s.SetTrash(DefaultTrashOptions)
				if _, err := e.s.EnsureTrashRoot(); err != nil {
					b.Fatal(err)
				}
			}
			e.mkdir("sessions")
			e.mkdir("sessions/s1")
			e.mkdir("sessions/s1/attachments")
			f := e.mkfile("sessions/s1/attachments/a.json").Ino
			refs := make([]*BlobRef, 64)
			for i := range refs {
				refs[i] = inlineRef(randomBytes(uint64(i), 512+i))
			}
			for i := 0; b.Loop(); i++ {
				err := e.s.Update(false, func(tx *Tx) error {
					a, err := tx.GetAttr(f)
					if err != nil {
						return err
					}
					r := refs[i%len(refs)]
					if err := tx.SetChunk(f, 0, r); err != nil {
						return err
					}
					a.Size = uint64(r.Size)
					return tx.PutAttr(&a)
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSetAttr is tar's three setattrs of an extracted file (mtime,
// owner, mode), one transaction each, as FUSE sends them.
func BenchmarkSetAttr(b *testing.B) {
	e := newEnv(b)
	e.mkdir("d")
	files := make([]uint64, 256)
	for i := range files {
		files[i] = e.mkfile("d/f" + fmtU(uint64(i))).Ino
	}
	mode, uid := uint32(0o644), uint32(0)
	for i := 0; b.Loop(); i++ {
		ino := files[i%len(files)]
		mtime := int64(i)
		for _, in := range []SetAttrIn{{Mtime: &mtime}, {Uid: &uid, Gid: &uid}, {Mode: &mode}} {
			if _, err := e.s.SetAttr(ino, in); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkCreateUnlink creates a file in a directory and unlinks it, one
// transaction each (rm of a just-written file; nothing holds it open).
func BenchmarkCreateUnlink(b *testing.B) {
	e := newEnv(b)
	d := e.mkdir("d")
	node := NewNode{Mode: syscall.S_IFREG | 0o644}
	for i := 0; b.Loop(); i++ {
		name := "f" + fmtU(uint64(i))
		if _, err := e.s.Create(d.Ino, name, node); err != nil {
			b.Fatal(err)
		}
		if err := e.s.Unlink(d.Ino, name); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadSmallFile reads 10,000 inline 4 KiB files in a scattered
// order, from tables (flushed, not the memtable), as a cold tar -c reads a
// tree: the manifest entry, then the content. "hash" looks the content up
// by its hash (the refcount record, then the payload: how reads did it),
// "entry" from the entry (the payload alone, ChunkData). The block cache
// is warm here: the figure is the CPU of the point reads, not the disk's.
func BenchmarkReadSmallFile(b *testing.B) {
	for _, mode := range []string{"hash", "entry"} {
		b.Run(mode, func(b *testing.B) {
			e := newEnv(b)
			const n = 10_000
			inos := make([]uint64, n)
			for i := range inos {
				inos[i] = e.mkfile("f" + fmtU(uint64(i))).Ino
				e.setChunk(inos[i], 0, inlineRef(randomBytes(uint64(i), 4096)))
			}
			if err := e.s.db.Flush(); err != nil {
				b.Fatal(err)
			}
			for i := 0; b.Loop(); i++ {
				c, ok, err := e.s.Chunk(inos[i*7919%n], 0)
				if err != nil || !ok {
					b.Fatal(ok, err)
				}
				var d []byte
				if mode == "hash" {
					d, err = e.s.Blob(c.Hash)
				} else {
					d, err = e.s.ChunkData(c)
				}
				if err != nil || len(d) != 4096 {
					b.Fatal(len(d), err)
				}
			}
		})
	}
}

// BenchmarkFileLifecycle is the namespace side of a small file's life as
// the kernel asks for it: LOOKUP of the new name (absent), CREATE, the
// GETXATTR of security.capability before the first write, LOOKUP
// of the name again, UNLINK. Every step but the create reads a name or an
// attribute that the caches of entries and of inodes with attributes
// answer.
func BenchmarkFileLifecycle(b *testing.B) {
	e := newEnv(b)
	d := e.mkdir("d")
	node := NewNode{Mode: syscall.S_IFREG | 0o644}
	for i := 0; b.Loop(); i++ {
		name := "f" + fmtU(uint64(i))
		if _, err := e.s.Lookup(d.Ino, name); !isENOENT(err) {
			b.Fatalf("lookup of a new name: %v", err)
		}
		a, err := e.s.Create(d.Ino, name, node)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.s.GetXattr(a.Ino, "security.capability"); !isENODATA(err) {
			b.Fatalf("getxattr: %v", err)
		}
		if _, err := e.s.Lookup(d.Ino, name); err != nil {
			b.Fatal(err)
		}
		if err := e.s.Unlink(d.Ino, name); err != nil {
			b.Fatal(err)
		}
	}
}

func isENOENT(err error) bool  { return errors.Is(err, syscall.ENOENT) }
func isENODATA(err error) bool { return errors.Is(err, syscall.ENODATA) }
