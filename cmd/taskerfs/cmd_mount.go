package main

import (
	"errors"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	tfs "github.com/taskerfs/taskerfs/fs"
	"github.com/taskerfs/taskerfs/recompress"
	"github.com/taskerfs/taskerfs/vfs"
	"github.com/taskerfs/taskerfs/writeback"
)

// mountFlags are shared by `mount` and the mount.fuse -o path.
type mountFlags struct {
	data          string
	window        time.Duration
	maxDirty      int64
	maxAge        time.Duration
	cacheBytes    int64
	allowOther    bool
	debug         bool
	blobPutDelay  time.Duration
	metricsAddr   string
	compressAfter time.Duration
	gcInterval    time.Duration
	gcGrace       time.Duration
	attrTimeout   time.Duration
	entryTimeout  time.Duration
	readAheadKB   int
	kernelInodes  int
	background    bool
	logTo         string
	undo          undoFlags // cmd_snapshot.go
	options       []string  // -o lists, applied over the flags
	kernelOpts    []string  // the -o options meant for the kernel (ro, noexec, ...)
}

func (f *mountFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.data, "data", vfs.DefaultDataDir(), "data dir")
	fl.DurationVar(&f.window, "writeback-window", 100*time.Millisecond, "group-commit window for closed files")
	fl.Int64Var(&f.maxDirty, "max-dirty-bytes", defaultMaxDirty, "writers wait when this many bytes are not yet persisted")
	fl.DurationVar(&f.maxAge, "max-queue-age", 5*time.Second, "writers wait while the oldest queued change is older")
	fl.Int64Var(&f.cacheBytes, "cache-bytes", defaultCacheBytes, "blob cache size")
	fl.BoolVar(&f.allowOther, "allow-other", false, "let other users use the mount (needs user_allow_other for non-root)")
	fl.BoolVar(&f.debug, "debug", false, "log every FUSE request")
	fl.DurationVar(&f.compressAfter, "compress-after", 7*24*time.Hour, "recompress sessions untouched this long at a higher zstd level, in the background (0 disables)")
	fl.DurationVar(&f.gcInterval, "gc-interval", 20*time.Second, "how often the daemon looks for blobs no file uses any more and deletes them (0 disables; taskerfs gc still works)")
	fl.DurationVar(&f.gcGrace, "gc-grace", 30*time.Second, "how long a blob stays unused before the background gc deletes it")
	fl.StringVar(&f.metricsAddr, "metrics", "", "serve Prometheus metrics over HTTP at this address (host:port; a bare :port binds loopback)")
	fl.DurationVar(&f.attrTimeout, "attr-timeout", time.Second, "kernel attribute cache timeout")
	fl.DurationVar(&f.entryTimeout, "entry-timeout", time.Second, "kernel entry cache timeout")
	fl.IntVar(&f.kernelInodes, "max-kernel-inodes", 20000, "ask the kernel to forget the inodes it learned first past this many (Linux 6.18+; each costs the daemon about 1.2 KB); 0 leaves them to its memory pressure")
	fl.IntVar(&f.readAheadKB, "read-ahead-kb", 0, "kernel read-ahead window of the mount in KiB, set when the daemon may (root); 0 keeps the kernel's 128")
	fl.DurationVar(&f.blobPutDelay, "debug-blob-put-delay", 0, "testing: delay every blob write (simulates a slow disk)")
	fl.MarkHidden("debug-blob-put-delay")
	fl.BoolVar(&f.background, "background", false, "return once the mount is ready and keep serving in the background (pid in DATA/taskerfs.pid)")
	fl.StringVar(&f.logTo, "log", "", "where the daemon logs: stderr, file (DATA/taskerfs.log) or syslog (default: stderr, file with --background)")
	f.undo.register(fl)
	addS3Flags(fl)
	fl.StringArrayVarP(&f.options, "options", "o", nil, "mount(8) options: every flag as name=value (allow_other, cache_bytes=N, ...), and ro, noexec, nosuid, nodev, ...")
}

// logTarget is where the daemon logs, after the defaults.
func (f *mountFlags) logTarget() string {
	if f.logTo != "" {
		return f.logTo
	}
	if f.background {
		return "file"
	}
	return "stderr"
}

// applyOptions folds the -o lists into the flags in fl.
func (f *mountFlags) applyOptions(fl *pflag.FlagSet) error {
	kernel, err := applyMountOptions(fl, strings.Join(f.options, ","))
	if err != nil {
		return err
	}
	f.kernelOpts = append(f.kernelOpts, kernel...)
	switch f.logTarget() {
	case "stderr":
		if f.background {
			return errors.New("--log stderr cannot be used with --background: the daemon outlives the terminal")
		}
	case "file", "syslog":
	default:
		return fmt.Errorf("--log %q: want stderr, file or syslog", f.logTo)
	}
	return nil
}

func (f *mountFlags) vfsOptions() vfs.Options {
	return vfs.Options{
		Writeback:      writeback.Options{Window: f.window, MaxDirtyBytes: f.maxDirty, MaxAge: f.maxAge},
		BlobCacheBytes: f.cacheBytes,
		BlobPutDelay:   f.blobPutDelay,
		MetaCacheBytes: metaCacheBytes, MetaMemTableBytes: metaMemTableBytes,
		Trash:        f.undo.trashOptions(),
		OnStoreFatal: storeFatal,
	}
}

// storeFatal stops the daemon when its metadata store reports itself
// unusable (a table file deleted from under it, corruption pebble cannot
// read past). Going on would answer from a store in an undefined state,
// and go-fuse recovers a handler's panic, which can leave pebble waiting
// forever on a table it never finished loading: every application that
// touched the mount would then hang in D state and the mount could not
// be unmounted. Once this process is gone the kernel answers ENOTCONN at
// once; `taskerfs umount` clears the mountpoint.
func storeFatal(err error) {
	log.Printf("taskerfs: stopping: %v; the mount answers ENOTCONN until it is unmounted (taskerfs umount); check the data dir with taskerfs fsck before mounting it again", err)
	sdNotify("STATUS=stopped: metadata store unusable")
	os.Exit(3)
}

func init() {
	var f mountFlags
	c := &cobra.Command{
		Use:   "mount [--data DIR] [--background] [-o OPTIONS] MOUNTPOINT",
		Short: "Mount a data dir (foreground unless --background; unmount with `taskerfs umount`, umount(8), Ctrl-C or SIGTERM)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.applyOptions(cmd.Flags()); err != nil {
				return err
			}
			return runMount(&f, args[0])
		},
	}
	f.register(c.Flags())
	rootCmd.AddCommand(c)

	var lazy, force bool
	u := &cobra.Command{
		Use:   "umount [--force] MOUNTPOINT",
		Short: "Unmount a taskerfs mount; returns once the daemon has flushed everything and exited",
		Long: "umount first makes every change durable (as `taskerfs sync`). When that fails (a full\n" +
			"disk, an I/O error) it names the files not persisted, leaves the mount in place with\n" +
			"their changes held by the daemon, and exits non-zero: free space and run it again.\n" +
			"--force unmounts anyway; the changes that cannot be stored are then lost, and umount\n" +
			"still exits non-zero naming them. It also exits non-zero when the daemon's final\n" +
			"flush fails.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return unmount(args[0], lazy, force)
		},
	}
	u.Flags().BoolVarP(&lazy, "lazy", "l", false, "detach now and let the daemon finish once the mount is no longer busy (does not wait)")
	u.Flags().BoolVarP(&force, "force", "f", false, "unmount even when changes cannot be persisted (they are lost; exits non-zero)")
	rootCmd.AddCommand(u)
}

// runMount mounts in the foreground, starts a background daemon, or is
// that daemon.
func runMount(f *mountFlags, mountpoint string) error {
	if child := daemonChildFromEnv(); child != nil {
		return child.run(func(ready func(stderr *os.File)) error {
			return serveMount(f, mountpoint, ready)
		})
	}
	if f.background {
		return startDaemon()
	}
	return serveMount(f, mountpoint, func(*os.File) {})
}

// serveMount mounts f.data on mountpoint and serves it until it is
// unmounted. ready is called once the kernel has the mount, with the file
// the daemon's stderr should go to from then on (nil: leave it).
func serveMount(f *mountFlags, mountpoint string, ready func(stderr *os.File)) error {
	data, err := filepath.Abs(f.data)
	if err != nil {
		return err
	}
	f.data = data
	if strings.HasPrefix(mountpoint, "/dev/fd/") {
		return fmt.Errorf("mountpoint %s: a pre-mounted /dev/fuse (mount.fuse3 -o drop_privileges) is not supported; mount without drop_privileges", mountpoint)
	}
	mnt, err := prepareMountpoint(mountpoint)
	if err != nil {
		return err
	}
	if err := checkFuseAccess(f.allowOther); err != nil {
		return err
	}
	defer setMemoryLimit(f)()
	opts := f.vfsOptions()
	if opts.S3, err = s3Options(); err != nil {
		return err
	}
	v, err := vfs.Open(f.data, opts)
	if err != nil {
		return err
	}
	sink, err := startLog(f.logTarget(), f.data)
	if err != nil {
		v.Close()
		return err
	}
	defer sink.close()
	os.Remove(filepath.Join(f.data, flushErrorFile)) // an earlier daemon's
	defer writePidFile(f.data)()
	// The control socket answers before the mountpoint appears: once this
	// process holds the data dir, an operator command (stats, sync, gc) run
	// as soon as the mount is visible must reach it, not find the data dir
	// locked and no socket yet.
	var stopControl func()
	routes, err := controlRoutes(v)
	if err == nil {
		stopControl, err = serveControl(v, routes)
	}
	if err != nil {
		v.Close()
		return err
	}
	defer stopControl()
	srv, err := tfs.Mount(v, mnt, tfs.Options{AttrTimeout: f.attrTimeout, EntryTimeout: f.entryTimeout,
		AllowOther: f.allowOther, Debug: f.debug, FsName: f.data, MountOptions: f.kernelOpts,
		ReadAheadKB: f.readAheadKB, MaxKernelInodes: f.kernelInodes})
	if err != nil {
		stopControl()
		v.Close()
		return fmt.Errorf("mount %s: %w", mnt, err)
	}
	// Operator commands write through the mount when the data dir is in use.
	mpFile := filepath.Join(f.data, "mountpoint")
	os.WriteFile(mpFile, []byte(mnt+"\n"), 0o600)
	defer os.Remove(mpFile)
	if f.metricsAddr != "" {
		stopMetrics, err := serveMetrics(v, f.metricsAddr)
		if err != nil {
			srv.Unmount()
			v.Close()
			return err
		}
		defer stopMetrics()
	}
	stopBackground := func() {}
	if f.compressAfter > 0 {
		w, err := recompress.Start(v, recompress.Options{After: f.compressAfter, Logf: log.Printf})
		switch {
		case errors.Is(err, recompress.ErrUnsupported):
			log.Printf("taskerfs: background recompression is off: %v", err)
		case err != nil:
			srv.Unmount()
			v.Close()
			return err
		default:
			v.Background = func() (int64, any) { st := w.Stats(); return st.SavedBytes, st }
			stopBackground = w.Stop
		}
	}
	stopExpiry := v.StartTrashExpiry() // stopped before v.Close below
	stopSweep := v.StartIndexSweeper()
	stopGC := startAutoGC(v, f.gcInterval, f.gcGrace)
	log.Printf("taskerfs: %s mounted on %s (pid %d)", f.data, mnt, os.Getpid())
	ready(sink.stderr)
	sdNotify("READY=1\nSTATUS=serving " + mnt)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sig
		log.Printf("taskerfs: %v: unmounting %s", s, mnt)
		if err := srv.Unmount(); err != nil {
			log.Printf("taskerfs: unmount: %v (is the mount busy?)", err)
		}
	}()
	srv.Wait()
	sdNotify("STOPPING=1\nSTATUS=flushing")
	stopSweep()
	stopExpiry()
	stopBackground()
	stopGC()
	if err := v.Close(); err != nil {
		log.Printf("taskerfs: flush on unmount of %s: %v", mnt, err)
		// `taskerfs umount` reports it once this process has exited.
		os.WriteFile(filepath.Join(f.data, flushErrorFile), []byte(err.Error()+"\n"), 0o600)
		return fmt.Errorf("flush on unmount: %w", err)
	}
	log.Printf("taskerfs: unmounted %s; everything is on disk", mnt)
	return nil
}

// prepareMountpoint creates a missing mountpoint, clears a stale mount of
// a dead daemon and refuses a busy or non-empty one.
func prepareMountpoint(mountpoint string) (string, error) {
	mnt, err := filepath.Abs(mountpoint)
	if err != nil {
		return "", err
	}
	_, err = os.Stat(mnt)
	if errors.Is(err, unix.ENOTCONN) {
		log.Printf("taskerfs: clearing stale mount at %s", mnt)
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			if out, ferr := exec.Command("fusermount3", "-uz", mnt).CombinedOutput(); ferr != nil {
				return "", fmt.Errorf("stale mount at %s cannot be cleared: %v %s", mnt, err, out)
			}
		}
		_, err = os.Stat(mnt)
	}
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(mnt, 0o755); err != nil {
			return "", fmt.Errorf("cannot create mountpoint %s: %w", mnt, err)
		}
		return mnt, nil
	}
	if err != nil {
		return "", fmt.Errorf("mountpoint %s: %w", mnt, err)
	}
	if isMountpoint(mnt) {
		return "", fmt.Errorf("mountpoint %s is busy: something is already mounted there", mnt)
	}
	entries, err := os.ReadDir(mnt)
	if err != nil {
		return "", fmt.Errorf("mountpoint %s: %w", mnt, err)
	}
	if len(entries) > 0 {
		return "", fmt.Errorf("mountpoint %s is not empty", mnt)
	}
	return mnt, nil
}

func isMountpoint(dir string) bool {
	var st, pst unix.Stat_t
	if unix.Lstat(dir, &st) != nil || unix.Lstat(filepath.Join(dir, ".."), &pst) != nil {
		return false
	}
	return st.Dev != pst.Dev || st.Ino == pst.Ino
}

// flushErrorFile in the data dir holds why the last daemon's final flush
// failed; it is removed when a daemon starts.
const flushErrorFile = "flush-error"

// unmount makes everything durable, unmounts mountpoint and waits until
// its daemon has flushed everything and exited. A failed sync keeps the
// mount (and the changes the daemon holds) unless force.
func unmount(mountpoint string, lazy, force bool) error {
	mnt, err := filepath.Abs(mountpoint)
	if err != nil {
		return err
	}
	if lazy {
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			if out, ferr := exec.Command("fusermount3", "-uz", mnt).CombinedOutput(); ferr != nil {
				return fmt.Errorf("unmount %s: %v; %s", mnt, err, out)
			}
		}
		return nil
	}
	mnt = canonicalMountpoint(mnt)
	// Found before the unmount: afterwards the mount table no longer
	// names the data dir.
	daemon := findDaemon(mnt)
	var syncErr error
	if daemon != nil {
		defer daemon.close()
		var out struct{}
		if syncErr = callControl(daemon.dataDir, "/sync", url.Values{}, &out); syncErr != nil && !force {
			return fmt.Errorf("%s not unmounted: %w\nThe daemon still holds these changes: free space (or fix the disk) and run `taskerfs umount` again; `taskerfs umount --force` unmounts and loses them", mnt, syncErr)
		}
	}
	if err := unix.Unmount(mnt, 0); err != nil {
		if out, ferr := exec.Command("fusermount3", "-u", mnt).CombinedOutput(); ferr != nil {
			return fmt.Errorf("unmount %s: %v; %s", mnt, err, out)
		}
	}
	if daemon != nil {
		daemon.wait()
		if b, err := os.ReadFile(filepath.Join(daemon.dataDir, flushErrorFile)); err == nil {
			return fmt.Errorf("%s unmounted, but the daemon's final flush failed, so changes were lost: %s", mnt, strings.TrimSpace(string(b)))
		}
	}
	if syncErr != nil {
		return fmt.Errorf("%s unmounted (--force), but changes were lost: %w", mnt, syncErr)
	}
	return nil
}

// Default budgets, sized for a laptop next to the app being recorded. The
// kernel's page cache keeps the hot pages of open files (FOPEN_KEEP_CACHE),
// so the blob cache only has to hold small, often re-read blobs (session
// JSON, what search and the virtual views read); sequential readers keep
// their own read-ahead and bypass it. Sequential writers spill each full
// chunk at once, so the dirty budget only has to cover a window's worth of
// closed small files and the chunks being written.
//
// The daemon's whole footprint is meant to stay within the two budgets
// plus memOverhead: 8 + 64 + 64 = 136 MiB at the defaults.
const (
	defaultCacheBytes = 8 << 20
	defaultMaxDirty   = 64 << 20
	// memOverhead is what the daemon needs besides the two budgets:
	// pebble's block cache and memtables (metaCacheBytes, two of
	// metaMemTableBytes, allocated outside the Go heap), read-ahead buffers
	// (at most maxReadAheads MiB in flight plus up to three per sequential
	// reader; they and the buffers of spilled chunks are pooled, and the
	// collector empties the pools when they go unused), the index,
	// go-fuse's request buffers and its tree of the inodes the kernel
	// holds (about 1.2 KB each: 24 MB at --max-kernel-inodes 20000; at
	// 50000 a copy of 10,000 JSON-only sessions peaked at 157 MiB of RSS,
	// at 20000 at 138), the runtime.
	memOverhead = 64 << 20
	// Pebble holds the namespace's hot blocks; the metadata of a large
	// tree of sessions is a few tens of MiB on disk, most of it cold. At
	// 16 MiB the index and filter blocks of a growing index were evicted
	// during an ingest and every namespace change read them back from
	// disk (pebble point reads: 18% of daemon CPU for 1000 sessions, 7%
	// at 24 MiB, no better at 32); the blob cache gave up 8 MiB for it.
	metaCacheBytes    = 24 << 20
	metaMemTableBytes = 8 << 20
	// pebbleBytes is pebble's share of memOverhead.
	pebbleBytes = metaCacheBytes + 2*metaMemTableBytes
	// textBytes is the binary's own share of memOverhead: the pages of
	// its code and data that the kernel maps in (17.5 MB resident in a
	// daemon just mounted, a little more once every path has run). They
	// count in the RSS and the Go limit does not see them.
	textBytes = 18 << 20
)

// setMemoryLimit makes the Go runtime collect harder as the daemon nears
// what its caches and write-back backlog are allowed, so that peak RSS
// follows the configured bounds rather than twice them. Pebble's memory is
// allocated outside the Go heap, where the limit does not see it, and so
// are the binary's mapped pages: their shares are left out of the limit. The limit rises above the budgets when
// the live heap does (memlimit.go). GOMEMLIMIT wins. The returned func
// stops the adjustment.
func setMemoryLimit(f *mountFlags) (stop func()) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	return startMemoryLimit(f.cacheBytes + f.maxDirty + memOverhead - pebbleBytes - textBytes)
}
