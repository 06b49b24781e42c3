package writeback

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/meta"
)

// A commit that an fsync waits for keeps the file's chunks inline in
// pebble (up to Options.FsyncInlineBytes), so one WAL sync makes content
// and manifest durable together. The outliner then moves those blobs,
// marked in pebble by the commit, to blob files in the background: a pass
// runs once fsyncs have been quiet for Options.OutlineDelay, and yields
// to the next fsync, so a stream of fsyncs does not share the disk with
// the moves of the files before it; only when outlineEager bytes wait
// does it run beside them. Its blob syncs go one blob at a time: a storm
// of concurrent fsyncs in the background would queue a foreground WAL
// sync behind their journal commits. (A memtable filled before the move
// flushes the inline values to a table; the move's deletes then drop
// them at the next compaction.)
const (
	outlineEager = 64 << 20
	outlineBatch = 16 // blobs recorded in one batch; a pass yields between batches
)

type outlineState struct {
	kick   chan struct{}
	mu     sync.Mutex
	queued int64        // bytes marked since the last pass began
	last   time.Time    // when a blob was last marked
	fsync  atomic.Int64 // when an fsync last began (unix ns)
	check  bool         // marks may be waiting (set at start: an earlier run's)
}

// queueOutline notes that a commit marked hs (of chunk-sized or smaller
// blobs) for moving. Called with m.mu held.
func (m *Manager) queueOutline(hs []blobstore.Hash) {
	if len(hs) == 0 {
		return
	}
	m.ol.mu.Lock()
	m.ol.queued += int64(len(hs)) * meta.ChunkSize
	m.ol.last = time.Now()
	m.ol.check = true
	eager := m.ol.queued >= outlineEager
	m.ol.mu.Unlock()
	if eager {
		select {
		case m.ol.kick <- struct{}{}:
		default:
		}
	}
}

func (m *Manager) outliner() {
	defer m.done.Done()
	tick := time.NewTicker(max(time.Millisecond, m.opts.OutlineDelay/2))
	defer tick.Stop()
	var retryAt time.Time
	fails := 0
	for {
		select {
		case <-m.stop:
			return
		case <-m.ol.kick:
		case <-tick.C:
		}
		m.ol.mu.Lock()
		quiet := time.Since(m.ol.last) >= m.opts.OutlineDelay &&
			time.Since(time.Unix(0, m.ol.fsync.Load())) >= m.opts.OutlineDelay
		due := m.ol.check && (m.ol.queued >= outlineEager || quiet) && !time.Now().Before(retryAt)
		eager := m.ol.queued >= outlineEager
		if due {
			m.ol.queued, m.ol.check = 0, false
		}
		m.ol.mu.Unlock()
		if !due {
			continue
		}
		if err := m.outlinePass(eager); err != nil {
			fails++
			backoff := min(maxBackoff, time.Duration(1<<min(fails, 8))*100*time.Millisecond)
			retryAt = time.Now().Add(backoff)
			m.opts.Logf("writeback: moving fsync'd blobs out of the namespace (retry in %v): %v", backoff, err)
			m.ol.mu.Lock()
			m.ol.check = true
			m.ol.mu.Unlock()
			continue
		}
		fails = 0
	}
}

// outlinePass moves every marked blob, a batch at a time, stopping early
// when the manager stops (the marks stay for the next run) or, unless
// eager, when an fsync comes (the next quiet moment resumes).
func (m *Manager) outlinePass(eager bool) error {
	var after *blobstore.Hash
	began := time.Now().UnixNano()
	for {
		select {
		case <-m.stop:
			return nil
		default:
		}
		if !eager && m.ol.fsync.Load() > began {
			m.ol.mu.Lock()
			m.ol.check = true
			m.ol.mu.Unlock()
			return nil
		}
		var hs []blobstore.Hash
		err := m.store.PendingOutline(after, outlineBatch, func(h blobstore.Hash) error {
			hs = append(hs, h)
			return nil
		})
		if err != nil || len(hs) == 0 {
			return err
		}
		if err := m.outline(hs); err != nil {
			return err
		}
		if len(hs) < outlineBatch {
			return nil
		}
		after = &hs[len(hs)-1]
	}
}

// outline writes blobs hs from pebble to blob files, makes the files
// durable, and only then records them as files (no WAL sync needed: until
// that record is durable the inline copy is the one a crash keeps).
func (m *Manager) outline(hs []blobstore.Hash) error {
	for _, h := range hs {
		m.store.Pin(h) // gc must not take a file before its record lands
	}
	defer func() {
		for _, h := range hs {
			m.store.Unpin(h)
		}
	}()
	put := m.blobs.Put
	if hp, ok := m.blobs.(blobstore.HashedPutter); ok {
		put = hp.PutHashed // loadBlob has verified the bytes against h
	}
	done := make([]meta.Outlined, 0, len(hs))
	var written []blobstore.Hash
	for _, h := range hs {
		info, ok, err := m.store.BlobInfo(h)
		if err != nil {
			return err
		}
		if !ok || !info.Inline {
			done = append(done, meta.Outlined{Hash: h}) // only the mark goes
			continue
		}
		data, err := m.store.BlobUncached(h)
		if err != nil {
			return err
		}
		bi, err := put(h, data)
		if err != nil {
			return err
		}
		m.st.blobBytes.Add(bi.Stored)
		written = append(written, h)
		done = append(done, meta.Outlined{Hash: h, Info: bi})
	}
	if len(written) > 0 {
		if bs, ok := m.blobs.(blobstore.BlobSyncer); ok {
			for _, h := range written {
				if err := bs.SyncBlobs([]blobstore.Hash{h}); err != nil {
					return err
				}
			}
		} else if err := m.blobs.Sync(); err != nil {
			return err
		}
	}
	if err := m.store.Outline(done); err != nil {
		return err
	}
	m.st.outlined.Add(uint64(len(written)))
	return nil
}
