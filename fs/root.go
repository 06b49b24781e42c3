package fs

import (
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

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

// Root is what every node of a mount shares.
type Root struct {
	ops  *vfs.Ops
	opts Options
}

// NewRoot returns the root node for v.
func NewRoot(v *vfs.FS, opts Options) gofs.InodeEmbedder {
	r := &Root{ops: v.Ops(), opts: opts}
	return &node{r: r, n: r.ops.Root()}
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
		// The kernel checks every access against the stored modes.
		Options: append([]string{"default_permissions"}, opts.MountOptions...),
	}
	// No mount-wide Attr/EntryTimeout: go-fuse would then replace every
	// zero timeout (view nodes) with it. Stored nodes set their own.
	// NullPermissions: a mode of 0000 is 0000, not go-fuse's 0644/0755.
	return gofs.Mount(mountpoint, NewRoot(v, opts), &gofs.Options{
		MountOptions:    mo,
		NegativeTimeout: &zero,
		NullPermissions: true,
	})
}
