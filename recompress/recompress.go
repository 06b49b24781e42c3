// Package recompress re-encodes, in the background, the blob files of
// sessions nobody has touched for a while at a higher zstd level: the
// seed's CompressionWorker, done for real. Logical bytes never change (a
// blob keeps its hash; the blob store verifies it before re-encoding);
// the work runs on one OS thread at the lowest CPU and I/O priority and
// sleeps so as to stay within a CPU budget.
package recompress

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/vfs"
)

// Options tune the worker. Zero values take the defaults.
type Options struct {
	// After is how long a session must have gone unmodified (the newest
	// mtime of its files) before its blobs are recompressed: 7 days.
	After time.Duration
	// Level is the zstd level blobs are re-encoded at:
	// zstd.SpeedBestCompression.
	Level zstd.EncoderLevel
	// CPU is the share of one core the worker may use: 0.2.
	CPU float64
	// Interval is the time between passes: 1 hour. The first pass starts
	// after FirstDelay (1 minute), so that a fresh mount serves first.
	Interval   time.Duration
	FirstDelay time.Duration
	// Now is the clock sessions' age is measured with (time.Now).
	Now  func() time.Time
	Logf func(format string, args ...any)
}

func (o *Options) defaults() {
	if o.After <= 0 {
		o.After = 7 * 24 * time.Hour
	}
	if o.Level == 0 {
		o.Level = zstd.SpeedBestCompression
	}
	if o.CPU <= 0 || o.CPU > 1 {
		o.CPU = 0.2
	}
	if o.Interval <= 0 {
		o.Interval = time.Hour
	}
	if o.FirstDelay <= 0 {
		o.FirstDelay = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
}

// Stats are the worker's figures since it started.
type Stats struct {
	Passes      int64 `json:"passes"`
	OldSessions int64 `json:"oldSessions"` // in the last pass
	Blobs       int64 `json:"blobs"`       // file blobs looked at
	Rewritten   int64 `json:"rewritten"`   // re-encoded smaller
	BytesBefore int64 `json:"bytesBefore"` // stored bytes of the rewritten blobs, before
	BytesAfter  int64 `json:"bytesAfter"`  // and after
	SavedBytes  int64 `json:"savedBytes"`
	Errors      int64 `json:"errors"`
}

func (s *Stats) add(o Stats) {
	s.Blobs += o.Blobs
	s.Rewritten += o.Rewritten
	s.BytesBefore += o.BytesBefore
	s.BytesAfter += o.BytesAfter
	s.SavedBytes += o.SavedBytes
	s.Errors += o.Errors
}

// Recompressor is a blob store that can re-encode a blob in place
// (blobstore.Local).
type Recompressor interface {
	Recompress(h blobstore.Hash, level zstd.EncoderLevel) (blobstore.Recompressed, error)
}

// ErrUnsupported means the data dir's blob store cannot recompress.
var ErrUnsupported = errors.New("recompress: the blob store cannot re-encode blobs in place")

// Worker is a running background recompressor.
type Worker struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	stats Stats
}

// Start runs passes over v until Stop: the first after opts.FirstDelay,
// then one every opts.Interval.
func Start(v *vfs.FS, opts Options) (*Worker, error) {
	opts.defaults()
	rc, ok := v.BlobStore().(Recompressor)
	if !ok {
		return nil, ErrUnsupported
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Worker{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		lowPriority()
		wait := opts.FirstDelay
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = opts.Interval
			st, err := pass(ctx, v, rc, opts, newThrottle(opts.CPU))
			w.mu.Lock()
			w.stats.Passes++
			w.stats.OldSessions = st.OldSessions
			w.stats.add(st)
			w.mu.Unlock()
			if err != nil && !errors.Is(err, context.Canceled) {
				opts.Logf("recompress: %v", err)
			}
			if st.Rewritten > 0 {
				opts.Logf("recompress: %d blobs of %d old sessions re-encoded, %d bytes saved", st.Rewritten, st.OldSessions, st.SavedBytes)
			}
		}
	}()
	return w, nil
}

// Stop ends the worker and waits for it; a blob being rewritten is
// finished first.
func (w *Worker) Stop() {
	w.cancel()
	<-w.done
}

// Stats returns the figures so far.
func (w *Worker) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// Pass runs one pass now, in the caller's goroutine and without the CPU
// budget (for tests and one-off runs on an unmounted data dir).
func Pass(v *vfs.FS, opts Options) (Stats, error) {
	opts.defaults()
	rc, ok := v.BlobStore().(Recompressor)
	if !ok {
		return Stats{}, ErrUnsupported
	}
	st, err := pass(context.Background(), v, rc, opts, nil)
	st.Passes = 1
	return st, err
}

// pass recompresses the file blobs of every session older than opts.After.
func pass(ctx context.Context, v *vfs.FS, rc Recompressor, opts Options, th *throttle) (Stats, error) {
	var st Stats
	sessions, err := v.ReadDirAt(vfs.SessionsDir)
	if err != nil {
		return st, err
	}
	cutoff := opts.Now().Add(-opts.After).UnixNano()
	seen := map[blobstore.Hash]bool{}
	for _, s := range sessions {
		if s.Mode != unix.S_IFDIR {
			continue
		}
		var blobs []blobstore.Hash
		old := true
		err := v.WalkFiles(s.Ino, func(a vfs.Attr) error {
			if cur, err := v.GetAttr(a.Ino); err == nil {
				a = cur // with uncommitted writes' mtime
			}
			if a.Mtime > cutoff {
				old = false
				return errYoung
			}
			return v.Chunks(a.Ino, func(_ uint64, c vfs.ChunkRef) error {
				blobs = append(blobs, c.Hash)
				return nil
			})
		})
		if err != nil && !errors.Is(err, errYoung) {
			return st, fmt.Errorf("session %s: %w", s.Name, err)
		}
		if !old {
			continue
		}
		st.OldSessions++
		for _, h := range blobs {
			if seen[h] {
				continue
			}
			seen[h] = true
			if err := ctx.Err(); err != nil {
				return st, err
			}
			info, ok, err := v.BlobInfo(h)
			if err != nil {
				return st, err
			}
			if !ok {
				continue
			}
			st.Blobs++
			th.begin()
			if info.Inline {
				before, after, err := v.RecompressInline(h, opts.Level)
				if terr := th.end(ctx); terr != nil {
					return st, terr
				}
				if err != nil {
					st.Errors++
					opts.Logf("recompress: inline blob %s: %v", h, err)
				} else if after < before {
					st.Rewritten++
					st.BytesBefore += before
					st.BytesAfter += after
					st.SavedBytes += before - after
				}
				continue
			}
			res, err := rc.Recompress(h, opts.Level)
			if terr := th.end(ctx); terr != nil {
				return st, terr
			}
			if err == nil && res.Rewritten {
				if merr := v.Reencoded(h, res.After.Codec, res.After.Stored); merr != nil {
					opts.Logf("recompress: record blob %s: %v", h, merr)
				}
			}
			switch {
			case errors.Is(err, blobstore.ErrNotFound):
				// Collected meanwhile.
			case err != nil:
				st.Errors++
				opts.Logf("recompress: blob %s: %v", h, err)
			case res.Rewritten:
				st.Rewritten++
				st.BytesBefore += res.Before.Stored
				st.BytesAfter += res.After.Stored
				st.SavedBytes += res.Before.Stored - res.After.Stored
			}
		}
	}
	return st, nil
}

var errYoung = errors.New("session modified recently")

// lowPriority pins the calling goroutine to its OS thread and gives that
// thread the lowest CPU priority (nice 19) and the idle I/O class, so
// recompression yields to everything else. The thread ends with the
// goroutine.
func lowPriority() {
	runtime.LockOSThread()
	tid := unix.Gettid()
	unix.Setpriority(unix.PRIO_PROCESS, tid, 19)
	const ioprioWhoProcess, ioprioClassIdle, ioprioClassShift = 1, 3, 13
	unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, uintptr(tid), ioprioClassIdle<<ioprioClassShift)
}

// throttle keeps the thread's CPU use within a share of one core: after
// each unit of work it sleeps work*(1-share)/share.
type throttle struct {
	share float64
	cpu   func() time.Duration // this thread's CPU time
	start time.Duration
}

func newThrottle(share float64) *throttle {
	return &throttle{share: share, cpu: threadCPU}
}

// pause is how long to sleep after work of CPU time used.
func (t *throttle) pause(used time.Duration) time.Duration {
	return time.Duration(float64(used) * (1 - t.share) / t.share)
}

func (t *throttle) begin() {
	if t != nil {
		t.start = t.cpu()
	}
}

func (t *throttle) end(ctx context.Context) error {
	if t == nil {
		return nil
	}
	d := t.pause(t.cpu() - t.start)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

func threadCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
