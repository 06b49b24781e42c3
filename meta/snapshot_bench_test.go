package meta

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSnapshot100kSessions measures CreateSnapshot on a namespace of
// 100k sessions (a directory, metadata.json, summary.json, a screenshot
// chunk and an attachment each: 600k inodes with their manifests), and
// reports the bytes creation added. Run: go test -run - -bench Snapshot100k -benchtime 1x ./meta/
func BenchmarkSnapshot100kSessions(b *testing.B) {
	e := newEnv(b)
	sessions := 100_000
	if n, err := strconv.Atoi(os.Getenv("TASKERFS_BENCH_SESSIONS")); err == nil && n > 0 {
		sessions = (n + 499) / 500 * 500
	}
	sdir := e.mkdir("sessions")
	start := time.Now()
	for base := 0; base < sessions; base += 500 {
		err := e.s.Update(false, func(tx *Tx) error {
			for i := base; i < base+500; i++ {
				d, err := tx.Create(sdir.Ino, fmt.Sprintf("session-%06d", i), NewNode{Mode: syscall.S_IFDIR | 0o755})
				if err != nil {
					return err
				}
				shots, err := tx.Create(d.Ino, "screenshots", NewNode{Mode: syscall.S_IFDIR | 0o755})
				if err != nil {
					return err
				}
				for j, f := range []struct {
					dir  uint64
					name string
				}{{d.Ino, "metadata.json"}, {d.Ino, "summary.json"}, {shots.Ino, "chunk-000.json"}, {d.Ino, "attachment.jpg"}} {
					a, err := tx.Create(f.dir, f.name, NewNode{Mode: 0o644})
					if err != nil {
						return err
					}
					var seed [16]byte
					binary.BigEndian.PutUint64(seed[:], uint64(i))
					binary.BigEndian.PutUint64(seed[8:], uint64(j))
					ref := &BlobRef{Hash: sha256.Sum256(seed[:]), Size: 4096, Stored: 4096}
					if err := tx.SetChunk(a.Ino, 0, ref); err != nil {
						return err
					}
					a.Size = 4096
					if err := tx.PutAttr(&a); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := e.s.db.Flush(); err != nil {
		b.Fatal(err)
	}
	b.Logf("built %d sessions in %v; pebble holds %d bytes", sessions, time.Since(start).Round(time.Millisecond), e.s.db.Metrics().DiskSpaceUsage())
	b.ResetTimer()
	var added int64
	for i := 0; i < b.N; i++ {
		info, err := e.s.CreateSnapshot(fmt.Sprintf("s%d", i))
		if err != nil {
			b.Fatal(err)
		}
		added += info.AddedBytes
		if i == 0 {
			logUnshared(b, filepath.Join(e.s.SnapshotsDir(), info.Name))
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(added)/float64(b.N), "bytes-added/op")
	b.ReportMetric(float64(e.s.db.Metrics().DiskSpaceUsage()), "live-meta-bytes")
}

// logUnshared lists the files of a checkpoint that are copies, not links.
func logUnshared(b *testing.B, dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join(dir, e.Name()), &st) == nil && st.Nlink == 1 {
			b.Logf("copied: %s %d bytes", e.Name(), st.Size)
		}
	}
}
