package fs

import (
	"github.com/hanwen/go-fuse/v2/fuse"
)

// killPrivFS carries out FUSE_HANDLE_KILLPRIV_V2 for writes. With it the
// kernel marks a WRITE by a caller without CAP_FSETID to a set-ID file
// (WRITE_KILL_SUIDGID) instead of sending a SETATTR of the mode itself, and
// stops asking for security.capability before each write. go-fuse's node
// API does not pass the write's flags on, so the flag becomes a SETATTR
// with FATTR_KILL_SUIDGID, handled before the write as the kernel would
// (node.Setattr; vfs decides whether a bit is to be cleared). Truncates
// arrive as SETATTR with that flag already, and chown is vfs' rule.
type killPrivFS struct {
	fuse.RawFileSystem
}

func (k killPrivFS) kill(cancel <-chan struct{}, in *fuse.WriteIn) fuse.Status {
	if in.WriteFlags&fuse.WRITE_KILL_SUIDGID == 0 {
		return fuse.OK
	}
	set := fuse.SetAttrIn{}
	set.InHeader = in.InHeader
	set.Valid = fuse.FATTR_KILL_SUIDGID
	var out fuse.AttrOut
	return k.RawFileSystem.SetAttr(cancel, &set, &out)
}

func (k killPrivFS) Write(cancel <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	if st := k.kill(cancel, in); !st.Ok() {
		return 0, st
	}
	return k.RawFileSystem.Write(cancel, in, data)
}

func (k killPrivFS) Writev(cancel <-chan struct{}, in *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	if st := k.kill(cancel, in); !st.Ok() {
		return 0, st
	}
	return k.RawFileSystem.Writev(cancel, in, data)
}
