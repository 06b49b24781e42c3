package meta

import "github.com/cockroachdb/pebble"

// syncRecordLen is the WAL bytes of SyncWAL's own record: an empty
// LogData batch (a batch header and one record of no data).
var syncRecordLen = func() uint64 {
	b := new(pebble.Batch)
	_ = b.LogData(nil, nil)
	return uint64(len(b.Repr()))
}()

// SyncWAL makes every committed batch durable. When nothing was written to
// the WAL since a SyncWAL that made all of it durable, it returns at once
// without writing: an idle store's fsyncs, `taskerfs sync` and the
// background collector's passes then leave the WAL alone (a write to a
// quiet store's WAL would wake its spares, walspace.go, and write a
// memtable's worth of them for nothing).
//
// pebble counts a batch in WAL.BytesIn when it queues the batch's record
// for the WAL, in commit order, before that commit returns. So every
// batch counted before SyncWAL's own record is queued is durable once
// that record's sync is: that is the count read before it. When the count
// after it grew by exactly the record's length, nothing else was queued
// meanwhile, and the whole count is durable.
func (s *Store) SyncWAL() error {
	before := s.db.Metrics().WAL.BytesIn
	if before == s.syncedIn.Load() {
		return nil
	}
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		return err
	}
	synced := before
	if after := s.db.Metrics().WAL.BytesIn; after-before == syncRecordLen {
		synced = after
	}
	for {
		old := s.syncedIn.Load()
		if old >= synced || s.syncedIn.CompareAndSwap(old, synced) {
			return nil
		}
	}
}
