package main

import (
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	tfs "github.com/taskerfs/taskerfs/fs"
	"github.com/taskerfs/taskerfs/vfs"
	"github.com/taskerfs/taskerfs/writeback"
)

// mountFlags are shared by `mount` and the mount.fuse -o path.
type mountFlags struct {
	data         string
	window       time.Duration
	maxDirty     int64
	maxAge       time.Duration
	cacheBytes   int64
	allowOther   bool
	debug        bool
	blobPutDelay time.Duration
	metricsAddr  string
	attrTimeout  time.Duration
	entryTimeout time.Duration
}

func (f *mountFlags) register(c *cobra.Command) {
	fl := c.Flags()
	fl.StringVar(&f.data, "data", vfs.DefaultDataDir(), "data dir")
	fl.DurationVar(&f.window, "writeback-window", 100*time.Millisecond, "group-commit window for closed files")
	fl.Int64Var(&f.maxDirty, "max-dirty-bytes", 256<<20, "writers wait when this many bytes are not yet persisted")
	fl.DurationVar(&f.maxAge, "max-queue-age", 5*time.Second, "writers wait while the oldest queued change is older")
	fl.Int64Var(&f.cacheBytes, "cache-bytes", 256<<20, "blob cache size")
	fl.BoolVar(&f.allowOther, "allow-other", false, "let other users use the mount (needs user_allow_other for non-root)")
	fl.BoolVar(&f.debug, "debug", false, "log every FUSE request")
	fl.StringVar(&f.metricsAddr, "metrics", "", "serve Prometheus metrics over HTTP at this address (host:port; a bare :port binds loopback)")
	fl.DurationVar(&f.attrTimeout, "attr-timeout", time.Second, "kernel attribute cache timeout")
	fl.DurationVar(&f.entryTimeout, "entry-timeout", time.Second, "kernel entry cache timeout")
	fl.DurationVar(&f.blobPutDelay, "debug-blob-put-delay", 0, "testing: delay every blob write (simulates a slow disk)")
	fl.MarkHidden("debug-blob-put-delay")
}

func (f *mountFlags) vfsOptions() vfs.Options {
	return vfs.Options{
		Writeback:      writeback.Options{Window: f.window, MaxDirtyBytes: f.maxDirty, MaxAge: f.maxAge},
		BlobCacheBytes: f.cacheBytes,
		BlobPutDelay:   f.blobPutDelay,
	}
}

func init() {
	var f mountFlags
	c := &cobra.Command{
		Use:   "mount [--data DIR] MOUNTPOINT",
		Short: "Mount a data dir (foreground; unmount with Ctrl-C, SIGTERM or `taskerfs umount`)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMount(&f, args[0])
		},
	}
	f.register(c)
	rootCmd.AddCommand(c)

	rootCmd.AddCommand(&cobra.Command{
		Use:   "umount MOUNTPOINT",
		Short: "Unmount a taskerfs mount (the daemon flushes everything first)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return unmount(args[0])
		},
	})
}

func runMount(f *mountFlags, mountpoint string) error {
	mnt, err := prepareMountpoint(mountpoint)
	if err != nil {
		return err
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return errors.New("/dev/fuse is missing: install fuse3 and load the fuse module (modprobe fuse)")
	}
	v, err := vfs.Open(f.data, f.vfsOptions())
	if err != nil {
		return err
	}
	srv, err := tfs.Mount(v, mnt, tfs.Options{AttrTimeout: f.attrTimeout, EntryTimeout: f.entryTimeout,
		AllowOther: f.allowOther, Debug: f.debug, FsName: "taskerfs:" + f.data})
	if err != nil {
		v.Close()
		return fmt.Errorf("mount %s: %w", mnt, err)
	}
	stopControl, err := serveControl(v, controlRoutes(v))
	if err != nil {
		srv.Unmount()
		v.Close()
		return err
	}
	defer stopControl()
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
	log.Printf("taskerfs: %s mounted on %s", f.data, mnt)

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
	if err := v.Close(); err != nil {
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

func unmount(mountpoint string) error {
	mnt, err := filepath.Abs(mountpoint)
	if err != nil {
		return err
	}
	if err := unix.Unmount(mnt, 0); err == nil {
		return nil
	} else if out, ferr := exec.Command("fusermount3", "-u", mnt).CombinedOutput(); ferr != nil {
		return fmt.Errorf("unmount %s: %v; %s", mnt, err, out)
	}
	return nil
}
