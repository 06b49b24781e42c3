package fs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/taskerfs/taskerfs/vfs"
)

func (n *node) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	h, err := n.r.ops.Open(caller(ctx), n.n, flags)
	if err != nil {
		return nil, 0, errno(err)
	}
	return &handle{r: n.r, h: h}, openFlags(h), 0
}

// openFlags keeps the page cache across opens of stored files (every
// change to content goes through this kernel, so cached pages cannot go
// stale); generated content is read with direct I/O.
func openFlags(h *vfs.Handle) uint32 {
	if h.KeepCache() {
		return fuse.FOPEN_KEEP_CACHE
	}
	return fuse.FOPEN_DIRECT_IO
}

// handle is one open file description.
type handle struct {
	r *Root
	h *vfs.Handle
}

func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, err := h.r.ops.Read(caller(ctx), h.h, dest, off)
	if err != nil {
		return nil, errno(err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (h *handle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	n, err := h.r.ops.Write(caller(ctx), h.h, data, off)
	return uint32(n), errno(err)
}

func (h *handle) Flush(ctx context.Context) syscall.Errno {
	return errno(h.r.ops.Flush(caller(ctx), h.h))
}

func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return errno(h.r.ops.Fsync(caller(ctx), h.h, flags))
}

func (h *handle) Release(ctx context.Context) syscall.Errno {
	return errno(h.r.ops.Release(caller(ctx), h.h))
}

func (h *handle) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	a, err := h.r.ops.GetattrHandle(caller(ctx), h.h)
	if err != nil {
		return errno(err)
	}
	fillAttr(&a, &out.Attr)
	if h.h.Cacheable() {
		out.SetTimeout(h.r.opts.AttrTimeout)
	}
	return 0
}

func (h *handle) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	pos, err := h.r.ops.Lseek(caller(ctx), h.h, off, whence)
	return pos, errno(err)
}

func (h *handle) Allocate(ctx context.Context, off uint64, size uint64, mode uint32) syscall.Errno {
	return errno(h.r.ops.Fallocate(caller(ctx), h.h, off, size, mode))
}
