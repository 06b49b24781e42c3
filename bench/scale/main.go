// Command scale measures the session index at scale, in process (no mount):
// it generates a JSON-only dataset with `gen` (planted words at 0.1%, 1%,
// 10% and 50% of the sessions), indexes every session file into a fresh
// pebble DB in group-commit sized batches, and reports the index size per
// key table against the indexed JSON bytes, the indexing rate, reindex, and
// the p50/p95 latency of each query kind of issue 14 (warm), with a
// projection to 1M sessions from the per-session costs.
//
//	go run ./bench/scale -sessions 10000 -work /var/tmp/taskerfs-scale
//
// The mount-level figures (cp -r ingest, ls through FUSE) come from
// bench/search; bench/scale.sh runs both.
package main

import (
	"flag"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/taskerfs/taskerfs/gen"
	"github.com/taskerfs/taskerfs/index"
	"github.com/taskerfs/taskerfs/meta"
)

type query struct{ kind, q string }

var queries = []query{
	{"rare word (0.1%)", "zanzibar"},
	{"word in 1%", "quokka"},
	{"word in 50%", "obsidian"},
	{"AND of two common words", "obsidian vermilion"},
	{"OR of three", "zanzibar OR quokka OR vermilion"},
	{"NOT", "vermilion -obsidian"},
	{"phrase", `"obsidian vermilion"`},
	{"field tag:", "tag:planning"},
	{"field month:", "month:2025-03"},
}

func main() {
	sessions := flag.Int("sessions", 10000, "sessions to generate and index")
	work := flag.String("work", "/var/tmp/taskerfs-scale", "work dir (dataset is kept for reruns)")
	reps := flag.Int("reps", 21, "timed runs per query")
	batchFiles := flag.Int("batch", 256, "files per commit batch (a group-commit window)")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
	flag.BoolVar(&reuse, "reuse", false, "reuse the index a previous run built for the same size (queries only)")
	flag.BoolVar(&contentSnippets, "content-snippets", true, "store no snippet text: cut snippets from the files (index.SetContentSource, as the mount does); false: store zstd text")
	flag.BoolVar(&zstdBlocks, "zstd-blocks", false, "pebble sstable blocks compressed with zstd instead of snappy (a meta.Open option)")
	flag.BoolVar(&rebuild, "rebuild", false, "index through Index.RebuildWith (taskerfs reindex's path, parallel extraction)")
	flag.BoolVar(&checkIndex, "check", false, "with -reuse: time index.Check (fsck's index pass: every file extracted again and compared) before the queries")
	flag.BoolVar(&compactAfter, "compact", true, "after measuring, fold all delta postings into blocks (index.Compact) and measure again")
	flag.Parse()
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "scale:", err)
			os.Exit(1)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	if err := run(*sessions, *work, *reps, *batchFiles); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

var (
	cpuProfile string
	reuse      bool

	contentSnippets bool
	zstdBlocks      bool
	rebuild         bool
	checkIndex      bool
	compactAfter    bool
)

type file struct {
	path string
	fid  uint64
}

func run(n int, work string, reps, batchFiles int) error {
	data := filepath.Join(work, fmt.Sprintf("data-%d", n))
	if _, err := os.Stat(filepath.Join(data, ".done")); err != nil {
		_ = os.RemoveAll(data)
		opts := gen.DefaultOptions()
		opts.Sessions, opts.JSONOnly, opts.Layout = n, true, gen.LayoutSeed
		opts.Plant = []gen.Plant{{Word: "zanzibar", Share: 0.001}, {Word: "quokka", Share: 0.01}, {Word: "vermilion", Share: 0.1}, {Word: "obsidian", Share: 0.5}}
		t := time.Now()
		if _, err := gen.Generate(data, opts); err != nil {
			return err
		}
		fmt.Printf("generated %d sessions in %.1fs\n", n, time.Since(t).Seconds())
		if err := os.WriteFile(filepath.Join(data, ".done"), nil, 0o644); err != nil {
			return err
		}
	}
	if real, err := filepath.EvalSymlinks(data); err == nil {
		data = real // a dataset shared by symlink
	}
	var files []file
	var jsonBytes int64
	err := filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(data, p)
		if _, _, ok := index.Classify(rel); ok {
			info, err := d.Info()
			if err != nil {
				return err
			}
			jsonBytes += info.Size()
			files = append(files, file{path: rel, fid: uint64(len(files) + 1)})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no session files in %s", data)
	}
	dbDir := filepath.Join(work, fmt.Sprintf("db-%d", n))
	built := filepath.Join(dbDir, "built")
	_, err = os.Stat(built)
	reused := reuse && err == nil
	if !reused {
		_ = os.RemoveAll(dbDir)
	}
	popts := &pebble.Options{Cache: pebble.NewCache(64 << 20), MemTableSize: 32 << 20, Levels: meta.LevelOptions()}
	if zstdBlocks {
		for i := range popts.Levels {
			popts.Levels[i].Compression = pebble.ZstdCompression
		}
	}
	db, err := pebble.Open(dbDir, popts)
	if err != nil {
		return err
	}
	defer db.Close()
	x := index.New(db)
	if contentSnippets {
		x.SetContentSource(func(fid uint64) ([]byte, error) {
			if fid == 0 || fid > uint64(len(files)) {
				return nil, fmt.Errorf("no file %d", fid)
			}
			return os.ReadFile(filepath.Join(data, files[fid-1].path))
		})
	}

	source := func(fn func(uint64, string, index.Kind, []byte) error) error {
		for _, f := range files {
			content, err := os.ReadFile(filepath.Join(data, f.path))
			if err != nil {
				return err
			}
			sid, kind, _ := index.Classify(f.path)
			if err := fn(f.fid, sid, kind, content); err != nil {
				return err
			}
		}
		return nil
	}
	if reused {
		fmt.Printf("reusing the index in %s\n", dbDir)
		if checkIndex {
			t := time.Now()
			problems, err := x.Check(source)
			if err != nil {
				return err
			}
			fmt.Printf("index.Check (fsck's index pass) of %d sessions, %d files: %.1fs, %d problems\n", n, len(files), time.Since(t).Seconds(), len(problems))
			for i, p := range problems {
				if i == 10 {
					break
				}
				fmt.Println("  ", p)
			}
		}
		return measure(db, x, n, jsonBytes, 0, reps)
	}
	start := time.Now()
	if rebuild {
		// The reindex path: extraction on every CPU, records applied in order.
		err := x.RebuildWith(source, func(p index.RebuildProgress) {
			if p.Files%20000 == 0 {
				fmt.Fprintf(os.Stderr, "%s: %d files\n", time.Now().Format("15:04:05"), p.Files)
			}
		})
		if err != nil {
			return err
		}
		return finish(db, x, n, len(files), jsonBytes, time.Since(start), built, reps)
	}
	b := db.NewIndexedBatch()
	for i, f := range files {
		content, err := os.ReadFile(filepath.Join(data, f.path))
		if err != nil {
			return err
		}
		sid, kind, _ := index.Classify(f.path)
		if err := x.UpdateFile(b, f.fid, sid, kind, content); err != nil {
			return err
		}
		if (i+1)%batchFiles == 0 || i == len(files)-1 {
			if err := b.Commit(pebble.NoSync); err != nil {
				return err
			}
			b.Close()
			b = db.NewIndexedBatch()
		}
	}
	b.Close()
	return finish(db, x, n, len(files), jsonBytes, time.Since(start), built, reps)
}

func finish(db *pebble.DB, x *index.Index, n, nfiles int, jsonBytes int64, took time.Duration, built string, reps int) error {
	how := "file by file in commit-sized batches (the commit path)"
	if rebuild {
		how = "by RebuildWith (the reindex path)"
	}
	fmt.Printf("indexed %s\n", how)
	fmt.Printf("indexed %d sessions (%d files, %.1f MB JSON) in %.1fs: %.0f sessions/s\n",
		n, nfiles, float64(jsonBytes)/1e6, took.Seconds(), float64(n)/took.Seconds())

	if err := db.Flush(); err != nil {
		return err
	}
	if err := db.Compact([]byte{'X'}, []byte{'Y'}, true); err != nil {
		return err
	}
	if err := os.WriteFile(built, nil, 0o644); err != nil {
		return err
	}
	if err := measure(db, x, n, jsonBytes, took, reps); err != nil {
		return err
	}
	if compactAfter {
		// The same index with every delta posting folded into blocks.
		t := time.Now()
		if err := x.Compact(); err != nil {
			return err
		}
		fmt.Printf("\nafter index.Compact (%.1fs):\n", time.Since(t).Seconds())
		if err := db.Compact([]byte{'X'}, []byte{'Y'}, true); err != nil {
			return err
		}
		return measure(db, x, n, jsonBytes, 0, reps)
	}
	return nil
}

func measure(db *pebble.DB, x *index.Index, n int, jsonBytes int64, took time.Duration, reps int) error {
	// Thread CPU time next to wall time: on a loaded machine the wall time
	// mostly measures the wait for a core.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	tables := []struct{ name, prefix string }{
		{"global", "Xg"}, {"file records", "XF"}, {"snippet text", "Xx"}, {"session ids", "XS"}, {"session aggregates", "XN"},
		{"session parts", "Xs"}, {"length column", "Xl"}, {"term postings: packed blocks", "XP"}, {"term postings: delta keys", "Xt"},
		{"facet postings", "Xv"}, {"day postings", "Xd"},
	}
	var total uint64
	fmt.Printf("\n| table | bytes | per session | %% of JSON |\n| --- | --- | --- | --- |\n")
	for _, t := range tables {
		lo := []byte(t.prefix)
		hi := []byte{lo[0], lo[1] + 1}
		sz, err := db.EstimateDiskUsage(lo, hi)
		if err != nil {
			return err
		}
		if sz == 0 {
			continue
		}
		total += sz
		fmt.Printf("| %s | %d | %.0f | %.1f%% |\n", t.name, sz, float64(sz)/float64(n), 100*float64(sz)/float64(jsonBytes))
	}
	fmt.Printf("| **index total** | %d | %.0f | **%.1f%%** |\n", total, float64(total)/float64(n), 100*float64(total)/float64(jsonBytes))

	fmt.Printf("\nWall time (CPU time of the querying thread in parentheses).\n")
	fmt.Printf("\n| query | hits | p50 listing | p95 listing | p50 top-100 with snippets | p95 top-100 with snippets |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, q := range queries {
		var hits int
		var list, top, listCPU, topCPU []time.Duration
		for range reps {
			t, c := time.Now(), threadCPU()
			h, err := x.SearchWith(q.q, index.SearchOptions{NoSnippets: true})
			if err != nil {
				return err
			}
			list, listCPU = append(list, time.Since(t)), append(listCPU, threadCPU()-c)
			hits = len(h)
			t, c = time.Now(), threadCPU()
			if _, err := x.SearchWith(q.q, index.SearchOptions{Limit: 100}); err != nil {
				return err
			}
			top, topCPU = append(top, time.Since(t)), append(topCPU, threadCPU()-c)
		}
		fmt.Printf("| %s `%s` | %d | %s (%s) | %s (%s) | %s (%s) | %s (%s) |\n", q.kind, q.q, hits,
			pct(list, 50), pct(listCPU, 50), pct(list, 95), pct(listCPU, 95), pct(top, 50), pct(topCPU, 50), pct(top, 95), pct(topCPU, 95))
	}
	for _, field := range []string{"tag", "status"} {
		vals, err := x.FacetValues(field)
		if err != nil || len(vals) == 0 {
			continue
		}
		var ds, cs []time.Duration
		var hits int
		for range reps {
			t, c := time.Now(), threadCPU()
			h, err := x.FacetSessions(field, vals[0]) // what ls by-<field>/<value> lists
			if err != nil {
				return err
			}
			hits = len(h)
			ds, cs = append(ds, time.Since(t)), append(cs, threadCPU()-c)
		}
		fmt.Printf("| facet dir by-%s/%s | %d | %s (%s) | %s (%s) | | |\n", field, vals[0], hits, pct(ds, 50), pct(cs, 50), pct(ds, 95), pct(cs, 95))
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("\nGo heap in use %.0f MiB; index bytes per session %.0f → 1M sessions ≈ %.1f GB index\n",
		float64(ms.HeapInuse)/(1<<20), float64(total)/float64(n), float64(total)/float64(n)*1e6/1e9)
	if took > 0 {
		fmt.Printf("indexing at this rate: %.0f min per 1M sessions\n", 1e6/(float64(n)/took.Seconds())/60)
	}
	return nil
}

// threadCPU is the CPU time of the calling OS thread (user + system).
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rusageThread is RUSAGE_THREAD (Linux).
const rusageThread = 1

func pct(ds []time.Duration, p int) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(float64(p)/100*float64(len(s)))) - 1
	d := s[max(i, 0)]
	return strings.TrimSuffix(fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000), "")
}
