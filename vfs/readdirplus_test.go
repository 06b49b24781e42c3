package vfs

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
)

// READDIRPLUS answers each entry from the inodes its page read in one pass
// (readPageAttrs), and only while nothing has committed since: a change
// between the page and an entry's lookup is seen.
func TestLookupListedPageAttrs(t *testing.T) {
	f := newTFS(t)
	c := rootCtx()
	f.mkdir("d", 0o755, 0, 0)
	const n = dirPage + 44 // two pages
	for i := range n {
		f.write(fmt.Sprintf("d/f%03d", i), strings.Repeat("x", i), 0o600|uint32(i%2)<<5, uint32(1000+i), 0)
	}
	dir := f.mustWalk(c, "d")
	listAll := func(changeAt int, change func()) map[string]Entry {
		h, err := f.o.Opendir(c, dir.Node)
		if err != nil {
			t.Fatal(err)
		}
		defer f.o.Releasedir(c, h)
		got := map[string]Entry{}
		for i := 0; ; i++ {
			d, err := f.o.Readdir(c, h)
			if err != nil {
				t.Fatal(err)
			}
			if d == nil {
				return got
			}
			if i == changeAt {
				change()
			}
			if d.Name == "." || d.Name == ".." {
				continue
			}
			e, err := f.o.LookupListed(c, h, d.Name)
			if err != nil {
				t.Fatalf("lookup listed %s: %v", d.Name, err)
			}
			got[d.Name] = e
		}
	}
	check := func(got map[string]Entry, what string) {
		t.Helper()
		if len(got) != n {
			t.Fatalf("%s: %d entries, want %d", what, len(got), n)
		}
		for name, e := range got {
			want := f.mustWalk(c, "d/"+name)
			if e.Attr.Ino != want.Attr.Ino || e.Attr.Size != want.Attr.Size || e.Attr.Mode != want.Attr.Mode || e.Attr.Uid != want.Attr.Uid {
				t.Errorf("%s: %s: ino %d size %d mode %o uid %d, a lookup says ino %d size %d mode %o uid %d", what, name,
					e.Attr.Ino, e.Attr.Size, e.Attr.Mode, e.Attr.Uid, want.Attr.Ino, want.Attr.Size, want.Attr.Mode, want.Attr.Uid)
			}
		}
	}
	check(listAll(-1, func() {}), "quiet listing")

	// Entry 10 (f007: after "." and "..", f000...) of the first page gets
	// a new mode after its page was read and before its lookup.
	got := listAll(8, func() { f.chown("d/f007", 0o640, 4242, 0) })
	check(got, "listing with a change")
	if a := got["f007"].Attr; a.Mode&0o777 != 0o640 || a.Uid != 4242 {
		t.Fatalf("f007 after a chmod/chown during the listing: mode %o uid %d, want 640 4242", a.Mode&0o777, a.Uid)
	}
	if !syscallIsReg(got["f100"].Attr.Mode) {
		t.Fatalf("f100: mode %o, want a regular file", got["f100"].Attr.Mode)
	}
}

func syscallIsReg(mode uint32) bool { return mode&syscall.S_IFMT == syscall.S_IFREG }
