package meta

import (
	"bytes"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestXattr(t *testing.T) {
	e := newEnv(t)
	f := e.mkfile("f").Ino
	steps := []struct {
		name  string
		ino   uint64
		key   string
		value []byte
		flags uint32
		del   bool
		want  syscall.Errno
	}{
		{name: "set", ino: f, key: "user.b", value: []byte("1")},
		{name: "overwrite", ino: f, key: "user.b", value: []byte("2")},
		{name: "create existing", ino: f, key: "user.b", value: []byte("3"), flags: XattrCreate, want: syscall.EEXIST},
		{name: "create new", ino: f, key: "user.a", value: []byte("a"), flags: XattrCreate},
		{name: "replace missing", ino: f, key: "user.c", value: []byte("c"), flags: XattrReplace, want: syscall.ENODATA},
		{name: "replace existing", ino: f, key: "user.a", value: []byte("A"), flags: XattrReplace},
		{name: "empty value", ino: f, key: "user.empty", value: []byte{}},
		{name: "largest value", ino: f, key: "user.big", value: bytes.Repeat([]byte{7}, MaxXattrValue)},
		{name: "value too big", ino: f, key: "user.huge", value: make([]byte, MaxXattrValue+1), want: syscall.E2BIG},
		{name: "longest name", ino: f, key: strings.Repeat("n", MaxXattrName), value: []byte("x")},
		{name: "name too long", ino: f, key: strings.Repeat("n", MaxXattrName+1), value: []byte("x"), want: syscall.ERANGE},
		{name: "empty name", ino: f, key: "", value: []byte("x"), want: syscall.ERANGE},
		{name: "missing inode", ino: 9999, key: "user.a", value: []byte("x"), want: syscall.ENOENT},
		{name: "remove", ino: f, key: "user.empty", del: true},
		{name: "remove missing", ino: f, key: "user.empty", del: true, want: syscall.ENODATA},
		{name: "remove on missing inode", ino: 9999, key: "user.a", del: true, want: syscall.ENOENT},
	}
	want := map[string][]byte{}
	for _, st := range steps {
		var err error
		if st.del {
			err = e.s.RemoveXattr(st.ino, st.key)
		} else {
			err = e.s.SetXattr(st.ino, st.key, st.value, st.flags)
		}
		checkErr(t, st.name, err, st.want)
		if st.want == 0 {
			if st.del {
				delete(want, st.key)
			} else {
				want[st.key] = st.value
			}
		}
		var names []string
		for k, v := range want {
			names = append(names, k)
			got, err := e.s.GetXattr(f, k)
			if err != nil || !bytes.Equal(got, v) {
				t.Fatalf("%s: get %q = %q, %v; want %q", st.name, k, got, err, v)
			}
		}
		list, err := e.s.ListXattr(f)
		if err != nil || !reflect.DeepEqual(list, sortedCopy(names)) {
			t.Fatalf("%s: list = %q, %v; want %q", st.name, list, err, sortedCopy(names))
		}
	}
	if _, err := e.s.GetXattr(f, "user.nope"); !errors.Is(err, syscall.ENODATA) {
		t.Fatalf("get missing: %v", err)
	}
	// Attributes go with the inode.
	checkErr(t, "unlink", e.s.Unlink(RootIno, "f"), 0)
	if list, err := e.s.ListXattr(f); err != nil || len(list) != 0 {
		t.Fatalf("xattrs of a freed inode: %q, %v", list, err)
	}
}

func TestXattrChangesCtime(t *testing.T) {
	e := newEnv(t)
	f := e.mkfile("f")
	resetCtime(t, e, f.Ino)
	checkErr(t, "set", e.s.SetXattr(f.Ino, "user.x", []byte("v"), 0), 0)
	if e.attr("f").Ctime == 1 {
		t.Fatal("setxattr left ctime alone")
	}
	resetCtime(t, e, f.Ino)
	checkErr(t, "remove", e.s.RemoveXattr(f.Ino, "user.x"), 0)
	if e.attr("f").Ctime == 1 {
		t.Fatal("removexattr left ctime alone")
	}
}

// resetCtime sets ctime to 1 so a later change can be seen without
// comparing clocks.
func resetCtime(t *testing.T, e *env, ino uint64) {
	t.Helper()
	err := e.s.Update(false, func(tx *Tx) error {
		a, err := tx.GetAttr(ino)
		if err != nil {
			return err
		}
		a.Ctime = 1
		return tx.PutAttr(&a)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSetAttr(t *testing.T) {
	u32 := func(v uint32) *uint32 { return &v }
	i64 := func(v int64) *int64 { return &v }
	tests := []struct {
		name   string
		path   string
		in     SetAttrIn
		change func(a *Attr)
	}{
		{"chmod", "f", SetAttrIn{Mode: u32(0o600)}, func(a *Attr) { a.Mode = syscall.S_IFREG | 0o600 }},
		{"chmod keeps the type", "d", SetAttrIn{Mode: u32(syscall.S_IFREG | 0o1777)}, func(a *Attr) { a.Mode = syscall.S_IFDIR | 0o1777 }},
		{"setuid bits", "f", SetAttrIn{Mode: u32(0o6755)}, func(a *Attr) { a.Mode = syscall.S_IFREG | 0o6755 }},
		{"chown", "f", SetAttrIn{Uid: u32(10), Gid: u32(20)}, func(a *Attr) { a.Uid, a.Gid = 10, 20 }},
		{"chgrp only", "f", SetAttrIn{Gid: u32(30)}, func(a *Attr) { a.Gid = 30 }},
		{"times", "f", SetAttrIn{Atime: i64(-100), Mtime: i64(1 << 60)}, func(a *Attr) { a.Atime, a.Mtime = -100, 1<<60 }},
		{"nothing", "f", SetAttrIn{}, func(a *Attr) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.mkfile("f")
			e.mkdir("d")
			ino := e.ino(tt.path)
			resetCtime(t, e, ino)
			want := e.attr(tt.path)
			tt.change(&want)
			got, err := e.s.SetAttr(ino, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got.Ctime == 1 {
				t.Fatal("ctime not updated")
			}
			want.Ctime = got.Ctime
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("setattr = %+v, want %+v", got, want)
			}
			if stored := e.attr(tt.path); !reflect.DeepEqual(stored, got) {
				t.Fatalf("stored %+v, returned %+v", stored, got)
			}
		})
	}
	e := newEnv(t)
	_, err := e.s.SetAttr(9999, SetAttrIn{Uid: u32(1)})
	checkErr(t, "setattr missing", err, syscall.ENOENT)
}

// TestXattrInodes: the set of inodes that may have attributes answers
// absent names without pebble, and is rebuilt from pebble on open; every
// committed attribute stays readable, across a reopen and past the set's
// bound.
func TestXattrInodes(t *testing.T) {
	for _, limit := range []int{maxXattrInodes, 2} {
		t.Run(strconv.Itoa(limit), func(t *testing.T) {
			e := newEnv(t)
			e.s.xinos = newXattrInodes(limit)
			var with, without []uint64
			for i := range 6 {
				f := e.mkfile("f" + strconv.Itoa(i)).Ino
				if i%2 == 0 {
					without = append(without, f)
					continue
				}
				with = append(with, f)
				checkErr(t, "set", e.s.SetXattr(f, "user.a", []byte{byte(i)}, 0), 0)
				checkErr(t, "set", e.s.SetXattr(f, "user.b", []byte{byte(i)}, 0), 0)
			}
			// A removed attribute and a failed transaction leave the
			// inode in the set; reads still answer from pebble.
			checkErr(t, "remove", e.s.RemoveXattr(with[0], "user.b"), 0)
			boom := errors.New("boom")
			err := e.s.Update(false, func(tx *Tx) error {
				if err := tx.SetXattr(without[0], "user.lost", []byte("x"), 0); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("failed update: %v", err)
			}
			check := func(stage string) {
				t.Helper()
				for i, f := range with {
					want := []string{"user.a", "user.b"}
					if i == 0 {
						want = want[:1]
					}
					list, err := e.s.ListXattr(f)
					if err != nil || !reflect.DeepEqual(list, want) {
						t.Fatalf("%s: list %d = %q, %v; want %q", stage, f, list, err, want)
					}
					if v, err := e.s.GetXattr(f, "user.a"); err != nil || len(v) != 1 {
						t.Fatalf("%s: get %d = %q, %v", stage, f, v, err)
					}
					if _, err := e.s.GetXattr(f, "user.nope"); !errors.Is(err, syscall.ENODATA) {
						t.Fatalf("%s: get missing on %d: %v", stage, f, err)
					}
				}
				for _, f := range without {
					if list, err := e.s.ListXattr(f); err != nil || len(list) != 0 {
						t.Fatalf("%s: list %d = %q, %v; want none", stage, f, list, err)
					}
					if _, err := e.s.GetXattr(f, "user.lost"); !errors.Is(err, syscall.ENODATA) {
						t.Fatalf("%s: get %d: %v", stage, f, err)
					}
				}
			}
			check("live")
			e.reopen()
			if limit == 2 {
				e.s.xinos = newXattrInodes(limit)
				if err := e.s.xinos.load(e.s.db); err != nil {
					t.Fatal(err)
				}
				if !e.s.xinos.all {
					t.Fatalf("%d inodes with attributes kept in a set of at most %d", len(with), limit)
				}
			} else {
				for _, f := range with {
					if !e.s.xinos.may(f) {
						t.Fatalf("reopened: inode %d has attributes, the set says none", f)
					}
				}
				for _, f := range without {
					if e.s.xinos.may(f) {
						t.Fatalf("reopened: inode %d has no attributes, the set did not learn it", f)
					}
				}
			}
			check("reopened")
		})
	}
}
