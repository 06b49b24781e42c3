package fs

import (
	"context"
	"syscall"
)

func copyXattr(v []byte, dest []byte) (uint32, syscall.Errno) {
	if len(dest) == 0 {
		return uint32(len(v)), 0
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	v, err := n.r.ops.Getxattr(caller(ctx), n.n, attr)
	if err != nil {
		return 0, errno(err)
	}
	return copyXattr(v, dest)
}

func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return errno(n.r.ops.Setxattr(caller(ctx), n.n, attr, data, flags))
}

func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return errno(n.r.ops.Removexattr(caller(ctx), n.n, attr))
}

func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	buf, err := n.r.ops.Listxattr(caller(ctx), n.n)
	if err != nil {
		return 0, errno(err)
	}
	return copyXattr(buf, dest)
}
