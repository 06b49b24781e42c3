package writeback

import (
	"slices"
	"sync"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/meta"
)

const (
	// readAheadChunks is how many chunks past the one being read a
	// sequential reader loads in the background. A cold 1 MiB blob is one
	// file read and one SHA-256 pass; without read-ahead they happen one
	// after the other on the FUSE thread while the kernel waits, so a
	// cold sequential read ran at the disk's latency, not its bandwidth.
	// Four rather than two keep the disk's queue fuller: a cold 1 GiB
	// fio read, three interleaved rounds twice, 376-430 MiB/s with two
	// (median 400), 393-451 with four (median 430).
	readAheadChunks = 4
	// maxReadAheads bounds the loads in flight for the whole mount.
	maxReadAheads = 8
	// recentChunks is how many loaded chunks a reader keeps. The kernel
	// sends a sequential reader's READs concurrently (read-ahead is
	// asynchronous) and they can reach the handle out of order: with one
	// slot, a READ for chunk n arriving after one for n+1 found n evicted
	// and loaded and verified it a second time (with 1 MiB READs that
	// doubled the SHA-256 work of a cold sequential read). READs that
	// straddle chunk boundaries (cat's 128 KiB reads make the kernel's
	// windows start at 512 KiB) need three: READ [k+1.5, k+2.5) MiB
	// overtaking [k+0.5, k+1.5) must not evict chunk k.
	recentChunks = 3
	// maxAheadHeld bounds the loads one reader holds: those ahead of it
	// and those an overtaken READ behind it may still take.
	maxAheadHeld = readAheadChunks + recentChunks
)

// ReadCache is a reader's (an open handle's) view of the chunks around its
// position: the chunks it read last, decoded and verified once, and the
// next chunks being loaded in the background while it reads sequentially.
// The zero value is ready to use. Its owner serialises calls that use it.
type ReadCache struct {
	recent [recentChunks]loadedChunk // most recently loaded first

	end    uint64      // where the previous read ended
	seq    bool        // the last read was near where the one before ended
	aheadT uint64      // chunks below this index have been scheduled
	ahead  []*prefetch // loads started for the chunks after the current one
}

// loadedChunk is a blob's verified logical bytes (data nil: empty slot),
// in a buffer lent by the blob store (lent) or not (nil).
type loadedChunk struct {
	hash blobstore.Hash
	data []byte
	lent *blobstore.Lent
}

// Stream marks a reader that most likely reads its file through once: an
// open file handle, whose pages the kernel keeps in its own cache. Its
// first read counts as sequential, so the chunk it loads stays with the
// reader instead of filling the shared blob cache (before, the first chunk
// of every file a "read everything" opened went through ristretto's
// admission and evicted the small hot blobs the cache is for). Later reads
// are judged by their offsets as for any reader.
func (c *ReadCache) Stream() {
	if c.end == 0 {
		c.seq = true
	}
}

// Release gives back the buffers the reader holds, once its file is
// closed (a handle's RELEASE comes after its last READ has been answered);
// the reader starts again empty if it is used after.
func (c *ReadCache) Release() {
	for i := range c.recent {
		c.recent[i].lent.Return()
	}
	// Loads still running are dropped: their buffers go to the collector.
	*c = ReadCache{}
}

// lookup returns h's bytes if the reader holds them.
func (c *ReadCache) lookup(h blobstore.Hash) ([]byte, bool) {
	for i := range c.recent {
		if c.recent[i].data != nil && c.recent[i].hash == h {
			return c.recent[i].data, true
		}
	}
	return nil, false
}

// keep adds h's bytes, dropping the chunk loaded longest ago. First in,
// first out rather than least recently used: a late READ touching the
// chunks behind the reader must not make them outlive the ones ahead,
// which an overtaken READ still needs.
//
// The dropped chunk's lent buffer goes back to the pool: its bytes were
// only ever copied out of (readLocked copies into the READ's own buffer
// while the reader's calls are serialised), so nothing refers to them.
func (c *ReadCache) keep(h blobstore.Hash, d []byte, lent *blobstore.Lent) {
	c.recent[len(c.recent)-1].lent.Return()
	copy(c.recent[1:], c.recent[:len(c.recent)-1])
	c.recent[0] = loadedChunk{hash: h, data: d, lent: lent}
}

// prefetch is one background load of a blob.
type prefetch struct {
	idx  uint64 // the chunk it was started for
	hash blobstore.Hash
	done chan struct{}
	data []byte
	lent *blobstore.Lent
	err  error
}

// readAheader tracks the background loads, so Close can wait for them
// before the stores they read are closed.
type readAheader struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
	slots  chan struct{}
}

func (ra *readAheader) start(fn func()) bool {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	if ra.closed {
		return false
	}
	if ra.slots == nil {
		ra.slots = make(chan struct{}, maxReadAheads)
	}
	select {
	case ra.slots <- struct{}{}:
	default:
		return false // enough loads in flight; the reader loads it itself
	}
	ra.wg.Add(1)
	go func() {
		defer ra.wg.Done()
		defer func() { <-ra.slots }()
		fn()
	}()
	return true
}

// close stops new loads and waits for those in flight.
func (ra *readAheader) close() {
	ra.mu.Lock()
	ra.closed = true
	ra.mu.Unlock()
	ra.wg.Wait()
}

// blob returns the content of manifest entry ref: from the reader's
// current chunk, from a load started ahead of it, or loaded now.
func (m *Manager) blob(ref meta.ChunkRef, cache *ReadCache) ([]byte, error) {
	h := ref.Hash
	if cache == nil {
		return m.store.ChunkData(ref)
	}
	if d, ok := cache.lookup(h); ok {
		return d, nil
	}
	for i, p := range cache.ahead {
		if p.hash != h {
			continue
		}
		<-p.done
		cache.ahead = slices.Delete(cache.ahead, i, i+1)
		if p.err == nil {
			cache.keep(h, p.data, p.lent)
			return p.data, nil
		}
		break // load it again: the error (or the answer) is the caller's
	}
	var d []byte
	var lent *blobstore.Lent
	var err error
	if cache.seq {
		// A stream keeps its chunks itself; the shared cache is for
		// blobs read again and again.
		d, lent, err = m.store.ChunkDataLent(ref)
	} else {
		d, err = m.store.ChunkData(ref)
	}
	if err == nil {
		cache.keep(h, d, lent)
	}
	return d, err
}

// readAhead notes a read of n bytes at off and, while the reads are
// sequential, starts loading the committed chunks after it. Called with
// f.mu held (or f private to the caller).
func (m *Manager) readAhead(f *file, off, n uint64, cache *ReadCache) {
	if cache == nil || n == 0 {
		return
	}
	// Sequential: within two chunks of where the last read ended. The
	// kernel's read-ahead sends several reads at once and they may arrive
	// out of order: a READ of up to a chunk that overtook the one before
	// it ends up to two chunks past where the late one starts.
	at, was := off/meta.ChunkSize, cache.end/meta.ChunkSize
	cache.seq = at+2 >= was && at <= was+2
	cache.end = off + n
	if !cache.seq {
		cache.aheadT = 0 // a seek: schedule from here on the next sequential read
		return
	}
	last := (off + n - 1) / meta.ChunkSize
	for j := max(last+1, cache.aheadT); j <= last+readAheadChunks; j++ {
		start := j * meta.ChunkSize
		if start >= f.size {
			break
		}
		ref, ok := m.aheadRef(f, j)
		h := ref.Hash
		cache.aheadT = j + 1
		if _, held := cache.lookup(h); !ok || held || slices.ContainsFunc(cache.ahead, func(p *prefetch) bool { return p.hash == h }) {
			continue
		}
		p := &prefetch{idx: j, hash: h, done: make(chan struct{})}
		if !m.ra.start(func() {
			p.data, p.lent, p.err = m.store.ChunkDataLent(ref)
			close(p.done)
		}) {
			cache.aheadT = j // not scheduled: try again on the next read
			break
		}
		cache.ahead = append(cache.ahead, p)
	}
	// Loads the reader skipped past (a file with holes or dirty chunks,
	// a seek) are dropped: those for chunks more than two behind this
	// read, which no overtaken READ still needs (the kernel's READs
	// arrive at most that far out of order; see seq above). Dropping by
	// age instead threw away the load a late READ was about to take and
	// made it load its chunk again on the FUSE thread.
	cache.ahead = slices.DeleteFunc(cache.ahead, func(p *prefetch) bool { return p.idx+2 < at })
	if extra := len(cache.ahead) - maxAheadHeld; extra > 0 {
		cache.ahead = slices.Delete(cache.ahead, 0, extra)
	}
}

// aheadRef is the blob chunk j will be read from, when that is a stored
// blob (not bytes in memory, a hole or a truncated range).
func (m *Manager) aheadRef(f *file, j uint64) (meta.ChunkRef, bool) {
	if c := f.chunks[j]; c != nil {
		if c.buf == nil && c.ref != nil {
			return meta.ChunkRefOf(c.ref), true
		}
		return meta.ChunkRef{}, false
	}
	if j*meta.ChunkSize >= f.trunc {
		return meta.ChunkRef{}, false
	}
	ref, ok, err := m.store.Chunk(f.ino, j)
	if err != nil || !ok {
		return meta.ChunkRef{}, false
	}
	return ref, true
}
