package meta

import (
	"github.com/klauspost/compress/zstd"

	"github.com/taskerfs/taskerfs/blobstore"
)

// Reencoded records that file blob h now sits on disk as codec in stored
// bytes (background recompression rewrote it), so stats stay true.
func (s *Store) Reencoded(h blobstore.Hash, codec blobstore.Codec, stored int64) error {
	return s.Update(false, func(tx *Tx) error {
		v, ok, err := get(tx.b, refKey(h))
		if err != nil || !ok {
			return err // collected meanwhile: nothing to record
		}
		rec, err := decodeBlobRecord(v)
		if err != nil || rec.Inline {
			return err
		}
		old := rec
		rec.Codec, rec.Stored = codec, stored
		return tx.setRef(h, &old, rec)
	})
}

// RecompressInline re-encodes inline blob h at level and keeps the result
// when it is smaller. It reports the stored bytes before and after.
func (s *Store) RecompressInline(h blobstore.Hash, level zstd.EncoderLevel) (before, after int64, err error) {
	err = s.Update(false, func(tx *Tx) error {
		v, ok, err := get(tx.b, refKey(h))
		if err != nil || !ok {
			return err
		}
		rec, err := decodeBlobRecord(v)
		if err != nil || !rec.Inline {
			return err
		}
		p, ok, err := get(tx.b, payloadKey(rec.Payload, h))
		if err != nil || !ok || len(p) == 0 {
			return err
		}
		data, err := blobstore.Decode(blobstore.Codec(p[0]), p[1:], int(rec.Size))
		if err != nil {
			return err
		}
		if blobstore.Sum(data) != h {
			return blobstore.ErrCorrupt // never re-encode damage
		}
		before, after = rec.Stored, rec.Stored
		codec, enc := blobstore.EncodeLevel(data, level)
		if int64(len(enc))+1 >= rec.Stored {
			return nil
		}
		after = int64(len(enc)) + 1
		old := rec
		rec.Codec, rec.Stored = codec, after
		tx.b.Set(payloadKey(rec.Payload, h), append([]byte{byte(codec)}, enc...), nil)
		return tx.setRef(h, &old, rec)
	})
	return before, after, err
}
