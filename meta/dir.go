package meta

import (
	"encoding/binary"
	"strings"
	"syscall"

	"github.com/cockroachdb/pebble"
)

// DirEntry is one name in a directory.
type DirEntry struct {
	Name string
	Ino  uint64
	Mode uint32 // type bits only
}

// ReadDir streams the entries of dir in name order, starting after the
// name after ("" for the beginning), until fn returns false. It never
// loads the directory whole.
func (s *Store) ReadDir(dir uint64, after string, fn func(DirEntry) bool) error {
	p := direntPrefix(dir)
	lower := p
	if after != "" {
		lower = append(direntKey(dir, after), 0)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(p)})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		v := it.Value()
		if len(v) != 9 {
			return errBadRecord
		}
		e := DirEntry{Name: string(it.Key()[len(p):]), Ino: binary.BigEndian.Uint64(v), Mode: uint32(v[8]) << 12}
		if !fn(e) {
			break
		}
	}
	return it.Error()
}

// Readlink returns a symlink's target.
func (s *Store) Readlink(ino uint64) (string, error) {
	v, ok, err := get(s.db, symlinkKey(ino))
	if err != nil {
		return "", err
	}
	if !ok {
		return "", errno(syscall.EINVAL)
	}
	return string(v), nil
}

// PathOf returns the slash-separated path of ino relative to the root, as
// recorded at its creation or last rename; ok is false for an orphan or a
// file whose recorded link was removed.
func (s *Store) PathOf(ino uint64) (string, bool, error) {
	return pathOf(s.GetAttr, ino) // through the attribute cache: a commit's files share their directories
}

// PathOf is Store.PathOf seeing this transaction's writes (the directories
// on the way are remembered: a commit of many files in one directory reads
// them once).
func (tx *Tx) PathOf(ino uint64) (string, bool, error) { return pathOf(tx.GetAttr, ino) }

func pathOf(getAttr func(ino uint64) (Attr, error), ino uint64) (string, bool, error) {
	var parts []string
	for i := 0; ino != RootIno; i++ {
		if i > 4096 {
			return "", false, errBadRecord
		}
		a, err := getAttr(ino)
		if err == errno(syscall.ENOENT) {
			return "", false, nil
		}
		if err != nil {
			return "", false, err
		}
		if a.Parent == 0 || a.Nlink == 0 {
			return "", false, nil
		}
		parts = append(parts, a.Name)
		ino = a.Parent
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, "/"), true, nil
}

// WalkFiles calls fn for every regular file under dir (depth first),
// reading through tx so a rename in progress sees its new tree.
func (tx *Tx) WalkFiles(dir uint64, fn func(a Attr) error) error { return walkFiles(tx.b, dir, fn) }

// WalkFiles calls fn for every regular file under dir.
func (s *Store) WalkFiles(dir uint64, fn func(a Attr) error) error { return walkFiles(s.db, dir, fn) }

func walkFiles(r pebble.Reader, dir uint64, fn func(a Attr) error) error {
	p := direntPrefix(dir)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return err
	}
	var subdirs, files []uint64
	for ok := it.First(); ok; ok = it.Next() {
		v := it.Value()
		if len(v) != 9 {
			continue
		}
		switch uint32(v[8]) << 12 {
		case syscall.S_IFDIR:
			subdirs = append(subdirs, binary.BigEndian.Uint64(v))
		case syscall.S_IFREG:
			files = append(files, binary.BigEndian.Uint64(v))
		}
	}
	if err := it.Close(); err != nil {
		return err
	}
	for _, ino := range files {
		a, err := getAttr(r, ino)
		if err != nil {
			continue
		}
		if err := fn(a); err != nil {
			return err
		}
	}
	for _, d := range subdirs {
		if err := walkFiles(r, d, fn); err != nil {
			return err
		}
	}
	return nil
}

// AllInodes calls fn for every inode record (fsck, stats).
func (s *Store) AllInodes(fn func(a Attr) error) error { return allInodes(s.db, fn) }
