package meta

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble"
)

// Trash keeps the previous version of a regular file when its last name
// goes (unlink, rename over it) and when its content is replaced (O_TRUNC,
// truncate to a shorter size). Nothing is copied: an unlinked inode is
// re-parented into the trash tree as it is; a replaced file's manifest is
// shared by a new trash inode whose chunk references take blob refcounts.
//
// The trash tree is a directory inode that is not a name in the root (the
// vfs layer serves it as .trash/); below it, one directory per UTC hour,
// then the original path, whose directories copy the owner and mode of the
// originals at the time, so that the ordinary permission checks decide
// who sees what:
//
//	.trash/<YYYY-MM-DD-HH>/<original path>      (name.~N~ when taken)
//
// At most one version per original path is kept per Interval: a newer one
// within the interval replaces the older one (the last state before the
// loss is the one people look for). Entries expire Retention after they
// were trashed (their ctime).
const (
	pfxTrash = 'T' // T<original path> -> uvarint trashed-at (ns), uvarint trash ino
)

var keyTrashRoot = []byte{pfxConfig, 't', 'r', 'a', 's', 'h', 'r', 'o', 'o', 't'}

// TrashDirName is the name the trash tree is served under at the root.
const TrashDirName = ".trash"

// TrashHourLayout names the per-hour directories (UTC).
const TrashHourLayout = "2006-01-02-15"

// TrashOptions configure the trash.
type TrashOptions struct {
	// Retention is how long a trashed version is kept; 0 disables the trash.
	Retention time.Duration
	// Interval: at most one version per file per interval.
	Interval time.Duration
}

// DefaultTrashOptions: a day, and a version per file every 10 minutes.
var DefaultTrashOptions = TrashOptions{Retention: 24 * time.Hour, Interval: 10 * time.Minute}

// SetTrash configures the trash (disabled until called).
func (s *Store) SetTrash(o TrashOptions) {
	s.mu.Lock()
	s.trash = o
	s.mu.Unlock()
}

// Trash returns the trash configuration.
func (s *Store) Trash() TrashOptions {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.trash
}

func trashKey(path string) []byte { return append([]byte{pfxTrash}, path...) }

func trashRootOf(r pebble.Reader) (uint64, error) {
	v, ok, err := get(r, keyTrashRoot)
	if err != nil || !ok {
		return 0, err
	}
	d := decoder{b: v}
	ino := d.uvarint()
	return ino, d.err
}

// committedTrashRoot is trashRootOf(s.db), from memory once known.
func (s *Store) committedTrashRoot() (uint64, error) {
	if ino := s.trashIno.Load(); ino != 0 {
		return ino, nil
	}
	ino, err := trashRootOf(s.db)
	if err == nil && ino != 0 {
		s.trashIno.Store(ino)
	}
	return ino, err
}

// txTrashRoot is the trash root as tx sees it: a committed one from
// memory, else whatever tx's batch holds (it may be making it).
func (tx *Tx) txTrashRoot() (uint64, error) {
	if ino := tx.s.trashIno.Load(); ino != 0 {
		return ino, nil
	}
	return trashRootOf(tx.b)
}

// TrashRoot returns the trash tree's inode; ok is false while nothing was
// ever trashed.
func (s *Store) TrashRoot() (uint64, bool, error) {
	ino, err := s.committedTrashRoot()
	return ino, ino != 0, err
}

// InTrash reports whether ino is the trash root or lies below it.
func (s *Store) InTrash(ino uint64) (bool, error) {
	root, err := s.committedTrashRoot()
	if err != nil || root == 0 {
		return false, err
	}
	for i := 0; i < 4096 && ino != 0; i++ {
		if ino == root {
			return true, nil
		}
		if ino == RootIno {
			return false, nil
		}
		a, err := s.GetAttr(ino)
		if errors.Is(err, syscall.ENOENT) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		ino = a.Parent
	}
	return false, nil
}

// trashRoot returns the trash root, making it on first use.
func (tx *Tx) trashRoot() (uint64, error) {
	ino, err := tx.txTrashRoot()
	if err != nil || ino != 0 {
		return ino, err
	}
	root, err := tx.GetAttr(RootIno)
	if err != nil {
		return 0, err
	}
	a := Attr{Ino: tx.allocIno(), Mode: syscall.S_IFDIR | 0o755, Uid: root.Uid, Gid: root.Gid, Nlink: 2,
		Atime: tx.now, Mtime: tx.now, Ctime: tx.now, Parent: RootIno, Name: TrashDirName}
	if err := tx.PutAttr(&a); err != nil {
		return 0, err
	}
	tx.newTrash = a.Ino
	return a.Ino, tx.b.Set(keyTrashRoot, uvarintBytes(a.Ino), nil)
}

// trashWalk returns the directories from the root (excluded) down to dir
// (included); inTrash is set when dir is in the trash tree, ok is false
// when dir is not reachable (removed).
func (tx *Tx) trashWalk(dir uint64) (chain []Attr, inTrash, ok bool, err error) {
	root, err := tx.txTrashRoot()
	if err != nil {
		return nil, false, false, err
	}
	for i := 0; dir != RootIno; i++ {
		if i > 4096 {
			return nil, false, false, errBadRecord
		}
		if root != 0 && dir == root {
			return nil, true, true, nil
		}
		a, err := tx.GetAttr(dir)
		if errors.Is(err, syscall.ENOENT) {
			return nil, false, false, nil
		}
		if err != nil {
			return nil, false, false, err
		}
		if a.Nlink == 0 || a.Parent == 0 {
			return nil, false, false, nil
		}
		chain = append(chain, a)
		dir = a.Parent
	}
	for i, j := 0, len(chain)-1; i < j; i, j = i+1, j-1 {
		chain[i], chain[j] = chain[j], chain[i]
	}
	return chain, false, true, nil
}

// trashDirFor makes (or finds) .trash/<hour>/<chain...> and returns it.
// The hour directory stands for the root; each directory below copies the
// owner and mode of the original it stands for.
func (tx *Tx) trashDirFor(chain []Attr) (uint64, error) {
	root, err := tx.trashRoot()
	if err != nil {
		return 0, err
	}
	top, err := tx.GetAttr(RootIno)
	if err != nil {
		return 0, err
	}
	hour := time.Unix(0, tx.now).UTC().Format(TrashHourLayout)
	dir, err := tx.trashSubdir(root, hour, top)
	if err != nil {
		return 0, err
	}
	for _, like := range chain {
		if dir, err = tx.trashSubdir(dir, like.Name, like); err != nil {
			return 0, err
		}
	}
	return dir, nil
}

// trashSubdir finds or makes the directory name (or name.~N~ when name is
// taken by a file) in parent with like's owner and permissions.
func (tx *Tx) trashSubdir(parent uint64, name string, like Attr) (uint64, error) {
	for n := 0; n < 1000; n++ {
		cand := suffixed(name, n)
		ino, typ, err := tx.lookup(parent, cand)
		if err == nil {
			if typ == syscall.S_IFDIR {
				return ino, nil
			}
			continue
		}
		if !errors.Is(err, syscall.ENOENT) {
			return 0, err
		}
		a, err := tx.Create(parent, cand, NewNode{Mode: syscall.S_IFDIR | like.Mode&0o7777, Uid: like.Uid, Gid: like.Gid})
		return a.Ino, err
	}
	return 0, errno(syscall.ENOSPC)
}

// suffixed is name for n == 0, else name.~n~ (GNU backup style).
func suffixed(name string, n int) string {
	if n == 0 {
		return name
	}
	s := fmt.Sprintf(".~%d~", n)
	if len(name)+len(s) > MaxNameLen {
		name = name[:MaxNameLen-len(s)]
	}
	return name + s
}

// freeName returns the first of name, name.~1~, ... not taken in dir.
func (tx *Tx) freeName(dir uint64, name string) (string, error) {
	for n := 0; n < 100000; n++ {
		cand := suffixed(name, n)
		_, _, err := tx.lookup(dir, cand)
		if errors.Is(err, syscall.ENOENT) {
			return cand, nil
		}
		if err != nil {
			return "", err
		}
	}
	return "", errno(syscall.ENOSPC)
}

// trashPlace decides where a version of parent/name goes: the trash
// directory, the free name in it, and the trashed-at time to record. ok is
// false when the trash is off or the file is not in the live tree. A
// version of the same path trashed less than Interval ago is dropped.
func (tx *Tx) trashPlace(parent uint64, name string) (dir uint64, leaf, orig string, since int64, ok bool, err error) {
	if tx.s.trash.Retention <= 0 {
		return 0, "", "", 0, false, nil
	}
	chain, inTrash, reachable, err := tx.trashWalk(parent)
	if err != nil || inTrash || !reachable {
		return 0, "", "", 0, false, err
	}
	parts := make([]string, 0, len(chain)+1)
	for _, a := range chain {
		parts = append(parts, a.Name)
	}
	orig = strings.Join(append(parts, name), "/")
	if since, err = tx.dropRecentVersion(orig); err != nil {
		return 0, "", "", 0, false, err
	}
	if dir, err = tx.trashDirFor(chain); err != nil {
		return 0, "", "", 0, false, err
	}
	leaf, err = tx.freeName(dir, name)
	return dir, leaf, orig, since, err == nil, err
}

// dropRecentVersion removes the version of orig trashed less than Interval
// ago, if it is still in the trash, and returns the time its interval
// started (now when none).
func (tx *Tx) dropRecentVersion(orig string) (int64, error) {
	v, ok, err := get(tx.b, trashKey(orig))
	if err != nil || !ok {
		return tx.now, err
	}
	d := decoder{b: v}
	at, ino := int64(d.uvarint()), d.uvarint()
	if d.err != nil || tx.now-at >= int64(tx.s.trash.Interval) {
		return tx.now, nil
	}
	a, err := tx.GetAttr(ino)
	if errors.Is(err, syscall.ENOENT) {
		return tx.now, nil
	}
	if err != nil {
		return 0, err
	}
	if !a.IsRegular() || a.Nlink != 1 || a.Parent == 0 {
		return tx.now, nil // restored and linked elsewhere: not ours to drop
	}
	if _, inTrash, _, err := tx.trashWalk(a.Parent); err != nil || !inTrash {
		return tx.now, err // restored (moved out)
	}
	return at, tx.Unlink(a.Parent, a.Name)
}

// putTrashed links a (already detached from its old name) into dir/leaf.
func (tx *Tx) putTrashed(a *Attr, dir uint64, leaf, orig string, since int64) error {
	d, err := tx.GetAttr(dir)
	if err != nil {
		return err
	}
	a.Nlink, a.Parent, a.Name, a.Ctime = 1, dir, leaf, tx.now
	tx.b.Delete(orphanKey(a.Ino), nil)
	tx.setName(dir, leaf, a.Ino, a.Mode)
	d.Mtime, d.Ctime = tx.now, tx.now
	if err := tx.PutAttr(&d); err != nil {
		return err
	}
	rec := binary.AppendUvarint(uvarintBytes(uint64(since)), a.Ino)
	if err := tx.b.Set(trashKey(orig), rec, nil); err != nil {
		return err
	}
	return tx.PutAttr(a)
}

// trashUnlinked keeps a regular file whose last name parent/name just went
// (its link count is already 0) in the trash. kept is false when it should
// be freed as usual.
func (tx *Tx) trashUnlinked(a *Attr, parent uint64, name string) (kept bool, err error) {
	if !a.IsRegular() || tx.s.trash.Retention <= 0 {
		return false, nil
	}
	dir, leaf, orig, since, ok, err := tx.trashPlace(parent, name)
	if err != nil || !ok {
		return false, err
	}
	return true, tx.putTrashed(a, dir, leaf, orig, since)
}

// TrashReplaced keeps the committed content of ino in the trash before it
// is replaced by a truncation to newSize (called by the commit that applies
// it, before the manifest changes). A new inode shares the manifest.
func (tx *Tx) TrashReplaced(ino, newSize uint64) error {
	if tx.s.trash.Retention <= 0 {
		return nil
	}
	a, err := tx.GetAttr(ino)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return nil
		}
		return err
	}
	if !a.IsRegular() || a.Nlink == 0 || a.Parent == 0 || a.Size == 0 || newSize >= a.Size {
		return nil
	}
	dir, leaf, orig, since, ok, err := tx.trashPlace(a.Parent, a.Name)
	if err != nil || !ok {
		return err
	}
	n := Attr{Ino: tx.allocIno(), Mode: a.Mode, Uid: a.Uid, Gid: a.Gid, Size: a.Size,
		Atime: a.Atime, Mtime: a.Mtime}
	var chunks []struct {
		idx uint64
		c   ChunkRef
	}
	err = scanChunks(tx.b, ino, func(idx uint64, c ChunkRef) error {
		chunks = append(chunks, struct {
			idx uint64
			c   ChunkRef
		}{idx, c})
		return nil
	})
	if err != nil {
		return err
	}
	for _, ch := range chunks {
		if err := tx.SetChunk(n.Ino, ch.idx, &BlobRef{Hash: ch.c.Hash, Size: ch.c.Size}); err != nil {
			return err
		}
	}
	return tx.putTrashed(&n, dir, leaf, orig, since)
}

// TrashUsage is what the trash holds.
type TrashUsage struct {
	Files int64 `json:"files"`
	Bytes int64 `json:"bytes"` // logical
}

// TrashUsage walks the trash tree.
func (s *Store) TrashUsage() (TrashUsage, error) {
	var u TrashUsage
	root, err := s.committedTrashRoot()
	if err != nil || root == 0 {
		return u, err
	}
	err = walkFiles(s.db, root, func(a Attr) error {
		u.Files++
		u.Bytes += int64(a.Size)
		return nil
	})
	return u, err
}

// ExpireTrash deletes trashed versions older than the retention (every one
// when all is set) and the directories left empty, in batches. It returns
// what was freed; the blobs go at the next GC.
func (s *Store) ExpireTrash(now time.Time, all bool) (TrashUsage, error) {
	var freed TrashUsage
	root, err := s.committedTrashRoot()
	if err != nil || root == 0 {
		return freed, err
	}
	cutoff := now.Add(-s.Trash().Retention).UnixNano()
	type op struct {
		parent uint64
		name   string
		dir    bool
		size   uint64
	}
	var ops []op
	var walk func(dir uint64, whole bool) (empty bool, err error)
	walk = func(dir uint64, whole bool) (bool, error) {
		var ents []DirEntry
		if err := s.ReadDir(dir, "", func(e DirEntry) bool { ents = append(ents, e); return true }); err != nil {
			return false, err
		}
		empty := true
		for _, e := range ents {
			if e.Mode == syscall.S_IFDIR {
				sub, err := walk(e.Ino, whole)
				if err != nil {
					return false, err
				}
				if sub {
					ops = append(ops, op{parent: dir, name: e.Name, dir: true})
				} else {
					empty = false
				}
				continue
			}
			a, err := getAttr(s.db, e.Ino)
			if err != nil {
				empty = false
				continue
			}
			if whole || a.Ctime < cutoff {
				ops = append(ops, op{parent: dir, name: e.Name, size: a.Size})
			} else {
				empty = false
			}
		}
		return empty, nil
	}
	var hours []DirEntry
	if err := s.ReadDir(root, "", func(e DirEntry) bool { hours = append(hours, e); return true }); err != nil {
		return freed, err
	}
	for _, h := range hours {
		t, perr := time.Parse(TrashHourLayout, h.Name)
		whole := all || (perr == nil && t.Add(time.Hour).UnixNano() <= cutoff)
		if !all && perr == nil && t.UnixNano() > cutoff {
			continue // nothing in it can be old enough
		}
		if h.Mode != syscall.S_IFDIR {
			if whole || perr != nil {
				ops = append(ops, op{parent: root, name: h.Name})
			}
			continue
		}
		empty, err := walk(h.Ino, whole)
		if err != nil {
			return freed, err
		}
		if empty {
			ops = append(ops, op{parent: root, name: h.Name, dir: true})
		}
	}
	const batch = 1024
	for len(ops) > 0 {
		n := min(batch, len(ops))
		part := ops[:n]
		ops = ops[n:]
		var f TrashUsage
		err := s.Update(false, func(tx *Tx) error {
			f = TrashUsage{}
			for _, o := range part {
				var err error
				if o.dir {
					err = tx.Rmdir(o.parent, o.name)
				} else {
					err = tx.Unlink(o.parent, o.name)
					if err == nil {
						f.Files++
						f.Bytes += int64(o.size)
					}
				}
				// Raced with a restore or a manual removal: leave it.
				if err != nil && !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ENOTEMPTY) {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return freed, err
		}
		freed.Files += f.Files
		freed.Bytes += f.Bytes
	}
	return freed, s.expireTrashKeys(cutoff, all)
}

// expireTrashKeys forgets the interval records older than cutoff.
func (s *Store) expireTrashKeys(cutoff int64, all bool) error {
	var old [][]byte
	err := scanKeys(s.db, []byte{pfxTrash}, func(k, v []byte) error {
		d := decoder{b: v}
		at := int64(d.uvarint())
		if all || d.err != nil || at < cutoff {
			old = append(old, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil || len(old) == 0 {
		return err
	}
	return s.Update(false, func(tx *Tx) error {
		for _, k := range old {
			if err := tx.b.Delete(k, nil); err != nil {
				return err
			}
		}
		return nil
	})
}

var keyTrashOpts = []byte{pfxConfig, 't', 'r', 'a', 's', 'h', 'o', 'p', 't', 's'}

// SaveTrashOptions records o in the store (durably) so that commands run
// on the unmounted data dir expire with the mount's retention.
func (s *Store) SaveTrashOptions(o TrashOptions) error {
	return s.Update(true, func(tx *Tx) error {
		v := binary.AppendUvarint(uvarintBytes(uint64(max(o.Retention, 0))), uint64(max(o.Interval, 0)))
		return tx.b.Set(keyTrashOpts, v, nil)
	})
}

// LoadTrashOptions returns the recorded options; ok is false when none.
func (s *Store) LoadTrashOptions() (o TrashOptions, ok bool, err error) {
	v, ok, err := get(s.db, keyTrashOpts)
	if err != nil || !ok {
		return o, false, err
	}
	d := decoder{b: v}
	o.Retention, o.Interval = time.Duration(d.uvarint()), time.Duration(d.uvarint())
	return o, d.err == nil, d.err
}

// EnsureTrashRoot makes the trash tree's root if it is missing and returns
// it (the vfs layer serves it as .trash/ from the start).
func (s *Store) EnsureTrashRoot() (uint64, error) {
	if ino, err := s.committedTrashRoot(); err != nil || ino != 0 {
		return ino, err
	}
	var ino uint64
	err := s.Update(true, func(tx *Tx) error {
		var err error
		ino, err = tx.trashRoot()
		return err
	})
	return ino, err
}
