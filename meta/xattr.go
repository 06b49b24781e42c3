package meta

import (
	"syscall"

	"github.com/cockroachdb/pebble"
)

// Limits as on ext4-ish filesystems and the Linux VFS.
const (
	MaxXattrName  = 255
	MaxXattrValue = 64 << 10
)

// Xattr flags, as in setxattr(2).
const (
	XattrCreate  = 1
	XattrReplace = 2
)

// GetXattr returns the value of name on ino (ENODATA when absent).
func (s *Store) GetXattr(ino uint64, name string) ([]byte, error) {
	if !s.xinos.may(ino) {
		return nil, errno(syscall.ENODATA)
	}
	v, ok, err := get(s.db, xattrKey(ino, name))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errno(syscall.ENODATA)
	}
	return v, nil
}

// ListXattr returns ino's attribute names in order.
func (s *Store) ListXattr(ino uint64) ([]string, error) {
	if !s.xinos.may(ino) {
		return nil, nil
	}
	p := xattrPrefix(ino)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var names []string
	for ok := it.First(); ok; ok = it.Next() {
		names = append(names, string(it.Key()[len(p):]))
	}
	return names, it.Error()
}

// SetXattr sets name on ino honouring XattrCreate/XattrReplace.
func (tx *Tx) SetXattr(ino uint64, name string, value []byte, flags uint32) error {
	if len(name) == 0 || len(name) > MaxXattrName {
		return errno(syscall.ERANGE)
	}
	if len(value) > MaxXattrValue {
		return errno(syscall.E2BIG)
	}
	a, err := tx.GetAttr(ino)
	if err != nil {
		return err
	}
	_, exists, err := get(tx.b, xattrKey(ino, name))
	if err != nil {
		return err
	}
	if flags&XattrCreate != 0 && exists {
		return errno(syscall.EEXIST)
	}
	if flags&XattrReplace != 0 && !exists {
		return errno(syscall.ENODATA)
	}
	a.Ctime = tx.now
	if err := tx.PutAttr(&a); err != nil {
		return err
	}
	// Before the commit: a reader must never miss a committed attribute.
	tx.s.xinos.add(ino)
	return tx.b.Set(xattrKey(ino, name), value, nil)
}

// RemoveXattr deletes name from ino (ENODATA when absent).
func (tx *Tx) RemoveXattr(ino uint64, name string) error {
	a, err := tx.GetAttr(ino)
	if err != nil {
		return err
	}
	if _, ok, err := get(tx.b, xattrKey(ino, name)); err != nil {
		return err
	} else if !ok {
		return errno(syscall.ENODATA)
	}
	a.Ctime = tx.now
	if err := tx.PutAttr(&a); err != nil {
		return err
	}
	return tx.b.Delete(xattrKey(ino, name), nil)
}
