package writeback

import (
	"sync/atomic"
	"time"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/meta"
)

// journalBytes is how many bytes of blobs larger than meta.InlineMax one
// commit an fsync caller waits for keeps inline (prepare). A 200 KiB
// file fsynced then costs one WAL sync instead of the fsyncs of its blob
// file and shard directory before it; a larger commit (fio's end_fsync
// after a gigabyte) puts the rest in files as usual, and the memtable
// never holds more than a few journaled megabytes.
const journalBytes = 1 << 20

// moveOutBatch is how many journaled blobs one move-out round handles:
// their files are synced together, their records flipped in one
// transaction.
const moveOutBatch = 64

// moveOutDelay lets the journaled blobs of a burst of fsyncs gather before
// a round moves them out (fewer, larger syncs), short enough that the
// memtable seldom flushes them to a table first.
const moveOutDelay = 50 * time.Millisecond

// journals says whether a chunk h of n bytes (over meta.InlineMax) goes
// inline in a commit whose journal budget is journal (nil: none), and
// takes its bytes from the budget if so. Content already in a blob file
// goes the file way: Put checks that copy and replaces a damaged one.
func (m *Manager) journals(h blobstore.Hash, n int, journal *atomic.Int64) bool {
	if journal == nil || journal.Load() < int64(n) {
		return false
	}
	if info, ok, err := m.store.BlobInfo(h); err != nil || ok && !info.Inline {
		return false
	}
	if journal.Add(-int64(n)) < 0 {
		journal.Add(int64(n))
		return false
	}
	m.st.journaled.Add(1)
	return true
}

func (m *Manager) kickMoveOut() {
	select {
	case m.moveKick <- struct{}{}:
	default:
	}
}

// mover moves journaled blobs to blob files, at start (blobs a crash left
// inline) and after each commit that journaled some.
func (m *Manager) mover() {
	defer m.done.Done()
	if m.low != nil {
		// Nobody waits for a move: the blobs are durable in the journal.
		lowerPriority(m.low.nice)
	}
	var retry <-chan time.Time // after a failure
	backoff := time.Second
	for {
		select {
		case <-m.stop:
			return
		case <-m.moveKick:
		case <-retry:
		}
		select {
		case <-m.stop:
			return
		case <-time.After(moveOutDelay):
		}
		retry = nil
		if err := m.moveAllOut(); err != nil {
			// The blobs stay inline and correct until a later round.
			m.opts.Logf("writeback: moving journaled blobs to files: %v (retry in %v)", err, backoff)
			retry = time.After(backoff)
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = time.Second
	}
}

// moveAllOut moves every journaled blob out, a round of moveOutBatch at a
// time (the mover; unmount, after which a clean store holds none). A
// failure leaves the rest inline, correct, for a later round or mount.
func (m *Manager) moveAllOut() error {
	for {
		n, err := m.moveOut(moveOutBatch)
		if err != nil || n < moveOutBatch {
			return err
		}
	}
}

// moveOut moves up to limit journaled blobs to files and says how many
// marks it handled. Each file is stored and synced before the transaction
// that makes its record point at it; the blobs are pinned meanwhile, so gc
// cannot take a file whose record a concurrent commit is about to
// recreate inline and this round then flips.
func (m *Manager) moveOut(limit int) (int, error) {
	hs, err := m.store.Journaled(limit)
	if err != nil || len(hs) == 0 {
		return 0, err
	}
	for _, h := range hs {
		m.store.Pin(h)
	}
	defer func() {
		for _, h := range hs {
			m.store.Unpin(h)
		}
	}()
	infos := make(map[blobstore.Hash]blobstore.Info, len(hs))
	var stored []blobstore.Hash
	for _, h := range hs {
		var info blobstore.Info
		ok, err := m.store.WithJournaledBlob(h, func(data []byte) (err error) {
			info, err = m.putHashed(h, data, nil) // checked against h; a Put keeps no bytes
			return err
		})
		if err != nil {
			return 0, err
		}
		if !ok {
			continue // no longer inline: MoveOut only drops the mark
		}
		infos[h] = info
		stored = append(stored, h)
	}
	if len(stored) > 0 {
		if err := m.syncHashes(stored); err != nil {
			return 0, err
		}
	}
	// No WAL sync: a flip lost in a crash leaves the blob inline and
	// marked, moved again after the next start.
	err = m.store.Update(false, func(tx *meta.Tx) error {
		for _, h := range hs {
			var ip *blobstore.Info
			if info, ok := infos[h]; ok {
				ip = &info
			}
			if err := tx.MoveOut(h, ip); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	m.st.movedOut.Add(uint64(len(stored)))
	return len(hs), nil
}
