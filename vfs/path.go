package vfs

import (
	"errors"
	"os"
	"strings"
	"syscall"

	"github.com/taskerfs/taskerfs/meta"
)

// Path-based helpers for the operator commands (import, export, fsck),
// which work on an unmounted data dir with the same core as the mount.
// Paths are slash-separated and relative to the mount root.

func splitPath(p string) []string {
	var parts []string
	for _, s := range strings.Split(p, "/") {
		if s != "" && s != "." {
			parts = append(parts, s)
		}
	}
	return parts
}

// Resolve returns the attributes of the inode at path (no symlinks
// followed).
func (v *FS) Resolve(p string) (meta.Attr, error) {
	a, err := v.GetAttr(meta.RootIno)
	for _, name := range splitPath(p) {
		if err != nil {
			return a, err
		}
		if !a.IsDir() {
			return a, syscall.ENOTDIR
		}
		a, err = v.Lookup(a.Ino, name)
	}
	return a, err
}

// MkdirAll creates path and its missing parents with mode perm.
func (v *FS) MkdirAll(p string, perm uint32) (meta.Attr, error) {
	a, err := v.GetAttr(meta.RootIno)
	if err != nil {
		return a, err
	}
	for _, name := range splitPath(p) {
		next, err := v.Lookup(a.Ino, name)
		if errors.Is(err, syscall.ENOENT) {
			next, err = v.meta.Create(a.Ino, name, meta.NewNode{Mode: syscall.S_IFDIR | perm&0o7777,
				Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())})
		}
		if err != nil {
			return next, err
		}
		if !next.IsDir() {
			return next, syscall.ENOTDIR
		}
		a = next
	}
	return a, nil
}

// WriteFile creates or replaces the file at p with data, creating parent
// directories. The write is queued like a close() through the mount.
func (v *FS) WriteFile(p string, data []byte, perm uint32) error {
	parts := splitPath(p)
	if len(parts) == 0 {
		return syscall.EISDIR
	}
	dir, err := v.MkdirAll(strings.Join(parts[:len(parts)-1], "/"), 0o755)
	if err != nil {
		return err
	}
	name := parts[len(parts)-1]
	a, err := v.Lookup(dir.Ino, name)
	if errors.Is(err, syscall.ENOENT) {
		a, err = v.meta.Create(dir.Ino, name, meta.NewNode{Mode: syscall.S_IFREG | perm&0o7777,
			Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())})
	}
	if err != nil {
		return err
	}
	if !a.IsRegular() {
		return syscall.EISDIR
	}
	if err := v.OpenFile(a.Ino); err != nil {
		return err
	}
	err = v.wb.Truncate(a.Ino, 0)
	if err == nil && len(data) > 0 {
		_, err = v.wb.Write(a.Ino, data, 0)
	}
	if rerr := v.Release(a.Ino); err == nil {
		err = rerr
	}
	return err
}

// ReadFileAt returns the content of the file at p.
func (v *FS) ReadFileAt(p string) ([]byte, error) {
	a, err := v.Resolve(p)
	if err != nil {
		return nil, err
	}
	if !a.IsRegular() {
		return nil, syscall.EISDIR
	}
	return v.ReadFile(a.Ino)
}

// ReadDirAt lists the directory at p.
func (v *FS) ReadDirAt(p string) ([]meta.DirEntry, error) {
	a, err := v.Resolve(p)
	if err != nil {
		return nil, err
	}
	if !a.IsDir() {
		return nil, syscall.ENOTDIR
	}
	var out []meta.DirEntry
	err = v.meta.ReadDir(a.Ino, "", func(e meta.DirEntry) bool {
		out = append(out, e)
		return true
	})
	return out, err
}
