package fs

import (
	"context"
	"strings"
	"syscall"
)

// Read-only virtual xattrs on regular files.
const (
	xattrSHA256 = "user.taskerfs.sha256"
	xattrChunks = "user.taskerfs.chunks"
)

func (n *node) virtualXattr(name string) ([]byte, bool, syscall.Errno) {
	if name != xattrSHA256 && name != xattrChunks {
		return nil, false, 0
	}
	a, err := n.v().GetAttr(n.ino)
	if err != nil {
		return nil, true, toErrno("getxattr", err)
	}
	if !a.IsRegular() {
		return nil, true, syscall.ENODATA
	}
	switch name {
	case xattrSHA256:
		h, err := n.v().ContentHash(n.ino)
		if err != nil {
			return nil, true, toErrno("getxattr", err)
		}
		return []byte(h), true, 0
	default:
		list, err := n.v().ChunkList(n.ino)
		if err != nil {
			return nil, true, toErrno("getxattr", err)
		}
		return []byte(strings.Join(list, "\n")), true, 0
	}
}

// POSIX ACLs are not supported: storing them as opaque bytes would make
// cp -a, tar and editors believe a mode was applied when it was not;
// EOPNOTSUPP makes them fall back to chmod.
func isACL(name string) bool {
	return name == "system.posix_acl_access" || name == "system.posix_acl_default"
}

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
	if isACL(attr) {
		return 0, syscall.EOPNOTSUPP
	}
	if v, ok, errno := n.virtualXattr(attr); ok {
		if errno != 0 {
			return 0, errno
		}
		return copyXattr(v, dest)
	}
	v, err := n.v().Meta.GetXattr(n.ino, attr)
	if err != nil {
		return 0, toErrno("getxattr", err)
	}
	return copyXattr(v, dest)
}

func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	if isACL(attr) {
		return syscall.EOPNOTSUPP
	}
	if strings.HasPrefix(attr, "user.taskerfs.") {
		return syscall.EPERM
	}
	return toErrno("setxattr", n.v().Meta.SetXattr(n.ino, attr, data, flags))
}

func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	if isACL(attr) {
		return syscall.EOPNOTSUPP
	}
	if strings.HasPrefix(attr, "user.taskerfs.") {
		return syscall.EPERM
	}
	return toErrno("removexattr", n.v().Meta.RemoveXattr(n.ino, attr))
}

func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	names, err := n.v().Meta.ListXattr(n.ino)
	if err != nil {
		return 0, toErrno("listxattr", err)
	}
	var buf []byte
	for _, name := range names {
		buf = append(append(buf, name...), 0)
	}
	return copyXattr(buf, dest)
}
