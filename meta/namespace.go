package meta

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"syscall"

	"github.com/cockroachdb/pebble"
)

// MaxNameLen is the longest name a directory entry may have, as on ext4.
const MaxNameLen = 255

// Rename flags, as in renameat2(2).
const (
	RenameNoReplace = 1
	RenameExchange  = 2
)

func errno(e syscall.Errno) error { return e }

func checkName(name string) error {
	if len(name) > MaxNameLen {
		return errno(syscall.ENAMETOOLONG)
	}
	if name == "" || name == "." || name == ".." {
		return errno(syscall.EINVAL)
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '/' || name[i] == 0 {
			return errno(syscall.EINVAL)
		}
	}
	return nil
}

func getAttr(r pebble.Reader, ino uint64) (Attr, error) {
	v, ok, err := get(r, inodeKey(ino))
	if err != nil {
		return Attr{}, err
	}
	if !ok {
		return Attr{}, errno(syscall.ENOENT)
	}
	return decodeAttr(ino, v)
}

func lookup(r pebble.Reader, parent uint64, name string) (ino uint64, typ uint32, err error) {
	v, ok, err := get(r, direntKey(parent, name))
	if err != nil {
		return 0, 0, err
	}
	if !ok || len(v) != 9 {
		return 0, 0, errno(syscall.ENOENT)
	}
	return binary.BigEndian.Uint64(v), uint32(v[8]) << 12, nil
}

func direntValue(ino uint64, mode uint32) []byte {
	return append(u64(nil, ino), byte((mode&syscall.S_IFMT)>>12))
}

// GetAttr reads an inode, through the attribute cache.
func (s *Store) GetAttr(ino uint64) (Attr, error) {
	if a, ok := s.attrs.get(ino); ok {
		return a, nil
	}
	v0 := s.version.Load()
	a, err := getAttr(s.db, ino)
	if err == nil {
		s.attrs.fill(a, v0, &s.version)
	}
	return a, err
}

// PeekAttr reads an inode through the attribute cache without filling it
// on a miss: for checks on hot paths (a walk up to the trash, a close, a
// forget) that would otherwise wait for the cache to apply each Set, on
// inodes a change just evicted and the kernel is not asking about.
func (s *Store) PeekAttr(ino uint64) (Attr, error) {
	if a, ok := s.attrs.get(ino); ok {
		return a, nil
	}
	return getAttr(s.db, ino)
}

// PeekAttrs reads the inodes inos (ascending) like PeekAttr, with one
// pebble iterator instead of a point read each: a directory's entries were
// mostly created together, so their inode records sit side by side and a
// listing's page of them costs a few block reads and seeks, where point
// reads each build and tear down an iterator over every level. fn gets
// each inode found; an inode without a record is skipped. The reads are
// one state of the store when the Version before and after is the same
// even number. What it reads fills the attribute cache (a listing is
// followed by a stat, open or unlink of its entries).
func (s *Store) PeekAttrs(inos []uint64, fn func(a Attr)) error {
	if len(inos) == 0 {
		return nil
	}
	v0 := s.version.Load() // before the iterator's view of the store
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: inodeKey(inos[0]),
		UpperBound: inodeKey(inos[len(inos)-1] + 1),
	})
	if err != nil {
		return err
	}
	for i, ino := range inos {
		if i > 0 && ino <= inos[i-1] {
			it.Close()
			return fmt.Errorf("meta: PeekAttrs: inodes not ascending (%d after %d)", ino, inos[i-1])
		}
		if a, ok := s.attrs.get(ino); ok {
			fn(a)
			continue
		}
		key := inodeKey(ino)
		if !it.SeekGE(key) || !bytes.Equal(it.Key(), key) {
			continue
		}
		a, err := decodeAttr(ino, it.Value())
		if err != nil {
			it.Close()
			return err
		}
		s.attrs.fill(a, v0, &s.version)
		fn(a)
	}
	return it.Close()
}

// Lookup resolves name in parent.
func (s *Store) Lookup(parent uint64, name string) (Attr, error) {
	if len(name) > MaxNameLen {
		return Attr{}, errno(syscall.ENAMETOOLONG)
	}
	k := nameKey{parent, name}
	v, ok := s.attrs.getName(k)
	if !ok {
		v0 := s.version.Load()
		ino, typ, err := lookup(s.db, parent, name)
		if err != nil && err != errno(syscall.ENOENT) {
			return Attr{}, err
		}
		v = txName{ino: ino, typ: typ}
		s.attrs.fillName(k, v, v0, &s.version)
	}
	if v.ino == 0 {
		return Attr{}, errno(syscall.ENOENT)
	}
	return s.GetAttr(v.ino)
}

// lookup resolves name in parent through the transaction's memo and the
// cache of committed entries.
func (tx *Tx) lookup(parent uint64, name string) (ino uint64, typ uint32, err error) {
	k := nameKey{parent, name}
	v, ok := tx.names[k]
	if !ok {
		if v, ok = tx.s.attrs.getName(k); !ok {
			ino, typ, err := lookup(tx.b, parent, name)
			if err != nil && err != errno(syscall.ENOENT) {
				return 0, 0, err
			}
			v = txName{ino: ino, typ: typ}
		}
		tx.rememberName(k, v)
	}
	if v.ino == 0 {
		return 0, 0, errno(syscall.ENOENT)
	}
	return v.ino, v.typ, nil
}

func (tx *Tx) rememberName(k nameKey, v txName) {
	if tx.names == nil {
		tx.names = make(map[nameKey]txName, 4)
	}
	tx.names[k] = v
}

// setName writes the entry name -> ino (of type mode) in parent.
func (tx *Tx) setName(parent uint64, name string, ino uint64, mode uint32) {
	tx.b.Set(direntKey(parent, name), direntValue(ino, mode), nil)
	tx.rememberName(nameKey{parent, name}, txName{ino: ino, typ: mode & syscall.S_IFMT})
}

// delName deletes the entry name in parent.
func (tx *Tx) delName(parent uint64, name string) {
	tx.b.Delete(direntKey(parent, name), nil)
	tx.rememberName(nameKey{parent, name}, txName{})
}

// GetAttr reads an inode, seeing this transaction's writes.
func (tx *Tx) GetAttr(ino uint64) (Attr, error) {
	a, ok, err := tx.memoAttr(ino)
	if err == nil && !ok {
		err = errno(syscall.ENOENT)
	}
	return a, err
}

// Lookup resolves name in parent, seeing this transaction's writes.
func (tx *Tx) Lookup(parent uint64, name string) (Attr, error) {
	ino, _, err := tx.lookup(parent, name)
	if err != nil {
		return Attr{}, err
	}
	return tx.GetAttr(ino)
}

// PutAttr writes an inode record as is.
func (tx *Tx) PutAttr(a *Attr) error {
	tx.touched = append(tx.touched, a.Ino)
	old, err := tx.oldAttr(a.Ino)
	if err != nil {
		return err
	}
	if err := tx.countAttr(old, a); err != nil {
		return err
	}
	tx.remember(a.Ino, a)
	return tx.b.Set(inodeKey(a.Ino), a.encode(), nil)
}

// allocPayload returns a new inline payload id (payloadKey), recorded in
// the same batch, so no id a committed payload holds is handed out again.
func (tx *Tx) allocPayload() uint64 {
	id := tx.s.nextPayload
	tx.s.nextPayload++
	tx.b.Set(keyNextPayload, uvarintBytes(tx.s.nextPayload), nil)
	return id
}

func (tx *Tx) allocIno() uint64 {
	ino := tx.s.nextIno
	tx.s.nextIno++
	tx.b.Set(keyNextIno, uvarintBytes(tx.s.nextIno), nil)
	tx.remember(ino, nil) // never used: no record to read
	return ino
}

// parentDir loads parent and checks it is a live directory.
func (tx *Tx) parentDir(parent uint64) (Attr, error) {
	p, err := tx.GetAttr(parent)
	if err != nil {
		return p, err
	}
	if !p.IsDir() {
		return p, errno(syscall.ENOTDIR)
	}
	if p.Nlink == 0 {
		return p, errno(syscall.ENOENT)
	}
	return p, nil
}

// NewNode describes an inode to create.
type NewNode struct {
	Mode   uint32 // type bits and permissions
	Uid    uint32
	Gid    uint32
	Rdev   uint32
	Target string // symlink target
}

// Create makes a new inode of any type under parent/name.
func (tx *Tx) Create(parent uint64, name string, n NewNode) (Attr, error) {
	if err := checkName(name); err != nil {
		return Attr{}, err
	}
	p, err := tx.parentDir(parent)
	if err != nil {
		return Attr{}, err
	}
	if _, _, err := tx.lookup(parent, name); err == nil {
		return Attr{}, errno(syscall.EEXIST)
	} else if err != errno(syscall.ENOENT) {
		return Attr{}, err
	}
	a := Attr{Ino: tx.allocIno(), Mode: n.Mode, Uid: n.Uid, Gid: n.Gid, Rdev: n.Rdev, Nlink: 1,
		Atime: tx.now, Mtime: tx.now, Ctime: tx.now, Parent: parent, Name: name}
	if p.Mode&syscall.S_ISGID != 0 {
		// BSD group semantics of a setgid directory, as ext4 does.
		a.Gid = p.Gid
		if a.IsDir() {
			a.Mode |= syscall.S_ISGID
		}
	}
	switch a.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		a.Nlink = 2
		p.Nlink++
		tx.newDirs = append(tx.newDirs, a.Ino)
	case syscall.S_IFLNK:
		a.Size = uint64(len(n.Target))
		tx.b.Set(symlinkKey(a.Ino), []byte(n.Target), nil)
	case 0:
		a.Mode |= syscall.S_IFREG
	}
	p.Mtime, p.Ctime = tx.now, tx.now
	tx.setName(parent, name, a.Ino, a.Mode)
	if err := tx.PutAttr(&a); err != nil {
		return Attr{}, err
	}
	if h, ok := tx.s.hooks.(CreateHook); ok && a.IsRegular() {
		if err := h.Created(tx, a.Ino); err != nil {
			return Attr{}, err
		}
	}
	return a, tx.PutAttr(&p)
}

// CreateHook is an optional part of Hooks: Created is called for every new
// regular file, in its creating batch (an empty file is a version too).
type CreateHook interface {
	Created(tx *Tx, ino uint64) error
}

// CreateUnlinked makes a regular file with no name, kept as an orphan
// until it is linked or its last handle closes (O_TMPFILE).
func (tx *Tx) CreateUnlinked(n NewNode) (Attr, error) {
	a := Attr{Ino: tx.allocIno(), Mode: syscall.S_IFREG | n.Mode&0o7777, Uid: n.Uid, Gid: n.Gid,
		Atime: tx.now, Mtime: tx.now, Ctime: tx.now}
	tx.b.Set(orphanKey(a.Ino), nil, nil)
	return a, tx.PutAttr(&a)
}

// Link adds the name newParent/newName for ino.
func (tx *Tx) Link(ino, newParent uint64, newName string) (Attr, error) {
	if err := checkName(newName); err != nil {
		return Attr{}, err
	}
	a, err := tx.GetAttr(ino)
	if err != nil {
		return a, err
	}
	if a.IsDir() {
		return a, errno(syscall.EPERM)
	}
	tx.needContent(ino)
	if a.Nlink == 0 {
		// Only a file made with O_TMPFILE may gain its first name.
		if _, ok, err := get(tx.b, orphanKey(ino)); err != nil || !ok || !a.IsRegular() {
			return a, errno(syscall.ENOENT)
		}
		tx.b.Delete(orphanKey(ino), nil)
		a.Parent, a.Name = newParent, newName
	}
	p, err := tx.parentDir(newParent)
	if err != nil {
		return a, err
	}
	if _, _, err := tx.lookup(newParent, newName); err == nil {
		return a, errno(syscall.EEXIST)
	}
	a.Nlink++
	a.Ctime = tx.now
	p.Mtime, p.Ctime = tx.now, tx.now
	tx.setName(newParent, newName, ino, a.Mode)
	if err := tx.PutAttr(&p); err != nil {
		return a, err
	}
	return a, tx.PutAttr(&a)
}

// Unlink removes a non-directory name. The inode is freed when its last
// link goes, unless it is open: then it becomes an orphan until Release.
func (tx *Tx) Unlink(parent uint64, name string) error {
	p, a, err := tx.entry(parent, name)
	if err != nil {
		return err
	}
	if a.IsDir() {
		return errno(syscall.EISDIR)
	}
	tx.delName(parent, name)
	p.Mtime, p.Ctime = tx.now, tx.now
	if err := tx.PutAttr(&p); err != nil {
		return err
	}
	return tx.dropLink(&a, parent, name)
}

// dropLink decrements a's link count after its entry parent/name is gone.
func (tx *Tx) dropLink(a *Attr, parent uint64, name string) error {
	a.Nlink--
	a.Ctime = tx.now
	if a.Nlink > 0 {
		if a.Parent == parent && a.Name == name {
			// The recorded path is gone; the file keeps its other names.
			a.Parent, a.Name = 0, ""
			if err := tx.PutAttr(a); err != nil {
				return err
			}
			if h, ok := tx.s.hooks.(PathLostHook); ok {
				return h.PathLost(tx, a.Ino)
			}
			return nil
		}
		return tx.PutAttr(a)
	}
	if tx.s.hooks != nil {
		if err := tx.s.hooks.Detached(tx, a.Ino); err != nil {
			return err
		}
	}
	if kept, err := tx.trashUnlinked(a, parent, name); err != nil || kept {
		return err // kept: now a name in the trash (meta/trash.go)
	}
	if tx.s.isOpen(a.Ino) {
		a.Parent, a.Name = 0, ""
		tx.b.Set(orphanKey(a.Ino), nil, nil)
		return tx.PutAttr(a)
	}
	return tx.freeInode(a.Ino)
}

// Rmdir removes an empty directory.
func (tx *Tx) Rmdir(parent uint64, name string) error {
	if name == "." {
		return errno(syscall.EINVAL)
	}
	if name == ".." {
		return errno(syscall.ENOTEMPTY)
	}
	p, a, err := tx.entry(parent, name)
	if err != nil {
		return err
	}
	ino := a.Ino
	if !a.IsDir() {
		return errno(syscall.ENOTDIR)
	}
	if empty, err := tx.dirEmpty(ino); err != nil {
		return err
	} else if !empty {
		return errno(syscall.ENOTEMPTY)
	}
	tx.delName(parent, name)
	p.Nlink--
	p.Mtime, p.Ctime = tx.now, tx.now
	if err := tx.PutAttr(&p); err != nil {
		return err
	}
	return tx.dropDir(&a)
}

// entry resolves parent/name to the live parent directory and the child.
func (tx *Tx) entry(parent uint64, name string) (p, a Attr, err error) {
	if p, err = tx.parentDir(parent); err != nil {
		return p, a, err
	}
	ino, _, err := tx.lookup(parent, name)
	if err != nil {
		return p, a, err
	}
	a, err = tx.GetAttr(ino)
	return p, a, err
}

// dropDir frees an empty directory whose entry is gone, or keeps it as an
// orphan while a handle may still fstat it.
func (tx *Tx) dropDir(a *Attr) error {
	if tx.s.hooks != nil {
		if err := tx.s.hooks.Detached(tx, a.Ino); err != nil {
			return err
		}
	}
	if tx.s.isOpen(a.Ino) {
		a.Nlink = 0
		a.Ctime = tx.now
		tx.b.Set(orphanKey(a.Ino), nil, nil)
		return tx.PutAttr(a)
	}
	return tx.freeInode(a.Ino)
}

func (tx *Tx) dirEmpty(ino uint64) (bool, error) {
	it, err := tx.b.NewIter(&pebble.IterOptions{LowerBound: direntPrefix(ino), UpperBound: prefixEnd(direntPrefix(ino))})
	if err != nil {
		return false, err
	}
	defer it.Close()
	return !it.First(), it.Error()
}

// isAncestor reports whether dir a is dir d or one of d's ancestors.
func (tx *Tx) isAncestor(a, d uint64) (bool, error) {
	for i := 0; d != 0 && i < 1<<16; i++ {
		if d == a {
			return true, nil
		}
		if d == RootIno {
			return false, nil
		}
		attr, err := tx.GetAttr(d)
		if err != nil {
			return false, err
		}
		d = attr.Parent
	}
	return false, nil
}

// Rename moves parent/name to newParent/newName with renameat2 semantics.
func (tx *Tx) Rename(parent uint64, name string, newParent uint64, newName string, flags uint32) error {
	if err := checkName(newName); err != nil {
		return err
	}
	if flags&^(RenameNoReplace|RenameExchange) != 0 || flags == RenameNoReplace|RenameExchange {
		return errno(syscall.EINVAL)
	}
	op, err := tx.parentDir(parent)
	if err != nil {
		return err
	}
	np := op
	if newParent != parent {
		if np, err = tx.parentDir(newParent); err != nil {
			return err
		}
	}
	srcIno, _, err := tx.lookup(parent, name)
	if err != nil {
		return err
	}
	src, err := tx.GetAttr(srcIno)
	if err != nil {
		return err
	}
	if src.IsDir() {
		if inside, err := tx.isAncestor(srcIno, newParent); err != nil {
			return err
		} else if inside {
			return errno(syscall.EINVAL)
		}
	}
	dstIno, _, err := tx.lookup(newParent, newName)
	dstExists := err == nil
	if err != nil && err != errno(syscall.ENOENT) {
		return err
	}
	if src.IsRegular() {
		tx.needContent(srcIno)
	}
	if flags&RenameExchange != 0 {
		if !dstExists {
			return errno(syscall.ENOENT)
		}
		tx.needContent(dstIno)
		return tx.exchange(&op, name, &np, newName, &src, dstIno)
	}
	if dstExists {
		if flags&RenameNoReplace != 0 {
			return errno(syscall.EEXIST)
		}
		if dstIno == srcIno {
			return nil // two links to one inode: POSIX says do nothing
		}
		dst, err := tx.GetAttr(dstIno)
		if err != nil {
			return err
		}
		if dst.IsDir() {
			if !src.IsDir() {
				return errno(syscall.EISDIR)
			}
			if empty, err := tx.dirEmpty(dstIno); err != nil {
				return err
			} else if !empty {
				return errno(syscall.ENOTEMPTY)
			}
		} else if src.IsDir() {
			return errno(syscall.ENOTDIR)
		}
	}
	tx.delName(parent, name)
	tx.setName(newParent, newName, srcIno, src.Mode)
	if dstExists {
		dst, err := tx.GetAttr(dstIno)
		if err != nil {
			return err
		}
		if dst.IsDir() {
			np.Nlink--
			if err := tx.dropDir(&dst); err != nil {
				return err
			}
		} else if err := tx.dropLink(&dst, newParent, newName); err != nil {
			return err
		}
	}
	if src.IsDir() && parent != newParent {
		op.Nlink--
		np.Nlink++
	}
	op.Mtime, op.Ctime = tx.now, tx.now
	np.Mtime, np.Ctime = tx.now, tx.now
	if parent == newParent {
		op.Nlink = np.Nlink
		np = op
	}
	if err := tx.PutAttr(&op); err != nil {
		return err
	}
	if parent != newParent {
		if err := tx.PutAttr(&np); err != nil {
			return err
		}
	}
	src, err = tx.GetAttr(srcIno)
	if err != nil {
		return err
	}
	src.Parent, src.Name = newParent, newName
	src.Ctime = tx.now
	if err := tx.PutAttr(&src); err != nil {
		return err
	}
	if tx.s.hooks != nil {
		return tx.s.hooks.Renamed(tx, srcIno)
	}
	return nil
}

func (tx *Tx) exchange(op *Attr, name string, np *Attr, newName string, src *Attr, dstIno uint64) error {
	dst, err := tx.GetAttr(dstIno)
	if err != nil {
		return err
	}
	if dst.IsDir() {
		if inside, err := tx.isAncestor(dstIno, op.Ino); err != nil {
			return err
		} else if inside {
			return errno(syscall.EINVAL)
		}
	}
	tx.setName(op.Ino, name, dstIno, dst.Mode)
	tx.setName(np.Ino, newName, src.Ino, src.Mode)
	if op.Ino != np.Ino && src.IsDir() != dst.IsDir() {
		if src.IsDir() {
			op.Nlink--
			np.Nlink++
		} else {
			op.Nlink++
			np.Nlink--
		}
	}
	op.Mtime, op.Ctime = tx.now, tx.now
	np.Mtime, np.Ctime = tx.now, tx.now
	if op.Ino == np.Ino {
		if err := tx.PutAttr(op); err != nil {
			return err
		}
	} else {
		if err := tx.PutAttr(op); err != nil {
			return err
		}
		if err := tx.PutAttr(np); err != nil {
			return err
		}
	}
	src.Parent, src.Name, src.Ctime = np.Ino, newName, tx.now
	dst.Parent, dst.Name, dst.Ctime = op.Ino, name, tx.now
	if err := tx.PutAttr(src); err != nil {
		return err
	}
	if err := tx.PutAttr(&dst); err != nil {
		return err
	}
	if tx.s.hooks != nil {
		if err := tx.s.hooks.Renamed(tx, src.Ino); err != nil {
			return err
		}
		return tx.s.hooks.Renamed(tx, dstIno)
	}
	return nil
}
