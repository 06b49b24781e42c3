package meta

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// fillDir creates n files named like "f000042" in dir, in random order,
// in one transaction.
func fillDir(tb testing.TB, s *Store, dir uint64, n int) []string {
	tb.Helper()
	names := make([]string, n)
	for i := range names {
		names[i] = "f" + strings.Repeat("0", 6-len(fmtU(uint64(i)))) + fmtU(uint64(i))
	}
	shuffled := slices.Clone(names)
	rand.New(rand.NewPCG(1, 2)).Shuffle(n, func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	err := s.Update(false, func(tx *Tx) error {
		for _, name := range shuffled {
			if _, err := tx.Create(dir, name, NewNode{Mode: syscall.S_IFREG | 0o644}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return names
}

func TestReadDirLarge(t *testing.T) {
	const n = 100_000
	e := newEnv(t)
	// Neighbours on both sides of the big directory's key range.
	before := e.mkdir("before")
	big := e.mkdir("big")
	after := e.mkdir("after")
	e.mkfile("before/x")
	e.mkfile("after/y")
	if before.Ino+1 != big.Ino || big.Ino+1 != after.Ino {
		t.Fatalf("inode numbers %d %d %d are not consecutive", before.Ino, big.Ino, after.Ino)
	}
	want := fillDir(t, e.s, big.Ino, n)

	full := e.names(big.Ino)
	if len(full) != n {
		t.Fatalf("read %d entries, want %d", len(full), n)
	}
	if !reflect.DeepEqual(full, want) {
		t.Fatal("listing is not the sorted set of created names")
	}

	pages := []int{1, 999, 1000, 4096}
	for _, page := range pages {
		var got []string
		cursor := ""
		for {
			count := 0
			err := e.s.ReadDir(big.Ino, cursor, func(d DirEntry) bool {
				got = append(got, d.Name)
				cursor = d.Name
				count++
				return count < page
			})
			if err != nil {
				t.Fatal(err)
			}
			if count < page {
				break
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("paged listing (page %d) has %d entries, differs from the full one", page, len(got))
		}
	}
}

func TestReadDirResume(t *testing.T) {
	e := newEnv(t)
	d := e.mkdir("d")
	for _, n := range []string{"b", "a", "ab", "c", "a\xff", "B"} {
		e.mkfile("d/" + n)
	}
	e.mkdir("d/sub")
	tests := []struct {
		after string
		want  []string
	}{
		{"", []string{"B", "a", "ab", "a\xff", "b", "c", "sub"}},
		{"a", []string{"ab", "a\xff", "b", "c", "sub"}},
		{"aa", []string{"ab", "a\xff", "b", "c", "sub"}}, // not an entry: resume at the next one
		{"a\xff", []string{"b", "c", "sub"}},
		{"sub", nil},
		{"zzz", nil},
	}
	for _, tt := range tests {
		var got []string
		err := e.s.ReadDir(d.Ino, tt.after, func(de DirEntry) bool {
			got = append(got, de.Name)
			wantType := uint32(syscall.S_IFREG)
			if de.Name == "sub" {
				wantType = syscall.S_IFDIR
			}
			if de.Mode != wantType || de.Ino != e.ino("d/"+de.Name) {
				t.Fatalf("entry %+v", de)
			}
			return true
		})
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Fatalf("ReadDir after %q = %q, %v; want %q", tt.after, got, err, tt.want)
		}
	}
	if got := e.names(e.ino("d/sub")); got != nil {
		t.Fatalf("empty dir lists %q", got)
	}
}

func TestAllInodes(t *testing.T) {
	e := newEnv(t)
	want := []uint64{RootIno, e.mkdir("d").Ino, e.mkfile("d/f").Ino, e.create("l", syscall.S_IFLNK).Ino}
	var got []uint64
	if err := e.s.AllInodes(func(a Attr) error { got = append(got, a.Ino); return nil }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("AllInodes = %v, want %v", got, want)
	}
}

func TestWalkFiles(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"a", "a/b", "a/b/c", "z"} {
		e.mkdir(p)
	}
	for _, p := range []string{"a/f", "a/b/g", "a/b/c/h", "z/i", "top"} {
		e.mkfile(p)
	}
	e.create("a/link", syscall.S_IFLNK)
	e.create("a/pipe", syscall.S_IFIFO)
	tests := []struct {
		dir  string
		want []string
	}{
		{"a", []string{"a/b/c/h", "a/b/g", "a/f"}},
		{"a/b/c", []string{"a/b/c/h"}},
		{"", []string{"a/b/c/h", "a/b/g", "a/f", "top", "z/i"}},
	}
	for _, tt := range tests {
		var got []string
		err := e.s.WalkFiles(e.ino(tt.dir), func(a Attr) error {
			p, ok := e.pathOf(a.Ino)
			if !ok {
				t.Fatalf("no path for %d", a.Ino)
			}
			got = append(got, p)
			return nil
		})
		if err != nil || !reflect.DeepEqual(sortedCopy(got), tt.want) {
			t.Fatalf("WalkFiles(%q) = %v, %v; want %v", tt.dir, got, err, tt.want)
		}
	}
}
