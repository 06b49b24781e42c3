package fs

import (
	"context"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/taskerfs/taskerfs/writeback"
)

func (n *node) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if err := n.v().OpenFile(n.ino); err != nil {
		return nil, 0, toErrno("open", err)
	}
	if flags&syscall.O_TRUNC != 0 && flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		if err := n.v().WB.Truncate(n.ino, 0); err != nil {
			n.v().Release(n.ino)
			return nil, 0, toErrno("open", err)
		}
	}
	return n.root.newHandle(n.ino), n.root.openFlags(), 0
}

// handle is one open file description.
type handle struct {
	root *Root
	ino  uint64

	mu    sync.Mutex // guards cache
	cache writeback.ReadCache
}

func (r *Root) newHandle(ino uint64) *handle { return &handle{root: r, ino: ino} }

// openFlags keeps the page cache across opens: every change to content
// goes through this kernel, so cached pages cannot go stale.
func (r *Root) openFlags() uint32 { return fuse.FOPEN_KEEP_CACHE }

func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n, err := h.root.v.WB.Read(h.ino, dest, off, &h.cache)
	if err != nil {
		return nil, toErrno("read", err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (h *handle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	n, err := h.root.v.WB.Write(h.ino, data, off)
	if err != nil {
		return uint32(n), toErrno("write", err)
	}
	return uint32(n), 0
}

// Flush never commits (one open can see several FLUSHes); it reports a
// persist error of an earlier commit so that close() can return it.
func (h *handle) Flush(ctx context.Context) syscall.Errno {
	return toErrno("flush", h.root.v.WB.Flush(h.ino))
}

func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return toErrno("fsync", h.root.v.WB.Fsync(h.ino))
}

func (h *handle) Release(ctx context.Context) syscall.Errno {
	return toErrno("release", h.root.v.Release(h.ino))
}

func (h *handle) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	a, err := h.root.v.GetAttr(h.ino)
	if err != nil {
		return toErrno("getattr", err)
	}
	fillAttr(&a, &out.Attr)
	out.SetTimeout(h.root.opts.AttrTimeout)
	return 0
}

// Lseek treats the whole file as data: SEEK_DATA stays, SEEK_HOLE goes to
// EOF, both ENXIO at or past EOF, which is what lseek(2) allows.
func (h *handle) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	a, err := h.root.v.GetAttr(h.ino)
	if err != nil {
		return 0, toErrno("lseek", err)
	}
	if off >= a.Size {
		return 0, syscall.ENXIO
	}
	const seekData, seekHole = 3, 4
	switch whence {
	case seekData:
		return off, 0
	case seekHole:
		return a.Size, 0
	}
	return 0, syscall.EINVAL
}

// Allocate supports plain preallocation (which only extends the size:
// blocks are not reserved in a content store), KEEP_SIZE and punching
// holes.
func (h *handle) Allocate(ctx context.Context, off uint64, size uint64, mode uint32) syscall.Errno {
	const keepSize, punchHole = 0x1, 0x2
	v := h.root.v
	a, err := v.GetAttr(h.ino)
	if err != nil {
		return toErrno("fallocate", err)
	}
	switch mode {
	case 0:
		if end := off + size; end > a.Size {
			return toErrno("fallocate", v.WB.Truncate(h.ino, end))
		}
		return 0
	case keepSize:
		return 0
	case keepSize | punchHole:
		if off >= a.Size {
			return 0
		}
		end := min(off+size, a.Size)
		zero := make([]byte, min(end-off, 1<<20))
		for pos := off; pos < end; {
			n := min(uint64(len(zero)), end-pos)
			if _, err := v.WB.Write(h.ino, zero[:n], int64(pos)); err != nil {
				return toErrno("fallocate", err)
			}
			pos += n
		}
		return 0
	}
	return syscall.EOPNOTSUPP
}
