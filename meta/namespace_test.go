package meta

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
)

func TestCreate(t *testing.T) {
	tests := []struct {
		name    string
		parent  string // path of the parent, "" for the root
		entry   string
		node    NewNode
		want    syscall.Errno
		wantLnk uint32
	}{
		{name: "file", entry: "new", node: NewNode{Mode: syscall.S_IFREG | 0o644, Uid: 7, Gid: 8}, wantLnk: 1},
		{name: "file without type bits", entry: "plain", node: NewNode{Mode: 0o600}, wantLnk: 1},
		{name: "dir", entry: "newdir", node: NewNode{Mode: syscall.S_IFDIR | 0o700}, wantLnk: 2},
		{name: "symlink", entry: "ln", node: NewNode{Mode: syscall.S_IFLNK | 0o777, Target: "../some/where"}, wantLnk: 1},
		{name: "fifo", entry: "pipe", node: NewNode{Mode: syscall.S_IFIFO | 0o600}, wantLnk: 1},
		{name: "in subdir", parent: "d", entry: "x", node: NewNode{Mode: syscall.S_IFREG | 0o644}, wantLnk: 1},
		{name: "name of 255 bytes", entry: strings.Repeat("n", 255), node: NewNode{Mode: syscall.S_IFREG}, wantLnk: 1},
		{name: "name of 256 bytes", entry: strings.Repeat("n", 256), node: NewNode{Mode: syscall.S_IFREG}, want: syscall.ENAMETOOLONG},
		{name: "existing file", entry: "f", node: NewNode{Mode: syscall.S_IFREG}, want: syscall.EEXIST},
		{name: "dir over existing file", entry: "f", node: NewNode{Mode: syscall.S_IFDIR}, want: syscall.EEXIST},
		{name: "symlink over existing dir", entry: "d", node: NewNode{Mode: syscall.S_IFLNK, Target: "x"}, want: syscall.EEXIST},
		{name: "fifo over existing fifo", entry: "p", node: NewNode{Mode: syscall.S_IFIFO}, want: syscall.EEXIST},
		{name: "parent is a file", parent: "f", entry: "x", node: NewNode{Mode: syscall.S_IFREG}, want: syscall.ENOTDIR},
		{name: "parent is a symlink", parent: "s", entry: "x", node: NewNode{Mode: syscall.S_IFDIR}, want: syscall.ENOTDIR},
		{name: "empty name", entry: "", node: NewNode{Mode: syscall.S_IFREG}, want: syscall.EINVAL},
		{name: "dot", entry: ".", node: NewNode{Mode: syscall.S_IFDIR}, want: syscall.EINVAL},
		{name: "dotdot", entry: "..", node: NewNode{Mode: syscall.S_IFDIR}, want: syscall.EINVAL},
		{name: "slash", entry: "a/b", node: NewNode{Mode: syscall.S_IFREG}, want: syscall.EINVAL},
		{name: "nul", entry: "a\x00b", node: NewNode{Mode: syscall.S_IFREG}, want: syscall.EINVAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.mkdir("d")
			e.mkfile("f")
			e.create("s", syscall.S_IFLNK|0o777)
			e.create("p", syscall.S_IFIFO|0o600)
			parent := e.ino(tt.parent)
			before := e.snapshot()
			parentBefore := e.attr(tt.parent)

			a, err := e.s.Create(parent, tt.entry, tt.node)
			checkErr(t, "create", err, tt.want)
			if tt.want != 0 {
				if got := e.snapshot(); got != before {
					t.Fatalf("failed create changed the tree:\n%s\nwant\n%s", got, before)
				}
				e.fsck()
				return
			}
			wantType := tt.node.Mode & syscall.S_IFMT
			if wantType == 0 {
				wantType = syscall.S_IFREG
			}
			if a.Mode != wantType|tt.node.Mode&^syscall.S_IFMT || a.Nlink != tt.wantLnk ||
				a.Uid != tt.node.Uid || a.Gid != tt.node.Gid || a.Parent != parent || a.Name != tt.entry {
				t.Fatalf("created %+v", a)
			}
			got, err := e.s.Lookup(parent, tt.entry)
			if err != nil || !reflect.DeepEqual(got, a) {
				t.Fatalf("lookup = %+v, %v; want %+v", got, err, a)
			}
			var de DirEntry
			e.s.ReadDir(parent, "", func(d DirEntry) bool {
				if d.Name == tt.entry {
					de = d
				}
				return true
			})
			if de.Ino != a.Ino || de.Mode != wantType {
				t.Fatalf("dirent %+v, want ino %d type %o", de, a.Ino, wantType)
			}
			if wantType == syscall.S_IFLNK {
				target, err := e.s.Readlink(a.Ino)
				if err != nil || target != tt.node.Target || a.Size != uint64(len(tt.node.Target)) {
					t.Fatalf("readlink = %q, %v (size %d)", target, err, a.Size)
				}
			} else if _, err := e.s.Readlink(a.Ino); !errors.Is(err, syscall.EINVAL) {
				t.Fatalf("readlink of a non-symlink: %v", err)
			}
			p := e.attr(tt.parent)
			wantParentLinks := parentBefore.Nlink
			if wantType == syscall.S_IFDIR {
				wantParentLinks++
			}
			if p.Nlink != wantParentLinks {
				t.Fatalf("parent nlink %d, want %d", p.Nlink, wantParentLinks)
			}
			if p.Mtime != a.Mtime || p.Ctime != a.Ctime {
				t.Fatalf("parent times %d/%d not the create time %d", p.Mtime, p.Ctime, a.Mtime)
			}
			e.fsck()
		})
	}
}

func TestCreateInMissingParent(t *testing.T) {
	e := newEnv(t)
	_, err := e.s.Create(12345, "x", NewNode{Mode: syscall.S_IFREG})
	checkErr(t, "create", err, syscall.ENOENT)
}

func TestCreateSetgidInheritance(t *testing.T) {
	const dirGid, callerGid = 50, 1000
	tests := []struct {
		name     string
		parent   string
		mode     uint32
		wantGid  uint32
		wantSgid bool
	}{
		{name: "file in setgid dir", parent: "sg", mode: syscall.S_IFREG | 0o644, wantGid: dirGid},
		{name: "dir in setgid dir", parent: "sg", mode: syscall.S_IFDIR | 0o755, wantGid: dirGid, wantSgid: true},
		{name: "symlink in setgid dir", parent: "sg", mode: syscall.S_IFLNK | 0o777, wantGid: dirGid},
		{name: "file in plain dir", parent: "plain", mode: syscall.S_IFREG | 0o644, wantGid: callerGid},
		{name: "dir in plain dir", parent: "plain", mode: syscall.S_IFDIR | 0o755, wantGid: callerGid},
	}
	e := newEnv(t)
	for _, d := range []struct {
		name string
		mode uint32
	}{{"sg", syscall.S_IFDIR | syscall.S_ISGID | 0o2775}, {"plain", syscall.S_IFDIR | 0o775}} {
		if _, err := e.s.Create(RootIno, d.name, NewNode{Mode: d.mode, Gid: dirGid}); err != nil {
			t.Fatal(err)
		}
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := e.s.Create(e.ino(tt.parent), "n"+fmtU(uint64(i)), NewNode{Mode: tt.mode, Gid: callerGid})
			if err != nil {
				t.Fatal(err)
			}
			if a.Gid != tt.wantGid {
				t.Fatalf("gid %d, want %d", a.Gid, tt.wantGid)
			}
			if got := a.Mode&syscall.S_ISGID != 0; got != tt.wantSgid {
				t.Fatalf("setgid bit %v, want %v (mode %o)", got, tt.wantSgid, a.Mode)
			}
			if stored := e.attr(tt.parent + "/n" + fmtU(uint64(i))); stored.Gid != a.Gid || stored.Mode != a.Mode {
				t.Fatalf("stored %+v differs from returned %+v", stored, a)
			}
		})
	}
}

// TestDirNlink follows a directory's link count through mkdir, rmdir and
// renames within and across directories.
func TestDirNlink(t *testing.T) {
	e := newEnv(t)
	steps := []struct {
		name string
		do   func() error
		want map[string]uint32
	}{
		{"mkdir a b", func() error { e.mkdir("a"); e.mkdir("b"); return nil }, map[string]uint32{"": 4, "a": 2, "b": 2}},
		{"mkdir a/x a/y", func() error { e.mkdir("a/x"); e.mkdir("a/y"); return nil }, map[string]uint32{"": 4, "a": 4, "a/x": 2}},
		{"files do not count", func() error { e.mkfile("a/f"); e.create("a/p", syscall.S_IFIFO); return nil }, map[string]uint32{"a": 4}},
		{"rename dir across", func() error { return e.rename("a/x", "b/x", 0) }, map[string]uint32{"": 4, "a": 3, "b": 3}},
		{"rename dir within", func() error { return e.rename("a/y", "a/z", 0) }, map[string]uint32{"a": 3, "b": 3}},
		{"rename file across", func() error { return e.rename("a/f", "b/f", 0) }, map[string]uint32{"a": 3, "b": 3}},
		{"rename dir up", func() error { return e.rename("b/x", "x", 0) }, map[string]uint32{"": 5, "b": 2}},
		{"rename dir down", func() error { return e.rename("x", "a/z/x", 0) }, map[string]uint32{"": 4, "a/z": 3}},
		{"rmdir", func() error { p, n := e.split("a/z/x"); return e.s.Rmdir(p, n) }, map[string]uint32{"a/z": 2}},
		{"rename parent dir", func() error { return e.rename("a", "c", 0) }, map[string]uint32{"": 4, "c": 3, "c/z": 2}},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		for p, want := range st.want {
			if got := e.attr(p).Nlink; got != want {
				t.Fatalf("%s: nlink of %q = %d, want %d", st.name, p, got, want)
			}
		}
		e.fsck()
	}
}

func TestLinkUnlink(t *testing.T) {
	e := newEnv(t)
	e.mkdir("d")
	f := e.mkfile("f")

	a, err := e.s.Link(f.Ino, e.ino("d"), "g")
	checkErr(t, "link", err, 0)
	if a.Nlink != 2 || e.attr("f").Nlink != 2 || e.ino("d/g") != f.Ino {
		t.Fatalf("after link: %+v", a)
	}
	e.fsck()

	errCases := []struct {
		name   string
		ino    uint64
		parent string
		entry  string
		want   syscall.Errno
	}{
		{"link a dir", e.ino("d"), "", "d2", syscall.EPERM},
		{"link over existing", f.Ino, "", "d", syscall.EEXIST},
		{"link missing inode", 9999, "", "x", syscall.ENOENT},
		{"link into a file", f.Ino, "f", "x", syscall.ENOTDIR},
		{"link name too long", f.Ino, "", strings.Repeat("x", 256), syscall.ENAMETOOLONG},
	}
	for _, c := range errCases {
		before := e.snapshot()
		_, err := e.s.Link(c.ino, e.ino(c.parent), c.entry)
		checkErr(t, c.name, err, c.want)
		if e.snapshot() != before {
			t.Fatalf("%s changed the tree", c.name)
		}
	}

	unlinkErrs := []struct {
		name   string
		parent string
		entry  string
		want   syscall.Errno
	}{
		{"unlink a dir", "", "d", syscall.EISDIR},
		{"unlink missing", "", "nope", syscall.ENOENT},
		{"unlink in a file", "f", "x", syscall.ENOTDIR},
	}
	for _, c := range unlinkErrs {
		checkErr(t, c.name, e.s.Unlink(e.ino(c.parent), c.entry), c.want)
	}

	// Removing the recorded name leaves the file without a known path.
	checkErr(t, "unlink f", e.s.Unlink(RootIno, "f"), 0)
	a = e.attr("d/g")
	if a.Nlink != 1 {
		t.Fatalf("nlink after first unlink: %d", a.Nlink)
	}
	if p, ok := e.pathOf(f.Ino); ok {
		t.Fatalf("path of a file whose recorded name is gone: %q", p)
	}
	e.fsck()
	checkErr(t, "unlink d/g", e.s.Unlink(e.ino("d"), "g"), 0)
	if _, err := e.s.GetAttr(f.Ino); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("inode survives its last link: %v", err)
	}
	if e.has(orphanKey(f.Ino)) {
		t.Fatal("closed file became an orphan")
	}
	e.fsck()
}

func TestRmdir(t *testing.T) {
	tests := []struct {
		name   string
		parent string
		entry  string
		want   syscall.Errno
	}{
		{"empty", "", "empty", 0},
		{"nested empty", "full", "sub", 0},
		{"not empty (file)", "", "full", syscall.ENOTEMPTY},
		{"not empty (dir only)", "", "withdir", syscall.ENOTEMPTY},
		{"a file", "", "f", syscall.ENOTDIR},
		{"a symlink", "", "s", syscall.ENOTDIR},
		{"missing", "", "nope", syscall.ENOENT},
		{"dot", "", ".", syscall.EINVAL},
		{"dotdot", "empty", "..", syscall.ENOTEMPTY},
		{"parent is a file", "f", "x", syscall.ENOTDIR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.mkdir("empty")
			e.mkdir("full")
			e.mkfile("full/x")
			e.mkdir("full/sub")
			e.mkdir("withdir")
			e.mkdir("withdir/d")
			e.mkfile("f")
			e.create("s", syscall.S_IFLNK)
			before := e.snapshot()
			parentLinks := e.attr(tt.parent).Nlink
			var victim uint64
			if tt.want == 0 {
				victim = e.ino(strings.TrimPrefix(tt.parent+"/"+tt.entry, "/"))
			}
			err := e.s.Rmdir(e.ino(tt.parent), tt.entry)
			checkErr(t, "rmdir", err, tt.want)
			if tt.want != 0 {
				if e.snapshot() != before {
					t.Fatal("failed rmdir changed the tree")
				}
				return
			}
			if _, err := e.s.GetAttr(victim); !errors.Is(err, syscall.ENOENT) {
				t.Fatalf("removed dir still has an inode: %v", err)
			}
			if got := e.attr(tt.parent).Nlink; got != parentLinks-1 {
				t.Fatalf("parent nlink %d, want %d", got, parentLinks-1)
			}
			e.fsck()
		})
	}
}

// renameTree is the tree every rename case starts from:
//
//	a/f1 a/sub/deep/ b/f2 b/empty/ b/full/x g
func renameTree(e *env) {
	e.mkdir("a")
	e.mkfile("a/f1")
	e.mkdir("a/sub")
	e.mkdir("a/sub/deep")
	e.mkdir("b")
	e.mkfile("b/f2")
	e.mkdir("b/empty")
	e.mkdir("b/full")
	e.mkfile("b/full/x")
	e.mkfile("g")
}

func TestRename(t *testing.T) {
	type state struct {
		ino map[string]uint64 // inode of each path of renameTree before the rename
	}
	tests := []struct {
		name     string
		setup    func(e *env)
		from, to string
		flags    uint32
		want     syscall.Errno
		check    func(t *testing.T, e *env, before state)
	}{
		{name: "plain", from: "g", to: "h", check: func(t *testing.T, e *env, st state) {
			wantAt(t, e, "h", st.ino["g"], "h")
			wantGone(t, e, "g")
		}},
		{name: "across dirs", from: "a/f1", to: "b/f1x", check: func(t *testing.T, e *env, st state) {
			wantAt(t, e, "b/f1x", st.ino["a/f1"], "b/f1x")
			wantGone(t, e, "a/f1")
		}},
		{name: "over a file", from: "a/f1", to: "b/f2", check: func(t *testing.T, e *env, st state) {
			wantAt(t, e, "b/f2", st.ino["a/f1"], "b/f2")
			wantFreed(t, e, st.ino["b/f2"])
		}},
		{name: "over an empty dir", from: "a/sub", to: "b/empty", check: func(t *testing.T, e *env, st state) {
			wantAt(t, e, "b/empty", st.ino["a/sub"], "b/empty")
			wantAt(t, e, "b/empty/deep", st.ino["a/sub/deep"], "b/empty/deep")
			wantFreed(t, e, st.ino["b/empty"])
			wantNlink(t, e, map[string]uint32{"a": 2, "b": 4, "b/empty": 3})
		}},
		{name: "dir over empty dir in same parent", from: "b/full", to: "b/empty", check: func(t *testing.T, e *env, st state) {
			wantAt(t, e, "b/empty/x", st.ino["b/full/x"], "b/empty/x")
			wantFreed(t, e, st.ino["b/empty"])
			wantNlink(t, e, map[string]uint32{"b": 3})
		}},
		{name: "dir across dirs", from: "a/sub", to: "b/sub", check: func(t *testing.T, e *env, st state) {
			wantAt(t, e, "b/sub/deep", st.ino["a/sub/deep"], "b/sub/deep")
			wantNlink(t, e, map[string]uint32{"a": 2, "b": 5})
		}},
		{name: "dir onto itself", from: "a", to: "a", check: func(t *testing.T, e *env, st state) {
			wantAt(t, e, "a", st.ino["a"], "a")
		}},
		{name: "over a non-empty dir", from: "a/sub", to: "b/full", want: syscall.ENOTEMPTY},
		{name: "dir over its own parent", from: "a/sub", to: "a", want: syscall.ENOTEMPTY},
		{name: "dir over a file", from: "a/sub", to: "b/f2", want: syscall.ENOTDIR},
		{name: "file over a dir", from: "a/f1", to: "b/empty", want: syscall.EISDIR},
		{name: "dir into its child", from: "a", to: "a/a", want: syscall.EINVAL},
		{name: "dir into its descendant", from: "a", to: "a/sub/deep/a", want: syscall.EINVAL},
		{name: "missing source", from: "nope", to: "x", want: syscall.ENOENT},
		{name: "target name too long", from: "g", to: strings.Repeat("x", 256), want: syscall.ENAMETOOLONG},
		{name: "name of 255 bytes", from: "g", to: strings.Repeat("x", 255), check: func(t *testing.T, e *env, st state) {
			wantAt(t, e, strings.Repeat("x", 255), st.ino["g"], strings.Repeat("x", 255))
		}},
		{name: "target parent is a file", from: "a/f1", to: "g/x", want: syscall.ENOTDIR},
		{name: "unknown flag", from: "g", to: "h", flags: 4, want: syscall.EINVAL},
		{name: "both flags", from: "g", to: "b/f2", flags: RenameNoReplace | RenameExchange, want: syscall.EINVAL},
		{
			name:  "hard links to one inode",
			setup: func(e *env) { e.s.Link(e.ino("g"), e.ino("b"), "g2") },
			from:  "g", to: "b/g2",
			check: func(t *testing.T, e *env, st state) {
				if e.ino("g") != st.ino["g"] || e.ino("b/g2") != st.ino["g"] || e.attr("g").Nlink != 2 {
					t.Fatal("rename between links of one inode changed something")
				}
			},
		},
		{name: "noreplace over a file", from: "a/f1", to: "b/f2", flags: RenameNoReplace, want: syscall.EEXIST},
		{name: "noreplace over a dir", from: "a/sub", to: "b/empty", flags: RenameNoReplace, want: syscall.EEXIST},
		{name: "noreplace to a free name", from: "a/f1", to: "b/new", flags: RenameNoReplace, check: func(t *testing.T, e *env, st state) {
			wantAt(t, e, "b/new", st.ino["a/f1"], "b/new")
		}},
		{name: "exchange file and dir across parents", from: "a/f1", to: "b/empty", flags: RenameExchange, check: func(t *testing.T, e *env, st state) {
			wantAt(t, e, "a/f1", st.ino["b/empty"], "a/f1")
			wantAt(t, e, "b/empty", st.ino["a/f1"], "b/empty")
			wantNlink(t, e, map[string]uint32{"a": 4, "b": 3, "a/f1": 2})
		}},
		{name: "exchange dir and file across parents", from: "a/sub", to: "b/f2", flags: RenameExchange, check: func(t *testing.T, e *env, st state) {
			wantAt(t, e, "b/f2/deep", st.ino["a/sub/deep"], "b/f2/deep")
			wantAt(t, e, "a/sub", st.ino["b/f2"], "a/sub")
			wantNlink(t, e, map[string]uint32{"a": 2, "b": 5})
		}},
		{name: "exchange two dirs", from: "a/sub", to: "b/full", flags: RenameExchange, check: func(t *testing.T, e *env, st state) {
			wantAt(t, e, "a/sub/x", st.ino["b/full/x"], "a/sub/x")
			wantAt(t, e, "b/full/deep", st.ino["a/sub/deep"], "b/full/deep")
			wantNlink(t, e, map[string]uint32{"a": 3, "b": 4})
		}},
		{name: "exchange in one dir", from: "g", to: "a", flags: RenameExchange, check: func(t *testing.T, e *env, st state) {
			wantAt(t, e, "g/f1", st.ino["a/f1"], "g/f1")
			wantAt(t, e, "a", st.ino["g"], "a")
			wantNlink(t, e, map[string]uint32{"": 4})
		}},
		{name: "exchange with missing target", from: "g", to: "nope", flags: RenameExchange, want: syscall.ENOENT},
		{name: "exchange dir with its descendant", from: "a", to: "a/sub/deep", flags: RenameExchange, want: syscall.EINVAL},
		{name: "exchange dir with its ancestor", from: "a/sub/deep", to: "a", flags: RenameExchange, want: syscall.EINVAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			renameTree(e)
			if tt.setup != nil {
				tt.setup(e)
			}
			st := state{ino: map[string]uint64{}}
			for _, p := range []string{"a", "a/f1", "a/sub", "a/sub/deep", "b", "b/f2", "b/empty", "b/full", "b/full/x", "g"} {
				st.ino[p] = e.ino(p)
			}
			before := e.snapshot()
			err := e.rename(tt.from, tt.to, tt.flags)
			checkErr(t, "rename", err, tt.want)
			if tt.want != 0 {
				if got := e.snapshot(); got != before {
					t.Fatalf("failed rename changed the tree:\n%s\nwant\n%s", got, before)
				}
			} else {
				tt.check(t, e, st)
			}
			e.fsck()
		})
	}
}

// wantAt checks that path p names ino, whose recorded link and PathOf
// follow the rename.
func wantAt(t *testing.T, e *env, p string, ino uint64, wantPath string) {
	t.Helper()
	got, err := e.lookupPath(p)
	if err != nil || got != ino {
		t.Fatalf("%q is %d (%v), want %d", p, got, err, ino)
	}
	a, err := e.s.GetAttr(ino)
	if err != nil {
		t.Fatal(err)
	}
	parent, name := e.split(p)
	if a.Parent != parent || a.Name != name {
		t.Fatalf("%q records %d/%q, want %d/%q", p, a.Parent, a.Name, parent, name)
	}
	if path, ok := e.pathOf(ino); !ok || path != wantPath {
		t.Fatalf("PathOf(%d) = %q, %v; want %q", ino, path, ok, wantPath)
	}
}

func wantGone(t *testing.T, e *env, p string) {
	t.Helper()
	if _, err := e.lookupPath(p); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("%q still resolves: %v", p, err)
	}
}

func wantFreed(t *testing.T, e *env, ino uint64) {
	t.Helper()
	if _, err := e.s.GetAttr(ino); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("replaced inode %d not freed: %v", ino, err)
	}
}

func wantNlink(t *testing.T, e *env, want map[string]uint32) {
	t.Helper()
	for p, n := range want {
		if got := e.attr(p).Nlink; got != n {
			t.Fatalf("nlink of %q = %d, want %d", p, got, n)
		}
	}
}

func TestRenameMissingDirs(t *testing.T) {
	e := newEnv(t)
	e.mkfile("f")
	tests := []struct {
		name              string
		parent, newParent uint64
		want              syscall.Errno
	}{
		{"missing source dir", 9999, RootIno, syscall.ENOENT},
		{"missing target dir", RootIno, 9999, syscall.ENOENT},
		{"source dir is a file", e.ino("f"), RootIno, syscall.ENOTDIR},
	}
	for _, tt := range tests {
		checkErr(t, tt.name, e.s.Rename(tt.parent, "f", tt.newParent, "g", 0), tt.want)
	}
	e.ino("f")
}

func TestRenameUpdatesDescendantPaths(t *testing.T) {
	e := newEnv(t)
	e.mkdir("a")
	e.mkdir("a/b")
	f := e.mkfile("a/b/f")
	e.mkdir("z")
	if err := e.rename("a", "z/a2", 0); err != nil {
		t.Fatal(err)
	}
	if p, ok := e.pathOf(f.Ino); !ok || p != "z/a2/b/f" {
		t.Fatalf("PathOf = %q, %v", p, ok)
	}
	var walked []string
	err := e.s.WalkFiles(e.ino("z"), func(a Attr) error {
		p, _ := e.pathOf(a.Ino)
		walked = append(walked, p)
		return nil
	})
	if err != nil || !reflect.DeepEqual(walked, []string{"z/a2/b/f"}) {
		t.Fatalf("WalkFiles = %v, %v", walked, err)
	}
}

func TestOrphans(t *testing.T) {
	e := newEnv(t)
	open := map[uint64]bool{}
	e.s.SetOpenCheck(func(ino uint64) bool { return open[ino] })
	ref := inlineRef([]byte("orphan content"))

	d := e.mkdir("d")
	f := e.mkfile("f")
	dst := e.mkfile("dst")
	for _, ino := range []uint64{f.Ino, dst.Ino} {
		if err := e.s.Update(false, func(tx *Tx) error { return setChunkSized(tx, ino, 0, ref) }); err != nil {
			t.Fatal(err)
		}
		open[ino] = true
	}
	open[d.Ino] = true
	dIno := d.Ino

	// Unlink, rename over, and rmdir of open inodes all leave orphans.
	checkErr(t, "unlink", e.s.Unlink(RootIno, "f"), 0)
	e.mkfile("src")
	checkErr(t, "rename over open file", e.rename("src", "dst", 0), 0)
	checkErr(t, "rmdir", e.s.Rmdir(RootIno, "d"), 0)
	for _, ino := range []uint64{f.Ino, dst.Ino, dIno} {
		a, err := e.s.GetAttr(ino)
		if err != nil || a.Nlink != 0 || !e.has(orphanKey(ino)) {
			t.Fatalf("open inode %d after losing its name: %+v, %v", ino, a, err)
		}
		if _, ok := e.pathOf(ino); ok {
			t.Fatalf("orphan %d has a path", ino)
		}
	}
	_, err := e.s.Create(dIno, "x", NewNode{Mode: syscall.S_IFREG})
	checkErr(t, "create in removed dir", err, syscall.ENOENT)

	// Rename over an open empty directory orphans it too.
	target := e.mkdir("target")
	e.mkdir("mover")
	open[target.Ino] = true
	checkErr(t, "rename over open dir", e.rename("mover", "target", 0), 0)
	if a, err := e.s.GetAttr(target.Ino); err != nil || a.Nlink != 0 || !e.has(orphanKey(target.Ino)) {
		t.Fatalf("open dir replaced by rename: %+v, %v", a, err)
	}
	if info, _, _ := e.s.BlobInfo(ref.Hash); info.Refs != 2 {
		t.Fatalf("orphans hold %d refs, want 2", info.Refs)
	}
	e.fsck()

	// A still-linked inode is not released.
	g := e.mkfile("g")
	checkErr(t, "release linked", e.s.ReleaseOrphan(g.Ino), 0)
	if _, err := e.s.GetAttr(g.Ino); err != nil {
		t.Fatalf("release of a linked inode freed it: %v", err)
	}

	open[f.Ino] = false
	checkErr(t, "release", e.s.ReleaseOrphan(f.Ino), 0)
	wantFreed(t, e, f.Ino)
	if e.has(orphanKey(f.Ino)) {
		t.Fatal("orphan record survives release")
	}
	if info, _, _ := e.s.BlobInfo(ref.Hash); info.Refs != 1 {
		t.Fatalf("after release blob refs %d, want 1", info.Refs)
	}
	e.fsck()

	// The daemon stops with dst and d still open: reopening frees them.
	e.reopen()
	for _, ino := range []uint64{dst.Ino, dIno, target.Ino} {
		wantFreed(t, e, ino)
		if e.has(orphanKey(ino)) {
			t.Fatalf("orphan %d survives reopen", ino)
		}
	}
	if _, ok, _ := e.s.BlobInfo(ref.Hash); ok || e.has(inlineKey(ref.Hash)) {
		t.Fatal("purged orphans still reference their blob")
	}
	e.fsck()
}

// TestTmpfile follows an O_TMPFILE inode: born an orphan, it gains its
// first name through Link, or is purged on reopen if it never does.
func TestTmpfile(t *testing.T) {
	e := newEnv(t)
	e.mkdir("d")
	var named, unnamed Attr
	err := e.s.Update(false, func(tx *Tx) error {
		var err error
		if named, err = tx.CreateUnlinked(NewNode{Mode: syscall.S_IFDIR | 0o640, Uid: 3, Gid: 4}); err != nil {
			return err
		}
		unnamed, err = tx.CreateUnlinked(NewNode{Mode: 0o600})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []Attr{named, unnamed} {
		if !a.IsRegular() || a.Nlink != 0 || !e.has(orphanKey(a.Ino)) {
			t.Fatalf("tmpfile %+v", a)
		}
		if _, ok := e.pathOf(a.Ino); ok {
			t.Fatal("tmpfile has a path")
		}
	}
	if named.Mode != syscall.S_IFREG|0o640 || named.Uid != 3 || named.Gid != 4 {
		t.Fatalf("tmpfile attributes %+v", named)
	}
	r := inlineRef([]byte("tmp content"))
	e.setChunk(named.Ino, 0, r)
	e.setChunk(unnamed.Ino, 0, r)
	e.fsck()

	a, err := e.s.Link(named.Ino, e.ino("d"), "named")
	checkErr(t, "link tmpfile", err, 0)
	if a.Nlink != 1 || e.has(orphanKey(named.Ino)) {
		t.Fatalf("linked tmpfile %+v, orphan record %v", a, e.has(orphanKey(named.Ino)))
	}
	wantAt(t, e, "d/named", named.Ino, "d/named")
	e.fsck()

	e.reopen()
	wantFreed(t, e, unnamed.Ino)
	if info, _, _ := e.s.BlobInfo(r.Hash); info.Refs != 1 {
		t.Fatalf("blob refs %d after purge, want 1", info.Refs)
	}
	_, err = e.s.Link(unnamed.Ino, RootIno, "late")
	checkErr(t, "link a purged tmpfile", err, syscall.ENOENT)
	e.fsck()
}

type hookCall struct {
	kind string
	ino  uint64
}

type recordingHooks struct {
	calls []hookCall
	fail  error
}

func (h *recordingHooks) Detached(tx *Tx, ino uint64) error {
	h.calls = append(h.calls, hookCall{"detached", ino})
	tx.Batch().Set([]byte("Xdetached"+fmtU(ino)), nil, nil)
	return h.fail
}

func (h *recordingHooks) Renamed(tx *Tx, ino uint64) error {
	h.calls = append(h.calls, hookCall{"renamed", ino})
	if _, ok, err := tx.PathOf(ino); err != nil || !ok {
		return errors.New("renamed inode has no path inside the transaction")
	}
	return h.fail
}

func TestHooks(t *testing.T) {
	tests := []struct {
		name string
		op   func(e *env) error
		want func(e *env) []hookCall // computed before the op
	}{
		{
			name: "unlink last link",
			op:   func(e *env) error { return e.s.Unlink(RootIno, "f") },
			want: func(e *env) []hookCall { return []hookCall{{"detached", e.ino("f")}} },
		},
		{
			name: "unlink one of two links",
			op: func(e *env) error {
				e.s.Link(e.ino("f"), RootIno, "f2")
				return e.s.Unlink(RootIno, "f")
			},
			want: func(e *env) []hookCall { return nil },
		},
		{
			name: "rmdir",
			op:   func(e *env) error { return e.s.Rmdir(e.ino("d"), "empty") },
			want: func(e *env) []hookCall { return []hookCall{{"detached", e.ino("d/empty")}} },
		},
		{
			name: "rename",
			op:   func(e *env) error { return e.rename("f", "d/f", 0) },
			want: func(e *env) []hookCall { return []hookCall{{"renamed", e.ino("f")}} },
		},
		{
			name: "rename over a file",
			op:   func(e *env) error { return e.rename("f", "g", 0) },
			want: func(e *env) []hookCall { return []hookCall{{"detached", e.ino("g")}, {"renamed", e.ino("f")}} },
		},
		{
			name: "rename dir over empty dir",
			op:   func(e *env) error { return e.rename("d2", "d/empty", 0) },
			want: func(e *env) []hookCall { return []hookCall{{"detached", e.ino("d/empty")}, {"renamed", e.ino("d2")}} },
		},
		{
			name: "exchange",
			op:   func(e *env) error { return e.rename("f", "d", RenameExchange) },
			want: func(e *env) []hookCall { return []hookCall{{"renamed", e.ino("f")}, {"renamed", e.ino("d")}} },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.mkfile("f")
			e.mkfile("g")
			e.mkdir("d")
			e.mkdir("d2")
			e.mkdir("d/empty")
			h := &recordingHooks{}
			e.s.SetHooks(h)
			want := tt.want(e)
			if err := tt.op(e); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(h.calls, want) {
				t.Fatalf("hook calls %v, want %v", h.calls, want)
			}
			for _, c := range want {
				if c.kind == "detached" && !e.has([]byte("Xdetached"+fmtU(c.ino))) {
					t.Fatalf("hook write for %d not committed with the op", c.ino)
				}
			}
			e.fsck()

			// A failing hook aborts the whole operation.
			if len(want) == 0 {
				return
			}
			e2 := newEnv(t)
			e2.mkfile("f")
			e2.mkfile("g")
			e2.mkdir("d")
			e2.mkdir("d2")
			e2.mkdir("d/empty")
			hookErr := errors.New("index unavailable")
			e2.s.SetHooks(&recordingHooks{fail: hookErr})
			before := e2.snapshot()
			if err := tt.op(e2); !errors.Is(err, hookErr) {
				t.Fatalf("op with failing hook: %v", err)
			}
			if e2.snapshot() != before {
				t.Fatal("op with failing hook changed the tree")
			}
		})
	}
}

func TestInodeNumbersStableAndNeverReused(t *testing.T) {
	e := newEnv(t)
	var created []Attr
	for _, p := range []string{"a", "b", "c"} {
		created = append(created, e.mkfile(p))
	}
	created = append(created, e.mkdir("dir"))
	checkErr(t, "unlink c", e.s.Unlink(RootIno, "c"), 0)
	checkErr(t, "rmdir", e.s.Rmdir(RootIno, "dir"), 0)
	// A failed transaction allocates nothing durable.
	err := e.s.Update(false, func(tx *Tx) error {
		if _, err := tx.Create(RootIno, "tmp", NewNode{Mode: syscall.S_IFREG}); err != nil {
			return err
		}
		return errors.New("abort")
	})
	if err == nil {
		t.Fatal("aborted update succeeded")
	}
	highest := created[len(created)-1].Ino
	e.reopen()
	for _, c := range created[:2] {
		got, err := e.s.GetAttr(c.Ino)
		if err != nil || !reflect.DeepEqual(got, c) {
			t.Fatalf("after reopen inode %d = %+v, %v; want %+v", c.Ino, got, err, c)
		}
		if e.ino(c.Name) != c.Ino {
			t.Fatalf("%q changed inode across reopen", c.Name)
		}
	}
	seen := map[uint64]bool{}
	for i := 0; i < 3; i++ {
		n := e.mkfile("n" + fmtU(uint64(i)))
		if n.Ino <= highest || seen[n.Ino] {
			t.Fatalf("new inode %d reuses a number (highest before %d)", n.Ino, highest)
		}
		seen[n.Ino] = true
	}
	if _, err := e.s.Lookup(RootIno, "tmp"); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("aborted create is visible: %v", err)
	}
}

func TestLookupNameTooLong(t *testing.T) {
	e := newEnv(t)
	_, err := e.s.Lookup(RootIno, strings.Repeat("x", 256))
	checkErr(t, "lookup", err, syscall.ENAMETOOLONG)
	_, err = e.s.Lookup(RootIno, strings.Repeat("x", 255))
	checkErr(t, "lookup", err, syscall.ENOENT)
}

func TestAttrRoundTrip(t *testing.T) {
	tests := []Attr{
		{Ino: 1},
		{Ino: 42, Mode: syscall.S_IFREG | 0o4755, Uid: 1 << 31, Gid: 7, Nlink: 3, Rdev: 0x0801, Size: 1 << 40,
			Atime: -5, Mtime: 1 << 62, Ctime: 123456789, Parent: 9, Name: strings.Repeat("é", 100)},
	}
	for _, a := range tests {
		got, err := decodeAttr(a.Ino, a.encode())
		if err != nil || !reflect.DeepEqual(got, a) {
			t.Fatalf("round trip %+v = %+v, %v", a, got, err)
		}
		enc := a.encode()
		if _, err := decodeAttr(a.Ino, enc[:len(enc)-1]); err == nil {
			t.Fatalf("truncated record of %+v decoded", a)
		}
	}
	if _, err := decodeAttr(1, []byte{attrVersion + 1}); err == nil {
		t.Fatal("unknown version decoded")
	}
}

func TestRemoveFreesAllRecords(t *testing.T) {
	tests := []struct {
		name   string
		victim string
		remove func(e *env) error
	}{
		{"unlink file", "f", func(e *env) error { return e.s.Unlink(RootIno, "f") }},
		{"unlink symlink", "s", func(e *env) error { return e.s.Unlink(RootIno, "s") }},
		{"unlink fifo", "p", func(e *env) error { return e.s.Unlink(RootIno, "p") }},
		{"rmdir", "d", func(e *env) error { return e.s.Rmdir(RootIno, "d") }},
		{"file replaced by rename", "f", func(e *env) error { return e.rename("p", "f", 0) }},
		{"symlink replaced by rename", "s", func(e *env) error { return e.rename("f", "s", 0) }},
		{"dir replaced by rename", "d", func(e *env) error { return e.rename("d2", "d", 0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.mkfile("f")
			e.mkdir("d")
			e.mkdir("d2")
			e.create("p", syscall.S_IFIFO)
			parent, name := e.split("s")
			if _, err := e.s.Create(parent, name, NewNode{Mode: syscall.S_IFLNK | 0o777, Target: "f"}); err != nil {
				t.Fatal(err)
			}
			ino := e.ino(tt.victim)
			checkErr(t, "setxattr", e.s.SetXattr(ino, "user.k", []byte("v"), 0), 0)
			if tt.victim == "f" {
				e.setChunk(ino, 0, inlineRef([]byte("content")))
			}
			checkErr(t, "remove", tt.remove(e), 0)
			for _, pfx := range []byte{pfxInode, pfxXattr, pfxSymlink, pfxChunk, pfxOrphan, pfxDirent} {
				e.scan(u64([]byte{pfx}, ino), func(k, _ []byte) {
					t.Errorf("record %q %x left behind", pfx, k)
				})
			}
			e.fsck()
		})
	}
}

// TestConcurrentOps runs writers and readers at once; run with -race.
func TestConcurrentOps(t *testing.T) {
	e := newEnv(t)
	const workers, perWorker = 4, 50
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	for w := range workers {
		dir := e.mkdir("w" + fmtU(uint64(w))).Ino
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				name := "f" + fmtU(uint64(i))
				if _, err := e.s.Create(dir, name, NewNode{Mode: syscall.S_IFREG}); err != nil {
					errs <- err
					return
				}
				if i%2 == 1 {
					if err := e.s.Rename(dir, name, RootIno, fmtU(uint64(w))+name, 0); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range perWorker {
				if err := e.s.ReadDir(dir, "", func(d DirEntry) bool {
					_, err := e.s.GetAttr(d.Ino)
					return err == nil
				}); err != nil {
					errs <- err
					return
				}
				if _, err := e.s.GetAttr(dir); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for w := range workers {
		if got := len(e.names(e.ino("w" + fmtU(uint64(w))))); got != perWorker/2 {
			t.Fatalf("worker %d dir has %d entries, want %d", w, got, perWorker/2)
		}
	}
	if got := len(e.names(RootIno)); got != workers+workers*perWorker/2 {
		t.Fatalf("root has %d entries", got)
	}
	e.fsck()
}

// ReleaseOrphans frees, in one transaction, the orphans among the inodes it
// is given (several sharing a blob among them) and leaves linked ones.
func TestReleaseOrphans(t *testing.T) {
	e := newEnv(t)
	open := map[uint64]bool{}
	e.s.SetOpenCheck(func(ino uint64) bool { return open[ino] })
	ref := inlineRef([]byte("shared orphan content"))
	var orphans []uint64
	for i := 0; i < 5; i++ {
		f := e.mkfile("f" + fmtU(uint64(i)))
		if err := e.s.Update(false, func(tx *Tx) error { return setChunkSized(tx, f.Ino, 0, ref) }); err != nil {
			t.Fatal(err)
		}
		open[f.Ino] = true
		checkErr(t, "unlink", e.s.Unlink(RootIno, "f"+fmtU(uint64(i))), 0)
		open[f.Ino] = false
		orphans = append(orphans, f.Ino)
	}
	live := e.mkfile("live")
	checkErr(t, "release", e.s.ReleaseOrphans(append([]uint64{live.Ino}, orphans...)), 0)
	for _, ino := range orphans {
		wantFreed(t, e, ino)
		if e.has(orphanKey(ino)) {
			t.Fatalf("orphan record of %d survives", ino)
		}
	}
	if _, err := e.s.GetAttr(live.Ino); err != nil {
		t.Fatalf("a linked inode was freed: %v", err)
	}
	if info, ok, _ := e.s.BlobInfo(ref.Hash); ok && info.Refs != 0 {
		t.Fatalf("blob keeps %d refs", info.Refs)
	}
	// Again: nothing left to free, nothing changes.
	checkErr(t, "release again", e.s.ReleaseOrphans(orphans), 0)
	e.fsck()
}

// PeekAttrs reads what PeekAttr reads, for inodes in ascending order,
// skipping the ones without a record, and refuses any other order.
func TestPeekAttrs(t *testing.T) {
	e := newEnv(t)
	var inos []uint64
	for i := range 50 {
		a, err := e.s.Create(RootIno, fmt.Sprintf("f%02d", i), NewNode{Mode: syscall.S_IFREG | 0o644, Uid: uint32(i)})
		if err != nil {
			t.Fatal(err)
		}
		inos = append(inos, a.Ino)
	}
	if err := e.s.Unlink(RootIno, "f10"); err != nil {
		t.Fatal(err)
	}
	e.s.GetAttr(inos[20]) // one through the cache
	ask := append([]uint64{}, inos...)
	ask = append(ask, inos[len(inos)-1]+1000) // never existed
	got := map[uint64]Attr{}
	if err := e.s.PeekAttrs(ask, func(a Attr) { got[a.Ino] = a }); err != nil {
		t.Fatal(err)
	}
	for i, ino := range inos {
		want, err := e.s.PeekAttr(ino)
		a, ok := got[ino]
		switch {
		case i == 10:
			if ok || err == nil {
				t.Errorf("unlinked inode %d: PeekAttrs found it (%v), PeekAttr err %v", ino, ok, err)
			}
		case !ok || err != nil:
			t.Errorf("inode %d: PeekAttrs found %v, PeekAttr err %v", ino, ok, err)
		case a != want:
			t.Errorf("inode %d: PeekAttrs %+v, PeekAttr %+v", ino, a, want)
		}
	}
	if len(got) != 49 {
		t.Errorf("PeekAttrs gave %d inodes, want 49", len(got))
	}
	if err := e.s.PeekAttrs([]uint64{inos[3], inos[2]}, func(Attr) {}); err == nil {
		t.Error("PeekAttrs took inodes in descending order")
	}
}
