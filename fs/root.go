package fs

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

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
	// ReadAheadKB, when positive, is the kernel's read-ahead window for
	// the mount (see setReadAhead); 0 leaves the kernel's default.
	ReadAheadKB int
	// MaxKernelInodes bounds the inodes the kernel keeps (and go-fuse with
	// it; prune.go); 0 leaves them to the kernel's memory pressure.
	MaxKernelInodes int
}

// Root is what every node of a mount shares.
type Root struct {
	ops   *vfs.Ops
	opts  Options
	prune *pruner
}

// NewRoot returns the root node for v.
func NewRoot(v *vfs.FS, opts Options) gofs.InodeEmbedder {
	r := &Root{ops: v.Ops(), opts: opts}
	root := &node{r: r, n: r.ops.Root()}
	r.prune = newPruner(opts.MaxKernelInodes, &root.Inode)
	return root
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
		FsName:            opts.FsName,
		Name:              "taskerfs",
		AllowOther:        opts.AllowOther,
		DirectMount:       true,
		MaxWrite:          1 << 20,
		MaxReadAhead:      1 << 20,
		EnableLocks:       false,
		Debug:             opts.Debug,
		DisableXAttrs:     false,
		ExtraCapabilities: fuse.CAP_HANDLE_KILLPRIV_V2,
		// The kernel checks every access against the stored modes.
		Options:      append([]string{"default_permissions"}, opts.MountOptions...),
		PanicHandler: handlerPanic,
	}
	// No mount-wide Attr/EntryTimeout: go-fuse would then replace every
	// zero timeout (view nodes) with it. Stored nodes set their own.
	// NullPermissions: a mode of 0000 is 0000, not go-fuse's 0644/0755.
	raw := gofs.NewNodeFS(NewRoot(v, opts), &gofs.Options{
		MountOptions:    mo,
		NegativeTimeout: &zero,
		NullPermissions: true,
	})
	srv, err := fuse.NewServer(killPrivFS{raw}, mountpoint, &mo)
	if err != nil {
		return nil, err
	}
	go srv.Serve()
	if err := srv.WaitMount(); err != nil {
		return nil, err
	}
	if opts.ReadAheadKB > 0 {
		if err := setReadAhead(mountpoint, opts.ReadAheadKB); err != nil {
			slog.Debug("kernel read-ahead left at its default", "mountpoint", mountpoint, "err", err)
		}
	}
	return srv, nil
}

// setReadAhead sets the read-ahead window of the mount's backing device
// info (/sys/class/bdi/MAJOR:MINOR/read_ahead_kb) to kb.
//
// The kernel gives a FUSE mount 128 KiB of read-ahead and ignores a larger
// max_readahead in the INIT reply, so a sequential reader's pages arrive as
// 128 KiB READ requests: eight round trips through /dev/fuse, eight
// lookups of the chunk they all come from, per 1 MiB chunk. With a window
// of a chunk the kernel asks for up to max_read (1 MiB) at a time. Only
// root may write the setting; for anyone else the mount keeps the default.
// Off by default: measured on the 2-core bench machine under load, a cold
// fio read with 1 MiB READs cost the daemon about 25% more CPU than with
// 128 KiB ones and was not faster (each READ then waits for a whole chunk,
// where 128 KiB READs overlap the kernel's copy with the next load).
func setReadAhead(mountpoint string, kb int) error {
	var st unix.Stat_t
	if err := unix.Stat(mountpoint, &st); err != nil {
		return err
	}
	p := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	return os.WriteFile(p, []byte(strconv.Itoa(kb)), 0)
}

// handlerPanic answers EIO for a handler that panicked (a bug: handlers
// return errors) and logs it with its stack, through slog like every
// other message of the daemon.
func handlerPanic(r any) fuse.Status {
	stack := make([]byte, 64<<10)
	stack = stack[:runtime.Stack(stack, false)]
	slog.Error("panic in a FUSE handler; answered EIO", "panic", fmt.Sprint(r), "stack", string(stack))
	return fuse.EIO
}
