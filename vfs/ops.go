package vfs

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/taskerfs/taskerfs/meta"
	"github.com/taskerfs/taskerfs/writeback"
)

// The seam: every operation of the mounted filesystem is a method of Ops
// taking the caller (Ctx) and returning nil or a syscall.Errno. The FUSE
// adapter (package fs) only translates go-fuse types to these calls and
// back; every rule (POSIX, reserved names, permissions of the views) and
// every view lives here. Each call is counted, timed and access-logged.

// Attr is an inode's attributes.
type Attr = meta.Attr

// BlobInfo describes a stored blob.
type BlobInfo = meta.BlobInfo

// MaxNameLen is the longest name a directory entry may have.
const MaxNameLen = meta.MaxNameLen

// IOSize is a regular file's preferred I/O size (st_blksize): one chunk,
// the unit the store hashes, compresses and commits. Tools that size their
// buffers by it (cp, cat, dd without bs) then send 1 MiB WRITEs, one round
// trip where 4 KiB would take 256 and 128 KiB 8.
const IOSize = meta.ChunkSize

// Node names an inode of the mount: a stored one or a view node.
type Node struct {
	ino     uint64
	vn      *vnode
	nocache bool // in the trash: what a lookup finds depends on the caller
}

// Ino is the node's inode number.
func (n Node) Ino() uint64 {
	if n.vn != nil {
		return n.vn.ino()
	}
	return n.ino
}

// Cacheable is false for view nodes, whose names and attributes change
// behind the kernel's back (and differ per caller).
func (n Node) Cacheable() bool { return n.vn == nil && !n.nocache }

// Entry is a looked-up or created node with its attributes.
type Entry struct {
	Node Node
	Attr Attr
}

// Ops is the filesystem as a mount sees it.
type Ops struct{ v *FS }

// Ops returns the operations of v.
func (v *FS) Ops() *Ops { return &Ops{v: v} }

// Root is the mount's root directory.
func (o *Ops) Root() Node { return Node{ino: meta.RootIno} }

func (o *Ops) entry(c *Ctx, vn *vnode) (Entry, error) {
	a, err := o.v.vattr(c, vn, nil)
	return Entry{Node: Node{vn: vn}, Attr: a}, err
}

func (o *Ops) realEntry(a Attr) Entry {
	return Entry{Node: Node{ino: a.Ino}, Attr: a}
}

func (o *Ops) begin() time.Time { return time.Now() }

// Lookup resolves name in parent.
func (o *Ops) Lookup(c *Ctx, parent Node, name string) (e Entry, err error) {
	defer o.v.done(c, "lookup", o.begin(), &err, func() string { return fmt.Sprintf("%d,%s", parent.Ino(), name) })
	if parent.vn != nil {
		if parent.vn.lookup == nil {
			return e, syscall.ENOTDIR
		}
		vn, err := parent.vn.lookup(c, name)
		if err != nil {
			return e, err
		}
		if vn == nil {
			return e, syscall.ENOENT
		}
		return o.entry(c, vn)
	}
	if parent.ino == meta.RootIno {
		if vn := o.v.rootView(name); vn != nil {
			return o.entry(c, vn)
		}
		if name == TrashName {
			o.v.trashFresh()
			a, err := o.v.trashEntry()
			e = o.realEntry(a)
			e.Node.nocache = true
			return e, err
		}
	}
	a, err := o.v.Lookup(parent.ino, name)
	if err != nil {
		return e, err
	}
	if o.v.inTrash(parent.ino) { // view_trash.go
		if o.v.trashHides(c, &a) {
			return e, syscall.ENOENT
		}
		e = o.realEntry(a)
		e.Node.nocache = true
		return e, nil
	}
	return o.realEntry(a), nil
}

// Getattr returns n's attributes; h is an open handle of n, or nil.
func (o *Ops) Getattr(c *Ctx, n Node, h *Handle) (a Attr, err error) {
	defer o.v.done(c, "getattr", o.begin(), &err, func() string { return fmt.Sprint(n.Ino()) })
	if n.vn != nil {
		return o.v.vattr(c, n.vn, h)
	}
	return o.v.GetAttr(n.ino)
}

// GetattrHandle returns the attributes of an open file.
func (o *Ops) GetattrHandle(c *Ctx, h *Handle) (a Attr, err error) {
	defer o.v.done(c, "getattr", o.begin(), &err, func() string { return fmt.Sprint(h.Ino()) })
	return o.v.handleAttr(c, h)
}

// Setattr changes attributes (mode, owner, times, size).
func (o *Ops) Setattr(c *Ctx, n Node, in SetAttrIn) (a Attr, err error) {
	defer o.v.done(c, "setattr", o.begin(), &err, func() string { return fmt.Sprint(n.Ino()) })
	if n.vn != nil {
		return a, syscall.EROFS
	}
	if err := o.v.trashReadOnly(n.ino); err != nil {
		return a, err
	}
	return o.v.SetAttr(n.ino, in)
}

// mknod creates any kind of node as the caller.
func (o *Ops) mknod(c *Ctx, parent Node, name string, nn meta.NewNode) (Entry, error) {
	return o.mknodThen(c, parent, name, nn, nil)
}

// mknodThen is mknod running then (when set) in the creating transaction.
func (o *Ops) mknodThen(c *Ctx, parent Node, name string, nn meta.NewNode, then func(a *meta.Attr) error) (Entry, error) {
	if parent.vn != nil {
		return Entry{}, syscall.EROFS
	}
	if o.v.reserved(parent.ino, name) {
		return Entry{}, syscall.EEXIST
	}
	if err := o.v.trashReadOnly(parent.ino); err != nil {
		return Entry{}, err
	}
	nn.Uid, nn.Gid = c.Uid, c.Gid
	var a meta.Attr
	err := o.v.meta.Update(false, func(tx *meta.Tx) error {
		var err error
		if a, err = tx.Create(parent.ino, name, nn); err != nil || then == nil {
			return err
		}
		return then(&a)
	})
	if err != nil {
		return Entry{}, err
	}
	return o.realEntry(a), nil
}

// Mkdir makes a directory; in search/ it saves a query.
func (o *Ops) Mkdir(c *Ctx, parent Node, name string, mode uint32) (e Entry, err error) {
	defer o.v.done(c, "mkdir", o.begin(), &err, func() string { return fmt.Sprintf("%d,%s,%#o", parent.Ino(), name, mode) })
	if vn := parent.vn; vn != nil {
		if vn.mkdir == nil {
			return e, syscall.EROFS
		}
		if err := vn.mkdir(c, name); err != nil {
			return e, err
		}
		child, err := vn.lookup(c, name)
		if err != nil || child == nil {
			return e, firstErr(err, syscall.ENOENT)
		}
		return o.entry(c, child)
	}
	return o.mknod(c, parent, name, meta.NewNode{Mode: syscall.S_IFDIR | mode&0o7777})
}

// Mknod makes a special file, fifo or socket (or a regular file).
func (o *Ops) Mknod(c *Ctx, parent Node, name string, mode, rdev uint32) (e Entry, err error) {
	defer o.v.done(c, "mknod", o.begin(), &err, func() string { return fmt.Sprintf("%d,%s,%#o,%d", parent.Ino(), name, mode, rdev) })
	return o.mknod(c, parent, name, meta.NewNode{Mode: mode, Rdev: rdev})
}

// Symlink makes a symbolic link.
func (o *Ops) Symlink(c *Ctx, parent Node, target, name string) (e Entry, err error) {
	defer o.v.done(c, "symlink", o.begin(), &err, func() string { return fmt.Sprintf("%d,%s,%s", parent.Ino(), name, target) })
	if len(target) > 4095 {
		return e, syscall.ENAMETOOLONG
	}
	return o.mknod(c, parent, name, meta.NewNode{Mode: syscall.S_IFLNK | 0o777, Target: target})
}

// Create makes a regular file and opens it.
func (o *Ops) Create(c *Ctx, parent Node, name string, flags, mode uint32) (e Entry, h *Handle, err error) {
	defer o.v.done(c, "create", o.begin(), &err, func() string { return fmt.Sprintf("%d,%s,%#o,%#x", parent.Ino(), name, mode, flags) })
	// Opened in the creating transaction: one namespace change, and no
	// unlink can come between the file's creation and its first handle.
	var opened uint64
	e, err = o.mknodThen(c, parent, name, meta.NewNode{Mode: syscall.S_IFREG | mode&0o7777}, func(a *meta.Attr) error {
		o.v.wb.OpenNew(a.Ino)
		opened = a.Ino
		return nil
	})
	if err != nil {
		if opened != 0 {
			o.v.wb.Release(opened) // the file was not created
		}
		return e, nil, err
	}
	return e, &Handle{ino: e.Attr.Ino, keep: true}, nil
}

// Tmpfile makes an open file in no directory (O_TMPFILE); linkat can give
// it a name later.
func (o *Ops) Tmpfile(c *Ctx, parent Node, flags, mode uint32) (e Entry, h *Handle, err error) {
	defer o.v.done(c, "tmpfile", o.begin(), &err, func() string { return fmt.Sprintf("%d,%#o", parent.Ino(), mode) })
	if parent.vn != nil {
		return e, nil, syscall.EROFS
	}
	a, err := o.v.CreateUnlinked(meta.NewNode{Mode: syscall.S_IFREG | mode&0o7777, Uid: c.Uid, Gid: c.Gid})
	if err != nil {
		return e, nil, err
	}
	return o.realEntry(a), &Handle{ino: a.Ino, keep: true}, nil
}

// Link gives n another name.
func (o *Ops) Link(c *Ctx, n, newParent Node, name string) (e Entry, err error) {
	defer o.v.done(c, "link", o.begin(), &err, func() string { return fmt.Sprintf("%d,%d,%s", n.Ino(), newParent.Ino(), name) })
	switch {
	case n.vn != nil:
		return e, syscall.EXDEV
	case newParent.vn != nil:
		return e, syscall.EROFS
	case o.v.reserved(newParent.ino, name):
		return e, syscall.EEXIST
	case o.v.inTrash(newParent.ino):
		return e, syscall.EROFS
	}
	a, err := o.v.meta.Link(n.ino, newParent.ino, name)
	if err != nil {
		return e, err
	}
	o.v.wb.Attr(&a)
	return o.realEntry(a), nil
}

// Unlink removes a name of a non-directory.
func (o *Ops) Unlink(c *Ctx, parent Node, name string) (err error) {
	defer o.v.done(c, "unlink", o.begin(), &err, func() string { return fmt.Sprintf("%d,%s", parent.Ino(), name) })
	switch {
	case parent.vn != nil:
		return syscall.EROFS
	case o.v.reserved(parent.ino, name):
		return syscall.EPERM
	}
	return o.v.meta.Unlink(parent.ino, name)
}

// Rmdir removes an empty directory; in search/ it forgets a saved query.
func (o *Ops) Rmdir(c *Ctx, parent Node, name string) (err error) {
	defer o.v.done(c, "rmdir", o.begin(), &err, func() string { return fmt.Sprintf("%d,%s", parent.Ino(), name) })
	switch {
	case parent.vn != nil && parent.vn.rmdir != nil:
		return parent.vn.rmdir(c, name)
	case parent.vn != nil:
		return syscall.EROFS
	case o.v.reserved(parent.ino, name):
		return syscall.EPERM
	}
	return o.v.meta.Rmdir(parent.ino, name)
}

// Rename moves a name (flags: RENAME_NOREPLACE, RENAME_EXCHANGE).
func (o *Ops) Rename(c *Ctx, parent Node, name string, newParent Node, newName string, flags uint32) (err error) {
	defer o.v.done(c, "rename", o.begin(), &err, func() string {
		return fmt.Sprintf("%d,%s,%d,%s,%#x", parent.Ino(), name, newParent.Ino(), newName, flags)
	})
	switch {
	case parent.vn != nil || newParent.vn != nil:
		return syscall.EROFS // every view is read-only
	case o.v.reserved(parent.ino, name) || o.v.reserved(newParent.ino, newName):
		return syscall.EPERM
	case o.v.inTrash(newParent.ino):
		return syscall.EROFS // out of the trash (a restore) only
	case flags&unix.RENAME_EXCHANGE != 0 && o.v.inTrash(parent.ino):
		return syscall.EROFS // an exchange would move the other entry into the trash
	}
	return o.v.meta.Rename(parent.ino, name, newParent.ino, newName, flags)
}

// Readlink returns a symlink's target.
func (o *Ops) Readlink(c *Ctx, n Node) (t string, err error) {
	defer o.v.done(c, "readlink", o.begin(), &err, func() string { return fmt.Sprint(n.Ino()) })
	if n.vn != nil {
		if n.vn.mode&syscall.S_IFMT != syscall.S_IFLNK {
			return "", syscall.EINVAL
		}
		return n.vn.target, nil
	}
	return o.v.meta.Readlink(n.ino)
}

// Statfs reports the data dir's disk.
func (o *Ops) Statfs(c *Ctx, n Node) (st unix.Statfs_t, err error) {
	defer o.v.done(c, "statfs", o.begin(), &err, func() string { return fmt.Sprint(n.Ino()) })
	return o.v.Statfs()
}

// POSIX ACLs are not supported: storing them as opaque bytes would make
// cp -a, tar and editors believe a mode was applied when it was not;
// EOPNOTSUPP makes them fall back to chmod.
func isACL(name string) bool {
	return name == "system.posix_acl_access" || name == "system.posix_acl_default"
}

// unsupportedXattr says whether the mount refuses name with EOPNOTSUPP: the
// POSIX ACLs (the kernel checks the modes alone) and SELinux labels. The
// kernel labels a FUSE mount by policy (genfscon) and never reads a label
// from it, so taskerfs keeps none; saying so instead of answering ENODATA
// matters, because `ls -l` asks for security.selinux on every file it lists
// (one round trip through the daemon each) until a file of the device
// answers "not supported", after which it stops asking for that device.
func unsupportedXattr(name string) bool {
	return isACL(name) || name == xattrSELinux
}

const xattrSELinux = "security.selinux"

// Getxattr reads an extended attribute, including the read-only
// user.taskerfs.sha256 and user.taskerfs.chunks of regular files.
func (o *Ops) Getxattr(c *Ctx, n Node, name string) (val []byte, err error) {
	defer o.v.done(c, "getxattr", o.begin(), &err, func() string { return fmt.Sprintf("%d,%s", n.Ino(), name) })
	if unsupportedXattr(name) {
		return nil, syscall.EOPNOTSUPP
	}
	if n.vn != nil {
		if val, ok := n.vn.xattrs[name]; ok {
			return val, nil
		}
		return nil, syscall.ENODATA
	}
	if name == XattrSHA256 || name == XattrChunks {
		a, err := o.v.GetAttr(n.ino)
		if err != nil {
			return nil, err
		}
		if !a.IsRegular() {
			return nil, syscall.ENODATA
		}
		if name == XattrSHA256 {
			h, err := o.v.ContentHash(n.ino)
			return []byte(h), err
		}
		list, err := o.v.ChunkList(n.ino)
		return []byte(strings.Join(list, "\n")), err
	}
	return o.v.meta.GetXattr(n.ino, name)
}

// Setxattr sets an extended attribute; user.taskerfs.* are read-only.
func (o *Ops) Setxattr(c *Ctx, n Node, name string, val []byte, flags uint32) (err error) {
	defer o.v.done(c, "setxattr", o.begin(), &err, func() string { return fmt.Sprintf("%d,%s,%d", n.Ino(), name, len(val)) })
	switch {
	case unsupportedXattr(name):
		return syscall.EOPNOTSUPP
	case n.vn != nil || o.v.inTrash(n.ino):
		return syscall.EROFS
	case strings.HasPrefix(name, "user.taskerfs."):
		return syscall.EPERM
	}
	return o.v.meta.SetXattr(n.ino, name, val, flags)
}

// Removexattr removes an extended attribute.
func (o *Ops) Removexattr(c *Ctx, n Node, name string) (err error) {
	defer o.v.done(c, "removexattr", o.begin(), &err, func() string { return fmt.Sprintf("%d,%s", n.Ino(), name) })
	switch {
	case unsupportedXattr(name):
		return syscall.EOPNOTSUPP
	case n.vn != nil || o.v.inTrash(n.ino):
		return syscall.EROFS
	case strings.HasPrefix(name, "user.taskerfs."):
		return syscall.EPERM
	}
	return o.v.meta.RemoveXattr(n.ino, name)
}

// Listxattr lists the names of n's extended attributes, NUL-terminated.
func (o *Ops) Listxattr(c *Ctx, n Node) (buf []byte, err error) {
	defer o.v.done(c, "listxattr", o.begin(), &err, func() string { return fmt.Sprint(n.Ino()) })
	var names []string
	if n.vn != nil {
		for name := range n.vn.xattrs {
			names = append(names, name)
		}
	} else if names, err = o.v.meta.ListXattr(n.ino); err != nil {
		return nil, err
	}
	for _, name := range names {
		if unsupportedXattr(name) { // stored by an older build
			continue
		}
		buf = append(append(buf, name...), 0)
	}
	return buf, nil
}

// Handle is one open file description.
type Handle struct {
	ino  uint64
	vn   *vnode
	data []byte     // a view file's content, fixed at open
	log  *logReader // the access log
	keep bool       // the kernel may keep cached pages across opens

	mu    sync.Mutex // guards cache
	cache writeback.ReadCache
}

// KeepCache reports whether the kernel may keep the file's cached pages
// across opens (true for stored files: every change goes through this
// kernel; false for generated content, which is read with direct I/O).
func (h *Handle) KeepCache() bool { return h.keep }

func writeFlags(flags uint32) bool {
	return flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0
}

// Open opens a file; O_TRUNC empties it.
func (o *Ops) Open(c *Ctx, n Node, flags uint32) (h *Handle, err error) {
	defer o.v.done(c, "open", o.begin(), &err, func() string { return fmt.Sprintf("%d,%#x", n.Ino(), flags) })
	if vn := n.vn; vn != nil {
		return o.v.openView(c, vn, flags)
	}
	if writeFlags(flags) && o.v.inTrash(n.ino) {
		return nil, syscall.EROFS
	}
	if err := o.v.OpenFile(n.ino); err != nil {
		return nil, err
	}
	if flags&syscall.O_TRUNC != 0 && flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		o.v.beforeReplace(n.ino) // the trash keeps the last closed version
		if err := o.v.wb.Truncate(n.ino, 0); err != nil {
			o.v.Release(n.ino)
			return nil, err
		}
	}
	h = &Handle{ino: n.ino, keep: true}
	h.cache.Stream()
	return h, nil
}

func (v *FS) openView(c *Ctx, vn *vnode, flags uint32) (*Handle, error) {
	if vn.mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, syscall.EISDIR
	}
	if writeFlags(flags) {
		return nil, syscall.EROFS
	}
	for _, check := range []func(*Ctx) error{vn.valid, vn.mayOpen} {
		if check != nil {
			if err := check(c); err != nil {
				return nil, err
			}
		}
	}
	if vn.stream != nil {
		return &Handle{vn: vn, log: vn.stream.open()}, nil
	}
	if vn.readAt != nil {
		return &Handle{vn: vn}, nil
	}
	var data []byte
	var err error
	if vn.keep {
		data, err = vn.content(c)
	} else {
		data, err = vn.generate(c, true)
	}
	if err != nil {
		return nil, err
	}
	return &Handle{vn: vn, data: data, keep: vn.keep}, nil
}

// Read reads at off into dest.
func (o *Ops) Read(c *Ctx, h *Handle, dest []byte, off int64) (n int, err error) {
	if h.log != nil { // reading the access log is not logged in it
		return h.log.read(c, dest)
	}
	defer o.v.done(c, "read", o.begin(), &err, func() string { return fmt.Sprintf("%d,%d,%d", h.Ino(), len(dest), off) })
	if h.vn != nil && h.vn.readAt != nil {
		return h.vn.readAt(c, dest, off)
	}
	if h.vn != nil {
		if off >= int64(len(h.data)) {
			return 0, nil
		}
		return copy(dest, h.data[off:]), nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return o.v.wb.Read(h.ino, dest, off, &h.cache)
}

// Cacheable is false for a view file, whose attributes the kernel must
// not cache.
func (h *Handle) Cacheable() bool { return h.vn == nil }

// Ino is the open file's inode number.
func (h *Handle) Ino() uint64 {
	if h.vn != nil {
		return h.vn.ino()
	}
	return h.ino
}

// Write writes data at off.
func (o *Ops) Write(c *Ctx, h *Handle, data []byte, off int64) (n int, err error) {
	defer o.v.done(c, "write", o.begin(), &err, func() string { return fmt.Sprintf("%d,%d,%d", h.Ino(), len(data), off) })
	if h.vn != nil {
		return 0, syscall.EBADF
	}
	return o.v.wb.Write(h.ino, data, off)
}

// Flush never commits (one open can see several FLUSHes); it reports a
// persist error of an earlier commit so that close() can return it.
func (o *Ops) Flush(c *Ctx, h *Handle) (err error) {
	if h.vn != nil {
		return nil
	}
	defer o.v.done(c, "flush", o.begin(), &err, func() string { return fmt.Sprint(h.ino) })
	return o.v.wb.Flush(h.ino)
}

// Fsync makes the file's content durable.
func (o *Ops) Fsync(c *Ctx, h *Handle, flags uint32) (err error) {
	defer o.v.done(c, "fsync", o.begin(), &err, func() string { return fmt.Sprint(h.Ino()) })
	if h.vn != nil {
		return nil
	}
	return o.v.wb.Fsync(h.ino)
}

// Release drops the handle; an unlinked file is freed at its last close.
func (o *Ops) Release(c *Ctx, h *Handle) (err error) {
	if h.log != nil {
		h.vn.stream.close(h.log)
		return nil
	}
	defer o.v.done(c, "release", o.begin(), &err, func() string { return fmt.Sprint(h.Ino()) })
	if h.vn != nil {
		return nil
	}
	h.mu.Lock()
	h.cache.Release()
	h.mu.Unlock()
	return o.v.Release(h.ino)
}

// Lseek treats the whole file as data: SEEK_DATA stays, SEEK_HOLE goes to
// EOF, both ENXIO at or past EOF, which is what lseek(2) allows.
func (o *Ops) Lseek(c *Ctx, h *Handle, off uint64, whence uint32) (pos uint64, err error) {
	defer o.v.done(c, "lseek", o.begin(), &err, func() string { return fmt.Sprintf("%d,%d,%d", h.Ino(), off, whence) })
	a, err := o.v.handleAttr(c, h)
	if err != nil {
		return 0, err
	}
	if off >= a.Size {
		return 0, syscall.ENXIO
	}
	switch whence {
	case unix.SEEK_DATA:
		return off, nil
	case unix.SEEK_HOLE:
		return a.Size, nil
	}
	return 0, syscall.EINVAL
}

func (v *FS) handleAttr(c *Ctx, h *Handle) (Attr, error) {
	if h.vn != nil {
		return v.vattr(c, h.vn, h)
	}
	return v.GetAttr(h.ino)
}

// Fallocate supports plain preallocation (which only extends the size:
// blocks are not reserved in a content store), KEEP_SIZE, punching holes
// and zeroing ranges (FALLOC_FL_ZERO_RANGE, with or without KEEP_SIZE).
func (o *Ops) Fallocate(c *Ctx, h *Handle, off, size uint64, mode uint32) (err error) {
	defer o.v.done(c, "fallocate", o.begin(), &err, func() string { return fmt.Sprintf("%d,%d,%d,%#x", h.Ino(), off, size, mode) })
	if h.vn != nil {
		return syscall.EBADF
	}
	a, err := o.v.GetAttr(h.ino)
	if err != nil {
		return err
	}
	switch mode {
	case 0:
		if end := off + size; end > a.Size {
			return o.v.wb.Truncate(h.ino, end)
		}
		return nil
	case unix.FALLOC_FL_KEEP_SIZE:
		return nil
	case unix.FALLOC_FL_KEEP_SIZE | unix.FALLOC_FL_PUNCH_HOLE:
		return o.zeroRange(h.ino, off, min(off+size, a.Size))
	case unix.FALLOC_FL_ZERO_RANGE, unix.FALLOC_FL_ZERO_RANGE | unix.FALLOC_FL_KEEP_SIZE:
		// The part inside the file reads as zeros afterwards; without
		// KEEP_SIZE the file grows to cover the range (the new part is
		// a hole, like a truncate up).
		if err := o.zeroRange(h.ino, off, min(off+size, a.Size)); err != nil {
			return err
		}
		if end := off + size; mode&unix.FALLOC_FL_KEEP_SIZE == 0 && end > a.Size {
			return o.v.wb.Truncate(h.ino, end)
		}
		return nil
	}
	return syscall.EOPNOTSUPP
}

// zeroRange makes [off, end) of ino read as zeros. The zeros go through
// the write path one chunk at a time (so the dirty budget bounds them);
// a chunk that ends up all zeros is stored as a hole, not as bytes.
func (o *Ops) zeroRange(ino, off, end uint64) error {
	if off >= end {
		return nil
	}
	zero := make([]byte, min(end-off, 1<<20))
	for pos := off; pos < end; {
		n := min(uint64(len(zero)), end-pos)
		if _, err := o.v.wb.Write(ino, zero[:n], int64(pos)); err != nil {
			return err
		}
		pos += n
	}
	return nil
}

// DirEntry is one entry of a directory listing.
type DirEntry struct {
	Name string
	Ino  uint64
	Mode uint32 // type bits
	Off  uint64 // the offset of the entry after this one
	vn   *vnode
	attr *meta.Attr // the inode as the page read it (see DirHandle.attrVer)
}

// DirHandle is an open directory: its entries are read in pages, so a
// directory of any size is never loaded whole. Offsets count entries.
type DirHandle struct {
	n     Node
	fixed []DirEntry // ".", ".." and, in the root, the views
	pos   uint64     // entries returned so far
	last  string     // name of the last listed entry after the fixed ones
	page  []DirEntry
	eof   bool
	prev  *DirEntry // the entry returned last, for READDIRPLUS lookups
	trash bool      // a trash directory listed for a caller who sees part of it
	// attrVer is the store's Version when the page's inodes were read
	// (odd: not read, or not as one state): an entry's attr is current
	// while the Version is still attrVer.
	attrVer uint64
}

const dirPage = 256

// Opendir opens a directory for listing.
func (o *Ops) Opendir(c *Ctx, n Node) (h *DirHandle, err error) {
	defer o.v.done(c, "opendir", o.begin(), &err, func() string { return fmt.Sprint(n.Ino()) })
	if vn := n.vn; vn != nil {
		if !vn.isDir() {
			return nil, syscall.ENOTDIR
		}
		if vn.valid != nil {
			if err := vn.valid(c); err != nil {
				return nil, err
			}
		}
		return &DirHandle{n: n, fixed: []DirEntry{
			{Name: ".", Ino: vn.ino(), Mode: syscall.S_IFDIR},
			{Name: "..", Mode: syscall.S_IFDIR},
		}}, nil
	}
	a, err := o.v.meta.GetAttr(n.ino)
	if err != nil {
		return nil, err
	}
	if !a.IsDir() {
		return nil, syscall.ENOTDIR
	}
	parent := a.Parent
	if n.ino == meta.RootIno {
		parent = meta.RootIno
	}
	o.v.OpenDir(n.ino)
	h = &DirHandle{n: n, fixed: []DirEntry{
		{Name: ".", Ino: n.ino, Mode: syscall.S_IFDIR},
		{Name: "..", Ino: parent, Mode: syscall.S_IFDIR},
	}}
	if n.ino == meta.RootIno {
		for _, name := range o.v.viewNames() {
			vn := o.v.rootView(name)
			if vn == nil {
				continue // the real entry is listed instead
			}
			h.fixed = append(h.fixed, DirEntry{Name: name, Ino: vn.ino(), Mode: syscall.S_IFDIR, vn: vn})
		}
		if o.v.trashIno != 0 {
			h.fixed = append(h.fixed, DirEntry{Name: TrashName, Ino: o.v.trashIno, Mode: syscall.S_IFDIR})
		}
	}
	if o.v.inTrash(n.ino) {
		o.v.trashFresh()
		h.trash = !o.v.privileged(c)
	}
	return h, nil
}

// Readdir returns the next entry, or nil at the end.
func (o *Ops) Readdir(c *Ctx, h *DirHandle) (e *DirEntry, err error) {
	defer o.v.done(c, "readdir", o.begin(), &err, func() string { return fmt.Sprintf("%d,%d", h.n.Ino(), h.pos) })
	if h.pos < uint64(len(h.fixed)) {
		e := h.fixed[h.pos]
		h.pos++
		e.Off = h.pos
		h.prev = &e
		return &e, nil
	}
	if len(h.page) == 0 && !h.eof {
		if err := o.v.readdirPage(c, h); err != nil {
			return nil, err
		}
	}
	if len(h.page) == 0 {
		return nil, nil
	}
	e = &h.page[0]
	h.page = h.page[1:]
	h.last = e.Name
	h.pos++
	e.Off = h.pos
	h.prev = e
	return e, nil
}

func (v *FS) readdirPage(c *Ctx, h *DirHandle) error {
	if vn := h.n.vn; vn != nil {
		err := vn.list(c, h.last, func(ch *vnode) bool {
			h.page = append(h.page, DirEntry{Name: ch.name(), Ino: ch.ino(), Mode: ch.mode & syscall.S_IFMT, vn: ch})
			return len(h.page) < dirPage
		})
		h.eof = len(h.page) < dirPage
		return err
	}
	last, n := h.last, 0
	err := v.meta.ReadDir(h.n.ino, h.last, func(e meta.DirEntry) bool {
		last, n = e.Name, n+1
		if h.trash { // view_trash.go
			if a, err := v.meta.GetAttr(e.Ino); err != nil || v.trashHides(c, &a) {
				return n < dirPage
			}
		}
		h.page = append(h.page, DirEntry{Name: e.Name, Ino: e.Ino, Mode: e.Mode})
		return n < dirPage
	})
	h.eof = n < dirPage
	if len(h.page) == 0 && !h.eof {
		h.last = last // all hidden: the next page starts after them
		return v.readdirPage(c, h)
	}
	if err == nil && !h.trash {
		v.readPageAttrs(h)
	}
	return err
}

// readPageAttrs reads the inodes of a page of stored entries in one pass
// (meta.PeekAttrs), for the READDIRPLUS lookups that follow: one point
// read per entry was a fifth of the daemon's CPU in a cold ls -lR.
// Nothing is kept unless the reads were one state of the store.
func (v *FS) readPageAttrs(h *DirHandle) {
	h.attrVer = 1
	order := make([]int, 0, len(h.page))
	for i := range h.page {
		if h.page[i].Ino != 0 {
			order = append(order, i)
		}
	}
	if len(order) == 0 {
		return
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(h.page[a].Ino, h.page[b].Ino) })
	inos := make([]uint64, 0, len(order))
	for _, i := range order {
		if ino := h.page[i].Ino; len(inos) == 0 || inos[len(inos)-1] != ino {
			inos = append(inos, ino)
		}
	}
	attrs := make(map[uint64]*meta.Attr, len(inos))
	v0 := v.meta.Version()
	err := v.meta.PeekAttrs(inos, func(a meta.Attr) { attrs[a.Ino] = &a })
	if err != nil || v0%2 != 0 || v.meta.Version() != v0 {
		return
	}
	for i := range h.page {
		h.page[i].attr = attrs[h.page[i].Ino]
	}
	h.attrVer = v0
}

// Seekdir moves to an offset an earlier Readdir returned (or 0).
func (o *Ops) Seekdir(c *Ctx, h *DirHandle, off uint64) error {
	h.pos, h.last, h.page, h.eof, h.prev = 0, "", nil, false, nil
	for h.pos < off {
		e, err := o.Readdir(c, h)
		if err != nil {
			return err
		}
		if e == nil {
			break
		}
	}
	return nil
}

// LookupListed looks up a name just listed by h (READDIRPLUS): a view's
// entry is served from the listing, without computing it again.
//
// A stored entry is served from the inode the listing named, without
// reading the directory entry again, when the inode still records this
// very name in this directory as its path (a directory's only name, or a
// file's first): that is the entry a lookup would find. Anything else (a
// hard link, a name changed since the listing, the root with its views,
// the trash with its per-caller answers) is looked up.
func (o *Ops) LookupListed(c *Ctx, h *DirHandle, name string) (e Entry, err error) {
	p := h.prev
	if p != nil && p.Name == name && p.vn != nil && p.vn.generated() {
		// Its size is its content's length: a listing would compute every
		// generated file it lists (a query dir's .results.json is a top
		// 100 with snippets). The entry goes without attributes; a caller
		// who stats or opens the file gets them then.
		return e, ErrNoListedEntry
	}
	if p != nil && p.Name == name && p.vn != nil {
		defer o.v.done(c, "lookup", o.begin(), &err, func() string { return fmt.Sprintf("%d,%s", h.n.Ino(), name) })
		return o.entry(c, p.vn)
	}
	if p != nil && p.Name == name && p.Ino != 0 && h.n.vn == nil && h.n.ino != meta.RootIno && !h.trash && !o.v.inTrash(h.n.ino) {
		// Not filling the attr cache: the kernel keeps what this reply
		// tells it for the attr timeout, and a listing of a large tree
		// would otherwise wait for the cache to apply a Set per entry.
		var a meta.Attr
		var aerr error
		if p.attr != nil && o.v.meta.Version() == h.attrVer {
			a = *p.attr // read with its page, and nothing committed since
		} else {
			a, aerr = o.v.meta.PeekAttr(p.Ino)
		}
		if aerr == nil && a.IsRegular() {
			o.v.wb.Attr(&a)
		}
		if aerr == nil && a.Nlink > 0 && a.Parent == h.n.ino && a.Name == name {
			defer o.v.done(c, "lookup", o.begin(), &err, func() string { return fmt.Sprintf("%d,%s", h.n.Ino(), name) })
			return o.realEntry(a), nil
		}
	}
	return o.Lookup(c, h.n, name)
}

// Fsyncdir makes the namespace durable.
func (o *Ops) Fsyncdir(c *Ctx, h *DirHandle) (err error) {
	defer o.v.done(c, "fsyncdir", o.begin(), &err, func() string { return fmt.Sprint(h.n.Ino()) })
	if h.n.vn != nil {
		return nil
	}
	return o.v.meta.SyncWAL()
}

// Releasedir closes a directory; a removed one is freed at its last close.
func (o *Ops) Releasedir(c *Ctx, h *DirHandle) {
	if h.n.vn != nil {
		return
	}
	var err error
	defer o.v.done(c, "releasedir", o.begin(), &err, func() string { return fmt.Sprint(h.n.ino) })
	err = o.v.ReleaseDir(h.n.ino)
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
