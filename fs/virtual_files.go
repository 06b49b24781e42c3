package fs

import (
	"context"
	"sort"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// roNode refuses every change: virtual trees are views, not storage.
type roNode struct{ gofs.Inode }

func (*roNode) Setattr(context.Context, gofs.FileHandle, *fuse.SetAttrIn, *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}
func (*roNode) Setxattr(context.Context, string, []byte, uint32) syscall.Errno { return syscall.EROFS }
func (*roNode) Removexattr(context.Context, string) syscall.Errno              { return syscall.EROFS }
func (*roNode) Create(context.Context, string, uint32, uint32, *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EROFS
}
func (*roNode) Mknod(context.Context, string, uint32, uint32, *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (*roNode) Symlink(context.Context, string, string, *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (*roNode) Link(context.Context, gofs.InodeEmbedder, string, *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (*roNode) Unlink(context.Context, string) syscall.Errno { return syscall.EROFS }
func (*roNode) Rename(context.Context, string, gofs.InodeEmbedder, string, uint32) syscall.Errno {
	return syscall.EROFS
}

// genFile is a read-only file whose content is generated at open; each
// open sees a fresh snapshot and the kernel caches nothing.
type genFile struct {
	roNode
	ino  uint64
	gen  func() ([]byte, error)
	mode uint32

	mu     sync.Mutex
	last   []byte    // what the last stat measured, so that an open
	lastAt time.Time // right after it serves the same bytes (same size)
}

// content generates fresh bytes, or reuses those a stat made a moment
// ago: tools stat a file and then read st_size bytes.
func (f *genFile) content(reuse bool) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if reuse && f.last != nil && time.Since(f.lastAt) < 200*time.Millisecond {
		return f.last, nil
	}
	d, err := f.gen()
	if err != nil {
		return nil, err
	}
	f.last, f.lastAt = d, time.Now()
	return d, nil
}

func (f *genFile) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | f.mode
	out.Ino = f.ino
	out.Nlink = 1
	if h, ok := fh.(*genHandle); ok {
		out.Size = uint64(len(h.data))
	} else if d, err := f.content(false); err == nil {
		out.Size = uint64(len(d))
	}
	t := uint64(time.Now().Unix())
	out.Mtime, out.Ctime, out.Atime = t, t, t
	out.SetTimeout(0)
	return 0
}

func (f *genFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		return nil, 0, syscall.EROFS
	}
	d, err := f.content(true)
	if err != nil {
		return nil, 0, toErrno("virtual file", err)
	}
	return &genHandle{data: d}, fuse.FOPEN_DIRECT_IO, 0
}

func (f *genFile) Read(ctx context.Context, fh gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h, ok := fh.(*genHandle)
	if !ok {
		return nil, syscall.EBADF
	}
	if off >= int64(len(h.data)) {
		return fuse.ReadResultData(nil), 0
	}
	return fuse.ReadResultData(h.data[off:min(int64(len(h.data)), off+int64(len(dest)))]), 0
}

type genHandle struct{ data []byte }

// staticDir is a read-only directory with a fixed set of generated files.
type staticDir struct {
	roNode
	ino   uint64
	files map[string]*genFile
}

func (d *staticDir) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFDIR | 0o555
	out.Ino = d.ino
	out.Nlink = 2
	out.SetTimeout(0)
	return 0
}

func (d *staticDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	f, ok := d.files[name]
	if !ok {
		return nil, syscall.ENOENT
	}
	if ch := d.GetChild(name); ch != nil {
		return ch, 0
	}
	var ao fuse.AttrOut
	f.Getattr(ctx, nil, &ao)
	out.Attr = ao.Attr
	out.SetEntryTimeout(0)
	out.SetAttrTimeout(0)
	ch := d.NewPersistentInode(ctx, f, gofs.StableAttr{Mode: syscall.S_IFREG, Ino: f.ino})
	d.AddChild(name, ch, true)
	return ch, 0
}

func (d *staticDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	names := make([]string, 0, len(d.files))
	for name := range d.files {
		names = append(names, name)
	}
	sort.Strings(names)
	entries := []fuse.DirEntry{{Name: ".", Mode: syscall.S_IFDIR, Ino: d.ino}, {Name: "..", Mode: syscall.S_IFDIR, Ino: 1}}
	for _, name := range names {
		entries = append(entries, fuse.DirEntry{Name: name, Mode: syscall.S_IFREG, Ino: d.files[name].ino})
	}
	return gofs.NewListDirStream(entries), 0
}

func (d *staticDir) Mkdir(context.Context, string, uint32, *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (d *staticDir) Rmdir(context.Context, string) syscall.Errno { return syscall.EROFS }

func (d *staticDir) node() (gofs.InodeEmbedder, uint32) { return d, syscall.S_IFDIR }

// newStaticDir builds a directory at /name holding generated files.
func newStaticDir(name string, files map[string]func() ([]byte, error)) *staticDir {
	d := &staticDir{ino: virtualIno("/" + name), files: map[string]*genFile{}}
	for fname, gen := range files {
		d.files[fname] = &genFile{ino: virtualIno("/" + name + "/" + fname), gen: gen, mode: 0o444}
	}
	return d
}
