package meta

import (
	"github.com/cockroachdb/pebble"

	"github.com/taskerfs/taskerfs/blobstore"
)

// PendingOutline calls fn for up to max blobs that a commit kept inline
// although they are over InlineMax (see the note at InlineMax), in hash
// order from after (nil: the first).
func (s *Store) PendingOutline(after *blobstore.Hash, max int, fn func(h blobstore.Hash) error) error {
	p := []byte{pfxOutline}
	lower := p
	if after != nil {
		lower = append(outlineKey(*after), 0)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(p)})
	if err != nil {
		return err
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok && n < max; ok = it.Next() {
		k := it.Key()
		if len(k) != 1+len(blobstore.Hash{}) {
			continue
		}
		var h blobstore.Hash
		copy(h[:], k[1:])
		n++
		if err := fn(h); err != nil {
			return err
		}
	}
	return it.Error()
}

// Outlined is a blob moved out of pebble: its file in the blob store,
// already durable, holds it as Info says.
type Outlined struct {
	Hash blobstore.Hash
	Info blobstore.Info
}

// Outline records, in one batch and without a WAL sync, that each blob
// now lives in the blob store instead of pebble. The caller has made the
// files durable first, so whichever record a crash leaves (inline or
// file) finds its bytes. A blob that is no longer inline (or no longer
// referenced) only loses its mark; its file, if unreferenced, is gc's.
func (s *Store) Outline(blobs []Outlined) error {
	return s.Update(false, func(tx *Tx) error {
		for _, o := range blobs {
			tx.b.Delete(outlineKey(o.Hash), nil)
			v, ok, err := get(tx.b, refKey(o.Hash))
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			rec, err := decodeBlobRecord(v)
			if err != nil {
				return err
			}
			if !rec.Inline || int64(rec.Size) != o.Info.Size {
				continue
			}
			old := rec
			rec.Inline, rec.Codec, rec.Stored = false, o.Info.Codec, o.Info.Stored
			tx.b.Delete(inlineKey(o.Hash), nil)
			if err := tx.setRef(o.Hash, &old, rec); err != nil {
				return err
			}
		}
		return nil
	})
}
