package meta

import (
	"bytes"
	"encoding/binary"

	"github.com/cockroachdb/pebble"
	"github.com/taskerfs/taskerfs/blobstore"
)

// Read-only views of the refcount table for the attachments-ca/ directory.
// They stream by hash prefix, so listing one shard never touches the rest
// of the store.

// RefShards calls fn, in ascending order, with every first hash byte that
// some referenced blob has. It seeks from shard to shard: at most 256
// seeks whatever the store's size.
func (s *Store) RefShards(fn func(shard byte) error) error {
	p := []byte{pfxRef}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; {
		k := it.Key()
		if len(k) != 1+len(blobstore.Hash{}) {
			return errBadRecord
		}
		shard := k[1]
		if err := fn(shard); err != nil {
			return err
		}
		if shard == 0xff {
			break
		}
		ok = it.SeekGE([]byte{pfxRef, shard + 1})
	}
	return it.Error()
}

// HasRefShard reports whether a referenced blob's hash starts with shard.
func (s *Store) HasRefShard(shard byte) (bool, error) {
	found := false
	err := s.RefBlobsInShard(shard, nil, func(blobstore.Hash, BlobInfo) bool {
		found = true
		return false
	})
	return found, err
}

// RefBlobsInShard calls fn for every referenced blob whose hash starts
// with shard, in hash order, from the first hash >= from (nil: the
// shard's start) until fn returns false.
func (s *Store) RefBlobsInShard(shard byte, from []byte, fn func(h blobstore.Hash, info BlobInfo) bool) error {
	lo := []byte{pfxRef, shard}
	hi := prefixEnd(lo)
	if f := append([]byte{pfxRef}, from...); bytes.Compare(f, lo) > 0 {
		lo = f
	}
	if hi != nil && bytes.Compare(lo, hi) >= 0 {
		return nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		var h blobstore.Hash
		if len(it.Key()) != 1+len(h) {
			return errBadRecord
		}
		copy(h[:], it.Key()[1:])
		r, err := decodeBlobRecord(it.Value())
		if err != nil {
			return err
		}
		if !fn(h, BlobInfo(r)) {
			break
		}
	}
	return it.Error()
}

// BlobUse is one manifest entry that references a blob.
type BlobUse struct {
	Ino   uint64
	Index uint64 // chunk index: the blob holds the file's bytes from Index*ChunkSize
	Path  string // path from the root; "" when the file has no name (unlinked while open)
	Size  uint64 // the file's committed size
}

// BlobUses reads h's record and every manifest entry that references it
// from one snapshot, so that the refcount and the uses agree. ok is false
// when nothing references h.
func (s *Store) BlobUses(h blobstore.Hash) (info BlobInfo, uses []BlobUse, ok bool, err error) {
	snap := s.db.NewSnapshot()
	defer snap.Close()
	v, ok, err := get(snap, refKey(h))
	if err != nil || !ok {
		return info, nil, false, err
	}
	r, err := decodeBlobRecord(v)
	if err != nil {
		return info, nil, false, err
	}
	p := userPrefix(h)
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return info, nil, false, err
	}
	defer it.Close()
	files := map[uint64]BlobUse{} // a file may use h in several chunks
	for valid := it.First(); valid; valid = it.Next() {
		k := it.Key()[len(p):]
		if len(k) != 16 {
			return info, nil, false, errBadRecord
		}
		ino := binary.BigEndian.Uint64(k)
		u, seen := files[ino]
		if !seen {
			if u, err = blobUser(snap, ino); err != nil {
				return info, nil, false, err
			}
			files[u.Ino] = u
		}
		u.Index = binary.BigEndian.Uint64(k[8:])
		uses = append(uses, u)
	}
	if err := it.Error(); err != nil {
		return info, nil, false, err
	}
	return BlobInfo(r), uses, true, nil
}

func blobUser(r pebble.Reader, ino uint64) (BlobUse, error) {
	u := BlobUse{Ino: ino}
	a, err := getAttr(r, ino)
	if err != nil {
		return u, err
	}
	u.Size = a.Size
	u.Path, _, err = pathOf(func(ino uint64) (Attr, error) { return getAttr(r, ino) }, ino)
	return u, err
}
