package meta

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// TestNameCacheMatchesStore drives random namespace changes (creates,
// links, unlinks, renames with and without flags, directories, failed
// changes, the trash's moves) and after each one compares every name of a
// small universe as Lookup answers it, through the cache of directory
// entries, with pebble's own record.
func TestNameCacheMatchesStore(t *testing.T) {
	for _, tc := range []struct {
		trash    bool
		maxYoung int
		names    int // entries the cache of names keeps
	}{{false, maxYoungNames, 0}, {true, maxYoungNames, 0}, {false, 3, 0}, {true, 8, 0},
		{false, maxYoungNames, 2}, {true, 6, 2}} {
		t.Run(fmt.Sprintf("trash=%v,young=%d,names=%d", tc.trash, tc.maxYoung, tc.names), func(t *testing.T) {
			e := newEnv(t)
			e.s.attrs.maxYoung = tc.maxYoung
			if tc.names > 0 {
				e.s.attrs.names, _ = simplelru.NewLRU[nameKey, txName](tc.names, nil)
			}
			if tc.trash {
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
					a, err := e.s.Create(d, n, NewNode{Mode: mode})
					if err == nil && a.IsDir() && len(dirs) < 6 {
						dirs = append(dirs, a.Ino) // a young directory
					}
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

// TestYoungDirectories: a directory made since the store was opened
// answers an absent name from memory, until a commit touching it fails or
// the bound on young names pushes it out; an older directory never does.
func TestYoungDirectories(t *testing.T) {
	e := newEnv(t)
	old := e.mkdir("old")
	e.reopen()
	mk := func(parent uint64, name string, mode uint32) uint64 {
		t.Helper()
		a, err := e.s.Create(parent, name, NewNode{Mode: mode})
		if err != nil {
			t.Fatal(err)
		}
		return a.Ino
	}
	fromMemory := func(dir uint64, name string) bool {
		v, ok := e.s.attrs.getName(nameKey{dir, name})
		return ok && v.ino == 0
	}
	young := mk(RootIno, "young", syscall.S_IFDIR|0o755)
	f := mk(young, "f", syscall.S_IFREG|0o644)
	if !fromMemory(young, "nope") {
		t.Fatal("a new directory's absent name was not answered from memory")
	}
	if fromMemory(old.Ino, "nope") {
		t.Fatal("a directory from before the open answered an absent name from memory")
	}
	if a, err := e.s.Lookup(young, "f"); err != nil || a.Ino != f {
		t.Fatalf("lookup young/f = %d, %v; want %d", a.Ino, err, f)
	}
	checkErr(t, "rename", e.s.Rename(young, "f", young, "g", 0), 0)
	if _, err := e.s.Lookup(young, "f"); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("lookup of the renamed-away name: %v", err)
	}
	if a, err := e.s.Lookup(young, "g"); err != nil || a.Ino != f {
		t.Fatalf("lookup young/g = %d, %v; want %d", a.Ino, err, f)
	}
	// A failed commit's outcome is unknown: the directory stops being young.
	boom := errors.New("boom")
	err := e.s.Update(false, func(tx *Tx) error {
		if _, err := tx.Create(young, "h", NewNode{Mode: syscall.S_IFREG | 0o644}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if !fromMemory(young, "nope") {
		t.Fatal("a change that failed before its commit cost the directory its youth")
	}
	// Past the bound, the oldest young directories go.
	e.s.attrs.mu.Lock()
	e.s.attrs.maxYoung = 4
	e.s.attrs.mu.Unlock()
	second := mk(RootIno, "second", syscall.S_IFDIR|0o755)
	for i := range 4 {
		mk(second, fmt.Sprint("s", i), syscall.S_IFREG|0o644)
	}
	if fromMemory(young, "nope") {
		t.Fatal("the oldest young directory stayed young past the bound")
	}
	if _, err := e.s.Lookup(young, "g"); err != nil {
		t.Fatalf("lookup after young/ aged: %v", err)
	}
	if _, err := e.s.Lookup(second, "s3"); err != nil {
		t.Fatalf("lookup second/s3: %v", err)
	}
}
