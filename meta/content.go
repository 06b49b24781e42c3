package meta

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"syscall"

	"github.com/cockroachdb/pebble"
	"github.com/taskerfs/taskerfs/blobstore"
)

// ChunkSize is the fixed span of file content one manifest entry covers.
// Fixed, aligned chunks (not content-defined ones) keep random writes
// (sqlite, mmap, fio) cheap: a change rewrites only the chunks it touches.
// A file up to ChunkSize is one blob, so whole-file dedup falls out.
const ChunkSize = 1 << 20

// InlineMax is the largest blob kept as a pebble value instead of a file:
// small files then cost one batch and no extra fsync.
const InlineMax = 64 << 10

// BlobRef is a prepared chunk: hashed, encoded, and (for file blobs)
// already written to the blob store.
type BlobRef struct {
	Hash   blobstore.Hash
	Size   uint32 // logical bytes
	Codec  blobstore.Codec
	Stored int64  // bytes on disk
	Inline []byte // encoded payload when the blob lives in pebble
	// Payload is the inline payload's id (payloadKey), set by the commit
	// that records the blob (SetChunk), so that a manifest entry made from
	// this reference (ChunkRefOf) reads it with one point read.
	Payload uint64
}

// ChunkRef is one manifest entry.
type ChunkRef struct {
	Hash blobstore.Hash
	Size uint32
	// Payload is the id of the blob's inline payload when the entry was
	// written (0: a blob file, or a payload from before ids). A blob that
	// moved to a file since (journal.go) leaves it naming nothing, and a
	// read that misses it asks the blob's record (loadChunk).
	Payload uint64
}

// ChunkRefOf is the manifest entry a committed blob reference makes.
func ChunkRefOf(r *BlobRef) ChunkRef { return ChunkRef{Hash: r.Hash, Size: r.Size, Payload: r.Payload} }

// blobRecord is a blob's refcount and where it lives.
type blobRecord struct {
	Refs    uint64
	Inline  bool
	Size    uint32
	Stored  int64
	Codec   blobstore.Codec
	Payload uint64 // the inline payload's id (payloadKey); 0: inlineKey, or not inline
}

func (r *blobRecord) encode() []byte {
	b := binary.AppendUvarint(nil, r.Refs)
	inline := byte(0)
	if r.Inline {
		inline = 1
	}
	b = append(b, inline, byte(r.Codec))
	b = binary.AppendUvarint(b, uint64(r.Size))
	b = binary.AppendUvarint(b, uint64(r.Stored))
	if r.Payload != 0 {
		b = binary.AppendUvarint(b, r.Payload)
	}
	return b
}

func decodeBlobRecord(v []byte) (blobRecord, error) {
	d := decoder{b: v}
	r := blobRecord{Refs: d.uvarint()}
	flags := d.bytes(2)
	if d.err == nil {
		r.Inline = flags[0] == 1
		r.Codec = blobstore.Codec(flags[1])
	}
	r.Size = uint32(d.uvarint())
	r.Stored = int64(d.uvarint())
	if d.err == nil && len(d.b) > 0 {
		r.Payload = d.uvarint()
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = errBadRecord
	}
	return r, d.err
}

func encodeChunkRef(c ChunkRef) []byte {
	b := binary.AppendUvarint(append(make([]byte, 0, 32+5+9), c.Hash[:]...), uint64(c.Size))
	if c.Payload != 0 {
		b = binary.AppendUvarint(b, c.Payload)
	}
	return b
}

func decodeChunkRef(v []byte) (ChunkRef, error) {
	var c ChunkRef
	if len(v) < 33 {
		return c, errBadRecord
	}
	copy(c.Hash[:], v)
	n, k := binary.Uvarint(v[32:])
	if k <= 0 || n > ChunkSize {
		return c, errBadRecord
	}
	c.Size = uint32(n)
	if rest := v[32+k:]; len(rest) > 0 {
		p, k := binary.Uvarint(rest)
		if k != len(rest) || p == 0 {
			return c, errBadRecord
		}
		c.Payload = p
	}
	return c, nil
}

// Chunk reads manifest entry index of ino; ok is false for a hole.
func (s *Store) Chunk(ino, index uint64) (c ChunkRef, ok bool, err error) {
	v, ok, err := get(s.db, chunkKey(ino, index))
	if err != nil || !ok {
		return c, false, err
	}
	c, err = decodeChunkRef(v)
	return c, err == nil, err
}

// Chunks lists the manifest of ino in order (holes are absent).
func (s *Store) Chunks(ino uint64, fn func(index uint64, c ChunkRef) error) error {
	return scanChunks(s.db, ino, fn)
}

// ChunksOfSize is Chunks for a file whose committed size is size: a file
// has entries only below its chunk count (the commit drops those past each
// size it records; Check reports one past it), so a small file's are read
// with point reads, which a bloom filter answers for most tables, instead
// of an iterator that seeks every level (fsck and reindex read every file).
func (s *Store) ChunksOfSize(ino, size uint64, fn func(index uint64, c ChunkRef) error) error {
	n := (size + ChunkSize - 1) / ChunkSize
	if n > 4 {
		return scanChunkRange(s.db, ino, 0, n, fn)
	}
	for i := range n {
		v, ok, err := get(s.db, chunkKey(ino, i))
		if err != nil {
			return err
		}
		if !ok {
			continue // a hole
		}
		c, err := decodeChunkRef(v)
		if err != nil {
			return err
		}
		if err := fn(i, c); err != nil {
			return err
		}
	}
	return nil
}

func scanChunks(r pebble.Reader, ino uint64, fn func(index uint64, c ChunkRef) error) error {
	return scanChunkRange(r, ino, 0, ^uint64(0), fn)
}

// scanChunkRange calls fn for the manifest entries of ino in [from, to).
// The iterator is bounded to that range, so it never steps over the keys
// (or the deleted and overwritten versions) of the chunks before from.
func scanChunkRange(r pebble.Reader, ino, from, to uint64, fn func(index uint64, c ChunkRef) error) error {
	p := chunkPrefix(ino)
	upper := prefixEnd(p)
	if to != ^uint64(0) {
		upper = chunkKey(ino, to)
	}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: chunkKey(ino, from), UpperBound: upper})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		c, err := decodeChunkRef(it.Value())
		if err != nil {
			return err
		}
		if err := fn(binary.BigEndian.Uint64(it.Key()[9:]), c); err != nil {
			return err
		}
	}
	return it.Error()
}

// SetChunk points entry index of ino at ref (nil makes it a hole),
// moving refcounts in the same batch.
func (tx *Tx) SetChunk(ino, index uint64, ref *BlobRef) error {
	return tx.setChunk(ino, index, ref, false)
}

// SetChunkPastEnd is SetChunk for an index at or past the chunk count of
// ino's committed size, where no entry can be (every commit drops the
// entries past the size it records): it skips the point read of the old
// entry, which for a new file misses in every level of pebble while the
// committer holds the namespace lock.
func (tx *Tx) SetChunkPastEnd(ino, index uint64, ref *BlobRef) error {
	return tx.setChunk(ino, index, ref, true)
}

func (tx *Tx) setChunk(ino, index uint64, ref *BlobRef, none bool) error {
	key := chunkKey(ino, index)
	var (
		old []byte
		had bool
		err error
	)
	if !none {
		if old, had, err = get(tx.b, key); err != nil {
			return err
		}
	}
	if had {
		oc, err := decodeChunkRef(old)
		if err != nil {
			return err
		}
		if ref != nil && oc.Hash == ref.Hash {
			ref.Payload = oc.Payload
			return nil
		}
		if err := tx.unref(oc.Hash); err != nil {
			return err
		}
		tx.b.Delete(userKey(oc.Hash, ino, index), nil)
	}
	if ref == nil {
		if had {
			return tx.b.Delete(key, nil)
		}
		return nil
	}
	payload, err := tx.ref(ref)
	if err != nil {
		return err
	}
	ref.Payload = payload
	tx.b.Set(userKey(ref.Hash, ino, index), nil, nil)
	return tx.b.Set(key, encodeChunkRef(ChunkRefOf(ref)), nil)
}

// TruncateChunks drops every manifest entry at or after index from.
func (tx *Tx) TruncateChunks(ino, from uint64) error {
	return tx.dropChunkRange(ino, from, ^uint64(0))
}

// maxPointDrops is the widest range DropChunks clears with point reads;
// wider ones (a sparse file cut short) are scanned.
const maxPointDrops = 64

// DropChunks drops the manifest entries of ino in [from, to), for a caller
// that knows no entry lies at or past to: a commit passes the chunk count
// of the size it is replacing, since every commit drops the entries past
// its new size before recording that size.
//
// A narrow range is cleared with point reads rather than an iterator. A
// chunk that is rewritten again and again (fsx, a session's metadata.json)
// has one version per rewrite in the memtable, and an iterator that
// returns it then steps over every older version to find the next key:
// truncation scans were 65% of the daemon's CPU under fsx. A point read
// stops at the newest version.
func (tx *Tx) DropChunks(ino, from, to uint64) error {
	if to <= from {
		return nil
	}
	if to-from > maxPointDrops {
		return tx.dropChunkRange(ino, from, to)
	}
	for i := from; i < to; i++ {
		if err := tx.SetChunk(ino, i, nil); err != nil {
			return err
		}
	}
	return nil
}

func (tx *Tx) dropChunkRange(ino, from, to uint64) error {
	var drop []uint64
	err := scanChunkRange(tx.b, ino, from, to, func(i uint64, _ ChunkRef) error {
		drop = append(drop, i)
		return nil
	})
	if err != nil {
		return err
	}
	for _, i := range drop {
		if err := tx.SetChunk(ino, i, nil); err != nil {
			return err
		}
	}
	return nil
}

// ref adds a reference to r's blob, recording it (and storing its inline
// payload) when it is new, and returns the blob's inline payload id (0:
// none, or one from before ids).
func (tx *Tx) ref(r *BlobRef) (uint64, error) {
	v, ok, err := get(tx.b, refKey(r.Hash))
	if err != nil {
		return 0, err
	}
	rec := blobRecord{Inline: r.Inline != nil, Size: r.Size, Stored: r.Stored, Codec: r.Codec}
	var old *blobRecord
	if ok {
		if rec, err = decodeBlobRecord(v); err != nil {
			return 0, err
		}
		prev := rec
		old = &prev
	} else if r.Inline != nil {
		// The payload goes straight into the batch behind its codec byte
		// (no copy of it made first: it is the whole of a small file).
		rec.Payload = tx.allocPayload()
		k := payloadKey(rec.Payload, r.Hash)
		op := tx.b.SetDeferred(len(k), 1+len(r.Inline))
		copy(op.Key, k)
		op.Value[0] = byte(r.Codec)
		copy(op.Value[1:], r.Inline)
		if err := op.Finish(); err != nil {
			return 0, err
		}
		if journaled(r.Size) {
			tx.b.Set(journalKey(r.Hash), nil, nil) // journal.go
		}
	}
	rec.Refs++
	return rec.Payload, tx.setRef(r.Hash, old, rec)
}

func (tx *Tx) unref(h blobstore.Hash) error {
	v, ok, err := get(tx.b, refKey(h))
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("meta: unref of unknown blob %s", h)
	}
	rec, err := decodeBlobRecord(v)
	if err != nil {
		return err
	}
	if rec.Refs > 1 {
		old := rec
		rec.Refs--
		return tx.setRef(h, &old, rec)
	}
	// A file blob stays on disk until gc; an inline one goes now.
	tx.s.freed.blobs.Add(1) // a hint for the collector: counted even if the tx fails
	tx.delRef(h, rec)
	if rec.Inline {
		tx.s.freed.inline.Add(uint64(rec.Stored))
		tx.b.Delete(payloadKey(rec.Payload, h), nil)
		if journaled(rec.Size) {
			tx.b.Delete(journalKey(h), nil)
		}
	}
	return nil
}

// freeInode deletes an inode with everything hanging off it.
func (tx *Tx) freeInode(ino uint64) error {
	old, err := tx.oldAttr(ino)
	if err != nil {
		return err
	}
	if err := tx.dropAllChunks(ino, old); err != nil {
		return err
	}
	// Point deletes, not a range tombstone: every later read would have to
	// step over each inode's tombstone until compaction.
	xp := xattrPrefix(ino)
	it, err := tx.b.NewIter(&pebble.IterOptions{LowerBound: xp, UpperBound: prefixEnd(xp)})
	if err != nil {
		return err
	}
	var names [][]byte
	for ok := it.First(); ok; ok = it.Next() {
		names = append(names, append([]byte(nil), it.Key()...))
	}
	if err := it.Close(); err != nil {
		return err
	}
	for _, k := range names {
		tx.b.Delete(k, nil)
	}
	return tx.dropInode(ino, old)
}

// dropInode deletes ino's own records once its chunks and xattrs are gone.
func (tx *Tx) dropInode(ino uint64, old *Attr) error {
	tx.b.Delete(symlinkKey(ino), nil)
	tx.b.Delete(orphanKey(ino), nil)
	tx.touched = append(tx.touched, ino)
	tx.s.freed.inodes.Add(1)
	if err := tx.countAttr(old, nil); err != nil {
		return err
	}
	tx.remember(ino, nil)
	return tx.b.Delete(inodeKey(ino), nil)
}

// dropAllChunks drops every manifest entry of ino, whose record is a
// (nil: none or unreadable). A regular file has entries only below the
// chunk count of its size (every commit drops those past its new size
// before recording it), so they are cleared with point reads (DropChunks)
// instead of an iterator, which costs a seek in every level of pebble per
// freed file: a third of the daemon's CPU in rm -rf of small files. Other
// kinds have no entries; without a record the range is scanned.
func (tx *Tx) dropAllChunks(ino uint64, a *Attr) error {
	switch {
	case a == nil:
		return tx.TruncateChunks(ino, 0)
	case a.IsRegular():
		return tx.DropChunks(ino, 0, (a.Size+ChunkSize-1)/ChunkSize)
	default:
		return nil
	}
}

// ReleaseOrphan frees ino if it was unlinked while open and is no longer.
func (s *Store) ReleaseOrphan(ino uint64) error {
	return s.Update(false, func(tx *Tx) error {
		if _, ok, err := get(tx.b, orphanKey(ino)); err != nil || !ok {
			return err
		}
		return tx.freeInode(ino)
	})
}

// ReleaseOrphans frees, in one transaction, every one of inos that is
// still an orphan (others are left alone). What freeing them reads (the
// orphan marks, the chunk entries, the xattr names) is read first, in
// inode order, with one iterator per keyspace instead of a point read or
// an iterator per inode (each builds and drops an iterator over every
// level of pebble): the reaper frees up to 256 inodes a transaction, and
// those reads made it hold the namespace lock, which unlinks wait for,
// for tens of milliseconds in an rm -rf of a large store.
func (s *Store) ReleaseOrphans(inos []uint64) error {
	inos = slices.Clone(inos)
	slices.Sort(inos)
	inos = slices.Compact(inos)
	return s.Update(false, func(tx *Tx) error {
		frees, err := tx.readOrphans(inos)
		if err != nil {
			return err
		}
		for i := range frees {
			if err := tx.freeRead(&frees[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// orphanRead is what freeing an orphan needs, read ahead of the writes.
type orphanRead struct {
	ino    uint64
	attr   *Attr        // nil: no readable record
	scan   bool         // chunks not read ahead: freeInode finds them
	chunks []chunkEntry // the manifest entries, with scan false
	xattrs [][]byte     // the xattr keys
}

type chunkEntry struct {
	idx  uint64
	hash blobstore.Hash
}

// withIter runs fn with an iterator over [lo, hi) of the transaction.
func (tx *Tx) withIter(lo, hi []byte, fn func(it *pebble.Iterator) error) error {
	it, err := tx.b.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	if err := fn(it); err != nil {
		it.Close()
		return err
	}
	return it.Close()
}

// readOrphans reads what freeing the orphans among inos (ascending,
// distinct) needs; inodes that are no longer orphans are left out.
func (tx *Tx) readOrphans(inos []uint64) ([]orphanRead, error) {
	if len(inos) == 0 {
		return nil, nil
	}
	var out []orphanRead
	err := tx.withIter(orphanKey(inos[0]), orphanKey(inos[len(inos)-1]+1), func(it *pebble.Iterator) error {
		for _, ino := range inos {
			k := orphanKey(ino)
			if it.SeekGE(k) && bytes.Equal(it.Key(), k) {
				out = append(out, orphanRead{ino: ino})
			}
		}
		return nil
	})
	if err != nil || len(out) == 0 {
		return nil, err
	}
	for i := range out {
		if out[i].attr, err = tx.oldAttr(out[i].ino); err != nil {
			return nil, err
		}
		// Without a record the entries are scanned (dropAllChunks).
		out[i].scan = out[i].attr == nil
	}
	first, last := out[0].ino, out[len(out)-1].ino
	// A regular file has entries only below its size's chunk count (every
	// commit drops those past the size it records); other kinds have none.
	// A seek per entry, never past that count: past it lie the tombstones
	// of earlier truncations, which a scan would step over one by one.
	err = tx.withIter(chunkKey(first, 0), chunkPrefix(last+1), func(it *pebble.Iterator) error {
		for i := range out {
			r := &out[i]
			if r.scan || !r.attr.IsRegular() {
				continue
			}
			n := (r.attr.Size + ChunkSize - 1) / ChunkSize
			p := chunkPrefix(r.ino)
			for idx := uint64(0); idx < n; idx++ {
				if !it.SeekGE(chunkKey(r.ino, idx)) || !bytes.HasPrefix(it.Key(), p) {
					break
				}
				if idx = binary.BigEndian.Uint64(it.Key()[len(p):]); idx >= n {
					break
				}
				c, err := decodeChunkRef(it.Value())
				if err != nil {
					return err
				}
				r.chunks = append(r.chunks, chunkEntry{idx: idx, hash: c.Hash})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = tx.withIter(xattrPrefix(first), prefixEnd(xattrPrefix(last)), func(it *pebble.Iterator) error {
		for i := range out {
			p := xattrPrefix(out[i].ino)
			for ok := it.SeekGE(p); ok && bytes.HasPrefix(it.Key(), p); ok = it.Next() {
				out[i].xattrs = append(out[i].xattrs, append([]byte(nil), it.Key()...))
			}
		}
		return nil
	})
	return out, err
}

// freeRead frees an orphan whose records readOrphans read.
func (tx *Tx) freeRead(r *orphanRead) error {
	if r.scan {
		return tx.freeInode(r.ino)
	}
	for _, c := range r.chunks {
		if err := tx.unref(c.hash); err != nil {
			return err
		}
		tx.b.Delete(userKey(c.hash, r.ino, c.idx), nil)
		tx.b.Delete(chunkKey(r.ino, c.idx), nil)
	}
	for _, k := range r.xattrs {
		tx.b.Delete(k, nil)
	}
	return tx.dropInode(r.ino, r.attr)
}

// HasOrphans reports whether any inode unlinked while the kernel or an
// open handle still held it is left (an orphan record).
func (s *Store) HasOrphans() (bool, error) {
	p := []byte{pfxOrphan}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return false, err
	}
	found := it.First()
	return found, it.Close()
}

func (s *Store) purgeOrphans() error {
	p := []byte{pfxOrphan}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return err
	}
	var inos []uint64
	for ok := it.First(); ok; ok = it.Next() {
		inos = append(inos, binary.BigEndian.Uint64(it.Key()[1:]))
	}
	if err := it.Close(); err != nil {
		return err
	}
	for _, ino := range inos {
		if err := s.Update(false, func(tx *Tx) error { return tx.freeInode(ino) }); err != nil {
			return err
		}
	}
	return nil
}

// Pin protects h from gc while a commit that will reference it is in
// flight; Unpin after the commit.
func (s *Store) Pin(h blobstore.Hash) {
	s.pinMu.Lock()
	s.pinned[h]++
	s.pinMu.Unlock()
}

// Unpin undoes one Pin.
func (s *Store) Unpin(h blobstore.Hash) {
	s.pinMu.Lock()
	if s.pinned[h]--; s.pinned[h] <= 0 {
		delete(s.pinned, h)
	}
	s.pinMu.Unlock()
}

// Blob returns the logical bytes of blob h, wherever it lives.
func (s *Store) Blob(h blobstore.Hash) ([]byte, error) {
	return s.throughCache(h, func() ([]byte, error) { return s.loadBlob(h) })
}

// throughCache answers h from the blob cache, else loads it and fills the
// cache.
func (s *Store) throughCache(h blobstore.Hash, load func() ([]byte, error)) ([]byte, error) {
	if s.blobCache != nil {
		if d, ok := s.blobCache.Get(h); ok {
			return d, nil
		}
	}
	d, err := load()
	if err == nil && s.blobCache != nil {
		s.blobCache.Set(h, d)
	}
	return d, err
}

func (s *Store) loadBlob(h blobstore.Hash) ([]byte, error) {
	d, inline, err := s.loadInline(h)
	if inline || err != nil {
		return d, err
	}
	return s.blobs.Get(h)
}

// loadInline loads h when the metadata store keeps it (inline true);
// otherwise the caller reads it from the blob store.
func (s *Store) loadInline(h blobstore.Hash) (d []byte, inline bool, err error) {
	v, ok, err := get(s.db, refKey(h))
	if err != nil {
		return nil, true, err
	}
	if ok {
		rec, err := decodeBlobRecord(v)
		if err != nil {
			return nil, true, err
		}
		if rec.Inline {
			p, ok, err := get(s.db, payloadKey(rec.Payload, h))
			if err != nil {
				return nil, true, err
			}
			// A journaled blob may have moved to its file since the
			// record was read (journal.go).
			if ok || !journaled(rec.Size) {
				d, err := DecodeInline(h, BlobInfo(rec), p)
				return d, true, err
			}
		}
	}
	return nil, false, nil
}

// DecodeInline decodes and verifies the stored payload of inline blob h
// (nil: the payload is missing).
func DecodeInline(h blobstore.Hash, info BlobInfo, payload []byte) ([]byte, error) {
	if len(payload) == 0 {
		return nil, fmt.Errorf("meta: inline blob %s missing: %w", h, syscall.EIO)
	}
	d, err := blobstore.Decode(blobstore.Codec(payload[0]), payload[1:], int(info.Size))
	if err != nil {
		return nil, err
	}
	if blobstore.Sum(d) != h {
		return nil, fmt.Errorf("meta: inline blob %s: %w", h, blobstore.ErrCorrupt)
	}
	return d, nil
}

// ChunkBlob returns the content of manifest entry c, read once (the cache
// is neither asked nor filled) for a pass over every file (fsck, reindex).
// See loadChunk.
func (s *Store) ChunkBlob(c ChunkRef) ([]byte, error) { return s.loadChunk(c) }

// ChunkData is Blob for manifest entry c, the read path's way in: through
// the blob cache, and with the entry's size, one point read for an inline
// payload instead of two (see loadChunk).
func (s *Store) ChunkData(c ChunkRef) ([]byte, error) {
	return s.throughCache(c.Hash, func() ([]byte, error) { return s.loadChunk(c) })
}

// ChunkDataLent is ChunkData for a sequential reader that keeps what it
// loads itself (a read-ahead buffer): it answers from the cache when it
// can but does not fill it, so a stream through a large file does not
// evict the small hot blobs (metadata.json, indexes) the cache is for. A
// blob file's bytes come in a buffer the blob store lends when it can
// (lent nil otherwise); the caller calls lent.Return once it no longer
// uses them. A stream's read-ahead loads a chunk a millisecond: a new
// megabyte each time cost its zeroing and the collector's work.
func (s *Store) ChunkDataLent(c ChunkRef) ([]byte, *blobstore.Lent, error) {
	if s.blobCache != nil {
		if d, ok := s.blobCache.Get(c.Hash); ok {
			return d, nil, nil
		}
	}
	lender, ok := s.blobs.(blobstore.Lender)
	if !ok {
		d, err := s.loadChunk(c)
		return d, nil, err
	}
	d, inline, err := s.loadChunkInline(c)
	if inline || err != nil {
		return d, nil, err
	}
	d, lent, err := lender.GetLent(c.Hash)
	if rd, ok, rerr := s.askRecord(c.Hash, err); ok {
		return rd, nil, rerr
	}
	return d, lent, err
}

// loadChunk loads the content of manifest entry c, wherever it lives.
func (s *Store) loadChunk(c ChunkRef) ([]byte, error) {
	d, inline, err := s.loadChunkInline(c)
	if inline || err != nil {
		return d, err
	}
	d, err = s.blobs.Get(c.Hash)
	if rd, ok, rerr := s.askRecord(c.Hash, err); ok {
		return rd, rerr
	}
	return d, err
}

// askRecord answers a manifest entry whose blob file the blob store did
// not find (err) from the blob's record when that says the blob is inline
// (ok): an entry whose payload id is not the record's, as one made from a
// reference before its commit set the id.
func (s *Store) askRecord(h blobstore.Hash, err error) (d []byte, ok bool, _ error) {
	if !errors.Is(err, blobstore.ErrNotFound) {
		return nil, false, nil
	}
	d, inline, ierr := s.loadInline(h)
	return d, inline, ierr
}

// loadChunkInline loads the content of manifest entry c when the metadata
// store keeps it (inline true); otherwise the caller reads it from the
// blob store. The inline payload is looked up first, by the id the entry
// names and with the entry's size as the decode's bound: one point read,
// where loadInline reads the refcount record and then the payload. A file
// blob's lookup (an entry without an id: a payload from before ids) finds
// no payload, which the tables' bloom filters mostly answer without
// reading a block. The payload is there exactly while the blob is inline:
// unref deletes it with the blob's last reference, and a journaled blob's
// move to its file (journal.go) deletes it only once the file is written,
// so a miss finds the file. Check holds entry sizes and payload ids to
// agreeing with the records.
func (s *Store) loadChunkInline(c ChunkRef) (d []byte, inline bool, err error) {
	p, ok, err := get(s.db, payloadKey(c.Payload, c.Hash))
	if err != nil || !ok {
		return nil, err != nil, err
	}
	d, err = DecodeInline(c.Hash, BlobInfo{Inline: true, Size: c.Size}, p)
	return d, true, err
}

// BlobInfo is what the content view shows of one blob.
type BlobInfo struct {
	Refs    uint64
	Inline  bool
	Size    uint32
	Stored  int64
	Codec   blobstore.Codec
	Payload uint64 // the inline payload's id (0: none, or from before ids)
}

// BlobInfo returns a blob's refcount record; ok is false when nothing
// references it.
func (s *Store) BlobInfo(h blobstore.Hash) (BlobInfo, bool, error) {
	v, ok, err := get(s.db, refKey(h))
	if err != nil || !ok {
		return BlobInfo{}, false, err
	}
	r, err := decodeBlobRecord(v)
	return BlobInfo(r), err == nil, err
}

// Blobs iterates every referenced blob in hash order, starting at prefix.
func (s *Store) RefBlobs(fn func(h blobstore.Hash, info BlobInfo) error) error {
	return s.refBlobs(false, func(h blobstore.Hash, info BlobInfo, _ []byte) error { return fn(h, info) })
}

// RefBlobsWithPayload is RefBlobs passing an inline blob's stored payload
// too (for DecodeInline; nil when it is missing, or the blob is not
// inline), read without a point read per blob: the blobs whose payloads
// are keyed by hash (from before payload ids) come in hash order, their
// payloads read by an iterator beside the records'; those keyed by id come
// after, in the order of the payload table (one scan of it, a point read
// of each record). The payload is fn's to keep.
func (s *Store) RefBlobsWithPayload(fn func(h blobstore.Hash, info BlobInfo, payload []byte) error) error {
	return s.refBlobs(true, fn)
}

func (s *Store) refBlobs(payloads bool, fn func(h blobstore.Hash, info BlobInfo, payload []byte) error) error {
	snap := s.db.NewSnapshot()
	defer snap.Close()
	var in *pebble.Iterator
	inOK := false
	if payloads {
		ip := []byte{pfxInline}
		var err error
		if in, err = snap.NewIter(&pebble.IterOptions{LowerBound: ip, UpperBound: prefixEnd(ip)}); err != nil {
			return err
		}
		defer in.Close()
		inOK = in.First()
	}
	p := []byte{pfxRef}
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return err
	}
	defer it.Close()
	withID := 0 // inline blobs whose payload has an id: passed on later
	for ok := it.First(); ok; ok = it.Next() {
		var h blobstore.Hash
		copy(h[:], it.Key()[1:])
		r, err := decodeBlobRecord(it.Value())
		if err != nil {
			return err
		}
		var payload []byte
		if r.Inline && in != nil {
			if r.Payload != 0 {
				withID++
				continue
			}
			for inOK && bytes.Compare(in.Key()[1:], h[:]) < 0 {
				inOK = in.Next()
			}
			if inOK && bytes.Equal(in.Key()[1:], h[:]) {
				payload = bytes.Clone(in.Value())
			}
		}
		if err := fn(h, BlobInfo(r), payload); err != nil {
			return err
		}
	}
	if in != nil {
		if err := in.Error(); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil || withID == 0 {
		return err
	}
	// The payloads keyed by id, each with its record; a record whose
	// payload is not found is passed on with none, after a second look
	// over the records (only when some were not met).
	met := 0
	err = scanPayloads(snap, func(id uint64, h blobstore.Hash, payload []byte) error {
		v, ok, err := get(snap, refKey(h))
		if err != nil || !ok {
			return err
		}
		r, err := decodeBlobRecord(v)
		if err != nil {
			return err
		}
		if !r.Inline || r.Payload != id {
			return nil // no record names it (Check reports it)
		}
		met++
		return fn(h, BlobInfo(r), bytes.Clone(payload))
	})
	if err != nil || met == withID {
		return err
	}
	return scanRefs(snap, func(h blobstore.Hash, r blobRecord) error {
		if !r.Inline || r.Payload == 0 {
			return nil
		}
		if _, ok, err := get(snap, payloadKey(r.Payload, h)); err != nil || ok {
			return err
		}
		return fn(h, BlobInfo(r), nil)
	})
}

// scanPayloads calls fn for every inline payload keyed by id, in id order
// (the payload is fn's until it returns).
func scanPayloads(r pebble.Reader, fn func(id uint64, h blobstore.Hash, payload []byte) error) error {
	return scanKeys(r, []byte{pfxPayload}, func(k, v []byte) error {
		if len(k) != payloadKeyLen {
			return fmt.Errorf("meta: inline payload key %x: %w", k, errBadRecord)
		}
		return fn(binary.BigEndian.Uint64(k[1:]), blobstore.Hash(k[9:]), v)
	})
}

// InlinePayloads calls fn with every inline blob's stored payload (for
// DecodeInline) and its id (0: keyed by hash, from before ids), over one
// snapshot, in the payload tables' order: those keyed by hash, in hash
// order, then those keyed by id, in id order. One sequential scan, where
// a point read per blob (ChunkBlob) reads a whole table block for each.
// The payload is fn's until it returns.
func (s *Store) InlinePayloads(fn func(h blobstore.Hash, id uint64, payload []byte) error) error {
	snap := s.db.NewSnapshot()
	defer snap.Close()
	err := scanKeys(snap, []byte{pfxInline}, func(k, v []byte) error {
		if len(k) != 1+len(blobstore.Hash{}) {
			return errBadRecord
		}
		return fn(blobstore.Hash(k[1:]), 0, v)
	})
	if err != nil {
		return err
	}
	return scanPayloads(snap, func(id uint64, h blobstore.Hash, payload []byte) error { return fn(h, id, payload) })
}

// PayloadOrder compares two manifest entries in the order InlinePayloads
// passes their payloads.
func PayloadOrder(a, b ChunkRef) int {
	if a.Payload != b.Payload {
		if a.Payload < b.Payload {
			return -1
		}
		return 1
	}
	return bytes.Compare(a.Hash[:], b.Hash[:])
}

// BlobUsers calls fn for every (inode, chunk index) that references h.
func (s *Store) BlobUsers(h blobstore.Hash, fn func(ino, index uint64) error) error {
	p := userPrefix(h)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()[len(p):]
		if len(k) != 16 {
			return errBadRecord
		}
		if err := fn(binary.BigEndian.Uint64(k), binary.BigEndian.Uint64(k[8:])); err != nil {
			return err
		}
	}
	return it.Error()
}

// GCResult reports one collection.
type GCResult struct {
	Scanned    int
	Removed    int
	BytesFreed int64
	InGrace    int `json:",omitempty"` // unreferenced, kept for the backend's grace period
}

// GC deletes blob files that no manifest references and no in-flight
// commit has pinned, compacts pebble when many inodes were deleted since
// its last compaction, and gives back the WAL's spare space
// (ReleaseWAL): what a user who asks for space back expects to get. Safe
// while mounted.
func (s *Store) GC() (GCResult, error) {
	res, err := s.gc(func(_ blobstore.Hash, pinned bool) bool { return !pinned }, true)
	if err != nil {
		return res, err
	}
	if _, err := s.compactIfWorthIt(); err != nil {
		return res, err
	}
	return res, s.ReleaseWAL()
}

// gc deletes the unreferenced blobs that may go; may is told whether an
// in-flight commit has pinned the blob (a pinned blob must never go). It
// runs with pinMu held, so a blob cannot be pinned between the check and
// the delete. When it deleted any, or prune, the blob store's emptied
// directories go too (blobstore.ShardPruner).
func (s *Store) gc(may func(h blobstore.Hash, pinned bool) bool, prune bool) (res GCResult, err error) {
	defer func() {
		if p, ok := s.blobs.(blobstore.ShardPruner); ok && err == nil && (prune || res.Removed > 0) {
			var freed int64
			_, freed, err = p.PruneShards()
			res.BytesFreed += freed // the directories' blocks too: what the disk gets back
		}
	}()
	err = s.blobs.List("", func(h blobstore.Hash) error {
		res.Scanned++
		s.snaps.gate.RLock() // no snapshot appears between the two checks
		defer s.snaps.gate.RUnlock()
		s.pinMu.Lock()
		defer s.pinMu.Unlock()
		if _, ok, err := get(s.db, refKey(h)); err != nil || ok {
			return err
		}
		if held, err := s.heldBySnapshotLocked(h); err != nil || held {
			return err // meta/snapshot.go
		}
		pinned := s.pinned[h] > 0
		if !may(h, pinned) || pinned {
			return nil
		}
		info, err := s.blobs.Stat(h)
		if err != nil {
			return nil // raced with another delete
		}
		freed := info.Stored
		if a, ok := s.blobs.(blobstore.Allocator); ok {
			if n, err := a.Allocated(h); err == nil {
				freed = n // what the disk gets back, blocks included
			}
		}
		if err := s.blobs.Delete(h); errors.Is(err, blobstore.ErrInGrace) {
			res.InGrace++ // another writer may still reference it: a later gc
			return nil
		} else if err != nil {
			return err
		}
		res.Removed++
		res.BytesFreed += freed
		return nil
	})
	return res, err
}
