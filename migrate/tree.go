package migrate

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/meta"
	"github.com/taskerfs/taskerfs/vfs"
)

// Tree is a session tree that import writes and export reads: an unmounted
// data dir through the core (VFSTree), or a directory on disk such as a
// running mount (DirTree). Paths are slash-separated and relative to the
// tree's root. A missing path gives an error matching fs.ErrNotExist.
type Tree interface {
	ReadFile(p string) ([]byte, error)
	// Open streams the file p.
	Open(p string) (io.ReadCloser, error)
	// WriteFile creates or replaces p, creating parent directories.
	WriteFile(p string, data []byte) error
	// Remove removes the file p.
	Remove(p string) error
	Stat(p string) (Entry, error)
	// ReadDir lists p in name order.
	ReadDir(p string) ([]Entry, error)
	Readlink(p string) (string, error)
	SetXattr(p, name string, value []byte) error
	// GetXattr fails with an error matching syscall.ENODATA when absent.
	GetXattr(p, name string) ([]byte, error)
	// HasBlob reports whether the tree's content store already holds h
	// (false when the tree has none).
	HasBlob(h blobstore.Hash) (bool, error)
}

// Entry describes one file or directory of a Tree.
type Entry struct {
	Name  string
	Size  int64
	Mode  fs.FileMode
	Mtime time.Time
}

// VFSTree is an unmounted data dir, opened with vfs.Open.
type VFSTree struct{ V *vfs.FS }

// bulkTree is a Tree that can make what was written durable at
// checkpoints rather than session by session.
type bulkTree interface {
	// SetBulk turns bulk mode on or off: while on, a session's
	// metadata.json gets no disk sync of its own.
	SetBulk(on bool)
	// Checkpoint makes everything written so far durable.
	Checkpoint() error
}

// SetBulk: metadata.json commits with the write-back window (one sync per
// window for every file it carries) instead of alone with its own sync.
func (t VFSTree) SetBulk(on bool) { t.V.SetBulkIngest(on) }

// Checkpoint commits and syncs everything written.
func (t VFSTree) Checkpoint() error { return t.V.SyncAll() }

func (t VFSTree) ReadFile(p string) ([]byte, error) { return t.V.ReadFileAt(p) }

func (t VFSTree) Open(p string) (io.ReadCloser, error) {
	a, err := t.V.Resolve(p)
	if err != nil {
		return nil, err
	}
	if !a.IsRegular() {
		return nil, syscall.EISDIR
	}
	return &vfsReader{v: t.V, ino: a.Ino}, nil
}

// vfsReader reads a file of the core sequentially.
type vfsReader struct {
	v     *vfs.FS
	ino   uint64
	off   int64
	cache vfs.ReadCache
}

func (r *vfsReader) Read(p []byte) (int, error) {
	n, err := r.v.ReadAt(r.ino, p, r.off, &r.cache)
	r.off += int64(n)
	if n == 0 && err == nil && len(p) > 0 {
		return 0, io.EOF
	}
	return n, err
}

func (r *vfsReader) Close() error { return nil }

func (t VFSTree) WriteFile(p string, data []byte) error { return t.V.WriteFile(p, data, 0o644) }

func (t VFSTree) Remove(p string) error {
	dir, err := t.V.Resolve(path.Dir(p))
	if err != nil {
		return err
	}
	return t.V.Unlink(dir.Ino, path.Base(p))
}

func (t VFSTree) Stat(p string) (Entry, error) {
	a, err := t.V.Resolve(p)
	if err != nil {
		return Entry{}, err
	}
	return entryOf(path.Base(p), a), nil
}

func (t VFSTree) ReadDir(p string) ([]Entry, error) {
	dirents, err := t.V.ReadDirAt(p)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(dirents))
	for _, d := range dirents {
		a, err := t.V.GetAttr(d.Ino)
		if err != nil {
			return nil, err
		}
		out = append(out, entryOf(d.Name, a))
	}
	return out, nil
}

func (t VFSTree) Readlink(p string) (string, error) {
	a, err := t.V.Resolve(p)
	if err != nil {
		return "", err
	}
	return t.V.Readlink(a.Ino)
}

func (t VFSTree) SetXattr(p, name string, value []byte) error {
	a, err := t.V.Resolve(p)
	if err != nil {
		return err
	}
	return t.V.SetXattr(a.Ino, name, value, 0)
}

func (t VFSTree) GetXattr(p, name string) ([]byte, error) {
	a, err := t.V.Resolve(p)
	if err != nil {
		return nil, err
	}
	return t.V.GetXattr(a.Ino, name)
}

func (t VFSTree) HasBlob(h blobstore.Hash) (bool, error) {
	_, ok, err := t.V.BlobInfo(h)
	return ok, err
}

func entryOf(name string, a meta.Attr) Entry {
	mode := fs.FileMode(a.Mode & 0o777)
	switch {
	case a.IsDir():
		mode |= fs.ModeDir
	case a.IsSymlink():
		mode |= fs.ModeSymlink
	case !a.IsRegular():
		mode |= fs.ModeIrregular
	}
	return Entry{Name: name, Size: int64(a.Size), Mode: mode, Mtime: time.Unix(0, a.Mtime)}
}

// DirTree is a directory on disk. On a taskerfs mount, HasBlob looks in
// the mount's content view, attachments-ca/.
type DirTree struct{ Root string }

func (t DirTree) path(p string) string { return filepath.Join(t.Root, filepath.FromSlash(p)) }

func (t DirTree) ReadFile(p string) ([]byte, error) { return readSourceFile(t.path(p)) }

func (t DirTree) Open(p string) (io.ReadCloser, error) { return os.Open(t.path(p)) }

// WriteFile writes a temp file and renames it, so that a reader never sees
// a partial file.
func (t DirTree) WriteFile(p string, data []byte) error {
	full := t.path(p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(full), ".import-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), full)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

func (t DirTree) Remove(p string) error { return os.Remove(t.path(p)) }

func (t DirTree) Stat(p string) (Entry, error) {
	fi, err := os.Lstat(t.path(p))
	if err != nil {
		return Entry{}, err
	}
	return Entry{Name: fi.Name(), Size: fi.Size(), Mode: fi.Mode(), Mtime: fi.ModTime()}, nil
}

func (t DirTree) ReadDir(p string) ([]Entry, error) {
	des, err := os.ReadDir(t.path(p))
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(des))
	for _, d := range des {
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, Entry{Name: d.Name(), Size: fi.Size(), Mode: fi.Mode(), Mtime: fi.ModTime()})
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (t DirTree) Readlink(p string) (string, error) { return os.Readlink(t.path(p)) }

func (t DirTree) SetXattr(p, name string, value []byte) error {
	return unix.Lsetxattr(t.path(p), name, value, 0)
}

func (t DirTree) GetXattr(p, name string) ([]byte, error) {
	for size := 256; ; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Lgetxattr(t.path(p), name, buf)
		if errors.Is(err, unix.ERANGE) && size < meta.MaxXattrValue*4 {
			continue
		}
		if errors.Is(err, unix.ENODATA) {
			return nil, syscall.ENODATA
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

func (t DirTree) HasBlob(h blobstore.Hash) (bool, error) {
	s := h.String()
	_, err := os.Stat(filepath.Join(t.Root, "attachments-ca", s[:2], s))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}
