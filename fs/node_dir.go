package fs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/taskerfs/taskerfs/meta"
)

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if n.ino == meta.RootIno {
		if ch := n.virtualChild(ctx, name, out); ch != nil {
			return ch, 0
		}
	}
	a, err := n.v().Lookup(n.ino, name)
	if err != nil {
		return nil, toErrno("lookup", err)
	}
	return n.child(ctx, &a, out), 0
}

// reserved refuses to create a name that a virtual root entry owns.
func (n *node) reserved(name string) bool {
	return n.ino == meta.RootIno && n.root.isVirtual(name)
}

func (n *node) create(ctx context.Context, name string, nn meta.NewNode, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if n.reserved(name) {
		return nil, syscall.EEXIST
	}
	nn.Uid, nn.Gid = caller(ctx)
	a, err := n.v().Meta.Create(n.ino, name, nn)
	if err != nil {
		return nil, toErrno("create", err)
	}
	return n.child(ctx, &a, out), 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return n.create(ctx, name, meta.NewNode{Mode: syscall.S_IFDIR | mode&0o7777}, out)
}

func (n *node) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return n.create(ctx, name, meta.NewNode{Mode: mode, Rdev: dev}, out)
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if len(target) > 4095 {
		return nil, syscall.ENAMETOOLONG
	}
	return n.create(ctx, name, meta.NewNode{Mode: syscall.S_IFLNK | 0o777, Target: target}, out)
}

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	ch, errno := n.create(ctx, name, meta.NewNode{Mode: syscall.S_IFREG | mode&0o7777}, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	ino := ch.StableAttr().Ino
	if err := n.v().OpenFile(ino); err != nil {
		return nil, nil, 0, toErrno("create", err)
	}
	return ch, n.root.newHandle(ino), n.root.openFlags(), 0
}

// Tmpfile makes an open file in no directory (O_TMPFILE); linkat can give
// it a name later.
func (n *node) Tmpfile(ctx context.Context, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	uid, gid := caller(ctx)
	a, err := n.v().CreateUnlinked(meta.NewNode{Mode: mode, Uid: uid, Gid: gid})
	if err != nil {
		return nil, nil, 0, toErrno("tmpfile", err)
	}
	fillAttr(&a, &out.Attr)
	n.root.setTimeouts(out)
	ch := n.newInode(ctx, a.Ino, syscall.S_IFREG)
	return ch, n.root.newHandle(a.Ino), n.root.openFlags(), 0
}

func (n *node) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	t, ok := target.(*node)
	if !ok {
		return nil, syscall.EXDEV
	}
	if n.reserved(name) {
		return nil, syscall.EEXIST
	}
	a, err := n.v().Meta.Link(t.ino, n.ino, name)
	if err != nil {
		return nil, toErrno("link", err)
	}
	n.v().WB.Attr(&a)
	return n.child(ctx, &a, out), 0
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	if n.reserved(name) {
		return syscall.EPERM
	}
	return toErrno("unlink", n.v().Meta.Unlink(n.ino, name))
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	if n.reserved(name) {
		return syscall.EPERM
	}
	return toErrno("rmdir", n.v().Meta.Rmdir(n.ino, name))
}

func (n *node) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EROFS // every other parent is a read-only virtual tree
	}
	if n.reserved(name) || np.reserved(newName) {
		return syscall.EPERM
	}
	return toErrno("rename", n.v().Meta.Rename(n.ino, name, np.ino, newName, flags))
}

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	a, err := n.v().Meta.GetAttr(n.ino)
	if err != nil {
		return nil, 0, toErrno("opendir", err)
	}
	parent := a.Parent
	if n.ino == meta.RootIno {
		parent = meta.RootIno
	}
	n.v().OpenDir(n.ino)
	h := &dirHandle{n: n, virtual: []fuse.DirEntry{
		{Name: ".", Ino: n.ino, Mode: syscall.S_IFDIR},
		{Name: "..", Ino: parent, Mode: syscall.S_IFDIR},
	}}
	if n.ino == meta.RootIno {
		h.virtual = append(h.virtual, n.root.virtualEntries()...)
	}
	return h, 0, 0
}

// dirHandle streams a directory from meta in pages, so a directory of any
// size is never loaded whole. Offsets count entries from the start.
type dirHandle struct {
	n       *node
	virtual []fuse.DirEntry
	pos     uint64 // entries returned so far
	last    string // name of the last real entry returned
	page    []meta.DirEntry
	eof     bool
}

const dirPage = 256

func (h *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if h.pos < uint64(len(h.virtual)) {
		e := h.virtual[h.pos]
		h.pos++
		e.Off = h.pos
		return &e, 0
	}
	if len(h.page) == 0 && !h.eof {
		err := h.n.v().Meta.ReadDir(h.n.ino, h.last, func(e meta.DirEntry) bool {
			h.page = append(h.page, e)
			return len(h.page) < dirPage
		})
		if err != nil {
			return nil, toErrno("readdir", err)
		}
		h.eof = len(h.page) < dirPage
	}
	if len(h.page) == 0 {
		return nil, 0
	}
	e := h.page[0]
	h.page = h.page[1:]
	h.last = e.Name
	h.pos++
	return &fuse.DirEntry{Name: e.Name, Ino: e.Ino, Mode: e.Mode, Off: h.pos}, 0
}

func (h *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	h.pos, h.last, h.page, h.eof = 0, "", nil, false
	for h.pos < off {
		e, errno := h.Readdirent(ctx)
		if errno != 0 {
			return errno
		}
		if e == nil {
			break
		}
	}
	return 0
}

func (h *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	return toErrno("fsyncdir", h.n.v().Meta.SyncWAL())
}

func (h *dirHandle) Releasedir(ctx context.Context, releaseFlags uint32) {
	if err := h.n.v().ReleaseDir(h.n.ino); err != nil {
		toErrno("releasedir", err)
	}
}
