// Package fs is the FUSE adapter: go-fuse v2 nodes that translate each
// operation into a call on the vfs seam (vfs.Ops) and its result into
// go-fuse types and an errno. No rule and no view lives here.
package fs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/taskerfs/taskerfs/vfs"
)

// node is any inode of the mount: stored or a view's.
type node struct {
	gofs.Inode
	r    *Root
	n    vfs.Node
	held bool // the kernel's reference is counted in vfs until OnForget

	tracked, gone bool  // counted by the pruner, and forgotten since (pruner.mu)
	queued        int64 // when it joined the pruner's queue (monotonic ns; pruner.mu)
}

// caller is the request's caller and cancellation.
func caller(ctx context.Context) *vfs.Ctx {
	if c, ok := fuse.FromContext(ctx); ok {
		return vfs.NewCtx(ctx, c.Uid, c.Gid, c.Pid)
	}
	return vfs.NewCtx(ctx, 0, 0, 0)
}

// errno turns a vfs error (always nil or a syscall.Errno) into an errno.
func errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	if e, ok := err.(syscall.Errno); ok {
		return e
	}
	return syscall.EIO
}

func fillAttr(a *vfs.Attr, out *fuse.Attr) {
	out.Ino = a.Ino
	out.Mode = a.Mode
	out.Nlink = a.Nlink
	out.Uid = a.Uid
	out.Gid = a.Gid
	out.Rdev = a.Rdev
	out.Size = a.Size
	out.Blocks = (a.Size + 511) / 512
	out.Blksize = 4096
	if a.Mode&syscall.S_IFMT == syscall.S_IFREG {
		out.Blksize = vfs.IOSize
	}
	setTime := func(ns int64) (uint64, uint32) { return uint64(ns / 1e9), uint32(ns % 1e9) }
	out.Atime, out.Atimensec = setTime(a.Atime)
	out.Mtime, out.Mtimensec = setTime(a.Mtime)
	out.Ctime, out.Ctimensec = setTime(a.Ctime)
}

// child returns the go-fuse inode for e, reusing a known one (hard links).
func (n *node) child(ctx context.Context, e vfs.Entry, out *fuse.EntryOut) *gofs.Inode {
	fillAttr(&e.Attr, &out.Attr)
	if e.Node.Cacheable() {
		out.SetEntryTimeout(n.r.opts.EntryTimeout)
		out.SetAttrTimeout(n.r.opts.AttrTimeout)
	}
	nd := &node{r: n.r, n: e.Node}
	// The kernel holds a regular file from this reply until it forgets
	// it; vfs keeps it (as an orphan once unlinked) so that an OPEN racing
	// an unlink finds it, as on a local fs.
	nd.held = n.r.ops.Hold(e)
	ch := n.NewInode(ctx, nd, gofs.StableAttr{Mode: e.Attr.Mode & syscall.S_IFMT, Ino: e.Attr.Ino})
	if ch.Operations() != gofs.InodeEmbedder(nd) {
		if nd.held {
			n.r.ops.Forget(e.Node) // a known inode was reused: it holds already
		}
	} else {
		n.r.prune.learned(nd)
	}
	return ch
}

// OnForget: the kernel dropped its last reference.
func (n *node) OnForget() {
	n.r.prune.forgotten(n)
	if n.held {
		n.r.ops.Forget(n.n)
	}
}

func (n *node) attrOut(a vfs.Attr, err error, out *fuse.AttrOut) syscall.Errno {
	if err != nil {
		return errno(err)
	}
	fillAttr(&a, &out.Attr)
	if n.n.Cacheable() {
		out.SetTimeout(n.r.opts.AttrTimeout)
	}
	return 0
}

func (n *node) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	h, _ := fh.(*handle)
	var vh *vfs.Handle
	if h != nil {
		vh = h.h
	}
	a, err := n.r.ops.Getattr(caller(ctx), n.n, vh)
	return n.attrOut(a, err, out)
}

func (n *node) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	var req vfs.SetAttrIn
	if m, ok := in.GetMode(); ok {
		req.Mode = &m
	}
	if u, ok := in.GetUID(); ok {
		req.Uid = &u
	}
	if g, ok := in.GetGID(); ok {
		req.Gid = &g
	}
	if s, ok := in.GetSize(); ok {
		req.Size = &s
	}
	if t, ok := in.GetATime(); ok {
		ns := t.UnixNano()
		req.Atime = &ns
	}
	if t, ok := in.GetMTime(); ok {
		ns := t.UnixNano()
		req.Mtime = &ns
	}
	req.KillSetID = in.Valid&fuse.FATTR_KILL_SUIDGID != 0
	a, err := n.r.ops.Setattr(caller(ctx), n.n, req)
	return n.attrOut(a, err, out)
}

func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	st, err := n.r.ops.Statfs(caller(ctx), n.n)
	if err != nil {
		return errno(err)
	}
	out.Blocks, out.Bfree, out.Bavail = st.Blocks, st.Bfree, st.Bavail
	out.Files, out.Ffree = st.Files, st.Ffree
	out.Bsize, out.Frsize = uint32(st.Bsize), uint32(st.Frsize)
	out.NameLen = vfs.MaxNameLen
	return 0
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	t, err := n.r.ops.Readlink(caller(ctx), n.n)
	return []byte(t), errno(err)
}
