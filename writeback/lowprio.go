package writeback

import (
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Background work gives the CPU to the requests an application waits for.
//
// A commit that nobody waits for (no fsync or sync behind it, no writer
// held back by the dirty or age bounds) hashes, compresses and stores its
// files on the background workers: at most GOMAXPROCS-1 of them (one on a
// machine of one CPU), each on an OS thread of its own whose nice value is
// raised (Options.BackgroundNice). The journal's mover runs on such a
// thread too. Traced on the two-CPU bench machine (bench/fuselat and the
// scheduler's tracepoints), the tail of close() was not taskerfs' FLUSH,
// which took under 0.2 ms in the daemon, but the wait for a CPU: the
// committer's workers hashed and stored earlier files on both CPUs, and
// the daemon thread woken for the FLUSH, or the application woken by its
// answer, waited up to 5-10 ms behind them. Work someone waits for keeps
// every CPU at the usual priority.

// defaultBackgroundNice is the nice value background workers run at.
const defaultBackgroundNice = 10

// lowPool runs jobs on OS threads of raised nice value.
type lowPool struct {
	nice  int
	n     int
	once  sync.Once
	jobs  chan func()
	wg    sync.WaitGroup
	onRun func() // test hook: runs on the worker before each fn call
}

func newLowPool(nice int) *lowPool {
	return &lowPool{nice: nice, n: max(1, runtime.GOMAXPROCS(0)-1), jobs: make(chan func())}
}

// start starts the workers on first use.
func (p *lowPool) start() {
	p.once.Do(func() {
		for range p.n {
			p.wg.Add(1)
			go p.worker()
		}
	})
}

func (p *lowPool) worker() {
	defer p.wg.Done()
	lowerPriority(p.nice)
	for job := range p.jobs {
		job()
	}
}

// run calls fn(i) for i in [0, n) on the workers and returns once all
// have returned. Each worker takes one job per call and draws indexes
// from it until none is left: handing a job to a goroutine locked to its
// thread wakes that thread, which costs more than hashing a small file.
func (p *lowPool) run(n int, fn func(i int)) {
	p.start()
	if hook := p.onRun; hook != nil {
		inner := fn
		fn = func(i int) { hook(); inner(i) }
	}
	var next atomic.Int64
	workers := min(n, p.n)
	var wg sync.WaitGroup
	wg.Add(workers)
	for range workers {
		p.jobs <- func() {
			defer wg.Done()
			drawAll(&next, n, fn)
		}
	}
	wg.Wait()
}

// drawAll calls fn for the indexes next hands out, until they reach n.
func drawAll(next *atomic.Int64, n int, fn func(i int)) {
	for {
		i := int(next.Add(1)) - 1
		if i >= n {
			return
		}
		fn(i)
	}
}

// close stops the workers; their threads end with them.
func (p *lowPool) close() {
	p.once.Do(func() {}) // a pool never used starts nothing now
	close(p.jobs)
	p.wg.Wait()
}

// lowerPriority locks the calling goroutine to its OS thread and raises
// that thread's nice value to nice (never lowers it: an unprivileged
// process may not). The goroutine never unlocks: when it returns, Go ends
// the thread, so no other goroutine ever runs at this priority. It
// returns the thread's nice value afterwards.
func lowerPriority(nice int) int {
	runtime.LockOSThread()
	tid := unix.Gettid()
	cur := threadNice(tid)
	if nice > cur {
		if err := unix.Setpriority(unix.PRIO_PROCESS, tid, nice); err == nil {
			cur = nice
		}
	}
	return cur
}

// threadNice is thread tid's nice value (the raw getpriority system call
// answers 20 - nice).
func threadNice(tid int) int {
	prio, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	if err != nil {
		return 0
	}
	return 20 - prio
}
