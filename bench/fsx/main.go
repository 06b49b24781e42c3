// Command fsx exercises one file with a seeded random mix of reads, writes,
// truncates, mapped reads/writes, fallocate, fsync and close/reopen, checking
// every read against an in-memory shadow copy (after xfstests' fsx).
//
//	fsx [-n ops] [-max bytes] [-seed N] [-nommap] [-nofallocate] [-json] FILE
//
// It exits 1 at the first mismatch, printing the last operations.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/taskerfs/taskerfs/internal/fsx"
)

func main() {
	var (
		cfg    fsx.Config
		n      = flag.Int("n", 10000, "operations")
		seed   = flag.Int64("seed", -1, "random seed (default: from the clock; printed)")
		asJSON = flag.Bool("json", false, "print the result as JSON")
	)
	flag.Int64Var(&cfg.MaxSize, "max", 256<<10, "largest file size in bytes")
	flag.Int64Var(&cfg.MaxOpLen, "oplen", 64<<10, "largest read/write/fallocate length")
	flag.BoolVar(&cfg.NoMmap, "nommap", false, "no mapped reads and writes")
	flag.BoolVar(&cfg.NoFallocate, "nofallocate", false, "no fallocate")
	flag.BoolVar(&cfg.MsyncSync, "msync-sync", false, "msync(MS_SYNC) after every mapped write (default MS_ASYNC, as fsx)")
	flag.IntVar(&cfg.CloseProb, "closeprob", 500, "close and reopen with probability 1/N after an op (0: never)")
	flag.IntVar(&cfg.FsyncProb, "fsyncprob", 1000, "fsync with probability 1/N after an op (0: never)")
	flag.IntVar(&cfg.LogOps, "log", 64, "operations shown on a mismatch")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: fsx [flags] FILE")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if *seed < 0 {
		*seed = time.Now().UnixNano() & (1<<62 - 1)
	}
	cfg.Seed = uint64(*seed)
	cfg.Path = flag.Arg(0)
	for _, p := range []*int{&cfg.CloseProb, &cfg.FsyncProb} {
		if *p == 0 {
			*p = -1
		}
	}
	res, err := fsx.Run(cfg, *n)
	if err != nil {
		var mm *fsx.MismatchError
		if errors.As(err, &mm) {
			fmt.Fprintf(os.Stderr, "fsx: DATA MISMATCH\n%v", err)
		} else {
			fmt.Fprintf(os.Stderr, "%v\n", err)
		}
		os.Exit(1)
	}
	if *asJSON {
		json.NewEncoder(os.Stdout).Encode(map[string]any{
			"ops": res.Ops, "seconds": res.Elapsed.Seconds(), "ops_per_sec": res.OpsPerSec(),
			"seed": cfg.Seed, "counts": res.Counts, "unsupported": res.Unsupported,
		})
		return
	}
	fmt.Printf("fsx: seed %d: %d ops in %.2fs, %.0f ops/s; %v", cfg.Seed, res.Ops, res.Elapsed.Seconds(), res.OpsPerSec(), res.Counts)
	if len(res.Unsupported) > 0 {
		fmt.Printf("; unsupported: %v", res.Unsupported)
	}
	fmt.Println()
}
