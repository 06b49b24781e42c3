package tests

import (
	"errors"
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
	}{
		{"fixed seed, no mmap", 1, true},
		{"fixed seed, mmap", 2, false},
		{"random seed, mmap", random, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Logf("seed %d (reproduce: go run ./bench/fsx -n 20000 -seed %d%s FILE)", tc.seed, tc.seed, map[bool]string{true: " -nommap"}[tc.nommap])
			m := mountFS(t, newDataDir(t))
			path := m.Path("fsx.dat")
			x, err := fsx.New(fsx.Config{Path: path, Seed: tc.seed, NoMmap: tc.nommap})
			if err != nil {
				t.Fatal(err)
			}
			defer x.Close()
			err = x.Run(20000)
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
