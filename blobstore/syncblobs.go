package blobstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// BlobSyncer is implemented by stores that can make a few chosen blobs
// durable more cheaply than Sync, which flushes everything.
type BlobSyncer interface {
	SyncBlobs(hs []Hash) error
}

// HashedPutter is implemented by stores that can skip re-hashing data
// whose hash the caller has just computed.
type HashedPutter interface {
	PutHashed(h Hash, data []byte) (Info, error)
}

// SyncBlobs fsyncs each named blob file and then each shard directory that
// holds one, so a commit of a few blobs does not flush the whole
// filesystem as syncfs would.
func (l *Local) SyncBlobs(hs []Hash) error {
	if l.closed.Load() {
		return ErrClosed
	}
	dirs := map[string]bool{}
	for _, h := range hs {
		p := l.path(h)
		// A blob gc removed since it was put needs no durability; one a
		// commit references is pinned against gc.
		if err := l.fs.fsync(p); errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return fmt.Errorf("blobstore: sync %s: %w", h, err)
		}
		dirs[filepath.Dir(p)] = true
	}
	for d := range dirs {
		if err := l.fs.fsync(d); err != nil {
			return fmt.Errorf("blobstore: sync %s: %w", d, err)
		}
	}
	return nil
}
