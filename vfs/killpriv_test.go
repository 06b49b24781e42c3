package vfs

import (
	"syscall"
	"testing"

	"github.com/taskerfs/taskerfs/meta"
)

// TestSetattrKillsSetID: under FUSE_HANDLE_KILLPRIV_V2 the kernel leaves
// clearing set-ID bits to the filesystem: on a flagged write or truncate
// (KillSetID) and on every chown of a non-directory.
func TestSetattrKillsSetID(t *testing.T) {
	u32 := func(v uint32) *uint32 { return &v }
	size := uint64(1)
	cases := []struct {
		name string
		dir  bool
		mode uint32
		in   SetAttrIn
		want uint32
	}{
		{"flagged write clears setuid", false, 0o4755, SetAttrIn{SetAttrIn: kill()}, 0o755},
		{"flagged write clears setgid of a group-executable file", false, 0o2755, SetAttrIn{SetAttrIn: kill()}, 0o755},
		{"setgid without group exec is mandatory locking: kept", false, 0o2745, SetAttrIn{SetAttrIn: kill()}, 0o2745},
		{"both bits", false, 0o6775, SetAttrIn{SetAttrIn: kill()}, 0o775},
		{"sticky bit stays", false, 0o5755, SetAttrIn{SetAttrIn: kill()}, 0o1755},
		{"plain file: nothing to clear", false, 0o644, SetAttrIn{SetAttrIn: kill()}, 0o644},
		{"unflagged truncate keeps setuid", false, 0o4755, SetAttrIn{Size: &size}, 0o4755},
		{"flagged truncate clears setuid", false, 0o4755, SetAttrIn{SetAttrIn: kill(), Size: &size}, 0o755},
		{"chown clears setuid", false, 0o4755, SetAttrIn{SetAttrIn: chown(u32(1), nil)}, 0o755},
		{"chgrp clears setgid of a group-executable file", false, 0o2775, SetAttrIn{SetAttrIn: chown(nil, u32(1))}, 0o775},
		{"chown of a directory keeps its setgid", true, 0o2775, SetAttrIn{SetAttrIn: chown(u32(1), u32(1))}, 0o2775},
		{"a mode in the same request wins", false, 0o755, SetAttrIn{SetAttrIn: withMode(chown(u32(1), nil), 0o4755)}, 0o4755},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newTFS(t)
			if tc.dir {
				f.mkdir("x", tc.mode, 0, 0)
			} else {
				f.write("x", "data", tc.mode, 0, 0)
			}
			e := f.mustWalk(rootCtx(), "x")
			if got := e.Attr.Mode & 0o7777; got != tc.mode {
				t.Fatalf("set-up mode %o, want %o", got, tc.mode)
			}
			a, err := f.o.Setattr(rootCtx(), e.Node, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := a.Mode & 0o7777; got != tc.want {
				t.Errorf("setattr answered mode %o, want %o", got, tc.want)
			}
			if got := f.mustWalk(rootCtx(), "x").Attr.Mode & 0o7777; got != tc.want {
				t.Errorf("stored mode %o, want %o", got, tc.want)
			}
			if typ := a.Mode & syscall.S_IFMT; (typ == syscall.S_IFDIR) != tc.dir {
				t.Errorf("type %o", typ)
			}
		})
	}
}

func kill() (in meta.SetAttrIn) { in.KillSetID = true; return in }

func chown(uid, gid *uint32) (in meta.SetAttrIn) { in.Uid, in.Gid = uid, gid; return in }

func withMode(in meta.SetAttrIn, mode uint32) meta.SetAttrIn { in.Mode = &mode; return in }
