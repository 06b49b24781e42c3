package vfs

import (
	"errors"
	"strings"
	"syscall"
	"testing"
)

// tfs drives the seam as the FUSE adapter does, without a mount.
type tfs struct {
	t testing.TB
	v *FS
	o *Ops
}

func newTFS(t testing.TB) *tfs {
	t.Helper()
	v, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := v.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return &tfs{t: t, v: v, o: v.Ops()}
}

// rootCtx is uid 0.
func rootCtx() *Ctx { return NewCtxGroups(0, 0) }

// walk looks p up from the root, one component at a time.
func (f *tfs) walk(c *Ctx, p string) (Entry, error) {
	e := Entry{Node: f.o.Root()}
	a, err := f.o.Getattr(c, e.Node, nil)
	if err != nil {
		return e, err
	}
	e.Attr = a
	for _, name := range splitPath(p) {
		if e, err = f.o.Lookup(c, e.Node, name); err != nil {
			return e, err
		}
	}
	return e, nil
}

func (f *tfs) mustWalk(c *Ctx, p string) Entry {
	f.t.Helper()
	e, err := f.walk(c, p)
	if err != nil {
		f.t.Fatalf("walk %s: %v", p, err)
	}
	return e
}

// list returns a directory's entries without "." and "..".
func (f *tfs) list(c *Ctx, p string) ([]DirEntry, error) {
	e, err := f.walk(c, p)
	if err != nil {
		return nil, err
	}
	h, err := f.o.Opendir(c, e.Node)
	if err != nil {
		return nil, err
	}
	defer f.o.Releasedir(c, h)
	var out []DirEntry
	for {
		d, err := f.o.Readdir(c, h)
		if err != nil {
			return out, err
		}
		if d == nil {
			return out, nil
		}
		if d.Name != "." && d.Name != ".." {
			out = append(out, *d)
		}
	}
}

func (f *tfs) names(c *Ctx, p string) []string {
	f.t.Helper()
	ents, err := f.list(c, p)
	if err != nil {
		f.t.Fatalf("list %s: %v", p, err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name)
	}
	return out
}

// read returns a file's whole content through open, read and release.
func (f *tfs) read(c *Ctx, p string) ([]byte, error) {
	e, err := f.walk(c, p)
	if err != nil {
		return nil, err
	}
	h, err := f.o.Open(c, e.Node, syscall.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.o.Release(c, h)
	var out []byte
	buf := make([]byte, 1<<16)
	for {
		n, err := f.o.Read(c, h, buf, int64(len(out)))
		if err != nil {
			return out, err
		}
		if n == 0 {
			return out, nil
		}
		out = append(out, buf[:n]...)
	}
}

// write creates (or replaces) the file at p with data and mode, owned by
// uid:gid, through the seam.
func (f *tfs) write(p string, data string, mode, uid, gid uint32) {
	f.t.Helper()
	c := rootCtx()
	dir, name := "", p
	if i := strings.LastIndex(p, "/"); i >= 0 {
		dir, name = p[:i], p[i+1:]
	}
	parent := f.mustWalk(c, dir)
	e, h, err := f.o.Create(c, parent.Node, name, syscall.O_WRONLY, mode)
	if errors.Is(err, syscall.EEXIST) {
		e = f.mustWalk(c, p)
		h, err = f.o.Open(c, e.Node, syscall.O_WRONLY|syscall.O_TRUNC)
	}
	if err != nil {
		f.t.Fatalf("create %s: %v", p, err)
	}
	if _, err := f.o.Write(c, h, []byte(data), 0); err != nil {
		f.t.Fatalf("write %s: %v", p, err)
	}
	if err := f.o.Release(c, h); err != nil {
		f.t.Fatalf("close %s: %v", p, err)
	}
	f.chown(p, mode, uid, gid)
}

// mkdir makes a directory with mode, owned by uid:gid.
func (f *tfs) mkdir(p string, mode, uid, gid uint32) {
	f.t.Helper()
	c := rootCtx()
	i := strings.LastIndex(p, "/")
	parent := f.mustWalk(c, p[:max(i, 0)])
	if _, err := f.o.Mkdir(c, parent.Node, p[i+1:], mode); err != nil {
		f.t.Fatalf("mkdir %s: %v", p, err)
	}
	f.chown(p, mode, uid, gid)
}

func (f *tfs) chown(p string, mode, uid, gid uint32) {
	f.t.Helper()
	e := f.mustWalk(rootCtx(), p)
	var in SetAttrIn
	in.Mode, in.Uid, in.Gid = &mode, &uid, &gid
	if _, err := f.o.Setattr(rootCtx(), e.Node, in); err != nil {
		f.t.Fatalf("chown %s: %v", p, err)
	}
}
