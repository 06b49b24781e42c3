package writeback

import (
	"sync/atomic"
	"time"
)

type counters struct {
	commits, batches, items, coalesced, retries, failures, spills, throttled, noSpace atomic.Uint64
	journaled, movedOut                                                               atomic.Uint64
	blobBytes                                                                         atomic.Int64
	lastCommit                                                                        atomic.Int64
}

// Stats are the queue's figures for .taskerfs/stats.json and metrics.
type Stats struct {
	QueueCritical    int     `json:"queueCritical"`
	QueueNormal      int     `json:"queueNormal"`
	QueueLow         int     `json:"queueLow"`
	OldestAgeSeconds float64 `json:"oldestAgeSeconds"`
	DirtyBytes       int64   `json:"dirtyBytes"`
	OpenFiles        int     `json:"openFiles"`
	Commits          uint64  `json:"commits"`
	Batches          uint64  `json:"batches"`
	ItemsCommitted   uint64  `json:"itemsCommitted"`
	ItemsPerBatch    float64 `json:"itemsPerBatch"`
	Coalesced        uint64  `json:"coalescedWrites"`
	Retries          uint64  `json:"retries"`
	Failures         uint64  `json:"failures"`
	Spills           uint64  `json:"spilledChunks"`
	Throttled        uint64  `json:"throttledWrites"`
	NoSpace          uint64  `json:"noSpaceWrites"` // writes refused with ENOSPC up front
	BlobBytesWritten int64   `json:"blobBytesWritten"`
	Journaled        uint64  `json:"journaledBlobs"` // blobs an fsync kept inline, to move to files
	MovedOut         uint64  `json:"movedOutBlobs"`  // of them, moved to files since the mount
	// JournalPending is how many journaled blobs are still inline, to move
	// to blob files (with S3 blobs: not yet staged for upload either); -1
	// when it could not be read.
	JournalPending   int     `json:"journalPending"`
	LastCommitMillis float64 `json:"lastCommitMillis"`
}

// Stats returns a consistent-enough view of the queue.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	s := Stats{OldestAgeSeconds: m.oldestAgeLocked(0).Seconds(), OpenFiles: len(m.files)}
	for _, f := range m.queue {
		switch f.pending.prio {
		case Critical:
			s.QueueCritical++
		case Normal:
			s.QueueNormal++
		default:
			s.QueueLow++
		}
	}
	m.mu.Unlock()
	s.DirtyBytes = m.dirtyBytes.Load()
	s.Commits = m.st.commits.Load()
	s.Batches = m.st.batches.Load()
	s.ItemsCommitted = m.st.items.Load()
	if s.Batches > 0 {
		s.ItemsPerBatch = float64(s.ItemsCommitted) / float64(s.Batches)
	}
	s.Coalesced = m.st.coalesced.Load()
	s.Retries = m.st.retries.Load()
	s.Failures = m.st.failures.Load()
	s.Spills = m.st.spills.Load()
	s.Throttled = m.st.throttled.Load()
	s.NoSpace = m.st.noSpace.Load()
	s.BlobBytesWritten = m.st.blobBytes.Load()
	s.Journaled = m.st.journaled.Load()
	s.MovedOut = m.st.movedOut.Load()
	// Read before the blob store's figures (vfs.Stats): a blob leaves the
	// journal only once it is stored (staged), so no blob is missed by both.
	// -1 when the journal cannot be read: never a false "drained".
	if hs, err := m.store.Journaled(maxJournalPending); err == nil {
		s.JournalPending = len(hs)
	} else {
		s.JournalPending = -1
		m.opts.Logf("writeback: stats: reading the journal: %v", err)
	}
	s.LastCommitMillis = float64(time.Duration(m.st.lastCommit.Load())) / float64(time.Millisecond)
	return s
}

// maxJournalPending bounds the journal marks Stats counts (the journal
// holds at most journalBytes of payloads, far fewer blobs than this).
const maxJournalPending = 1 << 16
