package vfs

import (
	"errors"
	"path"
	"sort"
	"syscall"

	"github.com/taskerfs/taskerfs/index"
	"github.com/taskerfs/taskerfs/meta"
)

// .snapshots/ lists the snapshots (meta/snapshot.go). Each one is the
// drive as it was:
//
//	.snapshots/<name>/sessions/...        the session tree, read-only
//	.snapshots/<name>/search/<query>/<id> -> ../../sessions/<id>
//
// Its files and directories carry the owners, modes and times they had,
// so the kernel checks permissions as it did then; a caller other than
// root and the daemon's user also does not see the names of entries they
// could not have read (a file without r, a directory without r and x),
// nor, in search results, a session they could not have read. mkdir
// .snapshots/<name> makes a snapshot and rmdir deletes one (root and the
// daemon's user only). Content is read from the blob store chunk by chunk.

const snapshotsDirName = ".snapshots"

func (v *FS) snapshotsView() *vnode {
	d := newDir("/" + snapshotsDirName)
	d.mode = syscall.S_IFDIR | 0o755
	d.list = func(c *Ctx, after string, fn func(*vnode) bool) error {
		list, err := v.meta.ListSnapshots()
		if err != nil {
			return err
		}
		nodes := make([]*vnode, 0, len(list))
		for _, s := range list {
			nodes = append(nodes, v.snapshotDir(s.Name))
		}
		sortNodes(nodes)
		listNodes(nodes, after, fn)
		return nil
	}
	d.lookup = func(c *Ctx, name string) (*vnode, error) {
		ok, err := v.meta.HasSnapshot(name)
		if err != nil || !ok {
			return nil, err
		}
		return v.snapshotDir(name), nil
	}
	d.mkdir = func(c *Ctx, name string) error {
		if !v.privileged(c) {
			return syscall.EACCES
		}
		if meta.CheckSnapshotName(name) != nil {
			return syscall.EINVAL
		}
		_, err := v.CreateSnapshot(name)
		return err
	}
	d.rmdir = func(c *Ctx, name string) error {
		if !v.privileged(c) {
			return syscall.EACCES
		}
		return v.DeleteSnapshot(name)
	}
	return d
}

// snapshotDir is .snapshots/<name>: its sessions/ and search/.
func (v *FS) snapshotDir(name string) *vnode {
	p := "/" + snapshotsDirName + "/" + name
	sessions := &vnode{path: p + "/" + SessionsDir, size: -1}
	sessions.mode = syscall.S_IFDIR | 0o555
	v.snapTreeNode(sessions, name, 0)
	d := staticDir(p, sessions, v.snapSearch(name, p+"/search"))
	d.valid = func(c *Ctx) error {
		if ok, err := v.meta.HasSnapshot(name); err != nil || !ok {
			return firstErr(err, syscall.ENOENT)
		}
		return nil
	}
	return d
}

// withSnapshot runs fn on snapshot name's store.
func (v *FS) withSnapshot(name string, fn func(st *meta.Store) error) error {
	st, release, err := v.meta.AcquireSnapshot(name)
	if errors.Is(err, syscall.ENOENT) {
		return syscall.ENOENT
	}
	if err != nil {
		return err
	}
	defer release()
	return fn(st)
}

// snapTreeNode makes n the node of inode ino of snapshot snap (0: the
// snapshot's sessions/ directory, resolved when used).
func (v *FS) snapTreeNode(n *vnode, snap string, ino uint64) {
	resolve := func(st *meta.Store) (uint64, error) {
		if ino != 0 {
			return ino, nil
		}
		a, err := st.Lookup(meta.RootIno, SessionsDir)
		return a.Ino, err
	}
	n.snapAttr = func(c *Ctx) (Attr, error) {
		var a Attr
		err := v.withSnapshot(snap, func(st *meta.Store) error {
			i, err := resolve(st)
			if err != nil {
				return err
			}
			a, err = st.GetAttr(i)
			return err
		})
		return a, err
	}
	if n.isDir() {
		n.lookup = func(c *Ctx, name string) (*vnode, error) {
			var child *vnode
			err := v.withSnapshot(snap, func(st *meta.Store) error {
				dir, err := resolve(st)
				if err != nil {
					return err
				}
				a, err := st.Lookup(dir, name)
				if errors.Is(err, syscall.ENOENT) {
					return nil
				}
				if err != nil {
					return err
				}
				if v.snapHides(c, &a) {
					return nil
				}
				child, err = v.snapChild(st, snap, n.path, a)
				return err
			})
			return child, err
		}
		n.list = func(c *Ctx, after string, fn func(*vnode) bool) error {
			return v.withSnapshot(snap, func(st *meta.Store) error {
				dir, err := resolve(st)
				if err != nil {
					return err
				}
				var inner error
				err = st.ReadDir(dir, after, func(e meta.DirEntry) bool {
					a, err := st.GetAttr(e.Ino)
					if err != nil {
						inner = err
						return false
					}
					if v.snapHides(c, &a) {
						return true
					}
					child, err := v.snapChild(st, snap, n.path, a)
					if err != nil {
						inner = err
						return false
					}
					return fn(child)
				})
				return firstErr(err, inner)
			})
		}
		return
	}
	n.mayOpen = func(c *Ctx) error {
		a, err := n.snapAttr(c)
		if err == nil && !v.privileged(c) && !allowed(c, &a, mayRead) {
			err = syscall.EACCES
		}
		return err
	}
	n.readAt = func(c *Ctx, dest []byte, off int64) (int, error) {
		var n int
		err := v.withSnapshot(snap, func(st *meta.Store) error {
			var err error
			n, err = snapRead(st, ino, dest, off)
			return err
		})
		return n, err
	}
}

// snapChild makes the node of a, found in the snapshot directory at dir.
func (v *FS) snapChild(st *meta.Store, snap, dir string, a Attr) (*vnode, error) {
	n := &vnode{path: dir + "/" + a.Name, mode: a.Mode, size: int64(a.Size)}
	if a.Name == "" {
		return nil, syscall.EIO
	}
	switch {
	case a.IsSymlink():
		t, err := st.Readlink(a.Ino)
		if err != nil {
			return nil, err
		}
		n.target = t
		a2 := a
		n.snapAttr = func(*Ctx) (Attr, error) { return a2, nil }
		return n, nil
	case a.IsDir(), a.IsRegular():
		v.snapTreeNode(n, snap, a.Ino)
		return n, nil
	}
	// Devices, fifos and sockets: their attributes only.
	a2 := a
	n.snapAttr = func(*Ctx) (Attr, error) { return a2, nil }
	return n, nil
}

// snapHides applies the view rule to an entry of a snapshot.
func (v *FS) snapHides(c *Ctx, a *Attr) bool {
	if v.privileged(c) {
		return false
	}
	if a.IsDir() {
		return !allowed(c, a, mayRead|mayExec)
	}
	return !allowed(c, a, mayRead)
}

// snapRead reads a snapshot file's committed content.
func snapRead(st *meta.Store, ino uint64, dest []byte, off int64) (int, error) {
	a, err := st.GetAttr(ino)
	if err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, syscall.EINVAL
	}
	if uint64(off) >= a.Size {
		return 0, nil
	}
	end := min(a.Size, uint64(off)+uint64(len(dest)))
	n := 0
	for pos := uint64(off); pos < end; {
		idx := pos / meta.ChunkSize
		within := pos % meta.ChunkSize
		span := min(end-pos, meta.ChunkSize-within)
		out := dest[n : n+int(span)]
		c, ok, err := st.Chunk(ino, idx)
		if err != nil {
			return n, err
		}
		if !ok {
			clear(out) // a hole
		} else {
			data, err := st.ChunkData(c)
			if err != nil {
				return n, err
			}
			k := 0
			if within < uint64(len(data)) {
				k = copy(out, data[within:])
			}
			clear(out[k:])
		}
		n += int(span)
		pos += span
	}
	return n, nil
}

// snapSearch is .snapshots/<name>/search/: the index as it was, queried
// like search/.
func (v *FS) snapSearch(snap, p string) *vnode {
	d := newDir(p)
	d.list = func(c *Ctx, after string, fn func(*vnode) bool) error { return nil }
	d.lookup = func(c *Ctx, q string) (*vnode, error) {
		if _, err := index.ParseQuery(q); err != nil {
			return nil, nil
		}
		return v.snapQueryDir(snap, p+"/"+q, q), nil
	}
	return d
}

func (v *FS) snapQueryDir(snap, p, q string) *vnode {
	d := newDir(p)
	hits := func(c *Ctx) ([]string, error) {
		var ids []string
		err := v.withSnapshot(snap, func(st *meta.Store) error {
			hs, err := index.New(st.DB()).SearchWith(q, index.SearchOptions{NoSnippets: true})
			if err != nil {
				return err
			}
			for _, h := range hs {
				if validSessionID(h.SessionID) && v.snapSessionVisible(c, st, h.SessionID) {
					ids = append(ids, h.SessionID)
				}
			}
			return nil
		})
		return ids, err
	}
	d.list = func(c *Ctx, after string, fn func(*vnode) bool) error {
		ids, err := hits(c)
		if err != nil {
			return err
		}
		out := make([]*vnode, 0, len(ids))
		for _, id := range ids {
			out = append(out, sessionLink(p, id, 2))
		}
		listNodes(out, after, fn)
		return nil
	}
	d.lookup = func(c *Ctx, name string) (*vnode, error) {
		ids, err := hits(c)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			if id == name {
				return sessionLink(p, id, 2), nil
			}
		}
		return nil, nil
	}
	return d
}

// snapSessionVisible: the caller could have read sessions/<id> (search
// on / and sessions/, read and search on the session directory) and every
// file directly in it.
func (v *FS) snapSessionVisible(c *Ctx, st *meta.Store, id string) bool {
	if v.privileged(c) {
		return true
	}
	root, err := st.GetAttr(meta.RootIno)
	if err != nil || !allowed(c, &root, mayExec) {
		return false
	}
	sessions, err := st.Lookup(meta.RootIno, SessionsDir)
	if err != nil || !allowed(c, &sessions, mayExec) {
		return false
	}
	sess, err := st.Lookup(sessions.Ino, id)
	if err != nil || !sess.IsDir() || !allowed(c, &sess, mayRead|mayExec) {
		return false
	}
	ok := true
	st.ReadDir(sess.Ino, "", func(e meta.DirEntry) bool {
		if e.Mode != syscall.S_IFREG {
			return true
		}
		a, err := st.GetAttr(e.Ino)
		if err != nil || !allowed(c, &a, mayRead) {
			if _, _, indexed := index.Classify(path.Join(SessionsDir, id, e.Name)); indexed || err != nil {
				ok = false
				return false
			}
		}
		return true
	})
	return ok
}

func sortNodes(nodes []*vnode) {
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].path < nodes[j].path })
}
