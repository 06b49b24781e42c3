package blobstore

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	pvfs "github.com/cockroachdb/pebble/vfs"
	"golang.org/x/sys/unix"
)

// blobFS is the little of a filesystem that Local needs. osFS is the
// production one; vfsFS runs the store over a pebble vfs.FS, so that a
// test can put the namespace and the blobs on one vfs.NewStrictMem() and
// drop everything not fsynced, as a power loss does.
type blobFS interface {
	// createTemp makes a new file for writing in dir (private to the owner).
	createTemp(dir, pattern string) (tempFile, error)
	rename(from, to string) error
	// place moves the file from to the name to, unless to exists: then it
	// fails with an error matching fs.ErrExist and leaves both alone.
	place(from, to string) error
	readFile(path string) ([]byte, error)
	// readHeader reads up to len(buf) bytes from the start of path and
	// returns how many it read and the file's size.
	readHeader(path string, buf []byte) (n int, size int64, err error)
	exists(path string) (bool, error)
	// allocated is the disk space the file takes (st_blocks where the
	// filesystem reports it, else its size).
	allocated(path string) (int64, error)
	remove(path string) error
	removeAll(path string) error
	mkdir(path string) error // an existing dir is fine
	// rmdir removes an empty directory; one with entries is refused
	// with an error isNotEmpty recognises.
	rmdir(path string) error
	list(dir string) ([]string, error)
	// fsync makes a file's content, or a directory's entries, durable.
	fsync(path string) error
	// syncAll makes every change since the last syncAll durable.
	syncAll() error
	close() error
}

type tempFile interface {
	io.Writer
	Close() error
	Name() string
	// startWriteback asks the disk to start writing what was written so
	// far, without waiting for it (a hint: it cannot fail).
	startWriteback()
}

// osFS is the local disk. syncAll is one syncfs(2) on the store's
// filesystem through a descriptor held since open (see Local.Sync).
type osFS struct{ root *os.File }

func newOSFS(dir string) (*osFS, error) {
	root, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	return &osFS{root: root}, nil
}

func (*osFS) createTemp(dir, pattern string) (tempFile, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return osTemp{f}, nil
}

func (*osFS) rename(from, to string) error { return os.Rename(from, to) }

type osTemp struct{ *os.File }

// startWriteback is sync_file_range(SYNC_FILE_RANGE_WRITE): the kernel
// starts writing the file's dirty pages and returns. Every blob is
// fsynced before a manifest that names it commits (writeback's
// syncBlobs), so this adds no writes, it only moves them earlier: a 1 GiB
// sequential write spills 1,024 blobs while the application is still
// writing, and without it all of them were still dirty when its fsync
// came (the kernel starts on its own only past dirty_background_ratio).
// On a filesystem without the call it does nothing.
func (t osTemp) startWriteback() {
	_ = unix.SyncFileRange(int(t.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
}

// place is renameat2(RENAME_NOREPLACE), or on a filesystem without it a
// hard link and the removal of from.
func (*osFS) place(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if err == unix.EINVAL || err == unix.ENOSYS {
		if err = os.Link(from, to); err == nil {
			os.Remove(from)
		}
		return err
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}

func (*osFS) readFile(path string) ([]byte, error) { return os.ReadFile(path) }
func (*osFS) remove(path string) error             { return os.Remove(path) }

func (*osFS) allocated(path string) (int64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Blocks * 512, nil
}
func (*osFS) removeAll(path string) error { return os.RemoveAll(path) }

func (*osFS) readHeader(path string, buf []byte) (int, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	n, err := io.ReadFull(f, buf)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		err = nil
	}
	return n, fi.Size(), err
}

func (*osFS) exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func (*osFS) mkdir(path string) error {
	if err := os.Mkdir(path, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

func (*osFS) rmdir(path string) error {
	if err := unix.Rmdir(path); err != nil {
		return &os.PathError{Op: "rmdir", Path: path, Err: err}
	}
	return nil
}

// isNotEmpty reports whether err is rmdir's refusal of a directory with
// entries (ENOTEMPTY, or EEXIST, which POSIX also allows; pebble's MemFS
// returns ENOTEMPTY too).
func isNotEmpty(err error) bool {
	return errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST)
}

func (*osFS) list(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	slices.Sort(names)
	return names, err
}

func (*osFS) fsync(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (o *osFS) syncAll() error { return unix.Syncfs(int(o.root.Fd())) }
func (o *osFS) close() error   { return o.root.Close() }

// vfsFS is a pebble vfs.FS. It has no syncfs, so it remembers what
// changed since the last syncAll (files written, directories whose
// entries changed) and fsyncs exactly those.
type vfsFS struct {
	fs pvfs.FS

	mu    sync.Mutex
	seq   uint64
	dirty map[string]bool // path -> is a directory
}

func newVFSFS(fs pvfs.FS) *vfsFS { return &vfsFS{fs: fs, dirty: map[string]bool{}} }

func (v *vfsFS) touch(path string, dir bool) {
	v.mu.Lock()
	v.dirty[path] = dir
	v.mu.Unlock()
}

type vfsTemp struct {
	pvfs.File
	name string
}

func (t *vfsTemp) Name() string { return t.name }

// startWriteback: a pebble vfs has no writeback to start.
func (t *vfsTemp) startWriteback() {}

func (v *vfsFS) createTemp(dir, pattern string) (tempFile, error) {
	v.mu.Lock()
	v.seq++
	name := filepath.Join(dir, pattern[:len(pattern)-1]+uitoa(v.seq))
	v.mu.Unlock()
	f, err := v.fs.Create(name)
	if err != nil {
		return nil, err
	}
	return &vfsTemp{File: f, name: name}, nil
}

func uitoa(n uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		if n /= 10; n == 0 {
			return string(b[i:])
		}
	}
}

func (v *vfsFS) rename(from, to string) error {
	if err := v.fs.Rename(from, to); err != nil {
		return err
	}
	v.touch(to, false)
	v.touch(filepath.Dir(to), true)
	v.touch(filepath.Dir(from), true)
	return nil
}

func (v *vfsFS) place(from, to string) error {
	if err := v.fs.Link(from, to); err != nil {
		if _, serr := v.fs.Stat(to); serr == nil {
			return &os.LinkError{Op: "link", Old: from, New: to, Err: fs.ErrExist}
		}
		return err
	}
	v.touch(to, false)
	v.touch(filepath.Dir(to), true)
	if v.fs.Remove(from) == nil { // as on disk: a temp file left is cleared at open
		v.touch(filepath.Dir(from), true)
	}
	return nil
}

func (v *vfsFS) readFile(path string) ([]byte, error) {
	f, err := v.fs.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func (v *vfsFS) allocated(path string) (int64, error) {
	fi, err := v.fs.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (v *vfsFS) readHeader(path string, buf []byte) (int, int64, error) {
	f, err := v.fs.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	n, err := io.ReadFull(f, buf)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		err = nil
	}
	return n, fi.Size(), err
}

func (v *vfsFS) exists(path string) (bool, error) {
	_, err := v.fs.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func (v *vfsFS) remove(path string) error {
	if err := v.fs.Remove(path); err != nil {
		return err
	}
	v.touch(filepath.Dir(path), true)
	return nil
}

func (v *vfsFS) removeAll(path string) error {
	if err := v.fs.RemoveAll(path); err != nil {
		return err
	}
	v.touch(filepath.Dir(path), true)
	return nil
}

func (v *vfsFS) mkdir(path string) error {
	if ok, err := v.exists(path); err != nil || ok {
		return err
	}
	if err := v.fs.MkdirAll(path, 0o700); err != nil {
		return err
	}
	v.touch(filepath.Dir(path), true)
	return nil
}

func (v *vfsFS) rmdir(path string) error {
	if err := v.fs.Remove(path); err != nil {
		return err
	}
	v.touch(filepath.Dir(path), true)
	return nil
}

func (v *vfsFS) list(dir string) ([]string, error) {
	names, err := v.fs.List(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	slices.Sort(names)
	return names, err
}

func (v *vfsFS) fsync(path string) error {
	f, err := v.fs.Open(path)
	if err != nil {
		f, err = v.fs.OpenDir(path)
	}
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncAll fsyncs the files first, then the directories naming them.
func (v *vfsFS) syncAll() error {
	v.mu.Lock()
	dirty := v.dirty
	v.dirty = map[string]bool{}
	v.mu.Unlock()
	for _, dirs := range []bool{false, true} {
		for p, isDir := range dirty {
			if isDir != dirs {
				continue
			}
			if err := v.fsync(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				v.mu.Lock()
				for p, d := range dirty {
					v.dirty[p] = d
				}
				v.mu.Unlock()
				return err
			}
		}
	}
	return nil
}

func (*vfsFS) close() error { return nil }
