package vfs

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/taskerfs/taskerfs/gen"
)

// BenchmarkIngestSessions writes JSON-only generated sessions (the seed
// layout, about 7.6 files and 70 KB each) into a fresh data dir file by
// file, as a cp -r through the mount does (each file created, written and
// closed; metadata.json critical), then syncs: the write side of the index
// (extraction before the commit's transaction, key writes inside it) with
// everything else a commit does. Sessions per iteration:
// TASKERFS_BENCH_SESSIONS (default 200).
func BenchmarkIngestSessions(b *testing.B) {
	n := 200
	if s, err := strconv.Atoi(os.Getenv("TASKERFS_BENCH_SESSIONS")); err == nil && s > 0 {
		n = s
	}
	src := b.TempDir()
	o := gen.DefaultOptions()
	o.Sessions, o.JSONOnly = n, true
	if _, err := gen.Generate(src, o); err != nil {
		b.Fatal(err)
	}
	type file struct {
		path string
		data []byte
	}
	var files []file
	var bytes int64
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(src, p)
		files = append(files, file{filepath.ToSlash(rel), data})
		bytes += int64(len(data))
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(bytes)
	var cpu time.Duration // of the whole process: the writer and every goroutine of the core
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		v, err := Open(filepath.Join(b.TempDir(), strconv.Itoa(i)), Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		cpu0 := processCPU(b)
		for _, f := range files {
			if err := v.WriteFile(f.path, f.data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
		if err := v.SyncAll(); err != nil {
			b.Fatal(err)
		}
		cpu += processCPU(b) - cpu0
		b.StopTimer()
		if s, _, _, err := v.IndexStats(); err != nil || s != int64(n) {
			b.Fatalf("index holds %d sessions (%v), want %d", s, err, n)
		}
		v.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "sessions/s")
	// On a shared machine the wall clock says more about the other load
	// than about this code; the CPU time per session does not.
	b.ReportMetric(float64(cpu.Microseconds())/1e3/float64(n*b.N), "cpu-ms/session")
}

// processCPU is the user + system CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
