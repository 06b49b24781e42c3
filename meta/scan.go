package meta

import (
	"encoding/binary"

	"github.com/cockroachdb/pebble"
)

// ScannedFile is one regular file as ScanFiles meets it.
type ScannedFile struct {
	Attr
	Path string // what PathOf gives
	// First is the file's manifest entry 0, when HasFirst (a file of one
	// chunk is that blob).
	First    ChunkRef
	HasFirst bool
}

// ScanFiles calls fn for every regular file that has a path, in inode
// order, over one snapshot. It reads in sequential scans (the directories'
// inodes, then every inode beside the manifests' first entries) instead of
// the point reads per file of WalkFiles and PathOf: for a pass over every
// file (fsck). An inode or manifest entry that does not decode is passed
// over (fsck's namespace check reports it).
func (s *Store) ScanFiles(fn func(f *ScannedFile) error) error {
	snap := s.db.NewSnapshot()
	defer snap.Close()

	type link struct {
		parent uint64
		name   string
	}
	dirs := map[uint64]link{}
	if err := eachInode(snap, true, func(a Attr) error {
		if a.IsDir() && a.Nlink > 0 && a.Parent != 0 {
			dirs[a.Ino] = link{a.Parent, a.Name}
		}
		return nil
	}); err != nil {
		return err
	}
	// A directory's path as pathOf builds it (memoized; a broken or
	// cyclic chain has none).
	paths := map[uint64]string{RootIno: ""}
	var dirPath func(ino uint64, depth int) (string, bool)
	dirPath = func(ino uint64, depth int) (string, bool) {
		if p, ok := paths[ino]; ok {
			return p, true
		}
		l, ok := dirs[ino]
		if !ok || depth > 4096 {
			return "", false
		}
		pp, ok := dirPath(l.parent, depth+1)
		if !ok {
			return "", false
		}
		p := joinPath(pp, l.name)
		paths[ino] = p
		return p, true
	}

	chunks, err := newSeeker(snap, pfxChunk) // forward seeks: pebble steps
	if err != nil {
		return err
	}
	defer chunks.close()
	var f ScannedFile
	err = eachInode(snap, true, func(a Attr) error {
		if !a.IsRegular() || a.Nlink == 0 || a.Parent == 0 {
			return nil
		}
		dp, ok := dirPath(a.Parent, 0)
		if !ok {
			return nil
		}
		f = ScannedFile{Attr: a, Path: joinPath(dp, a.Name)}
		if v, ok := chunks.find(chunkKey(a.Ino, 0)); ok {
			if c, err := decodeChunkRef(v); err == nil {
				f.First, f.HasFirst = c, true
			}
		}
		return fn(&f)
	})
	if err != nil {
		return err
	}
	return chunks.err()
}

func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// eachInode calls fn with every inode, in inode order. One that does not
// decode fails the scan, or with skipBad is passed over (for a pass that
// leaves reporting it to fsck's namespace check).
func eachInode(r pebble.Reader, skipBad bool, fn func(a Attr) error) error {
	p := []byte{pfxInode}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		var a Attr
		err := errBadRecord
		if len(k) == 9 {
			a, err = decodeAttr(binary.BigEndian.Uint64(k[1:]), it.Value())
		}
		if err != nil && skipBad {
			continue
		}
		if err != nil {
			return err
		}
		if err := fn(a); err != nil {
			return err
		}
	}
	return it.Error()
}
