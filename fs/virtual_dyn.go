package fs

import (
	"context"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// dynEntry is one child of a computed directory: a symlink (target set),
// a directory or a file (make set).
type dynEntry struct {
	name   string
	mode   uint32 // S_IFLNK, S_IFDIR or S_IFREG
	target string
	make   func() gofs.InodeEmbedder
}

// dynDir is a read-only directory whose entries are computed on every
// readdir and lookup; nothing about it is cached by the kernel.
type dynDir struct {
	roNode
	path   string // virtual path, for stable inode numbers
	list   func() ([]dynEntry, error)
	lookup func(ctx context.Context, name string) (*dynEntry, error) // nil entry: ENOENT
	mkdir  func(name string) syscall.Errno
	rmdir  func(name string) syscall.Errno
}

var mountTime = time.Now()

func virtualDirAttr(ino uint64, out *fuse.Attr) {
	out.Mode = syscall.S_IFDIR | 0o555
	out.Ino = ino
	out.Nlink = 2
	t := uint64(mountTime.Unix())
	out.Mtime, out.Ctime, out.Atime = t, t, t
}

func (d *dynDir) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	virtualDirAttr(virtualIno(d.path), &out.Attr)
	out.SetTimeout(0)
	return 0
}

func (d *dynDir) childPath(name string) string { return d.path + "/" + name }

func (d *dynDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	e, err := d.lookup(ctx, name)
	if err != nil {
		return nil, toErrno("virtual lookup", err)
	}
	if e == nil {
		return nil, syscall.ENOENT
	}
	out.SetEntryTimeout(0)
	out.SetAttrTimeout(0)
	ino := virtualIno(d.childPath(name))
	var emb gofs.InodeEmbedder
	switch e.mode {
	case syscall.S_IFLNK:
		l := &symlinkNode{target: e.target, ino: ino}
		l.fill(&out.Attr)
		emb = l
	default:
		emb = e.make()
		if g, ok := emb.(gofs.NodeGetattrer); ok {
			var ao fuse.AttrOut
			g.Getattr(ctx, nil, &ao)
			out.Attr = ao.Attr
		}
	}
	out.Ino = ino
	return d.NewInode(ctx, emb, gofs.StableAttr{Mode: e.mode, Ino: ino}), 0
}

func (d *dynDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	entries, err := d.list()
	if err != nil {
		return nil, toErrno("virtual readdir", err)
	}
	out := make([]fuse.DirEntry, 0, len(entries)+2)
	out = append(out, fuse.DirEntry{Name: ".", Mode: syscall.S_IFDIR, Ino: virtualIno(d.path)},
		fuse.DirEntry{Name: "..", Mode: syscall.S_IFDIR})
	for _, e := range entries {
		out = append(out, fuse.DirEntry{Name: e.name, Mode: e.mode, Ino: virtualIno(d.childPath(e.name))})
	}
	return gofs.NewListDirStream(out), 0
}

func (d *dynDir) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if d.mkdir == nil {
		return nil, syscall.EROFS
	}
	if errno := d.mkdir(name); errno != 0 {
		return nil, errno
	}
	return d.Lookup(ctx, name, out)
}

func (d *dynDir) Rmdir(ctx context.Context, name string) syscall.Errno {
	if d.rmdir == nil {
		return syscall.EROFS
	}
	return d.rmdir(name)
}

func (d *dynDir) node() (gofs.InodeEmbedder, uint32) { return d, syscall.S_IFDIR }

// symlinkNode is a virtual symlink into the real tree.
type symlinkNode struct {
	roNode
	target string
	ino    uint64
}

func (l *symlinkNode) fill(out *fuse.Attr) {
	out.Mode = syscall.S_IFLNK | 0o777
	out.Ino = l.ino
	out.Nlink = 1
	out.Size = uint64(len(l.target))
	t := uint64(mountTime.Unix())
	out.Mtime, out.Ctime, out.Atime = t, t, t
}

func (l *symlinkNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	l.fill(&out.Attr)
	out.SetTimeout(0)
	return 0
}

func (l *symlinkNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	return []byte(l.target), 0
}

// fileEntry wraps generated content as a dynEntry.
func fileEntry(name, path string, gen func() ([]byte, error)) dynEntry {
	return dynEntry{name: name, mode: syscall.S_IFREG, make: func() gofs.InodeEmbedder {
		return &genFile{ino: virtualIno(path), gen: gen, mode: 0o444}
	}}
}

// sessionLink is a symlink named by a session id, depth levels below the
// mount root, pointing at sessions/<id>.
func sessionLink(id string, depth int) dynEntry {
	target := ""
	for i := 0; i < depth; i++ {
		target += "../"
	}
	return dynEntry{name: id, mode: syscall.S_IFLNK, target: target + "sessions/" + id}
}

// validSessionID refuses ids that would make a link leave sessions/.
func validSessionID(id string) bool {
	if id == "" || id == "." || id == ".." || len(id) > 255 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] == '/' || id[i] == 0 {
			return false
		}
	}
	return true
}
