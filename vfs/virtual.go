package vfs

import (
	"errors"
	"path"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/taskerfs/taskerfs/meta"
)

// Virtual nodes are the views (search/, by-*/, attachments-ca/,
// .taskerfs/): read-only nodes of the namespace whose names, listings,
// attributes and content are computed here, for the caller asking. The
// FUSE adapter serves them like any other node.

// vnode is one node of a view.
type vnode struct {
	path   string // under the mount root; names the inode number
	mode   uint32 // type and permission bits
	target string // symlinks
	size   int64  // regular files of known size; -1: the content's length
	stored int64  // bytes on disk, for st_blocks
	now    bool   // timestamps are the time of the stat (generated files)

	// owned nodes belong to uid:gid (a saved query, to whoever saved it);
	// others to the daemon's user.
	owned    bool
	uid, gid uint32

	// Directories. lookup returns nil, nil for a name that is not there;
	// list calls fn for each entry after the one named after ("" for the
	// start) until fn returns false.
	lookup func(c *Ctx, name string) (*vnode, error)
	list   func(c *Ctx, after string, fn func(*vnode) bool) error
	mkdir  func(c *Ctx, name string) error
	rmdir  func(c *Ctx, name string) error

	// Regular files.
	content func(c *Ctx) ([]byte, error)
	keep    bool              // content named by its hash: the kernel may cache it
	stream  *accessLog        // content is the access log, read as it grows
	xattrs  map[string][]byte // read-only extended attributes

	// valid is checked on every stat and open: ENOENT when the node is
	// gone, EACCES when the caller may not use it.
	valid func(c *Ctx) error
	// mayOpen is checked on open only: EACCES for a caller who may see
	// the file but not read it.
	mayOpen func(c *Ctx) error

	gen genCache

	// Snapshot nodes (view_snapshots.go): attributes as they were, and
	// content read chunk by chunk instead of generated whole.
	snapAttr func(c *Ctx) (Attr, error)
	readAt   func(c *Ctx, dest []byte, off int64) (int, error)
}

func (n *vnode) ino() uint64  { return virtualIno(n.path) }
func (n *vnode) name() string { return path.Base(n.path) }
func (n *vnode) isDir() bool  { return n.mode&syscall.S_IFMT == syscall.S_IFDIR }

// virtualIno gives virtual nodes stable numbers far from real inodes.
func virtualIno(path string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(path); i++ {
		h ^= uint64(path[i])
		h *= 1099511628211
	}
	return h | 1<<63
}

// genCache keeps the bytes a stat measured for a moment, so that an open
// right after it serves the same bytes (tools stat, then read st_size
// bytes). It is keyed by the caller's rights: what one caller may see is
// never served to another.
type genCache struct {
	mu   sync.Mutex
	key  string
	data []byte
	at   time.Time
}

const genReuse = 200 * time.Millisecond

func (n *vnode) generate(c *Ctx, reuse bool) ([]byte, error) {
	key := c.key()
	n.gen.mu.Lock()
	defer n.gen.mu.Unlock()
	if reuse && n.gen.data != nil && n.gen.key == key && time.Since(n.gen.at) < genReuse {
		return n.gen.data, nil
	}
	d, err := n.content(c)
	if err != nil {
		return nil, err
	}
	n.gen.key, n.gen.data, n.gen.at = key, d, time.Now()
	return d, nil
}

// attr is a view node's attributes; h is an open handle of it, if any.
func (v *FS) vattr(c *Ctx, n *vnode, h *Handle) (Attr, error) {
	if n.valid != nil {
		if err := n.valid(c); err != nil {
			return Attr{}, err
		}
	}
	if n.snapAttr != nil {
		a, err := n.snapAttr(c)
		a.Ino, a.Name = n.ino(), n.name()
		return a, err
	}
	a := Attr{Ino: n.ino(), Mode: n.mode, Nlink: 1, Uid: v.owner, Gid: v.ownerGid, Name: n.name()}
	if n.owned {
		a.Uid, a.Gid = n.uid, n.gid
	}
	t := v.born.UnixNano()
	switch n.mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		a.Nlink = 2
	case syscall.S_IFLNK:
		a.Size = uint64(len(n.target))
	case syscall.S_IFREG:
		switch {
		case h != nil && h.vn == n:
			a.Size = uint64(len(h.data))
		case n.size >= 0:
			a.Size = uint64(n.size)
		case n.stream != nil:
		default:
			d, err := n.generate(c, false)
			if err != nil {
				return a, err
			}
			a.Size = uint64(len(d))
		}
	}
	if n.now {
		t = time.Now().UnixNano()
	}
	a.Atime, a.Mtime, a.Ctime = t, t, t
	return a, nil
}

// newDir is a read-only directory.
func newDir(p string) *vnode { return &vnode{path: p, mode: syscall.S_IFDIR | 0o555, size: -1} }

// newFile is a generated read-only file.
func newFile(p string, perm uint32, gen func(c *Ctx) ([]byte, error)) *vnode {
	return &vnode{path: p, mode: syscall.S_IFREG | perm, size: -1, now: true, content: gen}
}

// newStaticFile is a file whose content never changes (a README): its
// size is known and its times are the daemon's start, so a tool that
// checks a file did not change while it read it (tar) finds it unchanged.
func newStaticFile(p string, perm uint32, text string) *vnode {
	return &vnode{path: p, mode: syscall.S_IFREG | perm, size: int64(len(text)),
		content: func(*Ctx) ([]byte, error) { return []byte(text), nil }}
}

// generated reports whether n is a file whose content (and so its size)
// is computed when asked for.
func (n *vnode) generated() bool {
	return n.mode&syscall.S_IFMT == syscall.S_IFREG && n.size < 0 && n.content != nil && n.snapAttr == nil && n.readAt == nil
}

// ErrNoListedEntry is LookupListed's answer for a listed entry whose
// attributes cost a computation (a generated file): the listing carries
// its name without attributes, and a lookup computes them when needed.
var ErrNoListedEntry = errors.New("vfs: listed without attributes")

// newLink is a symlink.
func newLink(p, target string) *vnode {
	return &vnode{path: p, mode: syscall.S_IFLNK | 0o777, target: target, size: -1}
}

// sessionLink is a symlink named by a session id, depth levels below the
// mount root, pointing at sessions/<id>.
func sessionLink(dir, id string, depth int) *vnode {
	return newLink(dir+"/"+id, strings.Repeat("../", depth)+SessionsDir+"/"+id)
}

// listNodes serves a list computed whole, resuming after a name.
func listNodes(nodes []*vnode, after string, fn func(*vnode) bool) {
	i := 0
	if after != "" {
		for i < len(nodes) && nodes[i].name() != after {
			i++
		}
		i++
	}
	for ; i < len(nodes); i++ {
		if !fn(nodes[i]) {
			return
		}
	}
}

// staticDir is a directory with a fixed set of children.
func staticDir(p string, children ...*vnode) *vnode {
	d := newDir(p)
	sort.Slice(children, func(i, j int) bool { return children[i].path < children[j].path })
	byName := map[string]*vnode{}
	for _, ch := range children {
		byName[ch.name()] = ch
	}
	d.lookup = func(c *Ctx, name string) (*vnode, error) { return byName[name], nil }
	d.list = func(c *Ctx, after string, fn func(*vnode) bool) error {
		listNodes(children, after, fn)
		return nil
	}
	return d
}

// buildViews makes the top-level virtual entries.
func (v *FS) buildViews() map[string]*vnode {
	views := map[string]*vnode{
		".taskerfs":   v.taskerfsView(),
		"search":      v.searchView(),
		"by-category": v.categoryView(),
		savedDirName:  v.savedView(),
		casDirName:    v.casView(),
		// Undo (view_snapshots.go); .trash is real inodes (view_trash.go).
		snapshotsDirName: v.snapshotsView(),
	}
	for dir, field := range map[string]string{"by-tag": "tag", "by-topic": "topic", "by-status": "status", "by-date": "month"} {
		views[dir] = v.facetView(dir, field)
	}
	return views
}

// viewNames lists the top-level virtual entries in name order.
func (v *FS) viewNames() []string {
	names := make([]string, 0, len(v.views))
	for name := range v.views {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// IsView reports whether a top-level name belongs to a view.
func (v *FS) IsView(name string) bool {
	_, ok := v.views[name]
	return ok
}

// rootView returns the view a top-level name shows, or nil. A real entry
// of the same name (one made before its view existed: saved/ came later
// than the data dirs it opens) shadows the view instead of sharing its
// name: the user's data stays reachable, and once it is renamed away the
// view appears.
func (v *FS) rootView(name string) *vnode {
	vn := v.views[name]
	if vn == nil || v.shadowed(name) {
		return nil
	}
	return vn
}

// shadowed reports whether a real entry at the root has a view's name.
func (v *FS) shadowed(name string) bool {
	_, err := v.meta.Lookup(meta.RootIno, name)
	return err == nil
}

// reserved refuses a change to a top-level name that a view owns.
func (v *FS) reserved(parent uint64, name string) bool {
	return parent == meta.RootIno && (v.IsView(name) && !v.shadowed(name) || name == TrashName)
}
