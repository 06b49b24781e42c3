// Package fs is the FUSE adapter: go-fuse v2 nodes that translate each
// operation into a call on the vfs core and an errno. No POSIX rule lives
// here; the virtual directories (search, facets, content view, stats) do.
package fs

import (
	"context"
	"errors"
	"log"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/taskerfs/taskerfs/meta"
	"github.com/taskerfs/taskerfs/vfs"
)

// node is a real inode of the namespace (file, directory, symlink, ...).
type node struct {
	gofs.Inode
	root *Root
	ino  uint64
	held bool // a regular file: vfs.Hold until OnForget
}

func (n *node) v() *vfs.FS { return n.root.v }

// toErrno maps a core error to an errno, logging unexpected ones: an I/O
// failure must reach the caller as EIO, never take the daemon down.
func toErrno(op string, err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	log.Printf("%s: %v", op, err)
	return syscall.EIO
}

func fillAttr(a *meta.Attr, out *fuse.Attr) {
	out.Ino = a.Ino
	out.Mode = a.Mode
	out.Nlink = a.Nlink
	out.Uid = a.Uid
	out.Gid = a.Gid
	out.Rdev = a.Rdev
	out.Size = a.Size
	out.Blocks = (a.Size + 511) / 512
	out.Blksize = 4096
	setTime := func(ns int64) (uint64, uint32) { return uint64(ns / 1e9), uint32(ns % 1e9) }
	out.Atime, out.Atimensec = setTime(a.Atime)
	out.Mtime, out.Mtimensec = setTime(a.Mtime)
	out.Ctime, out.Ctimensec = setTime(a.Ctime)
}

// child returns the go-fuse inode for a, reusing a known one (hard links).
func (n *node) child(ctx context.Context, a *meta.Attr, out *fuse.EntryOut) *gofs.Inode {
	fillAttr(a, &out.Attr)
	n.root.setTimeouts(out)
	return n.newInode(ctx, a.Ino, a.Mode&syscall.S_IFMT)
}

// newInode returns the go-fuse inode for ino, reusing a known one. The
// kernel holds a regular file from this reply until it forgets it, so vfs
// keeps it (as an orphan once unlinked) and an OPEN racing an unlink finds
// it, as on a local fs.
func (n *node) newInode(ctx context.Context, ino uint64, ifmt uint32) *gofs.Inode {
	nd := &node{root: n.root, ino: ino, held: ifmt == syscall.S_IFREG}
	if nd.held {
		n.v().Hold(ino)
	}
	ch := n.NewInode(ctx, nd, gofs.StableAttr{Mode: ifmt, Ino: ino})
	if nd.held && ch.Operations() != gofs.InodeEmbedder(nd) {
		n.v().Forget(ino) // an existing inode was reused: it holds already
	}
	return ch
}

// OnForget: the kernel has dropped its last reference.
func (n *node) OnForget() {
	if n.held {
		if err := n.v().Forget(n.ino); err != nil {
			log.Printf("forget %d: %v", n.ino, err)
		}
	}
}

func caller(ctx context.Context) (uid, gid uint32) {
	if c, ok := fuse.FromContext(ctx); ok {
		return c.Uid, c.Gid
	}
	return 0, 0
}

func (n *node) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	a, err := n.v().GetAttr(n.ino)
	if err != nil {
		return toErrno("getattr", err)
	}
	fillAttr(&a, &out.Attr)
	out.SetTimeout(n.root.opts.AttrTimeout)
	return 0
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
	a, err := n.v().SetAttr(n.ino, req)
	if err != nil {
		return toErrno("setattr", err)
	}
	fillAttr(&a, &out.Attr)
	out.SetTimeout(n.root.opts.AttrTimeout)
	return 0
}

func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	st, err := n.v().Statfs()
	if err != nil {
		return toErrno("statfs", err)
	}
	out.Blocks = st.Blocks
	out.Bfree = st.Bfree
	out.Bavail = st.Bavail
	out.Files = st.Files
	out.Ffree = st.Ffree
	out.Bsize = uint32(st.Bsize)
	out.Frsize = uint32(st.Frsize)
	out.NameLen = meta.MaxNameLen
	return 0
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	t, err := n.v().Meta.Readlink(n.ino)
	if err != nil {
		return nil, toErrno("readlink", err)
	}
	return []byte(t), 0
}
