package fs

import (
	"log/slog"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
)

// The kernel keeps an inode for every file it has looked up or created
// until memory pressure evicts it, and go-fuse keeps a node for each (about
// 800 bytes with its tree links and ours): after a copy of 100,000 sessions
// that is most of a gigabyte of daemon heap, which the runtime must scan.
// The pruner bounds it: past Options.MaxKernelInodes inodes, it asks
// the kernel (FUSE_NOTIFY_PRUNE, Linux 6.18) to forget the ones it learned
// first. The kernel forgets only those nothing uses (no open file, no cwd);
// the FORGETs then come as they would under memory pressure, and a later
// access looks the file up again.

// pruneBatch is how many inodes one notification names.
const pruneBatch = 512

// An inode is asked for only once it has been held pruneMinAge (a file
// the kernel just learned is the one its application is working on: an
// rm -rf that read a directory is about to unlink its entries, and asking
// the kernel to forget them made it look each one up again), and passes
// are prunePause apart, so that the FORGETs of one arrive before the next
// counts what is left. Without both, an rm -rf of a tree larger than the
// bound spent a third of the daemon's CPU asking.
const (
	pruneMinAge = time.Second
	prunePause  = 200 * time.Millisecond
)

// monotonic is a clock for queue ages (tests replace it).
var monotonic = func() int64 { return int64(time.Since(clockBase)) }

var clockBase = time.Now()

type pruner struct {
	limit int
	root  *gofs.Inode // the receiver of the notifications (any inode of the mount)

	mu    sync.Mutex
	queue []*node // nodes in the order the kernel learned them; forgotten ones linger until skipped
	live  int     // of them, the ones not forgotten
	kick  chan struct{}
	off   bool // the kernel cannot prune: stop trying
}

// newPruner returns a pruner for limit inodes (0: none) asking the kernel
// through root, any inode of the mount (its notifications need the mount,
// not that inode).
func newPruner(limit int, root *gofs.Inode) *pruner {
	p := &pruner{limit: limit, root: root, kick: make(chan struct{}, 1)}
	if limit > 0 {
		go p.run()
	}
	return p
}

// learned counts n, a node the kernel now holds.
func (p *pruner) learned(n *node) {
	if p.limit <= 0 {
		return
	}
	p.mu.Lock()
	n.tracked = true
	n.queued = monotonic()
	p.queue = append(p.queue, n)
	p.live++
	over := p.live > p.limit && !p.off
	p.maybeCompact()
	p.mu.Unlock()
	if over {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
}

// forgotten uncounts n (OnForget).
func (p *pruner) forgotten(n *node) {
	p.mu.Lock()
	if n.tracked && !n.gone {
		n.gone = true
		p.live--
	}
	p.mu.Unlock()
}

// maybeCompact compacts the queue once a fifth of it is forgotten nodes,
// which it would otherwise keep alive (p.mu held).
func (p *pruner) maybeCompact() {
	if len(p.queue) > p.live+p.live/4+256 {
		p.compact()
	}
}

// compact drops the forgotten nodes from the queue (p.mu held).
func (p *pruner) compact() {
	q := p.queue[:0]
	for _, n := range p.queue {
		if !n.gone {
			q = append(q, n)
		}
	}
	clear(p.queue[len(q):])
	p.queue = q
}

// due is how many inodes to prune now: down to three quarters of the limit.
func (p *pruner) due() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.off {
		return 0
	}
	return p.live - p.limit*3/4
}

// next takes up to max of the oldest nodes not forgotten, of those
// queued at least pruneMinAge ago.
func (p *pruner) next(max int) []*gofs.Inode {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.maybeCompact()
	var batch []*gofs.Inode
	now := monotonic()
	i, end := 0, len(p.queue)
	for ; i < end && len(batch) < max; i++ {
		n := p.queue[i]
		if n.gone {
			continue
		}
		if now-n.queued < int64(pruneMinAge) {
			break // the queue is in the order of queued
		}
		batch = append(batch, &n.Inode)
		// Back to the end: if the kernel keeps it (in use), it is asked
		// again once it is old enough again, rather than forgotten here.
		n.queued = now
		p.queue = append(p.queue, n)
	}
	clear(p.queue[:i])
	p.queue = p.queue[i:]
	return batch
}

func (p *pruner) run() {
	for range p.kick {
		// Passes while over the bound: the FORGETs of a pass arrive
		// during the pause, and inodes too young for one may be old
		// enough for the next.
		for p.due() > 0 {
			if !p.pass() {
				return
			}
			time.Sleep(prunePause)
			select {
			case <-p.kick:
			default:
			}
		}
	}
}

// pass asks the kernel to forget what is due; false once it cannot.
func (p *pruner) pass() bool {
	for left := p.due(); left > 0; {
		batch := p.next(min(left, pruneBatch))
		if len(batch) == 0 {
			return true
		}
		left -= len(batch)
		if errno := p.root.NotifyPrune(batch); errno != 0 {
			p.mu.Lock()
			p.off = true
			p.mu.Unlock()
			if errno == syscall.ENOSYS {
				slog.Info("the kernel cannot be asked to forget inodes (FUSE_NOTIFY_PRUNE needs Linux 6.18); the daemon keeps one per file the kernel holds")
			} else {
				slog.Warn("pruning the kernel's inodes failed; left to the kernel", "err", errno)
			}
			return false
		}
	}
	return true
}
