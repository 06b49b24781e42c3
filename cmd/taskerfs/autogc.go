package main

import (
	"log/slog"
	"time"

	"github.com/taskerfs/taskerfs/vfs"
)

// fullGCEvery: every this many passes the collector lists the store even
// if no reference went, to find blobs that never had one (a spill of a
// file deleted while it was being written).
const fullGCEvery = 15

// startAutoGC runs the daemon's own gc every interval: blobs whose last
// reference went at least grace ago are deleted, and pebble is compacted
// after many deletes (meta.Collector), so space comes back without a
// manual `taskerfs gc`. It returns a stop function that waits for a pass
// in progress. interval 0 disables it.
func startAutoGC(v *vfs.FS, interval, grace time.Duration) (stop func()) {
	if interval <= 0 {
		return func() {}
	}
	c := v.NewCollector(grace)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for n := 1; ; n++ {
			select {
			case <-quit:
				return
			case now := <-tick.C:
				res, err := c.Pass(now, n%fullGCEvery == 0)
				if err != nil {
					slog.Warn("background gc", "err", err)
					continue
				}
				if res.Removed > 0 || res.Compacted || res.ReleasedWAL {
					slog.Info("background gc", "removed", res.Removed, "freed", res.BytesFreed,
						"waiting", res.Waiting, "compacted", res.Compacted, "releasedWAL", res.ReleasedWAL)
				}
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}
