package main

import (
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The Go memory limit keeps the daemon's RSS at its budgets (the blob cache,
// the write-back backlog, memOverhead) while the live heap is well below
// them. But part of the live heap is not the daemon's to bound: go-fuse
// keeps an inode (about 800 bytes with its tree links and our node) for
// every file the kernel has looked up or created, and the kernel lets go of
// them only under memory pressure. After a copy of 15,000 sessions (136,000
// files) that alone was 111 MB, over the 96 MiB limit, and the runtime
// collected without pause: 46% of the daemon's CPU, and the ingest fell
// from 49 to 25 sessions/s. So the limit follows the live heap when it has
// to, always leaving room for garbage above it.

// memoryLimitFor is the limit for a live heap of live bytes: base, or the
// live heap plus half of base or half of itself, whichever is more, when
// that is higher.
func memoryLimitFor(base, live int64) int64 {
	return max(base, live+max(base/2, live/2))
}

// liveHeap reads the live heap of the last collection.
func liveHeap() int64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(s[0].Value.Uint64())
}

// adaptMemoryLimit sets the limit for base now and again every period from
// the live heap read, until stop is closed. It moves the limit only when it
// changes by more than a sixteenth, and logs the moves away from base.
func adaptMemoryLimit(base int64, period time.Duration, read func() int64, set func(int64) int64, stop <-chan struct{}) {
	cur := base
	set(cur)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		want := memoryLimitFor(base, read())
		if d := want - cur; d > cur/16 || -d > cur/16 {
			if want > base || cur > base {
				slog.Info("memory limit follows the live heap (inodes the kernel holds)", "limit_mib", want>>20, "budget_mib", base>>20)
			}
			cur = want
			set(cur)
		}
	}
}

// startMemoryLimit runs adaptMemoryLimit for the daemon's budgets; the
// returned func stops it.
func startMemoryLimit(base int64) (stop func()) {
	done := make(chan struct{})
	go adaptMemoryLimit(base, 2*time.Second, liveHeap, debug.SetMemoryLimit, done)
	return func() { close(done) }
}
