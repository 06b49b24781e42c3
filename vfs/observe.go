package vfs

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// observer counts and times every operation at the seam, and feeds the
// access log while someone reads it.
type observer struct {
	ops     *prometheus.CounterVec
	latency *prometheus.HistogramVec
	log     *accessLog
	byOp    sync.Map // op -> *opMetrics
}

// opMetrics are one op's counters and latency histogram, each looked up
// once (WithLabelValues hashes its labels on every call): a failure is as
// common as a success for some ops (LOOKUP of a name about to be created
// answers ENOENT, GETXATTR of security.capability before a first write
// ENODATA), about 1% of a small-file workload's CPU when looked up each
// time.
type opMetrics struct {
	op      string
	ok      prometheus.Counter
	latency prometheus.Observer
	errs    sync.Map // syscall.Errno -> prometheus.Counter
}

func (o *observer) metrics(op string) *opMetrics {
	if m, ok := o.byOp.Load(op); ok {
		return m.(*opMetrics)
	}
	m, _ := o.byOp.LoadOrStore(op, &opMetrics{op: op, ok: o.ops.WithLabelValues(op, "ok"), latency: o.latency.WithLabelValues(op)})
	return m.(*opMetrics)
}

// failed counts a failure of m's op with e.
func (o *observer) failed(m *opMetrics, e syscall.Errno) {
	if c, ok := m.errs.Load(e); ok {
		c.(prometheus.Counter).Inc()
		return
	}
	c, _ := m.errs.LoadOrStore(e, o.ops.WithLabelValues(m.op, unix.ErrnoName(e)))
	c.(prometheus.Counter).Inc()
}

func newObserver() *observer {
	return &observer{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "taskerfs_fuse_ops_total",
			Help: "Filesystem operations by operation and result (ok or the errno's name).",
		}, []string{"op", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "taskerfs_fuse_op_seconds",
			Help:    "Filesystem operation latency.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12), // 1µs .. ~4s
		}, []string{"op"}),
		log: &accessLog{stop: make(chan struct{})},
	}
}

// done ends an operation begun at start: err becomes errno-shaped (an
// unexpected error is logged and becomes EIO, never a crash), and the
// operation is counted, timed and, while the access log has a reader,
// written there. args is only called for the access log.
func (v *FS) done(c *Ctx, op string, start time.Time, err *error, args func() string) {
	*err = toErrno(op, *err)
	d := time.Since(start)
	m := v.obs.metrics(op)
	if *err != nil {
		v.obs.failed(m, (*err).(syscall.Errno))
	} else {
		m.ok.Inc()
	}
	m.latency.Observe(d.Seconds())
	if v.obs.log.active() {
		result := "ok"
		if *err != nil {
			result = unix.ErrnoName((*err).(syscall.Errno))
		}
		a := ""
		if args != nil {
			a = args()
		}
		v.obs.log.write(fmt.Sprintf("%s [uid:%d,gid:%d,pid:%d] %s (%s): %s <%.6f>\n",
			start.Format("2006.01.02 15:04:05.000000"), c.Uid, c.Gid, c.Pid, op, a, result, d.Seconds()))
	}
}

// toErrno maps a core error to an errno, logging unexpected ones: an I/O
// failure must reach the caller as EIO, never take the daemon down.
func toErrno(op string, err error) error {
	if err == nil {
		return nil
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		if e == 0 {
			return nil
		}
		return e
	}
	slog.Error("operation failed", "op", op, "err", err)
	return syscall.EIO
}

// accessLog fans lines out to the readers of .taskerfs/accesslog. With no
// reader, active is one atomic load.
type accessLog struct {
	n       atomic.Int32
	stop    chan struct{} // closed when the data dir closes: readers see EOF
	mu      sync.Mutex
	readers map[*logReader]struct{}
}

// logReader is one open of the access log: lines not yet read, bounded
// (a reader that does not keep up loses lines, never slows the mount).
type logReader struct {
	mu      sync.Mutex
	buf     []byte
	dropped int
	wake    chan struct{}
	stop    chan struct{}
}

const accessLogBuffer = 1 << 20

func (l *accessLog) active() bool { return l.n.Load() > 0 }

func (l *accessLog) open() *logReader {
	r := &logReader{wake: make(chan struct{}, 1), stop: l.stop}
	l.mu.Lock()
	if l.readers == nil {
		l.readers = map[*logReader]struct{}{}
	}
	l.readers[r] = struct{}{}
	l.n.Store(int32(len(l.readers)))
	l.mu.Unlock()
	return r
}

func (l *accessLog) close(r *logReader) {
	l.mu.Lock()
	delete(l.readers, r)
	l.n.Store(int32(len(l.readers)))
	l.mu.Unlock()
}

func (l *accessLog) write(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for r := range l.readers {
		r.mu.Lock()
		if len(r.buf)+len(line) > accessLogBuffer {
			r.dropped++
		} else {
			r.buf = append(r.buf, line...)
		}
		r.mu.Unlock()
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// read waits for lines (or the request's cancellation) and returns as
// many as fit in dest.
func (r *logReader) read(c *Ctx, dest []byte) (int, error) {
	for {
		r.mu.Lock()
		if r.dropped > 0 {
			r.buf = fmt.Appendf(r.buf, "# %d lines dropped: the reader fell behind\n", r.dropped)
			r.dropped = 0
		}
		if len(r.buf) > 0 {
			n := copy(dest, r.buf)
			r.buf = r.buf[n:]
			if len(r.buf) == 0 {
				r.buf = nil
			}
			r.mu.Unlock()
			return n, nil
		}
		r.mu.Unlock()
		select {
		case <-r.wake:
		case <-c.Done():
			return 0, syscall.EINTR
		case <-r.stop:
			return 0, nil
		}
	}
}
