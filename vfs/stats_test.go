package vfs

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/meta"
)

// scanStats is the full-scan computation Stats did before the counters:
// the oracle the counters are compared with.
func scanStats(t testing.TB, v *FS) Stats {
	t.Helper()
	var s Stats
	sessionsIno := uint64(0)
	if d, err := v.meta.Lookup(meta.RootIno, SessionsDir); err == nil {
		sessionsIno = d.Ino
	}
	err := v.meta.AllInodes(func(a meta.Attr) error {
		switch {
		case a.IsRegular():
			s.Files++
			s.LogicalBytes += int64(a.Size)
		case a.IsDir():
			s.Directories++
			if a.Parent == sessionsIno && a.Nlink > 0 && !strings.HasPrefix(a.Name, ".") {
				s.Sessions++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tu, err := v.meta.TrashUsage()
	if err != nil {
		t.Fatal(err)
	}
	s.TrashFiles, s.TrashBytes = tu.Files, tu.Bytes
	s.Files -= tu.Files
	s.LogicalBytes -= tu.Bytes
	err = v.meta.RefBlobs(func(h blobstore.Hash, info meta.BlobInfo) error {
		s.Blobs++
		s.UniqueBytes += int64(info.Size)
		s.StoredBytes += info.Stored
		if info.Inline {
			s.InlineBlobs++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// counted keeps the fields Stats derives from the store's contents.
func counted(s Stats) [10]int64 {
	return [10]int64{s.Sessions, s.Files, s.Directories, s.LogicalBytes, s.UniqueBytes, s.StoredBytes,
		s.Blobs, s.InlineBlobs, s.TrashFiles, s.TrashBytes}
}

func TestStatsMatchAScan(t *testing.T) {
	big := strings.Repeat("attachment bytes ", 20000)
	steps := []struct {
		name string
		do   func(t *testing.T, v *FS) error
	}{
		{"sessions", func(t *testing.T, v *FS) error {
			for i := 0; i < 3; i++ {
				if err := v.WriteFile(fmt.Sprintf("sessions/s%d/metadata.json", i), []byte(`{"id": "x"}`), 0o644); err != nil {
					return err
				}
			}
			return v.WriteFile("sessions/s0/attachments/a.jpg", []byte(big), 0o644)
		}},
		{"hidden and stray entries", func(t *testing.T, v *FS) error {
			if _, err := v.MkdirAll("sessions/.partial", 0o755); err != nil {
				return err
			}
			if _, err := v.MkdirAll("sessions/-dash", 0o755); err != nil {
				return err
			}
			return v.WriteFile("sessions/.notes", []byte("n"), 0o644)
		}},
		{"duplicate", func(t *testing.T, v *FS) error {
			return v.WriteFile("sessions/s1/attachments/b.jpg", []byte(big), 0o644)
		}},
		{"overwrite", func(t *testing.T, v *FS) error {
			return v.WriteFile("sessions/s2/metadata.json", []byte(`{"id": "y", "more": true}`), 0o644)
		}},
		{"unlink to the trash", func(t *testing.T, v *FS) error {
			d, err := v.Resolve("sessions/s0/attachments")
			if err != nil {
				return err
			}
			return v.Unlink(d.Ino, "a.jpg")
		}},
		{"rmdir a session", func(t *testing.T, v *FS) error {
			d, err := v.Resolve("sessions/.partial")
			if err != nil {
				return err
			}
			return v.meta.Rmdir(d.Parent, ".partial")
		}},
		{"expire the trash", func(t *testing.T, v *FS) error {
			_, err := v.meta.ExpireTrash(time.Now(), true)
			return err
		}},
	}
	trash := meta.DefaultTrashOptions
	v, err := Open(t.TempDir(), Options{Trash: &trash})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for _, st := range steps {
		if err := st.do(t, v); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if err := v.wb.SyncAll(); err != nil {
			t.Fatal(err)
		}
		got, err := v.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if want := scanStats(t, v); counted(got) != counted(want) {
			t.Fatalf("after %s: stats %v, a scan finds %v", st.name, counted(got), counted(want))
		}
		if st.name == "unlink to the trash" && got.TrashFiles == 0 {
			t.Fatalf("after %s: %d trash files", st.name, got.TrashFiles)
		}
		if st.name == "sessions" && got.Sessions != 3 {
			t.Fatalf("%d sessions, want 3", got.Sessions)
		}
	}
}

// BenchmarkStats shows that Stats costs the same at 1k and 100k files,
// and what the full scan it replaced costs.
func BenchmarkStats(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			v, err := Open(b.TempDir(), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer v.Close()
			for i := 0; i < n; i += 1000 {
				err := v.meta.Update(false, func(tx *meta.Tx) error {
					for j := i; j < i+1000 && j < n; j++ {
						if _, err := tx.Create(meta.RootIno, fmt.Sprintf("f%07d", j), meta.NewNode{Mode: syscall.S_IFREG | 0o644}); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.Run("counters", func(b *testing.B) {
				for b.Loop() {
					s, err := v.Stats()
					if err != nil || s.Files != int64(n) {
						b.Fatalf("stats %d files, %v", s.Files, err)
					}
				}
			})
			b.Run("scan", func(b *testing.B) { // what Stats cost before the counters
				for b.Loop() {
					if s := scanStats(b, v); s.Files != int64(n) {
						b.Fatalf("scan %d files", s.Files)
					}
				}
			})
		})
	}
}
