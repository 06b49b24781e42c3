package meta

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble"
	"github.com/taskerfs/taskerfs/blobstore"
)

// Counters are the store-wide figures stats show, kept exact in the commit
// path: every transaction adds its delta to them and writes the result in
// the same pebble batch as the change it counts, so they survive a crash
// exactly as the records they count do. Reads cost nothing.
//
// Files, Dirs and LogicalBytes count inode records (orphans and trashed
// versions included, as a scan of the inode table does); Blobs,
// UniqueBytes, StoredBytes and InlineBlobs count refcount records (a blob
// enters when its refcount goes 0->1 and leaves at 1->0).
type Counters struct {
	Files        int64 `json:"files"`
	Dirs         int64 `json:"dirs"`
	LogicalBytes int64 `json:"logicalBytes"`
	Blobs        int64 `json:"blobs"`
	UniqueBytes  int64 `json:"uniqueBytes"`
	StoredBytes  int64 `json:"storedBytes"`
	InlineBlobs  int64 `json:"inlineBlobs"`
	// TrashFiles and TrashBytes count the linked regular files whose
	// directory lies in the trash tree (meta/trash.go); they are part of
	// Files and LogicalBytes too.
	TrashFiles int64 `json:"trashFiles"`
	TrashBytes int64 `json:"trashBytes"`
}

var keyCounters = []byte{pfxConfig, 'c', 'o', 'u', 'n', 't', 'e', 'r', 's'}

const countersVersion = 1

func (c *Counters) fields() []*int64 {
	return []*int64{&c.Files, &c.Dirs, &c.LogicalBytes, &c.Blobs, &c.UniqueBytes, &c.StoredBytes, &c.InlineBlobs,
		&c.TrashFiles, &c.TrashBytes}
}

func (c Counters) add(d Counters) Counters {
	f, g := c.fields(), d.fields()
	for i := range f {
		*f[i] += *g[i]
	}
	return c
}

func (c Counters) encode() []byte {
	b := []byte{countersVersion}
	for _, p := range c.fields() {
		b = binary.AppendVarint(b, *p)
	}
	return b
}

// maxCountersRecord caps the decoder: a version byte and 9 varints.
const maxCountersRecord = 1 + 9*binary.MaxVarintLen64

func decodeCounters(b []byte) (Counters, error) {
	var c Counters
	if len(b) == 0 || len(b) > maxCountersRecord || b[0] != countersVersion {
		return c, errors.New("meta: bad counters record")
	}
	b = b[1:]
	for _, p := range c.fields() {
		v, n := binary.Varint(b)
		if n <= 0 {
			return c, errors.New("meta: bad counters record")
		}
		*p, b = v, b[n:]
	}
	if len(b) != 0 {
		return c, errors.New("meta: bad counters record")
	}
	return c, nil
}

// attrCount is what one inode record contributes.
func attrCount(a *Attr) Counters {
	var c Counters
	switch {
	case a == nil:
	case a.IsRegular():
		c.Files, c.LogicalBytes = 1, int64(a.Size)
	case a.IsDir():
		c.Dirs = 1
	}
	return c
}

// refCount is what one refcount record contributes.
func refCount(r *blobRecord) Counters {
	var c Counters
	if r == nil {
		return c
	}
	c.Blobs, c.UniqueBytes, c.StoredBytes = 1, int64(r.Size), r.Stored
	if r.Inline {
		c.InlineBlobs = 1
	}
	return c
}

func (c Counters) sub(d Counters) Counters {
	f, g := c.fields(), d.fields()
	for i := range f {
		*f[i] -= *g[i]
	}
	return c
}

// countAttr records that inode record old (nil: none) becomes new (nil:
// deleted).
func (tx *Tx) countAttr(old, new *Attr) error {
	tx.delta = tx.delta.add(attrCount(new)).sub(attrCount(old))
	if old != nil && new != nil && old.IsDir() && new.IsDir() && old.Parent != new.Parent {
		return tx.countDirMove(old, new)
	}
	if !trashRelevant(old) && !trashRelevant(new) {
		return nil
	}
	if old != nil && new != nil && old.Parent == new.Parent && old.Size == new.Size &&
		trashRelevant(old) == trashRelevant(new) {
		return nil // neither in nor out of the trash, same size
	}
	for _, x := range []struct {
		a    *Attr
		sign int64
	}{{old, -1}, {new, 1}} {
		if !trashRelevant(x.a) {
			continue
		}
		in, err := tx.dirInTrash(x.a.Parent)
		if err != nil {
			return err
		}
		if in {
			tx.delta.TrashFiles += x.sign
			tx.delta.TrashBytes += x.sign * int64(x.a.Size)
		}
	}
	return nil
}

// trashRelevant: only linked regular files count in the trash figures.
func trashRelevant(a *Attr) bool { return a != nil && a.IsRegular() && a.Nlink > 0 }

// dirInTrash reports whether dir is the trash root or lies below it, as
// this transaction sees the tree.
func (tx *Tx) dirInTrash(dir uint64) (bool, error) {
	root, err := tx.txTrashRoot()
	if err != nil || root == 0 {
		return false, err
	}
	return inTrashTreeOf(tx.memoAttr, root, dir, nil) // the directories' records are remembered
}

// inTrashTree walks up from dir; memo (optional) remembers the answers.
func inTrashTree(r pebble.Reader, root, dir uint64, memo map[uint64]bool) (bool, error) {
	return inTrashTreeOf(func(ino uint64) (Attr, bool, error) {
		v, ok, err := get(r, inodeKey(ino))
		if err != nil || !ok {
			return Attr{}, false, err
		}
		a, err := decodeAttr(ino, v)
		return a, err == nil, err
	}, root, dir, memo)
}

// inTrashTreeOf is inTrashTree reading each directory's record with read;
// a record that cannot be decoded ends the walk (not in the trash).
func inTrashTreeOf(read func(ino uint64) (Attr, bool, error), root, dir uint64, memo map[uint64]bool) (bool, error) {
	var path []uint64
	in := false
	for i := 0; i < 4096 && dir != 0; i++ {
		if v, ok := memo[dir]; ok {
			in = v
			break
		}
		if dir == root {
			in = true
			break
		}
		if dir == RootIno {
			break
		}
		path = append(path, dir)
		a, ok, err := read(dir)
		if errors.Is(err, errBadRecord) {
			break // as a missing record: the walk ends here
		}
		if err != nil {
			return false, err
		}
		if !ok {
			break
		}
		dir = a.Parent
	}
	if memo != nil {
		for _, d := range path {
			memo[d] = in
		}
	}
	return in, nil
}

// countDirMove accounts a directory that moved into or out of the trash
// tree (a restore of a whole directory): every linked file below it
// changes side. It costs a walk of that subtree, like the move itself.
func (tx *Tx) countDirMove(old, new *Attr) error {
	was, err := tx.dirInTrash(old.Parent)
	if err != nil {
		return err
	}
	is, err := tx.dirInTrash(new.Parent)
	if err != nil || was == is {
		return err
	}
	sign := int64(1)
	if was {
		sign = -1
	}
	return walkFiles(tx.b, new.Ino, func(a Attr) error {
		if trashRelevant(&a) && a.Parent != 0 {
			tx.delta.TrashFiles += sign
			tx.delta.TrashBytes += sign * int64(a.Size)
		}
		return nil
	})
}

// countRef records that refcount record old (nil: none) becomes new (nil:
// deleted).
func (tx *Tx) countRef(old, new *blobRecord) {
	tx.delta = tx.delta.add(refCount(new)).sub(refCount(old))
}

// setRef writes h's refcount record, counting the change from old.
func (tx *Tx) setRef(h blobstore.Hash, old *blobRecord, rec blobRecord) error {
	tx.countRef(old, &rec)
	return tx.b.Set(refKey(h), rec.encode(), nil)
}

// delRef deletes h's refcount record old.
func (tx *Tx) delRef(h blobstore.Hash, old blobRecord) error {
	tx.countRef(&old, nil)
	return tx.b.Delete(refKey(h), nil)
}

// oldAttr reads ino's current record in tx, nil when there is none (or it
// cannot be decoded: a scan skips it too).
func (tx *Tx) oldAttr(ino uint64) (*Attr, error) {
	if m, ok := tx.attrs[ino]; ok {
		if m.absent {
			return nil, nil
		}
		return &m.a, nil
	}
	if a, ok := tx.s.attrs.peek(ino); ok {
		return &a, nil
	}
	v, ok, err := get(tx.b, inodeKey(ino))
	if err != nil || !ok {
		return nil, err
	}
	a, err := decodeAttr(ino, v)
	if err != nil {
		return nil, nil
	}
	return &a, nil
}

// Counters returns the current figures; it costs a mutex.
func (s *Store) Counters() Counters {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.counters
}

// ScanCounters recomputes the figures with a full scan of the inode and
// refcount tables (fsck, and a data dir from before counters).
func (s *Store) ScanCounters() (Counters, error) {
	snap := s.db.NewSnapshot()
	defer snap.Close()
	return scanCounters(snap)
}

func scanCounters(r pebble.Reader) (Counters, error) {
	cs, err := newCounterScan(r)
	if err != nil {
		return Counters{}, err
	}
	if err := allInodes(r, func(a Attr) error { return cs.inode(&a) }); err != nil {
		return cs.c, err
	}
	err = scanRefs(r, func(_ blobstore.Hash, rec blobRecord) error {
		cs.ref(&rec)
		return nil
	})
	return cs.c, err
}

// counterScan adds up the counters from the inode and refcount tables as
// a pass over them sees each record: scanCounters makes its own passes,
// and fsck's Check feeds it from the passes it makes anyway.
type counterScan struct {
	r    pebble.Reader
	c    Counters
	root uint64          // of the trash tree; 0 if none
	memo map[uint64]bool // dir -> in the trash tree
}

func newCounterScan(r pebble.Reader) (*counterScan, error) {
	root, err := trashRootOf(r)
	if err != nil {
		return nil, err
	}
	return &counterScan{r: r, root: root, memo: map[uint64]bool{}}, nil
}

// inode counts one inode record.
func (cs *counterScan) inode(a *Attr) error {
	cs.c = cs.c.add(attrCount(a))
	if cs.root != 0 && trashRelevant(a) {
		in, err := inTrashTree(cs.r, cs.root, a.Parent, cs.memo)
		if err != nil {
			return err
		}
		if in {
			cs.c.TrashFiles++
			cs.c.TrashBytes += int64(a.Size)
		}
	}
	return nil
}

// ref counts one refcount record.
func (cs *counterScan) ref(rec *blobRecord) { cs.c = cs.c.add(refCount(rec)) }

// StoredCounters reads the persisted record; ok is false when absent.
func (s *Store) StoredCounters() (c Counters, ok bool, err error) {
	v, ok, err := get(s.db, keyCounters)
	if err != nil || !ok {
		return c, ok, err
	}
	c, err = decodeCounters(v)
	return c, true, err
}

// loadCounters reads the counters at open, computing them by a scan when
// the data dir has none (made by a version without counters) or holds a
// record that cannot be decoded.
func (s *Store) loadCounters() error {
	c, ok, err := s.StoredCounters()
	if err == nil && ok {
		s.counters = c
		return nil
	}
	if err != nil {
		slog.Warn("meta: counters record unreadable; recounting", "err", err)
	} else {
		slog.Info("meta: data dir has no counters; computing them once by a scan")
	}
	c, err = s.RepairCounters()
	if err != nil {
		return fmt.Errorf("meta: counters: %w", err)
	}
	slog.Info("meta: counters computed", "files", c.Files, "dirs", c.Dirs, "blobs", c.Blobs)
	return nil
}

// RepairCounters recomputes the counters by a scan and persists them, in
// one transaction (so no change slips between the scan and the write).
func (s *Store) RepairCounters() (Counters, error) {
	var c Counters
	err := s.Update(true, func(tx *Tx) error {
		var err error
		if c, err = scanCounters(tx.b); err != nil {
			return err
		}
		tx.setCounters = &c
		return nil
	})
	return c, err
}

// checkCounters reports a persisted record that differs from want, the
// counters a scan of r found.
func checkCounters(r pebble.Reader, want Counters, report func(Problem)) error {
	v, ok, err := get(r, keyCounters)
	if err != nil {
		return err
	}
	if !ok {
		report(Problem{Kind: ProblemCounters, Msg: "no counters record"})
		return nil
	}
	got, err := decodeCounters(v)
	if err != nil {
		report(Problem{Kind: ProblemCounters, Msg: err.Error()})
		return nil
	}
	if got != want {
		report(Problem{Kind: ProblemCounters, Msg: fmt.Sprintf("counters %+v, a scan finds %+v", got, want)})
	}
	return nil
}
