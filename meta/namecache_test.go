package meta

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"
)

// TestNameCacheMatchesStore drives random namespace changes (creates,
// links, unlinks, renames with and without flags, directories, failed
// changes, the trash's moves) and after each one compares every name of a
// small universe as Lookup answers it, through the cache of directory
// entries, with pebble's own record.
func TestNameCacheMatchesStore(t *testing.T) {
	for _, trash := range []bool{false, true} {
		t.Run(fmt.Sprintf("trash=%v", trash), func(t *testing.T) {
			e := newEnv(t)
			if trash {
				e.s.SetTrash(TrashOptions{Retention: time.Hour, Interval: time.Nanosecond})
			}
			dirs := []uint64{RootIno}
			for _, d := range []string{"a", "b"} {
				a, err := e.s.Create(RootIno, d, NewNode{Mode: syscall.S_IFDIR | 0o755})
				if err != nil {
					t.Fatal(err)
				}
				dirs = append(dirs, a.Ino)
			}
			names := []string{"x", "y", "z", "d"}
			rng := rand.New(rand.NewPCG(1, uint64(len(names))))
			pick := func() (uint64, string) { return dirs[rng.IntN(len(dirs))], names[rng.IntN(len(names))] }
			check := func(step int, what string) {
				t.Helper()
				for _, d := range dirs {
					for _, n := range names {
						// Twice: the first may fill the cache, the second
						// answers from it.
						for range 2 {
							got, gerr := e.s.Lookup(d, n)
							ino, _, werr := lookup(e.s.db, d, n)
							switch {
							case werr != nil && !errors.Is(gerr, syscall.ENOENT):
								t.Fatalf("step %d (%s): lookup %d/%s = %d, %v; the store has no entry", step, what, d, n, got.Ino, gerr)
							case werr == nil && (gerr != nil || got.Ino != ino):
								t.Fatalf("step %d (%s): lookup %d/%s = %d, %v; the store says %d", step, what, d, n, got.Ino, gerr, ino)
							}
						}
					}
				}
			}
			check(0, "start")
			for step := 1; step <= 600; step++ {
				var what string
				switch r := rng.IntN(7); r {
				case 0, 1:
					d, n := pick()
					mode := uint32(syscall.S_IFREG | 0o644)
					if n == "d" {
						mode = syscall.S_IFDIR | 0o755
					}
					_, err := e.s.Create(d, n, NewNode{Mode: mode})
					what = fmt.Sprintf("create %d/%s: %v", d, n, err)
				case 2:
					d, n := pick()
					err := e.s.Unlink(d, n)
					what = fmt.Sprintf("unlink %d/%s: %v", d, n, err)
				case 3:
					d, n := pick()
					err := e.s.Rmdir(d, n)
					what = fmt.Sprintf("rmdir %d/%s: %v", d, n, err)
				case 4, 5:
					d1, n1 := pick()
					d2, n2 := pick()
					flags := []uint32{0, 0, RenameNoReplace, RenameExchange}[rng.IntN(4)]
					err := e.s.Rename(d1, n1, d2, n2, flags)
					what = fmt.Sprintf("rename %d/%s %d/%s %d: %v", d1, n1, d2, n2, flags, err)
				case 6:
					d1, n1 := pick()
					d2, n2 := pick()
					a, err := e.s.Lookup(d1, n1)
					if err == nil {
						_, err = e.s.Link(a.Ino, d2, n2)
					}
					what = fmt.Sprintf("link %d/%s %d/%s: %v", d1, n1, d2, n2, err)
				}
				check(step, what)
			}
		})
	}
}

// TestNameCacheAfterFailedCommit: a change whose commit fails leaves no
// entry of its own in the cache.
func TestNameCacheAfterFailedCommit(t *testing.T) {
	e := newEnv(t)
	if _, err := e.s.Lookup(RootIno, "f"); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("lookup before: %v", err)
	}
	boom := errors.New("boom")
	err := e.s.Update(false, func(tx *Tx) error {
		if _, err := tx.Create(RootIno, "f", NewNode{Mode: syscall.S_IFREG | 0o644}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if a, err := e.s.Lookup(RootIno, "f"); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("lookup after a change that failed: %d, %v", a.Ino, err)
	}
}
