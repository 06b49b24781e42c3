package meta

import "syscall"

// One-call wrappers: each is one transaction.

func (s *Store) Create(parent uint64, name string, n NewNode) (a Attr, err error) {
	err = s.Update(false, func(tx *Tx) error {
		a, err = tx.Create(parent, name, n)
		return err
	})
	return a, err
}

// Link and Rename commit after the queued content of the file they give a
// new name (see updateSettled).
func (s *Store) Link(ino, newParent uint64, newName string) (a Attr, err error) {
	err = s.updateSettled(func(tx *Tx) error {
		a, err = tx.Link(ino, newParent, newName)
		return err
	})
	return a, err
}

func (s *Store) Unlink(parent uint64, name string) error {
	return s.Update(false, func(tx *Tx) error { return tx.Unlink(parent, name) })
}

func (s *Store) Rmdir(parent uint64, name string) error {
	return s.Update(false, func(tx *Tx) error { return tx.Rmdir(parent, name) })
}

func (s *Store) Rename(parent uint64, name string, newParent uint64, newName string, flags uint32) error {
	return s.updateSettled(func(tx *Tx) error { return tx.Rename(parent, name, newParent, newName, flags) })
}

func (s *Store) SetXattr(ino uint64, name string, value []byte, flags uint32) error {
	return s.Update(false, func(tx *Tx) error { return tx.SetXattr(ino, name, value, flags) })
}

func (s *Store) RemoveXattr(ino uint64, name string) error {
	return s.Update(false, func(tx *Tx) error { return tx.RemoveXattr(ino, name) })
}

// SetAttrIn carries the fields a setattr changes; nil means unchanged.
// Size is not here: content length belongs to the write-back layer.
type SetAttrIn struct {
	Mode  *uint32 // permission bits only
	Uid   *uint32
	Gid   *uint32
	Atime *int64
	Mtime *int64
	// KillSetID clears a non-directory's set-user-ID bit, and its
	// set-group-ID bit when it is group-executable (a Mode given in the
	// same request wins; the kernel never sends both): what a
	// write, truncate or chown does to a set-ID file (the kernel leaves it
	// to the filesystem under FUSE_HANDLE_KILLPRIV_V2).
	KillSetID bool
}

// killSetID is mode without the bits a write, truncate or chown clears.
func killSetID(mode uint32) uint32 {
	if mode&syscall.S_IFMT == syscall.S_IFDIR {
		return mode
	}
	mode &^= syscall.S_ISUID
	if mode&(syscall.S_ISGID|syscall.S_IXGRP) == syscall.S_ISGID|syscall.S_IXGRP {
		mode &^= syscall.S_ISGID
	}
	return mode
}

// HasKillableSetID reports whether in.KillSetID would change a.
func HasKillableSetID(a *Attr) bool { return killSetID(a.Mode) != a.Mode }

// SetAttr applies in to ino.
func (tx *Tx) SetAttr(ino uint64, in SetAttrIn) (Attr, error) {
	a, err := tx.GetAttr(ino)
	if err != nil {
		return a, err
	}
	if in.KillSetID {
		a.Mode = killSetID(a.Mode)
	}
	if in.Mode != nil {
		a.Mode = a.Mode&^0o7777 | *in.Mode&0o7777
	}
	if in.Uid != nil {
		a.Uid = *in.Uid
	}
	if in.Gid != nil {
		a.Gid = *in.Gid
	}
	if in.Atime != nil {
		a.Atime = *in.Atime
	}
	if in.Mtime != nil {
		a.Mtime = *in.Mtime
	}
	a.Ctime = tx.now
	return a, tx.PutAttr(&a)
}

func (s *Store) SetAttr(ino uint64, in SetAttrIn) (a Attr, err error) {
	err = s.Update(false, func(tx *Tx) error {
		a, err = tx.SetAttr(ino, in)
		return err
	})
	return a, err
}
