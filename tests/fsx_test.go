package tests

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/taskerfs/taskerfs/internal/fsx"
)

// TestFsx runs the fsx-style exerciser (internal/fsx: random reads, writes,
// truncates up and down, punch hole, zero range, fsync, close/reopen, and
// mapped reads/writes in the mmap case) on one file in a taskerfs mount,
// checking every read against the shadow copy; then it remounts and checks
// that the file reads back as the shadow. A fixed seed makes failures
// reproducible; a random one (logged) widens coverage from run to run.
func TestFsx(t *testing.T) {
	requireMountable(t)
	random := rand.Uint64() >> 1
	for _, tc := range []struct {
		name   string
		seed   uint64
		nommap bool
		ops    int
		max    int64 // file size limit (0: fsx's 256 KiB)
		oplen  int64 // op length limit (0: 64 KiB)
	}{
		{"fixed seed, no mmap", 1, true, 20000, 0, 0},
		{"fixed seed, mmap", 2, false, 20000, 0, 0},
		{"random seed, mmap", random, false, 20000, 0, 0},
		// Across 1 MiB chunk boundaries.
		{"3 MiB file, random seed", random + 1, false, 2000, 3 << 20, 512 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Logf("seed %d (reproduce: go run ./bench/fsx -n %d -seed %d%s%s FILE)", tc.seed, tc.ops, tc.seed,
				map[bool]string{true: " -nommap"}[tc.nommap], map[bool]string{true: fmt.Sprintf(" -max %d -oplen %d", tc.max, tc.oplen)}[tc.max > 0])
			m := mountFS(t, newDataDir(t))
			path := m.Path("fsx.dat")
			x, err := fsx.New(fsx.Config{Path: path, Seed: tc.seed, NoMmap: tc.nommap, MaxSize: tc.max, MaxOpLen: tc.oplen})
			if err != nil {
				t.Fatal(err)
			}
			defer x.Close()
			err = x.Run(tc.ops)
			var mm *fsx.MismatchError
			if errors.As(err, &mm) {
				t.Fatalf("taskerfs returned wrong data:\n%v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := x.VerifyPath(path); err != nil {
				t.Fatalf("before remount: %v", err)
			}
			res := x.Result()
			if len(res.Unsupported) > 0 {
				t.Fatalf("taskerfs refused %v", res.Unsupported)
			}
			t.Logf("%d ops, %v", res.Ops, res.Counts)
			if err := x.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			m.Remount()
			if err := x.VerifyPath(path); err != nil {
				t.Fatalf("after remount: %v", err)
			}
		})
	}
}
