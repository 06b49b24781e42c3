// Command closelat measures how long close() takes for freshly written
// files (200 KiB by default): with the write-back queue, close() should not
// wait for the disk. The synchronous comparison is fsync() then close(),
// which waits for the file to be durable.
//
// Each target is a directory, optionally labelled (-d taskerfs=/mnt/t,
// -d loopback=/mnt/l). Targets and modes run interleaved, round after
// round, so that a noisy machine affects all of them alike; after each
// phase every file is fsynced (not timed) so the next starts from an
// idle queue. It prints p50/p90/p99/max of the timed call per target and mode.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

type target struct{ label, dir string }

type targets []target

func (t *targets) String() string { return fmt.Sprint(*t) }

func (t *targets) Set(s string) error {
	label, dir, ok := strings.Cut(s, "=")
	if !ok {
		label, dir = filepath.Base(s), s
	}
	if dir == "" {
		return fmt.Errorf("empty directory in %q", s)
	}
	*t = append(*t, target{label, dir})
	return nil
}

// mode is what is timed after the writes.
type mode struct {
	name  string
	fsync bool
}

var modes = []mode{{"close", false}, {"fsync+close", true}}

func main() {
	var dirs targets
	flag.Var(&dirs, "d", "directory to work in, as DIR or LABEL=DIR (repeatable)")
	files := flag.Int("n", 200, "files per target, mode and round")
	size := flag.Int("s", 200<<10, "bytes per file")
	rounds := flag.Int("rounds", 3, "rounds; targets and modes alternate within each")
	keep := flag.Bool("k", false, "keep the files (default: remove them after each phase, untimed)")
	flag.Parse()
	if len(dirs) == 0 || *files < 1 || *size < 1 || *rounds < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(dirs, *files, *size, *rounds, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "closelat:", err)
		os.Exit(1)
	}
}

func run(dirs targets, files, size, rounds int, keep bool) error {
	samples := map[string][]time.Duration{}
	key := func(t target, m mode) string { return t.label + "\x00" + m.name }
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for r := range rounds {
		for _, t := range dirs {
			for _, m := range modes {
				d, err := phase(t.dir, files, data, rng, m.fsync, keep)
				if err != nil {
					return fmt.Errorf("%s, %s, round %d: %w", t.label, m.name, r+1, err)
				}
				samples[key(t, m)] = append(samples[key(t, m)], d...)
			}
		}
	}
	fmt.Printf("%d KiB files, %d per target and mode in %d rounds; the timed call is close() or fsync()+close()\n\n",
		size>>10, files*rounds, rounds)
	fmt.Printf("%-12s %-12s %8s %10s %10s %10s %10s\n", "target", "mode", "files", "p50(us)", "p90(us)", "p99(us)", "max(us)")
	for _, t := range dirs {
		for _, m := range modes {
			s := samples[key(t, m)]
			slices.Sort(s)
			fmt.Printf("%-12s %-12s %8d %10.1f %10.1f %10.1f %10.1f\n", t.label, m.name, len(s),
				us(pct(s, 50)), us(pct(s, 90)), us(pct(s, 99)), us(s[len(s)-1]))
		}
	}
	return nil
}

// phase writes files in a fresh subdirectory of dir and returns the time
// each timed call took.
func phase(dir string, files int, data []byte, rng *rand.Rand, fsync, keep bool) ([]time.Duration, error) {
	sub, err := os.MkdirTemp(dir, "closelat-")
	if err != nil {
		return nil, err
	}
	out := make([]time.Duration, 0, files)
	for i := range files {
		// Unique content, so that no layer can dedupe the work away.
		for j := 0; j+8 <= len(data); j += 8 {
			v := rng.Uint64()
			for k := range 8 {
				data[j+k] = byte(v >> (8 * k))
			}
		}
		f, err := os.OpenFile(filepath.Join(sub, fmt.Sprintf("f%06d", i)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return nil, err
		}
		start := time.Now()
		if fsync {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		out = append(out, time.Since(start))
		if err != nil {
			return nil, err
		}
	}
	// Drain what the phase queued so the next phase starts idle. (syncfs
	// would not do: the kernel does not pass it to a FUSE daemon.)
	if !fsync {
		if err := fsyncAll(sub, files); err != nil {
			return nil, err
		}
	}
	if !keep {
		return out, os.RemoveAll(sub)
	}
	return out, nil
}

func fsyncAll(sub string, files int) error {
	for i := range files {
		f, err := os.Open(filepath.Join(sub, fmt.Sprintf("f%06d", i)))
		if err != nil {
			return err
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[max(0, min(len(sorted)-1, i-1))]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
