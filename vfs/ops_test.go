package vfs

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOps drives every operation of the seam without a mount, as one
// table of steps on one file system: each step names the op, what it does
// and the error it must return.
func TestOps(t *testing.T) {
	f := newTFS(t)
	c := NewCtxGroups(1000, 1000)
	o := f.o
	root := o.Root()
	var dir, file, file2 Entry
	var h *Handle
	node := func(p string) Node { return f.mustWalk(c, p).Node }
	want := func(cond bool, format string, args ...any) error {
		if !cond {
			return fmt.Errorf(format, args...)
		}
		return nil
	}
	read := func(p string) string {
		b, err := f.read(c, p)
		if err != nil {
			t.Fatalf("read %s: %v", p, err)
		}
		return string(b)
	}
	steps := []struct {
		op   string
		do   func() error
		want error
	}{
		{"mkdir", func() (err error) {
			dir, err = o.Mkdir(c, root, "d", 0o750)
			if err == nil {
				err = want(dir.Attr.IsDir() && dir.Attr.Mode&0o7777 == 0o750 && dir.Attr.Uid == 1000, "attr %+v", dir.Attr)
			}
			return err
		}, nil},
		{"mkdir existing", func() error { _, err := o.Mkdir(c, root, "d", 0o755); return err }, syscall.EEXIST},
		{"mkdir with mode 0000 keeps 0000", func() error {
			e, err := o.Mkdir(c, dir.Node, "none", 0)
			if err == nil {
				err = want(e.Attr.Mode == syscall.S_IFDIR, "mode %o", e.Attr.Mode)
			}
			return err
		}, nil},
		{"create", func() (err error) {
			file, h, err = o.Create(c, dir.Node, "f", syscall.O_RDWR, 0o640)
			return err
		}, nil},
		{"create with mode 0000 keeps 0000", func() error {
			e, h0, err := o.Create(c, dir.Node, "zero", syscall.O_RDWR, 0)
			if err == nil {
				err = errors.Join(want(e.Attr.Mode == syscall.S_IFREG, "mode %o", e.Attr.Mode), o.Release(c, h0))
			}
			return err
		}, nil},
		{"write", func() error {
			n, err := o.Write(c, h, []byte("hello world"), 0)
			if err == nil {
				err = want(n == 11, "wrote %d", n)
			}
			return err
		}, nil},
		{"read", func() error {
			buf := make([]byte, 5)
			n, err := o.Read(c, h, buf, 6)
			if err == nil {
				err = want(string(buf[:n]) == "world", "read %q", buf[:n])
			}
			return err
		}, nil},
		{"getattr through the handle sees the write", func() error {
			a, err := o.GetattrHandle(c, h)
			if err == nil {
				err = want(a.Size == 11, "size %d", a.Size)
			}
			return err
		}, nil},
		{"flush", func() error { return o.Flush(c, h) }, nil},
		{"fsync", func() error { return o.Fsync(c, h, 0) }, nil},
		{"lseek SEEK_DATA", func() error {
			p, err := o.Lseek(c, h, 3, unix.SEEK_DATA)
			if err == nil {
				err = want(p == 3, "pos %d", p)
			}
			return err
		}, nil},
		{"lseek SEEK_HOLE goes to EOF", func() error {
			p, err := o.Lseek(c, h, 3, unix.SEEK_HOLE)
			if err == nil {
				err = want(p == 11, "pos %d", p)
			}
			return err
		}, nil},
		{"lseek past EOF", func() error { _, err := o.Lseek(c, h, 11, unix.SEEK_DATA); return err }, syscall.ENXIO},
		{"fallocate extends", func() error {
			if err := o.Fallocate(c, h, 0, 16, 0); err != nil {
				return err
			}
			a, err := o.GetattrHandle(c, h)
			if err == nil {
				err = want(a.Size == 16, "size %d", a.Size)
			}
			return err
		}, nil},
		{"fallocate punches a hole", func() error {
			if err := o.Fallocate(c, h, 0, 5, unix.FALLOC_FL_KEEP_SIZE|unix.FALLOC_FL_PUNCH_HOLE); err != nil {
				return err
			}
			buf := make([]byte, 16)
			n, err := o.Read(c, h, buf, 0)
			if err == nil {
				err = want(bytes.Equal(buf[:n], append(make([]byte, 5), " world\x00\x00\x00\x00\x00"...)), "read %q", buf[:n])
			}
			return err
		}, nil},
		{"fallocate collapse is not supported", func() error { return o.Fallocate(c, h, 0, 1, unix.FALLOC_FL_COLLAPSE_RANGE) }, syscall.EOPNOTSUPP},
		{"release", func() error { return o.Release(c, h) }, nil},
		{"lookup", func() error {
			e, err := o.Lookup(c, dir.Node, "f")
			if err == nil {
				err = want(e.Attr.Ino == file.Attr.Ino && e.Attr.Size == 16 && e.Attr.Mode&0o777 == 0o640, "attr %+v", e.Attr)
			}
			return err
		}, nil},
		{"lookup missing", func() error { _, err := o.Lookup(c, dir.Node, "nope"); return err }, syscall.ENOENT},
		{"setattr size (truncate)", func() error {
			size := uint64(5)
			a, err := o.Setattr(c, file.Node, SetAttrIn{Size: &size})
			if err == nil {
				err = want(a.Size == 5 && read("d/f") == "\x00\x00\x00\x00\x00", "size %d", a.Size)
			}
			return err
		}, nil},
		{"setattr size of a directory", func() error {
			size := uint64(0)
			_, err := o.Setattr(c, dir.Node, SetAttrIn{Size: &size})
			return err
		}, syscall.EISDIR},
		{"setattr mode and times", func() error {
			mode, mtime := uint32(0o600), int64(1_700_000_000_000_000_000)
			in := SetAttrIn{Size: nil}
			in.Mode, in.Mtime = &mode, &mtime
			a, err := o.Setattr(c, file.Node, in)
			if err == nil {
				err = want(a.Mode&0o7777 == 0o600 && a.Mtime == mtime, "attr %+v", a)
			}
			return err
		}, nil},
		{"open O_TRUNC empties", func() error {
			h, err := o.Open(c, file.Node, syscall.O_WRONLY|syscall.O_TRUNC)
			if err != nil {
				return err
			}
			if _, err := o.Write(c, h, []byte("new"), 0); err != nil {
				return err
			}
			return errors.Join(o.Release(c, h), want(read("d/f") == "new", "content %q", read("d/f")))
		}, nil},
		{"open read-only with O_TRUNC keeps content", func() error {
			h, err := o.Open(c, file.Node, syscall.O_RDONLY|syscall.O_TRUNC)
			if err != nil {
				return err
			}
			return errors.Join(o.Release(c, h), want(read("d/f") == "new", "content %q", read("d/f")))
		}, nil},
		{"link", func() (err error) {
			file2, err = o.Link(c, file.Node, root, "f2")
			if err == nil {
				err = want(file2.Attr.Ino == file.Attr.Ino && file2.Attr.Nlink == 2, "attr %+v", file2.Attr)
			}
			return err
		}, nil},
		{"link onto an existing name", func() error { _, err := o.Link(c, file.Node, dir.Node, "f"); return err }, syscall.EEXIST},
		{"symlink", func() error {
			e, err := o.Symlink(c, dir.Node, "f", "l")
			if err == nil {
				err = want(e.Attr.IsSymlink(), "mode %o", e.Attr.Mode)
			}
			return err
		}, nil},
		{"symlink target too long", func() error { _, err := o.Symlink(c, dir.Node, strings.Repeat("x", 4096), "l2"); return err }, syscall.ENAMETOOLONG},
		{"readlink", func() error {
			s, err := o.Readlink(c, node("d/l"))
			if err == nil {
				err = want(s == "f", "target %q", s)
			}
			return err
		}, nil},
		{"readlink of a file", func() error { _, err := o.Readlink(c, file.Node); return err }, syscall.EINVAL},
		{"mknod fifo", func() error {
			e, err := o.Mknod(c, dir.Node, "fifo", syscall.S_IFIFO|0o644, 0)
			if err == nil {
				err = want(e.Attr.Mode&syscall.S_IFMT == syscall.S_IFIFO, "mode %o", e.Attr.Mode)
			}
			return err
		}, nil},
		{"setxattr", func() error { return o.Setxattr(c, file.Node, "user.k", []byte("v"), 0) }, nil},
		{"setxattr XATTR_CREATE on an existing one", func() error {
			return o.Setxattr(c, file.Node, "user.k", []byte("v"), unix.XATTR_CREATE)
		}, syscall.EEXIST},
		{"getxattr", func() error {
			v, err := o.Getxattr(c, file.Node, "user.k")
			if err == nil {
				err = want(string(v) == "v", "value %q", v)
			}
			return err
		}, nil},
		{"getxattr sha256", func() error {
			v, err := o.Getxattr(c, file.Node, XattrSHA256)
			if err == nil {
				err = want(string(v) == "11507a0e2f5e69d5dfa40a62a1bd7b6ee57e6bcd85c67c9b8431b36fff21c437", "sha256 %q", v)
			}
			return err
		}, nil},
		{"getxattr chunks", func() error {
			v, err := o.Getxattr(c, file.Node, XattrChunks)
			if err == nil {
				err = want(strings.HasPrefix(string(v), "0 3 "), "chunks %q", v)
			}
			return err
		}, nil},
		{"getxattr sha256 of a directory", func() error { _, err := o.Getxattr(c, dir.Node, XattrSHA256); return err }, syscall.ENODATA},
		{"setxattr user.taskerfs.*", func() error { return o.Setxattr(c, file.Node, XattrSHA256, []byte("x"), 0) }, syscall.EPERM},
		{"removexattr user.taskerfs.*", func() error { return o.Removexattr(c, file.Node, XattrChunks) }, syscall.EPERM},
		{"setxattr ACL", func() error { return o.Setxattr(c, file.Node, "system.posix_acl_access", []byte("x"), 0) }, syscall.EOPNOTSUPP},
		{"getxattr ACL", func() error { _, err := o.Getxattr(c, file.Node, "system.posix_acl_default"); return err }, syscall.EOPNOTSUPP},
		{"setxattr SELinux label", func() error { return o.Setxattr(c, file.Node, "security.selinux", []byte("x"), 0) }, syscall.EOPNOTSUPP},
		{"getxattr SELinux label", func() error { _, err := o.Getxattr(c, file.Node, "security.selinux"); return err }, syscall.EOPNOTSUPP},
		{"getxattr SELinux label of a directory", func() error { _, err := o.Getxattr(c, root, "security.selinux"); return err }, syscall.EOPNOTSUPP},
		{"removexattr SELinux label", func() error { return o.Removexattr(c, file.Node, "security.selinux") }, syscall.EOPNOTSUPP},
		{"setxattr other security namespace", func() error { return o.Setxattr(c, file.Node, "security.test", []byte("s"), 0) }, nil},
		{"removexattr other security namespace", func() error { return o.Removexattr(c, file.Node, "security.test") }, nil},
		{"listxattr", func() error {
			v, err := o.Listxattr(c, file.Node)
			if err == nil {
				err = want(string(v) == "user.k\x00", "list %q", v)
			}
			return err
		}, nil},
		{"removexattr", func() error { return o.Removexattr(c, file.Node, "user.k") }, nil},
		{"getxattr removed", func() error { _, err := o.Getxattr(c, file.Node, "user.k"); return err }, syscall.ENODATA},
		{"rename", func() error { return o.Rename(c, root, "f2", dir.Node, "g", 0) }, nil},
		{"rename noreplace onto an existing name", func() error {
			return o.Rename(c, dir.Node, "g", dir.Node, "f", unix.RENAME_NOREPLACE)
		}, syscall.EEXIST},
		{"rename exchange", func() error {
			if err := o.Rename(c, dir.Node, "l", dir.Node, "fifo", unix.RENAME_EXCHANGE); err != nil {
				return err
			}
			e, err := o.Lookup(c, dir.Node, "fifo")
			if err == nil {
				err = want(e.Attr.IsSymlink(), "fifo is now mode %o", e.Attr.Mode)
			}
			return err
		}, nil},
		{"rename a directory into itself", func() error { return o.Rename(c, root, "d", dir.Node, "x", 0) }, syscall.EINVAL},
		{"unlink", func() error { return o.Unlink(c, dir.Node, "g") }, nil},
		{"unlink missing", func() error { return o.Unlink(c, dir.Node, "g") }, syscall.ENOENT},
		{"rmdir a non-empty directory", func() error { return o.Rmdir(c, root, "d") }, syscall.ENOTEMPTY},
		{"rmdir", func() error { return o.Rmdir(c, dir.Node, "none") }, nil},
		{"unlinked open file lives until release", func() error {
			h, err := o.Open(c, file.Node, syscall.O_RDONLY)
			if err != nil {
				return err
			}
			if err := o.Unlink(c, dir.Node, "f"); err != nil {
				return err
			}
			buf := make([]byte, 8)
			n, err := o.Read(c, h, buf, 0)
			if err == nil {
				err = want(string(buf[:n]) == "new", "read %q", buf[:n])
			}
			if rerr := o.Release(c, h); err == nil {
				err = rerr
			}
			if err == nil {
				_, err = o.Getattr(c, file.Node, nil)
				err = want(errors.Is(err, syscall.ENOENT), "getattr after the last close: %v", err)
			}
			return err
		}, nil},
		{"tmpfile then link", func() error {
			e, h, err := o.Tmpfile(c, dir.Node, syscall.O_RDWR, 0o600)
			if err != nil {
				return err
			}
			if _, err := o.Write(c, h, []byte("tmp"), 0); err != nil {
				return err
			}
			if _, err := o.Link(c, e.Node, dir.Node, "from-tmp"); err != nil {
				return err
			}
			return errors.Join(o.Release(c, h), want(read("d/from-tmp") == "tmp", "content %q", read("d/from-tmp")))
		}, nil},
		{"opendir, readdir, seekdir", func() error {
			h, err := o.Opendir(c, dir.Node)
			if err != nil {
				return err
			}
			defer o.Releasedir(c, h)
			var names []string
			var offs []uint64
			for {
				e, err := o.Readdir(c, h)
				if err != nil {
					return err
				}
				if e == nil {
					break
				}
				names, offs = append(names, e.Name), append(offs, e.Off)
			}
			if err := want(slices.Equal(names, []string{".", "..", "fifo", "from-tmp", "l", "zero"}), "listed %v", names); err != nil {
				return err
			}
			if err := o.Seekdir(c, h, offs[2]); err != nil {
				return err
			}
			e, err := o.Readdir(c, h)
			if err == nil {
				err = want(e != nil && e.Name == "from-tmp", "after seekdir: %+v", e)
			}
			return errors.Join(err, o.Fsyncdir(c, h))
		}, nil},
		{"opendir of a file", func() error { _, err := o.Opendir(c, node("d/zero")); return err }, syscall.ENOTDIR},
		{"statfs", func() error {
			st, err := o.Statfs(c, root)
			if err == nil {
				err = want(st.Blocks > 0 && st.Bsize > 0, "statfs %+v", st)
			}
			return err
		}, nil},
		{"root lists the views", func() error {
			names := f.names(c, "")
			for _, v := range []string{".taskerfs", "attachments-ca", "by-category", "by-date", "by-status", "by-tag", "by-topic", "saved", "search", "sessions", "d"} {
				if !slices.Contains(names, v) {
					return fmt.Errorf("root lists %v, no %s", names, v)
				}
			}
			return nil
		}, nil},
		{"a view's name cannot be created", func() error { _, err := o.Mkdir(c, root, "search", 0o755); return err }, syscall.EEXIST},
		{"a view's name cannot be linked to", func() error { _, err := o.Link(c, node("d/zero"), root, "by-tag"); return err }, syscall.EEXIST},
		{"a view cannot be removed", func() error { return o.Rmdir(c, root, "by-tag") }, syscall.EPERM},
		{"a view cannot be unlinked", func() error { return o.Unlink(c, root, ".taskerfs") }, syscall.EPERM},
		{"a view cannot be renamed onto", func() error { return o.Rename(c, dir.Node, "zero", root, "attachments-ca", 0) }, syscall.EPERM},
		{"views are read-only: create", func() error { _, _, err := o.Create(c, node("by-tag"), "x", 0, 0o644); return err }, syscall.EROFS},
		{"views are read-only: setattr", func() error {
			mode := uint32(0o777)
			in := SetAttrIn{}
			in.Mode = &mode
			_, err := o.Setattr(c, node("search"), in)
			return err
		}, syscall.EROFS},
		{"views are read-only: open for writing", func() error {
			_, err := o.Open(c, node(".taskerfs/README.md"), syscall.O_WRONLY)
			return err
		}, syscall.EROFS},
		{"views are read-only: rename out", func() error { return o.Rename(c, node("search"), "README.md", root, "x", 0) }, syscall.EROFS},
		{"views are read-only: link in", func() error { _, err := o.Link(c, node("d/zero"), node("search"), "x"); return err }, syscall.EROFS},
		{"views are read-only: xattrs", func() error { return o.Setxattr(c, node("search"), "user.x", nil, 0) }, syscall.EROFS},
		{"a view file cannot be linked", func() error { _, err := o.Link(c, node("search/README.md"), root, "x"); return err }, syscall.EXDEV},
		{"mkdir in saved/ saves a query", func() error {
			if _, err := o.Mkdir(c, node("saved"), "hello", 0o755); err != nil {
				return err
			}
			if err := want(slices.Contains(f.names(c, "saved"), "hello"), "saved lists %v", f.names(c, "saved")); err != nil {
				return err
			}
			return want(slices.Contains(f.names(c, "search"), "hello"), "search lists %v", f.names(c, "search"))
		}, nil},
		{"mkdir in saved/ twice", func() error { _, err := o.Mkdir(c, node("saved"), "hello", 0o755); return err }, syscall.EEXIST},
		{"mkdir in saved/ of a bad query", func() error { _, err := o.Mkdir(c, node("saved"), "(", 0o755); return err }, syscall.EINVAL},
		{"mkdir in saved/ of a name with a control character", func() error { _, err := o.Mkdir(c, node("saved"), "a\nb", 0o755); return err }, syscall.EINVAL},
		{"search/ is read-only: mkdir", func() error { _, err := o.Mkdir(c, node("search"), "(", 0o755); return err }, syscall.EROFS},
		{"search/ is read-only: rmdir", func() error { return o.Rmdir(c, node("search"), "hello") }, syscall.EROFS},
		{"rmdir in saved/ forgets it", func() error {
			if err := o.Rmdir(c, node("saved"), "hello"); err != nil {
				return err
			}
			if err := want(!slices.Contains(f.names(c, "saved"), "hello"), "saved lists %v", f.names(c, "saved")); err != nil {
				return err
			}
			return want(!slices.Contains(f.names(c, "search"), "hello"), "search lists %v", f.names(c, "search"))
		}, nil},
		{"rmdir in saved/ of a query not saved", func() error { return o.Rmdir(c, node("saved"), "hello") }, syscall.ENOENT},
		{"readlink of a view symlink target", func() error { _, err := o.Readlink(c, node("search")); return err }, syscall.EINVAL},
	}
	for _, s := range steps {
		err := s.do()
		if !errors.Is(err, s.want) && !(s.want == nil && err == nil) {
			t.Fatalf("%s: got %v, want %v", s.op, err, s.want)
		}
		if s.want != nil && err != s.want {
			t.Errorf("%s: got %#v, want the bare errno %v", s.op, err, s.want)
		}
	}
}

// TestOpsErrnoShaped: an unexpected error from below reaches the caller as
// EIO, never as another error type.
func TestOpsErrnoShaped(t *testing.T) {
	for _, err := range []error{nil, syscall.ENOENT, fmt.Errorf("wrapped: %w", syscall.EACCES), errors.New("disk on fire")} {
		got := toErrno("test", err)
		if err == nil {
			if got != nil {
				t.Errorf("toErrno(nil) = %v", got)
			}
			continue
		}
		if _, ok := got.(syscall.Errno); !ok {
			t.Errorf("toErrno(%v) = %T, want an errno", err, got)
		}
	}
	if got := toErrno("test", errors.New("x")); got != syscall.EIO {
		t.Errorf("unexpected error became %v, want EIO", got)
	}
}

// BenchmarkSeamRead measures what the seam adds to a 4 KiB read (metrics,
// access-log check, errno shaping): Ops.Read against the write-back read
// it wraps.
func BenchmarkSeamRead(b *testing.B) {
	f := newTFS(b)
	f.write("f", strings.Repeat("x", 1<<20), 0o644, 0, 0)
	c := rootCtx()
	h, err := f.o.Open(c, f.mustWalk(c, "f").Node, syscall.O_RDONLY)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 4096)
	b.Run("ops", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := f.o.Read(c, h, buf, int64(i%256)*4096); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("writeback", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := f.v.wb.Read(h.ino, buf, int64(i%256)*4096, &h.cache); err != nil {
				b.Fatal(err)
			}
		}
	})
}
