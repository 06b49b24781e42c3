package main

import (
	"sync"
	"testing"
	"time"
)

func TestMemoryLimitFor(t *testing.T) {
	const mib = 1 << 20
	cases := []struct {
		name        string
		base, live  int64
		want        int64
		aboveBudget bool
	}{
		{"small heap: the budgets", 96 * mib, 20 * mib, 96 * mib, false},
		{"half the budgets live: still the budgets", 96 * mib, 48 * mib, 96 * mib, false},
		{"live heap near the budgets: room above it", 96 * mib, 80 * mib, 128 * mib, true},
		{"live heap over the budgets (kernel-held inodes)", 96 * mib, 111 * mib, 111*mib + 111*mib/2, true},
		{"large heap: half of itself above", 96 * mib, 1000 * mib, 1500 * mib, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := memoryLimitFor(c.base, c.live)
			if got != c.want || (got > c.base) != c.aboveBudget || got <= c.live {
				t.Fatalf("memoryLimitFor(%d, %d) = %d, want %d", c.base>>20, c.live>>20, got>>20, c.want>>20)
			}
		})
	}
}

// TestAdaptMemoryLimit: the limit starts at the budgets, follows a live heap
// that grows past them, leaves small moves alone, and comes back down.
func TestAdaptMemoryLimit(t *testing.T) {
	const mib = 1 << 20
	var mu sync.Mutex
	live := int64(10 * mib)
	var sets []int64
	read := func() int64 { mu.Lock(); defer mu.Unlock(); return live }
	set := func(v int64) int64 { mu.Lock(); defer mu.Unlock(); sets = append(sets, v); return 0 }
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { adaptMemoryLimit(96*mib, time.Millisecond, read, set, stop); close(done) }()
	waitFor := func(want int64) {
		t.Helper()
		for range 5000 {
			mu.Lock()
			n := len(sets)
			last := int64(0)
			if n > 0 {
				last = sets[n-1]
			}
			mu.Unlock()
			if last == want {
				return
			}
			time.Sleep(time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("limit never became %d MiB: %v", want>>20, sets)
	}
	waitFor(96 * mib)
	mu.Lock()
	live = 200 * mib
	mu.Unlock()
	waitFor(300 * mib)
	mu.Lock()
	live = 202 * mib // a move of less than a sixteenth: left alone
	n := len(sets)
	mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	if len(sets) != n {
		t.Errorf("a small move set the limit again: %v", sets[n:])
	}
	live = 5 * mib
	mu.Unlock()
	waitFor(96 * mib)
	close(stop)
	<-done
}
