package meta

import (
	"bytes"
	"strings"
	"syscall"
	"testing"
	"time"
)

// trashEnv is an env with the trash on and a file /sessions/s1/a.json
// holding one file blob.
func trashEnv(t *testing.T, o TrashOptions) (*env, []byte) {
	e := newEnv(t)
	e.s.SetTrash(o)
	e.mkdir("sessions")
	e.mkdir("sessions/s1")
	return e, e.writeFile("sessions/s1/a.json", 1)
}

func (e *env) writeFile(p string, seed uint64) []byte {
	e.t.Helper()
	a := e.mkfile(p)
	data := randomBytes(seed, 100<<10)
	e.setChunk(a.Ino, 0, e.fileRef(data))
	a.Size = uint64(len(data))
	if err := e.s.Update(false, func(tx *Tx) error { return tx.PutAttr(&a) }); err != nil {
		e.t.Fatal(err)
	}
	return data
}

// content reads a file's bytes through its manifest.
func (e *env) content(s *Store, ino uint64) []byte {
	e.t.Helper()
	a, err := s.GetAttr(ino)
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]byte, a.Size)
	err = s.Chunks(ino, func(i uint64, c ChunkRef) error {
		d, err := s.Blob(c.Hash)
		copy(out[i*ChunkSize:], d)
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// trashList lists every file in the trash as "<path below the hour dir>".
func (e *env) trashList() map[string]uint64 {
	e.t.Helper()
	out := map[string]uint64{}
	root, ok, err := e.s.TrashRoot()
	if err != nil {
		e.t.Fatal(err)
	}
	if !ok {
		return out
	}
	var walk func(dir uint64, prefix string)
	walk = func(dir uint64, prefix string) {
		e.s.ReadDir(dir, "", func(d DirEntry) bool {
			if d.Mode == syscall.S_IFDIR {
				walk(d.Ino, prefix+d.Name+"/")
			} else {
				out[prefix+d.Name] = d.Ino
			}
			return true
		})
	}
	e.s.ReadDir(root, "", func(d DirEntry) bool {
		if _, err := time.Parse(TrashHourLayout, d.Name); err != nil {
			e.t.Errorf("hour dir %q", d.Name)
		}
		walk(d.Ino, "")
		return true
	})
	return out
}

func (e *env) check() {
	e.t.Helper()
	if err := e.s.Check(func(p Problem) { e.t.Errorf("check: %v", p) }); err != nil {
		e.t.Fatal(err)
	}
}

func TestTrashKeepsVersions(t *testing.T) {
	long := TrashOptions{Retention: time.Hour, Interval: time.Hour}
	tests := []struct {
		name string
		opts TrashOptions
		op   func(e *env) error
		want []string // trash paths below the hour dir
	}{
		{"unlink", long, func(e *env) error { p, n := e.split("sessions/s1/a.json"); return e.s.Unlink(p, n) },
			[]string{"sessions/s1/a.json"}},
		{"rename over", long, func(e *env) error {
			e.writeFile("sessions/s1/tmp", 2)
			return e.rename("sessions/s1/tmp", "sessions/s1/a.json", 0)
		}, []string{"sessions/s1/a.json"}},
		{"truncate", long, func(e *env) error {
			return e.s.Update(false, func(tx *Tx) error { return tx.TrashReplaced(e.ino("sessions/s1/a.json"), 10) })
		}, []string{"sessions/s1/a.json"}},
		{"grow is no replacement", long, func(e *env) error {
			return e.s.Update(false, func(tx *Tx) error { return tx.TrashReplaced(e.ino("sessions/s1/a.json"), 1<<30) })
		}, nil},
		{"disabled", TrashOptions{}, func(e *env) error { p, n := e.split("sessions/s1/a.json"); return e.s.Unlink(p, n) }, nil},
		{"one of two links", long, func(e *env) error {
			if _, err := e.s.Link(e.ino("sessions/s1/a.json"), e.ino("sessions"), "b"); err != nil {
				return err
			}
			p, n := e.split("sessions/s1/a.json")
			return e.s.Unlink(p, n)
		}, nil},
		{"twice within the interval keeps the newer", long, func(e *env) error {
			p, n := e.split("sessions/s1/a.json")
			if err := e.s.Unlink(p, n); err != nil {
				return err
			}
			e.writeFile("sessions/s1/a.json", 3)
			return e.s.Unlink(p, n)
		}, []string{"sessions/s1/a.json"}},
		{"twice after the interval keeps both", TrashOptions{Retention: time.Hour, Interval: time.Nanosecond}, func(e *env) error {
			p, n := e.split("sessions/s1/a.json")
			if err := e.s.Unlink(p, n); err != nil {
				return err
			}
			e.writeFile("sessions/s1/a.json", 3)
			return e.s.Unlink(p, n)
		}, []string{"sessions/s1/a.json", "sessions/s1/a.json.~1~"}},
		{"directory removal keeps nothing", long, func(e *env) error {
			e.mkdir("sessions/empty")
			return e.s.Rmdir(e.ino("sessions"), "empty")
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := trashEnv(t, tc.opts)
			if err := tc.op(e); err != nil {
				t.Fatal(err)
			}
			got := e.trashList()
			if len(got) != len(tc.want) {
				t.Fatalf("trash holds %v, want %v", got, tc.want)
			}
			for _, w := range tc.want {
				if _, ok := got[w]; !ok {
					t.Fatalf("trash holds %v, want %v", got, tc.want)
				}
			}
			e.check()
		})
	}
}

func TestTrashContentAndRefcounts(t *testing.T) {
	e, data := trashEnv(t, TrashOptions{Retention: time.Hour, Interval: time.Hour})
	ino := e.ino("sessions/s1/a.json")
	var h [32]byte
	e.s.Chunks(ino, func(_ uint64, c ChunkRef) error { h = c.Hash; return nil })

	// Truncation: a second inode shares the manifest.
	if err := e.s.Update(false, func(tx *Tx) error {
		if err := tx.TrashReplaced(ino, 0); err != nil {
			return err
		}
		return tx.TruncateChunks(ino, 0)
	}); err != nil {
		t.Fatal(err)
	}
	trashed := e.trashList()["sessions/s1/a.json"]
	if trashed == 0 || trashed == ino {
		t.Fatalf("trash inode %d (live %d)", trashed, ino)
	}
	if got := e.content(e.s, trashed); !bytes.Equal(got, data) {
		t.Fatal("trashed content differs")
	}
	if info, ok, _ := e.s.BlobInfo(h); !ok || info.Refs != 1 {
		t.Fatalf("refs %d after truncation, want 1 (trash only)", info.Refs)
	}
	e.check()

	// The trash copies owner and mode of the original directories.
	d, err := e.s.GetAttr(e.ino("sessions/s1"))
	if err != nil {
		t.Fatal(err)
	}
	td, err := e.s.GetAttr(mustParent(t, e.s, trashed))
	if err != nil {
		t.Fatal(err)
	}
	if td.Mode != d.Mode || td.Uid != d.Uid || td.Name != "s1" {
		t.Fatalf("trash dir %+v, original %+v", td, d)
	}
	if ok, _ := e.s.InTrash(trashed); !ok {
		t.Fatal("InTrash false for a trashed file")
	}
	if ok, _ := e.s.InTrash(ino); ok {
		t.Fatal("InTrash true for a live file")
	}
	p, ok, _ := e.s.PathOf(trashed)
	if !ok || !strings.HasPrefix(p, TrashDirName+"/") || !strings.HasSuffix(p, "/sessions/s1/a.json") {
		t.Fatalf("path of trashed file %q", p)
	}

	// Restore is a rename out; the restored file is no longer the
	// interval's version, so the next trashing does not drop it.
	if err := e.s.Rename(mustParent(t, e.s, trashed), "a.json", e.ino("sessions/s1"), "restored", 0); err != nil {
		t.Fatal(err)
	}
	if err := e.s.Unlink(e.ino("sessions/s1"), "a.json"); err != nil {
		t.Fatal(err)
	}
	if got := e.content(e.s, e.ino("sessions/s1/restored")); !bytes.Equal(got, data) {
		t.Fatal("restored content differs")
	}
	e.check()

	// Unlink inside the trash frees for good.
	u := e.trashList()
	if len(u) != 1 {
		t.Fatalf("trash %v", u)
	}
	for _, ino := range u {
		if err := e.s.Unlink(mustParent(t, e.s, ino), "a.json"); err != nil {
			t.Fatal(err)
		}
	}
	if len(e.trashList()) != 0 {
		t.Fatal("unlink in the trash trashed again")
	}
	e.check()
}

func mustParent(t *testing.T, s *Store, ino uint64) uint64 {
	t.Helper()
	a, err := s.GetAttr(ino)
	if err != nil {
		t.Fatal(err)
	}
	return a.Parent
}

func TestTrashExpiry(t *testing.T) {
	e, _ := trashEnv(t, TrashOptions{Retention: time.Hour, Interval: time.Nanosecond})
	ino := e.ino("sessions/s1/a.json")
	var h [32]byte
	e.s.Chunks(ino, func(_ uint64, c ChunkRef) error { h = c.Hash; return nil })
	p, n := e.split("sessions/s1/a.json")
	if err := e.s.Unlink(p, n); err != nil {
		t.Fatal(err)
	}
	e.writeFile("sessions/s1/b.json", 7)
	if err := e.s.Unlink(p, "b.json"); err != nil {
		t.Fatal(err)
	}
	// Not old enough yet.
	if f, err := e.s.ExpireTrash(time.Now(), false); err != nil || f.Files != 0 {
		t.Fatalf("expire now: %+v %v", f, err)
	}
	if len(e.trashList()) != 2 {
		t.Fatal("expiry removed young entries")
	}
	u, err := e.s.TrashUsage()
	if err != nil || u.Files != 2 || u.Bytes != 200<<10 {
		t.Fatalf("usage %+v %v", u, err)
	}
	f, err := e.s.ExpireTrash(time.Now().Add(3*time.Hour), false)
	if err != nil || f.Files != 2 {
		t.Fatalf("expire later: %+v %v", f, err)
	}
	if got := e.trashList(); len(got) != 0 {
		t.Fatalf("left %v", got)
	}
	root, _, _ := e.s.TrashRoot()
	var left []string
	e.s.ReadDir(root, "", func(d DirEntry) bool { left = append(left, d.Name); return true })
	if len(left) != 0 {
		t.Fatalf("empty dirs left: %v", left)
	}
	if _, ok, _ := e.s.BlobInfo(h); ok {
		t.Fatal("blob still referenced after expiry")
	}
	e.check()

	// Empty-all ignores the age.
	e.writeFile("sessions/s1/c.json", 8)
	if err := e.s.Unlink(p, "c.json"); err != nil {
		t.Fatal(err)
	}
	if f, err := e.s.ExpireTrash(time.Now(), true); err != nil || f.Files != 1 {
		t.Fatalf("empty: %+v %v", f, err)
	}
	if len(e.trashList()) != 0 {
		t.Fatal("empty left files")
	}
	e.check()
}

func TestTrashSurvivesReopen(t *testing.T) {
	e, data := trashEnv(t, TrashOptions{Retention: time.Hour, Interval: time.Hour})
	p, n := e.split("sessions/s1/a.json")
	if err := e.s.Unlink(p, n); err != nil {
		t.Fatal(err)
	}
	e.reopen()
	got := e.trashList()
	ino, ok := got["sessions/s1/a.json"]
	if !ok {
		t.Fatalf("trash after reopen %v", got)
	}
	if !bytes.Equal(e.content(e.s, ino), data) {
		t.Fatal("content after reopen differs")
	}
	e.check()
}
