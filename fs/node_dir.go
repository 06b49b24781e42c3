package fs

import (
	"context"
	"errors"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/taskerfs/taskerfs/vfs"
)

func (n *node) entryOut(ctx context.Context, e vfs.Entry, err error, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if err != nil {
		return nil, errno(err)
	}
	return n.child(ctx, e, out), 0
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	e, err := n.r.ops.Lookup(caller(ctx), n.n, name)
	return n.entryOut(ctx, e, err, out)
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	e, err := n.r.ops.Mkdir(caller(ctx), n.n, name, mode)
	return n.entryOut(ctx, e, err, out)
}

func (n *node) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	e, err := n.r.ops.Mknod(caller(ctx), n.n, name, mode, dev)
	return n.entryOut(ctx, e, err, out)
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	e, err := n.r.ops.Symlink(caller(ctx), n.n, target, name)
	return n.entryOut(ctx, e, err, out)
}

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	e, h, err := n.r.ops.Create(caller(ctx), n.n, name, flags, mode)
	if err != nil {
		return nil, nil, 0, errno(err)
	}
	return n.child(ctx, e, out), &handle{r: n.r, h: h}, openFlags(h), 0
}

func (n *node) Tmpfile(ctx context.Context, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	e, h, err := n.r.ops.Tmpfile(caller(ctx), n.n, flags, mode)
	if err != nil {
		return nil, nil, 0, errno(err)
	}
	return n.child(ctx, e, out), &handle{r: n.r, h: h}, openFlags(h), 0
}

func (n *node) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	t, ok := target.(*node)
	if !ok {
		return nil, syscall.EXDEV
	}
	e, err := n.r.ops.Link(caller(ctx), t.n, n.n, name)
	return n.entryOut(ctx, e, err, out)
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	return errno(n.r.ops.Unlink(caller(ctx), n.n, name))
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	return errno(n.r.ops.Rmdir(caller(ctx), n.n, name))
}

func (n *node) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	return errno(n.r.ops.Rename(caller(ctx), n.n, name, np.n, newName, flags))
}

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	h, err := n.r.ops.Opendir(caller(ctx), n.n)
	if err != nil {
		return nil, 0, errno(err)
	}
	return &dirHandle{n: n, h: h}, 0, 0
}

// dirHandle is an open directory.
type dirHandle struct {
	n *node
	h *vfs.DirHandle
}

func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	e, err := d.n.r.ops.Readdir(caller(ctx), d.h)
	if err != nil || e == nil {
		return nil, errno(err)
	}
	return &fuse.DirEntry{Name: e.Name, Ino: e.Ino, Mode: e.Mode, Off: e.Off}, 0
}

func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	return errno(d.n.r.ops.Seekdir(caller(ctx), d.h, off))
}

// Lookup serves READDIRPLUS from the entry just listed.
func (d *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	e, err := d.n.r.ops.LookupListed(caller(ctx), d.h, name)
	if errors.Is(err, vfs.ErrNoListedEntry) {
		// go-fuse then sends the entry with node id 0, which the kernel
		// takes as "no attributes given", not as ENOENT: it looks the
		// name up when something uses it.
		return nil, syscall.EAGAIN
	}
	return d.n.entryOut(ctx, e, err, out)
}

func (d *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	return errno(d.n.r.ops.Fsyncdir(caller(ctx), d.h))
}

func (d *dirHandle) Releasedir(ctx context.Context, releaseFlags uint32) {
	d.n.r.ops.Releasedir(caller(ctx), d.h)
}
