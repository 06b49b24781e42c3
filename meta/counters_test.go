package meta

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/taskerfs/taskerfs/blobstore"
)

// checkCounters fails unless the in-memory counters, the persisted record
// and a full scan agree.
func (e *env) checkCounters(what string) {
	e.t.Helper()
	want, err := e.s.ScanCounters()
	if err != nil {
		e.t.Fatal(err)
	}
	if got := e.s.Counters(); got != want {
		e.t.Fatalf("after %s: counters %+v, scan %+v", what, got, want)
	}
	stored, ok, err := e.s.StoredCounters()
	if err != nil || !ok || stored != want {
		e.t.Fatalf("after %s: stored counters %+v (ok %v, %v), scan %+v", what, stored, ok, err, want)
	}
}

// counterOps are the namespace and content changes the random test mixes.
var counterOps = []string{"mkfile", "mkdir", "write-file", "write-inline", "truncate", "link", "unlink",
	"rename-over", "rmdir", "open", "release", "expire-trash", "gc", "reencode", "restore"}

// trashEntries lists every entry (files and directories) below the trash
// root, as (parent, name).
func (e *env) trashEntries() [][2]any {
	e.t.Helper()
	root, ok, err := e.s.TrashRoot()
	if err != nil {
		e.t.Fatal(err)
	}
	var out [][2]any
	if !ok {
		return out
	}
	var walk func(dir uint64, depth int)
	walk = func(dir uint64, depth int) {
		var ents []DirEntry
		e.s.ReadDir(dir, "", func(d DirEntry) bool { ents = append(ents, d); return true })
		for _, d := range ents {
			if depth > 0 { // not the hour directories themselves
				out = append(out, [2]any{dir, d.Name})
			}
			if d.Mode == syscall.S_IFDIR {
				walk(d.Ino, depth+1)
			}
		}
	}
	walk(root, 0)
	return out
}

func TestCountersFollowRandomOps(t *testing.T) {
	tests := []struct {
		name  string
		seed  uint64
		trash bool
		ops   int
	}{
		{"no trash", 1, false, 300},
		{"trash", 2, true, 300},
		{"trash other seed", 3, true, 300},
		{"no trash other seed", 4, false, 300},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if tc.trash {
				e.s.SetTrash(TrashOptions{Retention: time.Hour, Interval: time.Nanosecond})
			}
			open := map[uint64]bool{}
			e.s.SetOpenCheck(func(ino uint64) bool { return open[ino] })
			r := rand.New(rand.NewPCG(tc.seed, 0))
			dirs := []string{"", "d0", "d1"}
			e.mkdir("d0")
			e.mkdir("d1")
			e.checkCounters("setup")
			restored, trashed := 0, 0
			path := func() string {
				return fmt.Sprintf("%s/f%d", dirs[1+r.IntN(2)], r.IntN(5))
			}
			for i := 0; i < tc.ops; i++ {
				op := counterOps[r.IntN(len(counterOps))]
				p := path()
				pIno, name := e.split(p)
				ino, lerr := e.lookupPath(p)
				var err error
				switch op {
				case "mkfile":
					_, err = e.s.Create(pIno, name, NewNode{Mode: syscall.S_IFREG | 0o644})
				case "mkdir":
					_, err = e.s.Create(pIno, fmt.Sprintf("sub%d", r.IntN(3)), NewNode{Mode: syscall.S_IFDIR | 0o755})
				case "write-file", "write-inline":
					if lerr != nil {
						continue
					}
					n := 1 + r.IntN(3)
					data := randomBytes(uint64(r.IntN(6)), 1000)
					ref := inlineRef(data)
					if op == "write-file" {
						ref = e.fileRef(data)
					}
					err = e.s.Update(false, func(tx *Tx) error {
						a, err := tx.GetAttr(ino)
						if err != nil || !a.IsRegular() {
							return err
						}
						// As the write-back commit does: no entry past the new size.
						if err := tx.TruncateChunks(ino, uint64(n)); err != nil {
							return err
						}
						for j := 0; j < n; j++ {
							if err := tx.SetChunk(ino, uint64(j), ref); err != nil {
								return err
							}
						}
						a.Size = uint64(n-1)*ChunkSize + uint64(len(data))
						return tx.PutAttr(&a)
					})
				case "truncate":
					if lerr != nil {
						continue
					}
					err = e.s.Update(false, func(tx *Tx) error {
						a, err := tx.GetAttr(ino)
						if err != nil || !a.IsRegular() {
							return err
						}
						if err := tx.TrashReplaced(ino, 0); err != nil {
							return err
						}
						if err := tx.TruncateChunks(ino, 0); err != nil {
							return err
						}
						a.Size = 0
						return tx.PutAttr(&a)
					})
				case "link":
					if lerr != nil {
						continue
					}
					q := path()
					qp, qn := e.split(q)
					_, err = e.s.Link(ino, qp, qn)
				case "unlink":
					err = e.s.Unlink(pIno, name)
				case "rename-over":
					q := path()
					qp, qn := e.split(q)
					err = e.s.Rename(pIno, name, qp, qn, 0)
				case "rmdir":
					d := dirs[1+r.IntN(2)]
					err = e.s.Rmdir(e.ino(d), fmt.Sprintf("sub%d", r.IntN(3)))
				case "open":
					if lerr == nil {
						open[ino] = true
					}
				case "release":
					for o := range open {
						delete(open, o)
						err = e.s.ReleaseOrphan(o)
						break
					}
				case "restore":
					ents := e.trashEntries()
					if len(ents) == 0 {
						continue
					}
					en := ents[r.IntN(len(ents))]
					err = e.s.Rename(en[0].(uint64), en[1].(string), e.ino(dirs[1+r.IntN(2)]), fmt.Sprintf("r%d", r.IntN(3)), 0)
					if err == nil {
						restored++
					}
				case "expire-trash":
					_, err = e.s.ExpireTrash(time.Now(), true)
				case "gc":
					_, err = e.s.GC()
				case "reencode":
					var hs []blobstore.Hash
					e.s.RefBlobs(func(h blobstore.Hash, info BlobInfo) error {
						if !info.Inline {
							hs = append(hs, h)
						}
						return nil
					})
					if len(hs) > 0 {
						err = e.s.Reencoded(hs[r.IntN(len(hs))], blobstore.CodecZstd, int64(1+r.IntN(900)))
					}
				}
				var errno syscall.Errno
				if err != nil && !errors.As(err, &errno) {
					t.Fatalf("op %d %s %s: %v", i, op, p, err)
				}
				e.checkCounters(fmt.Sprintf("op %d %s %s", i, op, p))
				if e.s.Counters().TrashFiles > 0 {
					trashed++
				}
				if i%100 == 99 {
					open = map[uint64]bool{} // a restart closes everything; open purges orphans
					e.reopen()
					e.s.SetOpenCheck(func(ino uint64) bool { return open[ino] })
					if tc.trash {
						e.s.SetTrash(TrashOptions{Retention: time.Hour, Interval: time.Nanosecond})
					}
					e.checkCounters("reopen")
				}
			}
			c := e.s.Counters()
			if c.Files == 0 && c.Blobs == 0 {
				t.Fatalf("the sequence left nothing to count: %+v", c)
			}
			if tc.trash && (trashed == 0 || restored == 0) {
				t.Fatalf("the trash was not exercised: %d ops with trash files, %d restores", trashed, restored)
			}
			t.Logf("%d ops with trash files, %d restores; final %+v", trashed, restored, c)
			e.check()
		})
	}
}

func TestCountersPersistAcrossReopen(t *testing.T) {
	e := newEnv(t)
	e.mkdir("sessions")
	e.writeFile("sessions/a", 1)
	f := e.mkfile("sessions/b")
	e.setChunk(f.Ino, 0, inlineRef([]byte("hello")))
	before := e.s.Counters()
	want := Counters{Files: 2, Dirs: 2, LogicalBytes: 100<<10 + 5, Blobs: 2, InlineBlobs: 1,
		UniqueBytes: 100<<10 + 5, StoredBytes: before.StoredBytes}
	if before != want {
		t.Fatalf("counters %+v, want %+v", before, want)
	}
	e.reopen()
	if got := e.s.Counters(); got != before {
		t.Fatalf("after reopen %+v, before %+v", got, before)
	}
	e.checkCounters("reopen")
}

func TestCountersComputedForOldDataDir(t *testing.T) {
	e := newEnv(t)
	e.mkdir("s")
	e.writeFile("s/a", 1)
	e.writeFile("s/b", 2)
	want := e.s.Counters()
	// A data dir from a version without counters has no record.
	if err := e.s.DB().Delete(keyCounters, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	e.reopen()
	if got := e.s.Counters(); got != want {
		t.Fatalf("counters at open %+v, want %+v", got, want)
	}
	e.checkCounters("open of an old data dir")
}

func TestCheckReportsAndRepairsCounters(t *testing.T) {
	tests := []struct {
		name   string
		record []byte // nil: delete the record
	}{
		{"wrong figures", Counters{Files: 7, Dirs: 1, Blobs: 99}.encode()},
		{"missing", nil},
		{"undecodable", []byte{countersVersion, 0xff}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.mkdir("s")
			e.writeFile("s/a", 1)
			want := e.s.Counters()
			var err error
			if tc.record == nil {
				err = e.s.DB().Delete(keyCounters, pebble.Sync)
			} else {
				err = e.s.DB().Set(keyCounters, tc.record, pebble.Sync)
			}
			if err != nil {
				t.Fatal(err)
			}
			var problems []Problem
			if err := e.s.Check(func(p Problem) { problems = append(problems, p) }); err != nil {
				t.Fatal(err)
			}
			if len(problems) != 1 || problems[0].Kind != ProblemCounters {
				t.Fatalf("problems %v, want one %q", problems, ProblemCounters)
			}
			got, err := e.s.RepairCounters()
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("repaired %+v, want %+v", got, want)
			}
			e.check()
			e.checkCounters("repair")
		})
	}
}

func TestDecodeCountersRejectsOversized(t *testing.T) {
	if _, err := decodeCounters(make([]byte, maxCountersRecord+1)); err == nil {
		t.Fatal("oversized record decoded")
	}
	c := Counters{Files: 1, Dirs: -2, LogicalBytes: 1 << 40, Blobs: 3, UniqueBytes: 4, StoredBytes: 5, InlineBlobs: 6}
	if got, err := decodeCounters(c.encode()); err != nil || got != c {
		t.Fatalf("round trip %+v, %v", got, err)
	}
}
