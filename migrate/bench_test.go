package migrate

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/taskerfs/taskerfs/gen"
	"github.com/taskerfs/taskerfs/vfs"
)

// BenchmarkImport imports a generated legacy dataset of the default shape
// (20 screenshots, 30 audio segments per session, 40% duplicate
// screenshots) into a fresh data dir per iteration. Sessions per run:
// TASKERFS_BENCH_SESSIONS (default 20). It reports sessions/s, source MB/s
// and the stored/logical ratio of the data dir.
func BenchmarkImport(b *testing.B) {
	n := 20
	if s, err := strconv.Atoi(os.Getenv("TASKERFS_BENCH_SESSIONS")); err == nil && s > 0 {
		n = s
	}
	o := gen.DefaultOptions()
	o.Sessions = n
	legacy, _ := generate(b, gen.LayoutLegacy, o)
	src, err := OpenSource(legacy)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(src.Bytes())
	b.ResetTimer()
	var ratio float64
	for i := range b.N {
		v, err := vfs.Open(filepath.Join(b.TempDir(), strconv.Itoa(i)), vfs.Options{})
		if err != nil {
			b.Fatal(err)
		}
		rep, err := Import(src, VFSTree{v}, ImportOptions{})
		if err != nil || len(rep.Failed) > 0 {
			b.Fatal(err, rep.Failed)
		}
		if err := v.SyncAll(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		st, err := v.Stats()
		if err != nil {
			b.Fatal(err)
		}
		ratio = float64(st.StoredBytes) / float64(st.LogicalBytes)
		v.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "sessions/s")
	b.ReportMetric(ratio, "stored/logical")
}
