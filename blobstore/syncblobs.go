package blobstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// BlobSyncer is implemented by stores that can make a few chosen blobs
// durable more cheaply than Sync, which flushes everything.
type BlobSyncer interface {
	SyncBlobs(hs []Hash) error
}

// HashedPutter is implemented by stores that can skip re-hashing data
// whose hash the caller has just computed. hint is the stream (file) the
// data is a chunk of, nil for none: see Hint.
type HashedPutter interface {
	PutHashed(h Hash, data []byte, hint *Hint) (Info, error)
}

// ShardPruner is implemented by stores whose directories outlive their
// blobs (Local's shards): gc calls it after deleting. It returns the
// directories removed and the disk space they took.
type ShardPruner interface {
	PruneShards() (int, int64, error)
}

// maxParallelSyncs bounds the fsyncs SyncBlobs runs at once.
const maxParallelSyncs = 16

// SyncBlobs fsyncs each named blob file and each shard directory that
// holds one, so a commit of a few blobs does not flush the whole
// filesystem as syncfs would.
//
// The fsyncs run concurrently, files and directories alike: each blob was
// renamed into its shard before SyncBlobs was called, so a directory's
// fsync already covers its entry, and all that matters is that every
// fsync has returned before SyncBlobs does. Concurrent fsyncs share the
// filesystem's journal commits (ext4 joins them to one), so a blob costs
// about one flush, not one for its file and another for its directory.
func (l *Local) SyncBlobs(hs []Hash) error {
	if l.closed.Load() {
		return ErrClosed
	}
	type job struct {
		path string
		h    *Hash // nil for a directory
	}
	var jobs []job
	// Shards made since the last such fsync: their entries in the root.
	made := l.shardsMade.Load()
	if made != l.shardsSynced.Load() {
		jobs = append(jobs, job{l.dir, nil})
	}
	dirs := map[string]bool{}
	for i, h := range hs {
		p := l.path(h)
		jobs = append(jobs, job{p, &hs[i]})
		if d := filepath.Dir(p); !dirs[d] {
			dirs[d] = true
			jobs = append(jobs, job{d, nil})
		}
	}
	run := func(j job) error {
		err := l.fs.fsync(j.path)
		// A blob gc removed since it was put needs no durability; one a
		// commit references is pinned against gc. Nor does the shard of
		// such blobs, which PruneShards removes once they are all gone.
		if errors.Is(err, os.ErrNotExist) && j.path != l.dir {
			return nil
		}
		if err != nil {
			if j.h != nil {
				return fmt.Errorf("blobstore: sync %s: %w", *j.h, err)
			}
			return fmt.Errorf("blobstore: sync %s: %w", j.path, err)
		}
		return nil
	}
	if len(jobs) == 1 {
		return run(jobs[0])
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan job, len(jobs))
	)
	for _, j := range jobs {
		next <- j
	}
	close(next)
	work := func() {
		for j := range next {
			if err := run(j); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}
	}
	// The caller is one of the workers: a blob and its directory cost one
	// goroutine's wake-up, not two.
	for range min(len(jobs), maxParallelSyncs) - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
	if first == nil {
		for {
			old := l.shardsSynced.Load()
			if old >= made || l.shardsSynced.CompareAndSwap(old, made) {
				break
			}
		}
	}
	return first
}
