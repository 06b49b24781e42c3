package vfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The data dir holds every file's content (small files inline in pebble),
// so it is private: the dir and every dir in it 0700, every file 0600,
// whatever the umask or modes it had before. The stores create their files
// that way; makePrivate fixes what an earlier version, another tool or a
// pre-existing dir left behind.

const (
	privateDirMode  fs.FileMode = 0o700
	privateFileMode fs.FileMode = 0o600
)

// makePrivate sets dir and what is in it to owner-only modes. The content
// of the blob shards (blobs/<ab>/) is written 0600 by the blob store and
// lives in 0700 dirs, so it is not walked: opening a store with millions of
// blobs stays cheap.
func makePrivate(dir string) error {
	if err := fixMode(dir, privateDirMode); err != nil {
		return err
	}
	blobs := filepath.Join(dir, "blobs")
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking (a rotated log, a temp file)
			}
			return err
		}
		if p == dir || d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		if d.IsDir() {
			if err := fixMode(p, privateDirMode); err != nil {
				return err
			}
			if filepath.Dir(p) == blobs {
				return filepath.SkipDir
			}
			return nil
		}
		return fixMode(p, privateFileMode)
	})
}

// fixMode gives p permission bits want (clearing setuid, setgid, sticky).
func fixMode(p string, want fs.FileMode) error {
	st, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) == want {
		return nil
	}
	if err := os.Chmod(p, want); err != nil {
		return fmt.Errorf("cannot make %s private (mode %04o, want %04o): %w", p, st.Mode().Perm(), want, err)
	}
	return nil
}
