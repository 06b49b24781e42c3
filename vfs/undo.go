package vfs

import (
	"log/slog"
	"sync"
	"time"

	"github.com/taskerfs/taskerfs/meta"
)

// Undo: the trash (meta/trash.go) and snapshots (meta/snapshot.go) as the
// operator commands and the daemon use them.

// setupUndo configures the trash and clears what a crash left of a
// snapshot being made or deleted.
func (v *FS) setupUndo(o *meta.TrashOptions) error {
	// Off unless configured: the mount's --trash-days (default 1) records
	// its choice, which later commands on the unmounted data dir reuse.
	var opts meta.TrashOptions
	if o != nil {
		opts = *o
		if err := v.meta.SaveTrashOptions(opts); err != nil {
			return err
		}
	} else if saved, ok, err := v.meta.LoadTrashOptions(); err != nil {
		return err
	} else if ok {
		opts = saved
	}
	v.meta.SetTrash(opts)
	var err error
	if v.trashIno, err = v.meta.EnsureTrashRoot(); err != nil {
		return err
	}
	return v.meta.CleanSnapshotLeftovers()
}

// CreateSnapshot commits every closed file, then checkpoints the
// namespace as snapshot name.
func (v *FS) CreateSnapshot(name string) (meta.SnapshotInfo, error) {
	if err := meta.CheckSnapshotName(name); err != nil {
		return meta.SnapshotInfo{}, err
	}
	if err := v.wb.CommitNow(func(uint64) bool { return true }); err != nil {
		return meta.SnapshotInfo{}, err
	}
	return v.meta.CreateSnapshot(name)
}

// DeleteSnapshot removes a snapshot; the next GC frees the blobs only it
// held.
func (v *FS) DeleteSnapshot(name string) error { return v.meta.DeleteSnapshot(name) }

// ListSnapshots lists the snapshots, oldest first.
func (v *FS) ListSnapshots() ([]meta.SnapshotInfo, error) { return v.meta.ListSnapshots() }

// UndoGCResult is a collection with the trash expiry before it.
type UndoGCResult struct {
	meta.GCResult
	TrashExpired meta.TrashUsage `json:"trashExpired"`
}

// GCUndo expires trashed versions older than the retention (every one
// with emptyTrash), then removes the blobs nothing references: not the
// live tree, not the trash, not a snapshot. The files removed just before
// are freed first, as for GC. It is what `taskerfs gc` runs.
func (v *FS) GCUndo(emptyTrash bool) (UndoGCResult, error) {
	var r UndoGCResult
	var err error
	if err := v.beforeGC(); err != nil {
		return r, err
	}
	if r.TrashExpired, err = v.meta.ExpireTrash(time.Now(), emptyTrash); err != nil {
		return r, err
	}
	r.GCResult, err = v.meta.GC()
	return r, err
}

// StartTrashExpiry expires old trash in the background (the daemon runs
// it) and collects the blobs that frees. It checks every tenth of the
// retention, between a second and ten minutes.
func (v *FS) StartTrashExpiry() (stop func()) {
	every := min(max(v.meta.Trash().Retention/10, time.Second), 10*time.Minute)
	if v.meta.Trash().Retention <= 0 {
		every = time.Minute // the trash is off: clear what an earlier mount left
	}
	return everyTick(every, func(<-chan struct{}) {
		freed, err := v.meta.ExpireTrash(time.Now(), false)
		if err != nil {
			slog.Warn("trash expiry", "err", err)
			return
		}
		if freed.Files == 0 {
			return
		}
		res, err := v.meta.GC()
		if err != nil {
			slog.Warn("gc after trash expiry", "err", err)
			return
		}
		slog.Info("trash expired", "files", freed.Files, "bytes", freed.Bytes, "blobsFreed", res.Removed, "bytesFreed", res.BytesFreed)
	})
}

// everyTick calls tick every interval on a goroutine of its own until stop
// is called; stop waits for a tick under way (tick may watch done to end
// early) and may be called more than once.
func everyTick(every time.Duration, tick func(done <-chan struct{})) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			tick(done)
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			<-finished
		})
	}
}
