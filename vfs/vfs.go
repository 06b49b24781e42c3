// Package vfs wires the storage layers (blobstore, meta, writeback, index)
// into one filesystem core with POSIX semantics and no FUSE in sight, so
// the FUSE adapter (fs) and the operator commands share one code path.
package vfs

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/cache"
	"github.com/taskerfs/taskerfs/index"
	"github.com/taskerfs/taskerfs/meta"
	"github.com/taskerfs/taskerfs/writeback"
)

// Options configure Open.
type Options struct {
	Writeback      writeback.Options
	BlobCacheBytes int64         // ristretto cost limit for decoded blobs (256 MiB)
	BlobPutDelay   time.Duration // test hook: a slow disk
	ReadOnly       bool
	// MetaCacheBytes and MetaMemTableBytes size pebble's block cache and
	// memtables (meta.Options; 0: its defaults).
	MetaCacheBytes, MetaMemTableBytes int64
	// Trash configures the trash and records it in the data dir; nil
	// uses the recorded configuration (else the trash is off).
	Trash *meta.TrashOptions
	S3    S3Options // blobs in an S3 bucket (see blobs.go)
	// OnStoreFatal is meta.Options.OnFatal: what happens when the
	// metadata store finds itself unusable (the daemon stops).
	OnStoreFatal func(error)
}

// FS is an open data dir.
type FS struct {
	Dir string

	// The stores are private: every filesystem rule and view lives in
	// this package, and the layers above reach the stores only through
	// its methods.
	meta  *meta.Store
	wb    *writeback.Manager
	index *index.Index
	blobs blobstore.Store
	cache *cache.Cache[string, []byte]

	stopSweeper     func()    // set by StartIndexSweeper; Close calls it
	owner, ownerGid uint32    // the daemon's user: sees every view whole
	born            time.Time // the views' timestamps
	permc           permCache
	views           map[string]*vnode // top-level virtual entries
	trashIno        uint64            // root of the trash tree (view_trash.go)
	obs             *observer

	// Background reports the background recompressor's saved bytes and
	// figures (set by the mount that runs one).
	Background func() (savedBytes int64, detail any)
	closed     bool

	lock *os.File
	qc   queryCache
	// space reports the data dir's free and total bytes (freeSpace, or
	// the writeback options' FreeSpace a test gives).
	space func() (avail, total int64, err error)

	dirMu    sync.Mutex
	openDirs map[uint64]int // open directory handles per inode
	kernel   kernelRefs     // inodes the kernel holds (Hold, Forget)
	reap     reaper         // orphans the kernel forgot, freed in batches (held.go)
	regOnce  sync.Once
	reg      *prometheus.Registry

	bulk atomic.Bool // SetBulkIngest (hooks.go)
}

// ErrLocked means another process (a running mount) holds the data dir.
var ErrLocked = errors.New("data dir is in use by a running taskerfs")

// DefaultDataDir is $XDG_DATA_HOME/taskerfs, else ~/.local/share/taskerfs.
func DefaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "taskerfs")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/"
	}
	return filepath.Join(home, ".local", "share", "taskerfs")
}

// Open locks and opens the data dir at dir, creating it if needed.
func Open(dir string, opts Options) (*FS, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", dir, err)
	}
	if err := makePrivate(dir); err != nil {
		return nil, fmt.Errorf("data dir %s must be private to its owner (it holds every file's content): %w; fix it with chown and chmod -R go-rwx, or choose another data dir", dir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	v := &FS{Dir: dir, lock: lock, owner: uint32(os.Getuid()), ownerGid: uint32(os.Getgid()), born: time.Now()}
	v.obs = newObserver()
	if err := v.open(opts); err != nil {
		v.closeStores()
		lock.Close()
		return nil, err
	}
	// pebble's LOCK and anything its first open made.
	if err := makePrivate(dir); err != nil {
		v.closeStores()
		lock.Close()
		return nil, fmt.Errorf("data dir %s: %w", dir, err)
	}
	return v, nil
}

func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data dir %s is not writable: %w", dir, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		pid, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w (pid %s)", dir, ErrLocked, strings.TrimSpace(string(pid)))
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

func (v *FS) open(opts Options) error {
	blobs, err := openBlobStore(v.Dir, opts)
	if err != nil {
		return err
	}
	v.blobs = blobs
	cacheBytes := opts.BlobCacheBytes
	if cacheBytes <= 0 {
		cacheBytes = 256 << 20
	}
	if v.cache, err = cache.New[string, []byte](cacheBytes); err != nil {
		return err
	}
	v.meta, err = meta.Open(filepath.Join(v.Dir, "meta"), meta.Options{Blobs: blobs, BlobCache: blobCache{v.cache},
		CacheBytes: opts.MetaCacheBytes, MemTableBytes: opts.MetaMemTableBytes, OnFatal: opts.OnStoreFatal})
	if err != nil {
		return err
	}
	v.index = index.New(v.meta.DB())
	// Snippets are cut from the files, not kept in the index (about 45% of
	// its bytes): the content is in the store anyway.
	v.index.SetContentSource(v.snippetContent)
	// A reindex writes its records as tables beside the store and ingests them.
	v.index.SetIngest(v.meta.FS(), filepath.Join(v.Dir, "reindex.tmp"))
	// What a reindex that did not end left (the data dir is locked: no
	// reindex runs now).
	if err := v.meta.FS().RemoveAll(filepath.Join(v.Dir, "reindex.tmp")); err != nil {
		return err
	}
	if err := v.meta.FS().Remove(filepath.Join(v.Dir, spillName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if incomplete, err := v.index.Incomplete(); err != nil {
		return err
	} else if incomplete {
		slog.Warn("the search index is incomplete: a reindex was interrupted; search misses files until `taskerfs reindex` runs to the end", "data", v.Dir)
	}
	v.meta.SetHooks(hooks{v})
	wbo := opts.Writeback
	wbo.PrepareCommit = v.prepareCommit
	wbo.OnCommit = v.onCommit
	wbo.Prioritize = v.prioritize
	if wbo.FreeSpace == nil {
		wbo.FreeSpace = v.freeSpace
	}
	v.space = wbo.FreeSpace
	v.wb = writeback.New(v.meta, wbo)
	v.openDirs = map[uint64]int{}
	v.meta.SetOpenCheck(v.isOpen)
	v.meta.SetContentGate(v.wb)
	v.views = v.buildViews()
	if err := v.adoptLegacyQueries(); err != nil {
		return err
	}
	if err := v.ensureLayout(); err != nil {
		return err
	}
	return v.setupUndo(opts.Trash) // vfs/undo.go; after sessions/, which stays inode 2
}

// blobCache keys ristretto by the hash's raw bytes.
type blobCache struct {
	c *cache.Cache[string, []byte]
}

func (b blobCache) Get(h blobstore.Hash) ([]byte, bool) { return b.c.Get(string(h[:])) }
func (b blobCache) Set(h blobstore.Hash, d []byte)      { b.c.Set(string(h[:]), d, int64(len(d))+64) }

// SessionsDir is the top-level directory of the session tree.
const SessionsDir = "sessions"

// ensureLayout creates sessions/ on a fresh data dir.
func (v *FS) ensureLayout() error {
	_, err := v.meta.Lookup(meta.RootIno, SessionsDir)
	if errors.Is(err, syscall.ENOENT) {
		_, err = v.meta.Create(meta.RootIno, SessionsDir, meta.NewNode{Mode: syscall.S_IFDIR | 0o755,
			Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())})
	}
	return err
}

// Close flushes everything durably and releases the data dir.
func (v *FS) Close() error {
	if v.closed {
		return nil
	}
	v.closed = true
	if v.stopSweeper != nil {
		v.stopSweeper() // its steps are transactions: before the stores close
	}
	close(v.obs.log.stop)
	v.reap.wait() // what is left is freed at the next mount
	var err error
	if v.wb != nil {
		err = v.wb.Close()
	}
	if cerr := v.closeStores(); err == nil {
		err = cerr
	}
	v.lock.Close()
	return err
}

func (v *FS) closeStores() error {
	var err error
	if v.meta != nil {
		err = v.meta.Close()
	}
	if v.blobs != nil {
		if cerr := v.blobs.Close(); err == nil {
			err = cerr
		}
	}
	if v.cache != nil {
		v.cache.Close()
	}
	return err
}

// GetAttr returns ino's attributes including changes not yet committed.
func (v *FS) GetAttr(ino uint64) (meta.Attr, error) {
	a, err := v.meta.GetAttr(ino)
	if err != nil {
		return a, err
	}
	if a.IsRegular() {
		v.wb.Attr(&a)
	}
	return a, nil
}

// Lookup resolves name in parent with uncommitted changes overlaid.
func (v *FS) Lookup(parent uint64, name string) (meta.Attr, error) {
	a, err := v.meta.Lookup(parent, name)
	if err == nil && a.IsRegular() {
		v.wb.Attr(&a)
	}
	return a, err
}

// SetAttrIn is a setattr request.
// KillSetID (in meta.SetAttrIn) is also set by the kernel's
// FATTR_KILL_SUIDGID and WRITE_KILL_SUIDGID: a truncate or write by a caller
// without CAP_FSETID. A chown sets it here.
type SetAttrIn struct {
	meta.SetAttrIn
	Size *uint64
}

// SetAttr applies a setattr; a size change goes through the write-back
// layer like a write.
func (v *FS) SetAttr(ino uint64, in SetAttrIn) (meta.Attr, error) {
	if in.Size != nil {
		a, err := v.meta.GetAttr(ino)
		if err != nil {
			return a, err
		}
		if a.IsDir() {
			return a, syscall.EISDIR
		}
		if !a.IsRegular() {
			return a, syscall.EINVAL
		}
		if cur, err := v.GetAttr(ino); err == nil && cur.Size > *in.Size {
			v.beforeReplace(ino) // the trash keeps the last closed version
		}
		if err := v.wb.Truncate(ino, *in.Size); err != nil {
			return a, err
		}
	}
	if in.Uid != nil || in.Gid != nil {
		in.KillSetID = true // chown clears set-ID bits, even root's
	}
	explicit := in.Mode != nil || in.Uid != nil || in.Gid != nil
	times := in.Atime != nil || in.Mtime != nil
	if times && in.Size == nil && !explicit && !in.KillSetID && v.wb.SetTimes(ino, in.Atime, in.Mtime) {
		return v.GetAttr(ino) // the times go with the file's content commit
	}
	if times {
		v.wb.ClearTimes(ino, in.Atime != nil, in.Mtime != nil)
	}
	change := explicit || times
	if !change && in.KillSetID {
		// A flagged write or truncate: a commit only if there is a bit
		// to clear (the transaction decides again).
		if a, err := v.meta.GetAttr(ino); err == nil && meta.HasKillableSetID(&a) {
			change = true
		}
	}
	if change {
		// The record as the change wrote it: no second read of it.
		a, err := v.meta.SetAttr(ino, in.SetAttrIn)
		if err != nil {
			return meta.Attr{}, err
		}
		if a.IsRegular() {
			v.wb.Attr(&a)
		}
		return a, nil
	}
	return v.GetAttr(ino)
}

// OpenFile registers an open handle on ino. It runs under the namespace
// lock so that an unlink deciding whether ino is open cannot interleave:
// either the open sees the inode gone (ENOENT) or the unlink sees it open.
func (v *FS) OpenFile(ino uint64) error {
	return v.meta.Update(false, func(tx *meta.Tx) error {
		a, err := tx.GetAttr(ino)
		if err != nil {
			return err
		}
		if a.Nlink == 0 && !v.wb.IsOpen(ino) && !v.kernel.held(ino) {
			return syscall.ENOENT
		}
		return v.wb.Open(ino)
	})
}

// Release drops a handle; an unlinked file is freed at its last close.
func (v *FS) Release(ino uint64) error {
	if !v.wb.Release(ino) {
		return nil
	}
	if v.kernel.held(ino) {
		return nil // Forget frees a held orphan
	}
	a, err := v.meta.PeekAttr(ino)
	if err != nil || a.Nlink > 0 {
		return nil
	}
	v.wb.Discard(ino)
	return v.meta.ReleaseOrphan(ino)
}

func (v *FS) isOpen(ino uint64) bool {
	v.dirMu.Lock()
	n := v.openDirs[ino]
	v.dirMu.Unlock()
	return n > 0 || v.kernel.held(ino) || v.wb.IsOpen(ino)
}

// OpenDir registers an open directory handle, so that a removed directory
// lives on (as an orphan) while a handle can still fstat it.
func (v *FS) OpenDir(ino uint64) {
	v.dirMu.Lock()
	v.openDirs[ino]++
	v.dirMu.Unlock()
}

// ReleaseDir drops a directory handle, freeing a removed directory at the
// last one.
func (v *FS) ReleaseDir(ino uint64) error {
	v.dirMu.Lock()
	v.openDirs[ino]--
	last := v.openDirs[ino] <= 0
	if last {
		delete(v.openDirs, ino)
	}
	v.dirMu.Unlock()
	if !last {
		return nil
	}
	a, err := v.meta.GetAttr(ino)
	if err != nil || a.Nlink > 0 {
		return nil
	}
	return v.meta.ReleaseOrphan(ino)
}

// CreateUnlinked makes an open regular file in no directory (O_TMPFILE).
func (v *FS) CreateUnlinked(n meta.NewNode) (meta.Attr, error) {
	var a meta.Attr
	err := v.meta.Update(false, func(tx *meta.Tx) error {
		var err error
		a, err = tx.CreateUnlinked(n)
		return err
	})
	if err != nil {
		return a, err
	}
	return a, v.wb.Open(a.Ino)
}

// MaxReadFile caps what ReadFile (and ReadFileAt) read into memory; a
// larger file is an error (EFBIG), to be read piecewise through WB.Read.
const MaxReadFile = 1 << 30

// ReadFile returns a whole file's current content.
func (v *FS) ReadFile(ino uint64) ([]byte, error) {
	a, err := v.GetAttr(ino)
	if err != nil {
		return nil, err
	}
	if a.Size > MaxReadFile {
		// A sparse file's size costs nothing to set: never allocate it.
		return nil, fmt.Errorf("read whole file of %d bytes (more than %d): %w", a.Size, MaxReadFile, syscall.EFBIG)
	}
	buf := make([]byte, a.Size)
	n, err := v.wb.Read(ino, buf, 0, &writeback.ReadCache{})
	return buf[:n], err
}

// Statfs reports the data dir's disk.
func (v *FS) Statfs() (unix.Statfs_t, error) {
	var st unix.Statfs_t
	err := unix.Statfs(v.Dir, &st)
	return st, err
}

// freeSpace is the data dir's available and total bytes (writeback's
// preflight against a full disk).
func (v *FS) freeSpace() (avail, total int64, err error) {
	st, err := v.Statfs()
	return int64(st.Bavail) * st.Bsize, int64(st.Blocks) * st.Bsize, err
}

// gcOrphanWait bounds how long GC waits for the kernel to let go of
// unlinked files: close() sends RELEASE and an unlink's eviction sends
// FORGET after the syscall has returned, so a gc right after an rm can
// find the removed files still held for a few milliseconds (seconds on
// a loaded machine). An orphan held longer (a process keeps the file
// open) keeps its blobs, and the background gc frees them later.
var gcOrphanWait = 3 * time.Second

// gcWaiting, when set (tests), is called each time GC waits for a held
// orphan.
var gcWaiting func()

// GC removes unreferenced blobs. The orphans the kernel has forgotten are
// freed first, not left to the reaper's next batch, and orphans still
// held are given gcOrphanWait to be let go: a gc right after an rm
// reclaims the removed files' blobs.
func (v *FS) GC() (meta.GCResult, error) {
	if err := v.beforeGC(); err != nil {
		return meta.GCResult{}, err
	}
	return v.meta.GC()
}

// beforeGC commits the queue and frees the removed files the kernel lets
// go of within gcOrphanWait (GC, GCUndo).
func (v *FS) beforeGC() error {
	if err := v.wb.SyncAll(); err != nil {
		return err
	}
	deadline := time.Now().Add(gcOrphanWait)
	for {
		if err := v.reap.settle(v); err != nil {
			return fmt.Errorf("free forgotten orphans: %w", err)
		}
		held, err := v.meta.HasOrphans()
		if err != nil || !held || time.Now().After(deadline) {
			return err
		}
		if gcWaiting != nil {
			gcWaiting()
		}
		time.Sleep(5 * time.Millisecond)
	}
}
