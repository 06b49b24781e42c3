package vfs

import (
	"log/slog"
	"time"

	"github.com/taskerfs/taskerfs/meta"
)

// The index folds its delta postings into packed blocks in sweeps
// (index/compact.go). Run inside every writer's transaction, a sweep step
// folds four times what the writer wrote: an unlink of a session file (about
// 165 postings to remove) then folded some 660 more while its FUSE request
// waited, 20% of the daemon's CPU during an rm -rf, all of it on the rm's
// path. The daemon runs the sweep here instead, in transactions of its own
// between the writers' (the meta store's lock is taken per step), and the
// writers fold again themselves only when it falls far behind.
const (
	sweepEvery  = 20 * time.Millisecond // how often the sweeper looks for work
	sweepBudget = 4096                  // delta postings per step (a few ms of work)
	sweepBurst  = 64                    // steps before it waits for the next tick
)

// StartIndexSweeper runs the index's compaction sweep in the background
// until stop is called or the FS is closed (stop may be called more than
// once). Call it once, before serving requests.
func (v *FS) StartIndexSweeper() (stop func()) {
	v.index.SetBackgroundSweep(true)
	stopTicks := everyTick(sweepEvery, func(done <-chan struct{}) {
		if due, err := v.index.SweepDue(); err != nil || !due {
			return
		}
		for range sweepBurst {
			more, err := v.sweepStep()
			if err != nil {
				slog.Warn("index sweep", "err", err)
				return
			}
			if !more {
				return
			}
			select {
			case <-done:
				return
			default:
			}
		}
	})
	v.stopSweeper = func() {
		stopTicks()
		v.index.SetBackgroundSweep(false)
	}
	return v.stopSweeper
}

// sweepStep runs one step of the sweep when one is due.
func (v *FS) sweepStep() (more bool, err error) {
	err = v.meta.Update(false, func(tx *meta.Tx) error {
		var err error
		more, err = v.index.Sweep(tx.Batch(), sweepBudget)
		return err
	})
	return more, err
}
