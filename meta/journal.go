package meta

import (
	"errors"

	"github.com/cockroachdb/pebble"

	"github.com/taskerfs/taskerfs/blobstore"
)

// Journaled blobs. A blob file costs an fsync of the file and one of its
// shard directory before the WAL sync that commits the manifest naming
// it: three flushes for an fsync() of a fresh file where a local
// filesystem makes one. A synchronous commit (an fsync caller waits)
// therefore keeps a few blobs larger than InlineMax inline, so the WAL
// sync alone makes them durable, and marks each with a journal key. The
// write-back manager then moves them to blob files in the background
// (MoveOut): the file is written and synced first, then one transaction
// turns the inline record into a file record and deletes the payload and
// the mark. Inline records larger than InlineMax are the journal's and
// only its; a crash leaves them inline and marked, moved out after the
// next start.

const pfxJournal = 'J' // J<hash> -> empty: an inline blob to move to a file

var errStopScan = errors.New("meta: scan stopped")

func journalKey(h [32]byte) []byte { return append([]byte{pfxJournal}, h[:]...) }

// journaled says whether an inline blob of size bytes is the journal's.
func journaled(size uint32) bool { return size > InlineMax }

// Journaled returns up to limit blobs waiting to be moved out of pebble.
func (s *Store) Journaled(limit int) ([]blobstore.Hash, error) {
	var hs []blobstore.Hash
	err := scanKeys(s.db, []byte{pfxJournal}, func(k, _ []byte) error {
		if len(hs) >= limit {
			return errStopScan
		}
		var h blobstore.Hash
		copy(h[:], k[1:])
		hs = append(hs, h)
		return nil
	})
	if errors.Is(err, errStopScan) {
		err = nil
	}
	return hs, err
}

// WithJournaledBlob calls fn with the content of journaled blob h, checked
// against h, and says whether it did (not when h is no longer inline:
// moved out, or no longer referenced).
// The bytes are pebble's own, without a copy: they are valid only until fn
// returns, and fn must not change them (a blob store's Put never keeps
// what it stores).
func (s *Store) WithJournaledBlob(h blobstore.Hash, fn func(data []byte) error) (ok bool, err error) {
	v, found, err := get(s.db, refKey(h))
	if err != nil || !found {
		return false, err
	}
	rec, err := decodeBlobRecord(v)
	if err != nil || !rec.Inline {
		return false, err
	}
	p, closer, err := s.db.Get(payloadKey(rec.Payload, h))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer closer.Close()
	data, err := DecodeInline(h, BlobInfo(rec), p)
	if err != nil {
		return false, err
	}
	return true, fn(data)
}

// MoveOut records that journaled blob h now lives in the blob store as
// info says: the caller has stored and synced the file. With info nil
// (the caller found h no longer inline) it only drops the mark, unless h
// has been journaled again since.
func (tx *Tx) MoveOut(h blobstore.Hash, info *blobstore.Info) error {
	v, ok, err := get(tx.b, refKey(h))
	if err != nil {
		return err
	}
	var rec blobRecord
	if ok {
		if rec, err = decodeBlobRecord(v); err != nil {
			return err
		}
	}
	if !ok || !rec.Inline {
		return tx.b.Delete(journalKey(h), nil)
	}
	if info == nil {
		return nil // inline again: the next round moves it
	}
	old := rec
	rec.Inline, rec.Codec, rec.Stored, rec.Payload = false, info.Codec, info.Stored, 0
	if err := tx.setRef(h, &old, rec); err != nil {
		return err
	}
	tx.b.Delete(journalKey(h), nil)
	tx.s.freed.inline.Add(uint64(old.Stored)) // a hint for the collector (gc.go)
	return tx.b.Delete(payloadKey(old.Payload, h), nil)
}
