package fs

import (
	"context"
	"sort"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/taskerfs/taskerfs/meta"
	"github.com/taskerfs/taskerfs/vfs"
)

// Options tune the kernel-facing side of a mount.
type Options struct {
	AttrTimeout  time.Duration
	EntryTimeout time.Duration
	AllowOther   bool
	FsName       string
	Debug        bool
	// MountOptions are extra options for mount(2) or fusermount3, such
	// as ro, nosuid or noexec.
	MountOptions []string
}

// Root owns the mount: the real tree's root node and the virtual entries
// at the top level.
type Root struct {
	v       *vfs.FS
	opts    Options
	virtual map[string]virtualDir
}

// virtualDir builds one top-level virtual entry.
type virtualDir interface {
	// node returns the embedder for the entry and its mode.
	node() (gofs.InodeEmbedder, uint32)
}

// NewRoot returns the root node for v.
func NewRoot(v *vfs.FS, opts Options) *node {
	r := &Root{v: v, opts: opts, virtual: map[string]virtualDir{}}
	for name, mk := range virtualEntries {
		r.virtual[name] = mk(r)
	}
	return &node{root: r, ino: meta.RootIno}
}

// virtualEntries is filled by the virtual_*.go files' init functions.
var virtualEntries = map[string]func(r *Root) virtualDir{}

func (r *Root) isVirtual(name string) bool {
	_, ok := r.virtual[name]
	return ok
}

func (r *Root) setTimeouts(out *fuse.EntryOut) {
	out.SetEntryTimeout(r.opts.EntryTimeout)
	out.SetAttrTimeout(r.opts.AttrTimeout)
}

func (r *Root) virtualEntries() []fuse.DirEntry {
	names := make([]string, 0, len(r.virtual))
	for name := range r.virtual {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]fuse.DirEntry, 0, len(names))
	for _, name := range names {
		_, mode := r.virtual[name].node()
		out = append(out, fuse.DirEntry{Name: name, Mode: mode, Ino: virtualIno("/" + name)})
	}
	return out
}

// virtualChild returns the persistent inode of a top-level virtual entry.
func (n *node) virtualChild(ctx context.Context, name string, out *fuse.EntryOut) *gofs.Inode {
	vd, ok := n.root.virtual[name]
	if !ok {
		return nil
	}
	if ch := n.GetChild(name); ch != nil {
		fillVirtualAttr(ch, out)
		return ch
	}
	emb, mode := vd.node()
	ch := n.NewPersistentInode(ctx, emb, gofs.StableAttr{Mode: mode, Ino: virtualIno("/" + name)})
	n.AddChild(name, ch, true)
	fillVirtualAttr(ch, out)
	return ch
}

func fillVirtualAttr(ch *gofs.Inode, out *fuse.EntryOut) {
	if g, ok := ch.Operations().(gofs.NodeGetattrer); ok {
		var ao fuse.AttrOut
		g.Getattr(context.Background(), nil, &ao)
		out.Attr = ao.Attr
	}
	out.Ino = ch.StableAttr().Ino
	// Virtual content changes behind the kernel's back: never cache it.
	out.SetEntryTimeout(0)
	out.SetAttrTimeout(0)
}

// virtualIno gives virtual nodes stable numbers far from real inodes.
func virtualIno(path string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(path); i++ {
		h ^= uint64(path[i])
		h *= 1099511628211
	}
	return h | 1<<63
}

// Mount serves v at mountpoint until the returned server is unmounted.
func Mount(v *vfs.FS, mountpoint string, opts Options) (*fuse.Server, error) {
	if opts.AttrTimeout == 0 {
		opts.AttrTimeout = time.Second
	}
	if opts.EntryTimeout == 0 {
		opts.EntryTimeout = time.Second
	}
	if opts.FsName == "" {
		opts.FsName = "taskerfs"
	}
	root := NewRoot(v, opts)
	zero := time.Duration(0)
	mo := fuse.MountOptions{
		FsName:        opts.FsName,
		Name:          "taskerfs",
		AllowOther:    opts.AllowOther,
		DirectMount:   true,
		MaxWrite:      1 << 20,
		MaxReadAhead:  1 << 20,
		EnableLocks:   false,
		Debug:         opts.Debug,
		DisableXAttrs: false,
		Options:       append([]string{"default_permissions"}, opts.MountOptions...),
	}
	// No mount-wide Attr/EntryTimeout: go-fuse would then replace every
	// zero timeout (virtual nodes) with it. Real nodes set their own.
	return gofs.Mount(mountpoint, root, &gofs.Options{
		MountOptions:    mo,
		NegativeTimeout: &zero,
	})
}
