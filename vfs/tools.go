package vfs

import (
	"github.com/klauspost/compress/zstd"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/index"
	"github.com/taskerfs/taskerfs/meta"
	"github.com/taskerfs/taskerfs/writeback"
)

// Narrow doors for the operator commands (cmd/), import/export (migrate/)
// and the background recompressor (recompress/), which work on inodes of
// the same core as the mount. The FUSE adapter uses Ops only.

// SyncAll commits and persists every pending change.
func (v *FS) SyncAll() error { return v.wb.SyncAll() }

// IndexStats reports the search index's sessions, files and bytes.
func (v *FS) IndexStats() (sessions, files, bytes int64, err error) { return v.index.Stats() }

// ReadCache carries read-ahead state across ReadAt calls of one reader.
type ReadCache = writeback.ReadCache

// ReadAt reads ino's current content (uncommitted writes included).
func (v *FS) ReadAt(ino uint64, p []byte, off int64, rc *ReadCache) (int, error) {
	return v.wb.Read(ino, p, off, rc)
}

// Unlink removes name from parent.
func (v *FS) Unlink(parent uint64, name string) error { return v.meta.Unlink(parent, name) }

// Readlink returns a symlink's target.
func (v *FS) Readlink(ino uint64) (string, error) { return v.meta.Readlink(ino) }

// SetXattr sets an extended attribute.
func (v *FS) SetXattr(ino uint64, name string, value []byte, flags uint32) error {
	return v.meta.SetXattr(ino, name, value, flags)
}

// GetXattr reads an extended attribute.
func (v *FS) GetXattr(ino uint64, name string) ([]byte, error) { return v.meta.GetXattr(ino, name) }

// BlobInfo describes blob h; ok is false when nothing references it.
func (v *FS) BlobInfo(h blobstore.Hash) (BlobInfo, bool, error) { return v.meta.BlobInfo(h) }

// WalkFiles calls fn for every regular file under dir (committed state).
func (v *FS) WalkFiles(dir uint64, fn func(a Attr) error) error { return v.meta.WalkFiles(dir, fn) }

// ChunkRef is one chunk of a file's manifest.
type ChunkRef = meta.ChunkRef

// Chunks calls fn for each committed chunk of ino.
func (v *FS) Chunks(ino uint64, fn func(idx uint64, c ChunkRef) error) error {
	return v.meta.Chunks(ino, fn)
}

// BlobStore is the data dir's blob store (the recompressor re-encodes
// blobs in place through it).
func (v *FS) BlobStore() blobstore.Store { return v.blobs }

// RecompressInline re-encodes a blob kept inside the metadata store.
func (v *FS) RecompressInline(h blobstore.Hash, level zstd.EncoderLevel) (before, after int64, err error) {
	return v.meta.RecompressInline(h, level)
}

// Reencoded records a blob's new encoding after an in-place rewrite.
func (v *FS) Reencoded(h blobstore.Hash, codec blobstore.Codec, stored int64) error {
	return v.meta.Reencoded(h, codec, stored)
}

// Internals are the raw stores, for tests that damage a data dir on
// purpose (fsck tests). Nothing else may use them: every rule lives in
// this package's methods.
type Internals struct {
	Meta  *meta.Store
	Index *index.Index
	Blobs blobstore.Store
}

// InternalsForTests returns the raw stores; see Internals.
func (v *FS) InternalsForTests() Internals {
	return Internals{Meta: v.meta, Index: v.index, Blobs: v.blobs}
}

// EngineMetrics is the metadata store's engine report (pebble's levels,
// compactions and caches) for the daemon's /debug/pebble endpoint.
func (v *FS) EngineMetrics() string { return v.meta.EngineMetrics() }
