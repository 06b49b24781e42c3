// Command fsmark is a re-implementation of the fs_mark workload used in
// BENCHMARKS.md (fs_mark itself is not packaged in Debian): each of -t
// threads creates -n files of -s bytes in its own subdirectory of -d,
// optionally fsyncing each file before close (-S 1), and the run reports
// files created per second in fs_mark's table format.
//
// Every file gets bytes of its own (pseudo-random, seeded per run and
// thread): identical content would let a deduplicating filesystem store one
// blob for all of them and turn the run into a metadata benchmark.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

func main() {
	var (
		files   = flag.Int("n", 1000, "files per thread")
		size    = flag.Int("s", 4096, "bytes per file")
		threads = flag.Int("t", 1, "threads, each in its own subdirectory")
		syncM   = flag.Int("S", 1, "sync method: 0 = none, 1 = fsync each file before close")
		dir     = flag.String("d", "", "directory to work in (required)")
		keep    = flag.Bool("k", false, "keep the files (default: remove them after timing)")
	)
	flag.Parse()
	if *dir == "" || *files < 1 || *threads < 1 || *size < 0 || (*syncM != 0 && *syncM != 1) {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*dir, *files, *size, *threads, *syncM == 1, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "fsmark:", err)
		os.Exit(1)
	}
}

func run(dir string, files, size, threads int, fsync, keep bool) error {
	// A run directory of its own, like fs_mark's per-run names, so repeated
	// runs never collide with leftovers.
	root, err := os.MkdirTemp(dir, "fsmark-")
	if err != nil {
		return err
	}
	subdirs := make([]string, threads)
	for t := range subdirs {
		subdirs[t] = filepath.Join(root, fmt.Sprintf("%02d", t))
		if err := os.Mkdir(subdirs[t], 0o755); err != nil {
			return err
		}
	}
	seed := uint64(time.Now().UnixNano())
	errs := make([]error, threads)
	var wg sync.WaitGroup
	start := time.Now()
	for t := 0; t < threads; t++ {
		wg.Add(1)
		go func(t int) {
			defer wg.Done()
			errs[t] = createFiles(subdirs[t], t, files, size, seed, fsync)
		}(t)
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return err
		}
	}

	var st syscall.Statfs_t
	used := 0.0
	if syscall.Statfs(root, &st) == nil && st.Blocks > 0 {
		used = 100 * float64(st.Blocks-st.Bfree) / float64(st.Blocks-st.Bfree+st.Bavail)
	}
	count := files * threads
	fmt.Printf("%-8s %10s %10s %12s %14s\n", "FSUse%", "Count", "Size", "Files/sec", "Elapsed(us)")
	fmt.Printf("%-8.0f %10d %10d %12.1f %14d\n", used, count, size, float64(count)/elapsed.Seconds(), elapsed.Microseconds())
	if keep {
		return nil
	}
	return os.RemoveAll(root)
}

func createFiles(dir string, thread, n, size int, seed uint64, fsync bool) error {
	rng := rand.NewChaCha8([32]byte{byte(thread), byte(seed), byte(seed >> 8), byte(seed >> 16),
		byte(seed >> 24), byte(seed >> 32), byte(seed >> 40), byte(seed >> 48), byte(seed >> 56)})
	data := make([]byte, size)
	for i := 0; i < n; i++ {
		rng.Read(data) // inside the timed loop, at the same cost on every filesystem

		// fs_mark names files with a hex time stamp and a counter.
		name := filepath.Join(dir, fmt.Sprintf("%08x%02x%016x", time.Now().Unix(), thread, i))
		f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return err
		}
		if fsync {
			if err := f.Sync(); err != nil {
				f.Close()
				return err
			}
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}
