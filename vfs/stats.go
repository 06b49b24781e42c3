package vfs

import (
	"strings"
	"syscall"

	"github.com/taskerfs/taskerfs/meta"
	"github.com/taskerfs/taskerfs/writeback"
)

// Stats are the figures `taskerfs stats` and .taskerfs/stats.json show.
type Stats struct {
	Sessions         int64           `json:"sessions"`
	Files            int64           `json:"files"`
	Directories      int64           `json:"directories"`
	LogicalBytes     int64           `json:"logicalBytes"`     // sum of file sizes
	UniqueBytes      int64           `json:"uniqueBytes"`      // logical bytes of distinct blobs
	StoredBytes      int64           `json:"storedBytes"`      // blob bytes on disk (inline ones included)
	Blobs            int64           `json:"blobs"`            // distinct referenced blobs
	InlineBlobs      int64           `json:"inlineBlobs"`      // of which kept inside pebble
	DedupRatio       float64         `json:"dedupRatio"`       // logical / unique
	CompressionRatio float64         `json:"compressionRatio"` // unique / stored
	SavedBytes       int64           `json:"savedBytes"`       // logical - stored
	MetaBytes        int64           `json:"metaBytes"`        // pebble on disk
	IndexSessions    int64           `json:"indexSessions"`
	IndexBytes       int64           `json:"indexBytes"`
	CacheHits        uint64          `json:"cacheHits"`
	CacheMisses      uint64          `json:"cacheMisses"`
	CacheHitRate     float64         `json:"cacheHitRate"`
	AttrCacheHits    uint64          `json:"attrCacheHits"`
	AttrCacheMisses  uint64          `json:"attrCacheMisses"`
	KernelHeldFiles  int64           `json:"kernelHeldFiles"` // regular files the kernel holds an inode of (Hold, Forget)
	Queue            writeback.Stats `json:"queue"`
	// Recompression is the background recompressor's figures, when one runs.
	Recompression   any   `json:"recompression,omitempty"`
	RecompressSaved int64 `json:"recompressSavedBytes"`
	// Undo: trashed versions (not in Files or LogicalBytes) and snapshots.
	TrashFiles int64 `json:"trashFiles"`
	TrashBytes int64 `json:"trashBytes"`
	Snapshots  int64 `json:"snapshots"`
	// Blobstore is the blob backend's own figures (S3: pending uploads,
	// upload/download bytes and errors, read cache hits).
	Blobstore any `json:"blobstore,omitempty"`
}

// Stats costs O(1) in the size of the store: the file, directory, trash
// and blob figures come from meta's counters (kept in the commit path),
// the session count from the link count of the sessions directory.
func (v *FS) Stats() (Stats, error) {
	var s Stats
	c := v.meta.Counters()
	s.Files, s.Directories, s.LogicalBytes = c.Files, c.Dirs, c.LogicalBytes
	s.Blobs, s.UniqueBytes, s.StoredBytes, s.InlineBlobs = c.Blobs, c.UniqueBytes, c.StoredBytes, c.InlineBlobs
	n, err := v.sessionCount()
	if err != nil {
		return s, err
	}
	s.Sessions = n
	// Trashed versions hold blobs too, so the ratios below count them.
	s.TrashFiles, s.TrashBytes = c.TrashFiles, c.TrashBytes
	s.Files -= c.TrashFiles
	s.LogicalBytes -= c.TrashBytes
	if s.UniqueBytes > 0 {
		s.DedupRatio = float64(s.LogicalBytes+s.TrashBytes) / float64(s.UniqueBytes)
	}
	if s.StoredBytes > 0 {
		s.CompressionRatio = float64(s.UniqueBytes) / float64(s.StoredBytes)
	}
	s.SavedBytes = s.LogicalBytes + s.TrashBytes - s.StoredBytes
	s.MetaBytes = int64(v.meta.DB().Metrics().DiskSpaceUsage())
	if n, _, b, err := v.index.Stats(); err == nil {
		s.IndexSessions, s.IndexBytes = n, b
	}
	s.KernelHeldFiles = int64(v.kernel.count())
	cs := v.cache.Stats()
	s.CacheHits, s.CacheMisses = cs.Hits, cs.Misses
	if cs.Hits+cs.Misses > 0 {
		s.CacheHitRate = float64(cs.Hits) / float64(cs.Hits+cs.Misses)
	}
	as := v.meta.AttrCacheStats()
	s.AttrCacheHits, s.AttrCacheMisses = as.Hits, as.Misses
	if l, err := v.meta.ListSnapshots(); err == nil {
		s.Snapshots = int64(len(l))
	}
	s.Queue = v.wb.Stats()
	if v.Background != nil {
		s.RecompressSaved, s.Recompression = v.Background()
	}
	if b, ok := v.blobs.(backendStats); ok {
		s.Blobstore = b.BackendStats()
	}
	return s, nil
}

// sessionCount is the number of directories in /sessions whose name does
// not start with a dot: the directory's link count is 2 + its
// subdirectories, less the dot-named ones, which sort together near the
// start of the listing (only the names before them are stepped over).
func (v *FS) sessionCount() (int64, error) {
	d, err := v.meta.Lookup(meta.RootIno, SessionsDir)
	if err != nil || !d.IsDir() {
		return 0, nil
	}
	n := int64(d.Nlink) - 2
	err = v.meta.ReadDir(d.Ino, "", func(e meta.DirEntry) bool {
		if !strings.HasPrefix(e.Name, ".") {
			return e.Name < "." // past the dot names: done
		}
		if e.Mode == syscall.S_IFDIR {
			n--
		}
		return true
	})
	return max(n, 0), err
}
