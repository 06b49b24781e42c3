package vfs

import (
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// kernelRefs counts, per inode, the references the kernel holds: an inode
// it looked up and has not forgotten. The kernel may send OPEN for such an
// inode after another thread unlinked its last name (open() looks the
// name up, then opens the inode); on a local fs that open succeeds, so
// here the inode lives on as an orphan until the kernel forgets it.
type kernelRefs struct {
	mu sync.Mutex
	n  map[uint64]int
}

func (k *kernelRefs) add(ino uint64, d int) (now int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.n == nil {
		k.n = map[uint64]int{}
	}
	// A flag, not a count: go-fuse keeps one Inode per inode number and
	// calls OnForget once for it, but the adapter may Hold the same number
	// again for a lookup reply whose node go-fuse then merges into the one
	// it has (and never forgets). Counting those held orphans for ever.
	if d <= 0 {
		delete(k.n, ino)
		return 0
	}
	k.n[ino] = 1
	return 1
}

// count is how many inodes the kernel holds.
func (k *kernelRefs) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.n)
}

func (k *kernelRefs) held(ino uint64) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.n[ino] > 0
}

// Hold records a kernel reference to ino (one per go-fuse inode the
// adapter creates for it). Until the matching Forget, an unlinked ino
// stays an orphan and OpenFile of it succeeds.
func (v *FS) Hold(ino uint64) { v.kernel.add(ino, 1) }

// Forget drops a kernel reference taken with Hold; an inode that has no
// name, no open handle and no other reference left is freed.
func (v *FS) Forget(ino uint64) error {
	if v.kernel.add(ino, -1) > 0 || v.isOpen(ino) {
		return nil
	}
	a, err := v.meta.PeekAttr(ino)
	if err != nil || a.Nlink > 0 {
		return nil // already freed, or still named
	}
	if a.IsRegular() {
		v.wb.Discard(ino)
	}
	v.reap.add(v, ino)
	return nil
}

// reaper frees the orphans the kernel has forgotten a batch per
// transaction, off the FORGET path: an rm -rf of many files costs their
// unlinks, not also one namespace change per forgotten inode. Nothing can
// reach such an inode any more (it has no name, no handle and no kernel
// reference), and its orphan record makes the next mount free it should
// the daemon stop first.
type reaper struct {
	mu      sync.Mutex
	queue   []uint64
	running bool
	wg      sync.WaitGroup

	// busy is held by whoever takes a batch off the queue, from the
	// taking until it is freed: settle, once it holds it, knows that no
	// batch taken before is still in flight.
	busy sync.Mutex
}

// maxReap bounds one transaction of the reaper; reapGather is how long
// it lets forgets gather before it frees the first batch. An rm -rf
// forgets its files one at a time, each a few hundred microseconds
// after the last: a transaction per forget would cost a commit per file
// on top of the unlink's own (20% of the daemon's CPU in rm -rf of
// 10,000 small files), while a few milliseconds gather dozens of them.
const (
	maxReap    = 256
	reapGather = 5 * time.Millisecond
)

func (r *reaper) add(v *FS, ino uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queue = append(r.queue, ino)
	if !r.running {
		r.running = true
		r.wg.Add(1)
		go r.run(v)
	}
}

func (r *reaper) run(v *FS) {
	defer r.wg.Done()
	for {
		r.mu.Lock()
		if len(r.queue) < maxReap {
			r.mu.Unlock()
			time.Sleep(reapGather)
			r.mu.Lock()
		}
		if len(r.queue) == 0 {
			r.running = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		if err := r.freeBatch(v); err != nil {
			slog.Error("free forgotten orphans", "err", err)
		}
	}
}

// freeBatch takes up to maxReap orphans off the queue and frees them.
func (r *reaper) freeBatch(v *FS) error {
	r.busy.Lock()
	defer r.busy.Unlock()
	r.mu.Lock()
	n := min(len(r.queue), maxReap)
	batch := append([]uint64(nil), r.queue[:n]...)
	r.queue = r.queue[n:]
	r.mu.Unlock()
	if n == 0 {
		return nil
	}
	if err := v.meta.ReleaseOrphans(batch); err != nil {
		return fmt.Errorf("%d inodes: %w", n, err)
	}
	return nil
}

// settle frees, on the caller's goroutine, every orphan queued when it is
// called, without letting more gather, and returns once no batch taken
// before it is still being freed: what the kernel has forgotten by then
// no longer references its blobs (GC).
func (r *reaper) settle(v *FS) error {
	for {
		r.mu.Lock()
		left := len(r.queue)
		r.mu.Unlock()
		if left == 0 {
			// A batch the goroutine took is freed once busy is free.
			r.busy.Lock()
			r.busy.Unlock()
			return nil
		}
		if err := r.freeBatch(v); err != nil {
			return err
		}
	}
}

// wait returns once the queue is empty and no batch is being freed.
func (r *reaper) wait() { r.wg.Wait() }

// Hold records the kernel's reference to an entry it is given (a lookup,
// create, link or tmpfile reply) and reports whether it must be dropped
// with Forget: stored regular files only.
func (o *Ops) Hold(e Entry) bool {
	if e.Node.vn != nil || !e.Attr.IsRegular() {
		return false
	}
	o.v.Hold(e.Node.ino)
	return true
}

// Forget drops a reference taken by Hold (the kernel forgot the inode).
func (o *Ops) Forget(n Node) {
	if n.vn != nil {
		return
	}
	if err := o.v.Forget(n.ino); err != nil {
		slog.Error("forget", "ino", n.ino, "err", err)
	}
}
