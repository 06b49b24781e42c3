package tests

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/meta"
)

// The kill -9 crash test (DESIGN.md, "Durability contract"). Writers
// rewrite files in place (open with O_TRUNC, or ftruncate, then write),
// save them the way editors do (write a temp file, close it without fsync,
// rename it over the original) and rename files onto each other, with and
// without fsync. The daemon is SIGKILLed at random moments; after each
// kill the data dir must pass the namespace checks offline, and after the
// remount every name must hold a state the model allows.
//
// The model (crashModel) tracks, per file, the exact sequence of versions
// that a create, close() or fsync() completed, and per name the states a
// crash may leave it in: its current file, or, until fsync(dir)
// acknowledged the namespace, one of its earlier states. A name that a
// rename or an editor's save pointed at a file may only show versions of
// that file completed before the rename or later: a rename never commits
// ahead of the content it moves. A file is empty after a crash only if
// empty was one of its completed versions (it was created and no later
// version was completed, or closed empty).

const (
	crashWriters       = 3
	crashNamesPerWrite = 5
	// unsyncedRecent is how close to the kill a close without fsync must
	// be for the kill to count as landing on queued items, when the
	// daemon's stats cannot be read (the default write-back window).
	unsyncedRecent = 100 * time.Millisecond
)

// crashCycles is 20, or TASKERFS_CRASH_CYCLES (`make crash-long`: 200).
func crashCycles(t *testing.T) int {
	s := os.Getenv("TASKERFS_CRASH_CYCLES")
	if s == "" {
		return 20
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("TASKERFS_CRASH_CYCLES=%q: want a positive number", s)
	}
	return n
}

type sum [32]byte

func (s sum) String() string { return fmt.Sprintf("%x", s[:6]) }

// crashFile is one inode as the writers know it.
type crashFile struct {
	id int
	// versions are the contents a create, close() or fsync() completed,
	// oldest first; versions[0] of a created file is empty.
	versions []sum
	sizes    []int
	// durable is the index of the newest fsync-acknowledged version:
	// older ones may no longer show after a crash.
	durable int
	content []byte // the newest version's bytes
}

func (f *crashFile) complete(content []byte) {
	f.content = content
	f.versions = append(f.versions, sum(sha256.Sum256(content)))
	f.sizes = append(f.sizes, len(content))
}

func (f *crashFile) latest() int { return len(f.versions) - 1 }

// crashState is what a name may hold after a crash: nothing (f nil), or
// file f at one of its versions from index min on (and not older than
// what fsync acknowledged).
type crashState struct {
	f   *crashFile
	min int
}

// crashName is one name: its current state and the earlier states a
// crash may still bring back (until fsync(dir) acknowledges).
type crashName struct {
	cur  crashState
	alts []crashState
}

func (n *crashName) set(s crashState) {
	n.alts = append(n.alts, n.cur)
	n.cur = s
}

// crashWriter owns a few names and a temp name in the test dir and is the
// only one to touch them.
type crashWriter struct {
	id      int
	dir     string
	rng     *rand.Rand
	names   []string // names[len-1] is the temp name of editor saves
	state   map[string]*crashName
	nextID  *atomic.Int64
	seq     *atomic.Uint64
	written *versions
	// lastUnsyncedClose is when a file was last closed without fsync.
	lastUnsyncedClose *atomic.Int64
	acks              int
	ops               map[string]int
}

// versions is every content ever written whole to any file (to explain a
// torn file).
type versions struct {
	mu  sync.Mutex
	set map[sum]bool
}

func (v *versions) add(s sum) {
	v.mu.Lock()
	v.set[s] = true
	v.mu.Unlock()
}

func (v *versions) has(s sum) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.set[s]
}

func newCrashWriter(id int, dir string, seed uint64, v *versions, ids *atomic.Int64, seq *atomic.Uint64, last *atomic.Int64) *crashWriter {
	w := &crashWriter{id: id, dir: dir, rng: rand.New(rand.NewPCG(seed, uint64(id))), state: map[string]*crashName{},
		nextID: ids, seq: seq, written: v, lastUnsyncedClose: last, ops: map[string]int{}}
	for i := range crashNamesPerWrite {
		w.names = append(w.names, fmt.Sprintf("w%d-%d", id, i))
	}
	w.names = append(w.names, fmt.Sprintf("w%d-tmp", id))
	for _, n := range w.names {
		w.state[n] = &crashName{}
	}
	return w
}

func (w *crashWriter) newFile() *crashFile {
	f := &crashFile{id: int(w.nextID.Add(1))}
	f.complete(nil) // a created file is empty until its first close
	return f
}

// run performs operations until stop is closed or one fails (the daemon
// died under it).
func (w *crashWriter) run(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		var err error
		switch r := w.rng.IntN(10); {
		case r < 3:
			err = w.editorSave()
		case r < 5:
			err = w.rewriteTrunc()
		case r < 7:
			err = w.rewriteFtruncate()
		case r < 9:
			err = w.rename()
		default:
			err = w.fsyncDir()
		}
		if err != nil {
			return
		}
	}
}

// contentSize is roughly log-uniform in 1 KiB..3 MiB.
func (w *crashWriter) contentSize() int {
	return int(float64(int(1024)<<w.rng.IntN(11)) * (1 + 0.5*w.rng.Float64()))
}

// pick is one of the writer's names other than the temp name.
func (w *crashWriter) pick() string { return w.names[w.rng.IntN(len(w.names)-1)] }

// openForWrite opens name for writing (creating it if absent, with
// O_TRUNC when trunc) and returns the file it now names.
func (w *crashWriter) openForWrite(name string, trunc bool) (*os.File, *crashFile, error) {
	st := w.state[name]
	flags := os.O_WRONLY | os.O_CREATE
	if trunc {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(filepath.Join(w.dir, name), flags, 0o644)
	if err != nil {
		if st.cur.f == nil {
			// The create may have landed before the daemon died.
			st.alts = append(st.alts, crashState{f: w.newFile()})
		}
		return nil, nil, err
	}
	if st.cur.f == nil {
		st.set(crashState{f: w.newFile()})
	}
	return f, st.cur.f, nil
}

// writeAll writes content at offset 0 in several calls, sometimes with
// pauses as a slow producer makes, so that a commit of a half-written
// file would show.
func (w *crashWriter) writeAll(f *os.File, content []byte) error {
	slow := w.rng.IntN(4) == 0
	off := 0
	for off < len(content) {
		n := min(len(content)-off, 1+w.rng.IntN(len(content)/2+1))
		if _, err := f.WriteAt(content[off:off+n], int64(off)); err != nil {
			return err
		}
		off += n
		if slow && off < len(content) {
			time.Sleep(time.Duration(w.rng.IntN(150)) * time.Millisecond)
		}
	}
	return nil
}

// finish completes a written version with an optional fsync and close.
// A close or fsync that failed (the daemon died under it) may still have
// completed, so its version counts as completed too.
func (w *crashWriter) finish(f *os.File, cf *crashFile, content []byte, sync bool) error {
	cf.complete(content)
	w.written.add(cf.versions[cf.latest()])
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		cf.durable = cf.latest()
		w.acks++
	}
	if err := f.Close(); err != nil {
		return err
	}
	if !sync {
		w.lastUnsyncedClose.Store(time.Now().UnixNano())
	}
	return nil
}

func (w *crashWriter) content() []byte { return crashContent(w.contentSize(), w.seq.Add(1)) }

// rewriteTrunc rewrites a name in place: open(O_TRUNC), write, close,
// sometimes fsync before the close.
func (w *crashWriter) rewriteTrunc() error {
	w.ops["rewrite O_TRUNC"]++
	name := w.pick()
	content := w.content()
	f, cf, err := w.openForWrite(name, true)
	if err != nil {
		return err
	}
	if err := w.writeAll(f, content); err != nil {
		f.Close()
		return err
	}
	return w.finish(f, cf, content, w.rng.IntN(3) == 0)
}

// rewriteFtruncate rewrites a name in place through ftruncate: to zero
// or to a shorter size, then a write from offset 0; fsync more often
// than not.
func (w *crashWriter) rewriteFtruncate() error {
	w.ops["rewrite ftruncate"]++
	name := w.pick()
	f, cf, err := w.openForWrite(name, false)
	if err != nil {
		return err
	}
	old := cf.content
	size := 0
	if len(old) > 0 && w.rng.IntN(2) == 0 {
		size = w.rng.IntN(len(old))
	}
	if err := f.Truncate(int64(size)); err != nil {
		f.Close()
		return err
	}
	data := w.content()
	if size > 0 && len(data) > size && w.rng.IntN(2) == 0 {
		data = data[:w.rng.IntN(size)+1] // shorter than what is kept
	}
	content := append([]byte(nil), data...)
	if len(data) < size {
		content = append(content, old[len(data):size]...)
	}
	if err := w.writeAll(f, data); err != nil {
		f.Close()
		return err
	}
	return w.finish(f, cf, content, w.rng.IntN(3) != 0)
}

// editorSave writes a new version to the temp name, closes it (rarely
// with fsync) and renames it over a name, as editors and sed -i do.
func (w *crashWriter) editorSave() error {
	w.ops["editor save"]++
	tmp := w.names[len(w.names)-1]
	target := w.pick()
	content := w.content()
	f, cf, err := w.openForWrite(tmp, true)
	if err != nil {
		return err
	}
	if err := w.writeAll(f, content); err != nil {
		f.Close()
		return err
	}
	if err := w.finish(f, cf, content, w.rng.IntN(5) == 0); err != nil {
		return err
	}
	return w.renameNames(tmp, target)
}

// rename moves one owned name onto another (replacing it if present).
func (w *crashWriter) rename() error {
	w.ops["rename"]++
	from, to := w.pick(), w.pick()
	if from == to || w.state[from].cur.f == nil {
		return nil
	}
	return w.renameNames(from, to)
}

func (w *crashWriter) renameNames(from, to string) error {
	src, dst := w.state[from], w.state[to]
	moved := crashState{f: src.cur.f, min: src.cur.f.latest()}
	err := os.Rename(filepath.Join(w.dir, from), filepath.Join(w.dir, to))
	if err != nil {
		// It may have landed before the daemon died.
		dst.alts = append(dst.alts, moved)
		src.alts = append(src.alts, crashState{})
		return err
	}
	dst.set(moved)
	src.set(crashState{})
	if w.rng.IntN(3) == 0 {
		return w.fsyncDir()
	}
	return nil
}

// fsyncDir acknowledges every name's current entry.
func (w *crashWriter) fsyncDir() error {
	if err := fsyncDir(w.dir); err != nil {
		return err
	}
	for _, n := range w.state {
		n.alts = nil
	}
	w.acks++
	return nil
}

// check compares what name holds after the crash (present, content) with
// the states the model allows, and describes a violation.
func (w *crashWriter) check(name string, present bool, got sum, size int) string {
	n := w.state[name]
	var allowed []string
	for _, s := range append([]crashState{n.cur}, n.alts...) {
		if s.f == nil {
			if !present {
				return ""
			}
			allowed = append(allowed, "absent")
			continue
		}
		from := max(s.min, s.f.durable)
		for i := from; i < len(s.f.versions); i++ {
			if present && s.f.versions[i] == got {
				return ""
			}
		}
		allowed = append(allowed, fmt.Sprintf("file %d from version %d of %d (sizes %v, fsynced %d)",
			s.f.id, from, s.f.latest(), s.f.sizes, s.f.durable))
	}
	what := "absent"
	if present {
		what = fmt.Sprintf("%d bytes (sha256 %s)", size, got)
		if size > 0 && !w.written.has(got) {
			what += ", never written whole"
		}
	}
	return fmt.Sprintf("%s is %s; allowed: %s", name, what, strings.Join(allowed, "; "))
}

// reset takes what the remount shows as every name's one exact state.
func (w *crashWriter) reset(onDisk map[string][]byte) {
	for _, name := range w.names {
		n := &crashName{}
		if b, ok := onDisk[name]; ok {
			f := &crashFile{id: int(w.nextID.Add(1))}
			f.complete(b)
			n.cur = crashState{f: f}
		}
		w.state[name] = n
	}
}

func fsyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// crashContent is n bytes unique to seq.
func crashContent(n int, seq uint64) []byte {
	r := rand.New(rand.NewPCG(seq, 0x5eed))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// queueFigures reads the daemon's write-back queue from .taskerfs/stats.json;
// ok is false when the file cannot be read.
type queueFigures struct {
	QueueCritical  int    `json:"queueCritical"`
	QueueNormal    int    `json:"queueNormal"`
	QueueLow       int    `json:"queueLow"`
	DirtyBytes     int64  `json:"dirtyBytes"`
	ItemsCommitted uint64 `json:"itemsCommitted"`
	Throttled      uint64 `json:"throttledWrites"`
	Spills         uint64 `json:"spilledChunks"`
}

func (q queueFigures) queued() int { return q.QueueCritical + q.QueueNormal + q.QueueLow }

func readQueue(m *Mount) (queueFigures, bool) {
	b, err := os.ReadFile(m.Path(".taskerfs", "stats.json"))
	if err != nil {
		return queueFigures{}, false
	}
	var s struct {
		Queue *queueFigures `json:"queue"`
	}
	if json.Unmarshal(b, &s) != nil || s.Queue == nil {
		return queueFigures{}, false
	}
	return *s.Queue, true
}

func TestCrashKill9(t *testing.T) {
	requireMountable(t)
	cycles := crashCycles(t)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("TASKERFS_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (TASKERFS_CRASH_SEED reproduces the schedule), %d cycles", seed, cycles)
	rng := rand.New(rand.NewPCG(seed, 1))

	// The trash is on, as it is by default for users: renames over and
	// truncations then also move old versions into it, in the same
	// batches the contract is about.
	m := mountFS(t, newDataDir(t), "--trash-days", "1")
	dir := mustMkdirAll(t, m.Path("crash"))
	if err := fsyncDir(m.Dir); err != nil {
		t.Fatal(err)
	}
	all := &versions{set: map[sum]bool{}}
	var ids atomic.Int64
	var seq atomic.Uint64
	var lastUnsyncedClose atomic.Int64
	writers := make([]*crashWriter, crashWriters)
	for i := range writers {
		writers[i] = newCrashWriter(i, dir, seed, all, &ids, &seq, &lastUnsyncedClose)
	}

	var onQueued, onRecentClose, withStats, badCycles int
	for cycle := range cycles {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for _, w := range writers {
			wg.Add(1)
			go func() { defer wg.Done(); w.run(stop) }()
		}
		time.Sleep(time.Duration(50+rng.IntN(451)) * time.Millisecond)
		q, haveStats := readQueue(m)
		m.Kill()
		killedAt := time.Now()
		close(stop)
		wg.Wait()

		if haveStats {
			withStats++
			if q.queued() > 0 || q.DirtyBytes > 0 {
				onQueued++
			}
		}
		if killedAt.Sub(time.Unix(0, lastUnsyncedClose.Load())) < unsyncedRecent {
			onRecentClose++
		}

		checkDataDirOffline(t, m.Data, fmt.Sprintf("cycle %d", cycle))
		m.Start()
		if !verifyCrashDir(t, dir, writers, cycle) {
			badCycles++
		}
		// Keep going after a violation to count how often it happens,
		// unless asked to stop at the first.
		if t.Failed() && os.Getenv("TASKERFS_CRASH_KEEP_GOING") == "" {
			return
		}
	}

	acks := 0
	ops := map[string]int{}
	for _, w := range writers {
		acks += w.acks
		for k, v := range w.ops {
			ops[k] += v
		}
	}
	t.Logf("%d kills (%d with a violation): %d with items queued per stats.json read just before the kill (%d reads), %d within %v of a close without fsync; %d acknowledged operations, %d versions written; operations %v",
		cycles, badCycles, onQueued, withStats, onRecentClose, unsyncedRecent, acks, len(all.set), ops)
	if acks == 0 {
		t.Fatal("no operation was ever acknowledged: the test checked nothing")
	}
	// The queue figures are the evidence when the daemon exposes them;
	// a recent close without fsync otherwise.
	if withStats > 0 && onQueued == 0 {
		t.Fatal("no kill landed while items were queued (stats.json showed an empty queue every time)")
	}
	if withStats == 0 && onRecentClose == 0 {
		t.Fatalf("no kill landed within %v of a close without fsync", unsyncedRecent)
	}
}

// verifyCrashDir checks the remounted dir against the writers' models and
// then takes what it found as the new exact state. It reports whether the
// cycle had no violation.
func verifyCrashDir(t *testing.T, dir string, writers []*crashWriter, cycle int) bool {
	t.Helper()
	onDisk := map[string][]byte{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("cycle %d: read dir after remount: %v", cycle, err)
	}
	ok := true
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Errorf("cycle %d: read %s after remount: %v", cycle, e.Name(), err)
			ok = false
			continue
		}
		onDisk[e.Name()] = b
	}
	owned := map[string]bool{}
	for _, w := range writers {
		for _, name := range w.names {
			owned[name] = true
			b, present := onDisk[name]
			if msg := w.check(name, present, sum(sha256.Sum256(b)), len(b)); msg != "" {
				t.Errorf("cycle %d: %s", cycle, msg)
				ok = false
			}
		}
		w.reset(onDisk)
	}
	for name := range onDisk {
		if !owned[name] {
			t.Errorf("cycle %d: unexpected name %s after the crash", cycle, name)
			ok = false
		}
	}
	return ok
}

// checkDataDirOffline opens the data dir of a dead daemon and checks the
// namespace invariants (meta.Check: link counts, refcounts against the
// manifests, reverse entries, inline payloads) and that every referenced
// blob is present and hashes right.
func checkDataDirOffline(t *testing.T, dataDir, when string) {
	t.Helper()
	blobs, err := blobstore.OpenLocal(filepath.Join(dataDir, "blobs"), blobstore.LocalOptions{})
	if err != nil {
		t.Fatalf("%s: open blobs: %v", when, err)
	}
	defer blobs.Close()
	s, err := meta.Open(filepath.Join(dataDir, "meta"), meta.Options{Blobs: blobs})
	if err != nil {
		t.Fatalf("%s: open namespace after the crash: %v", when, err)
	}
	defer s.Close()
	if err := s.Check(func(p meta.Problem) { t.Errorf("%s: fsck: %s", when, p) }); err != nil {
		t.Fatalf("%s: fsck: %v", when, err)
	}
	err = s.RefBlobs(func(h blobstore.Hash, info meta.BlobInfo) error {
		if _, err := s.Blob(h); err != nil {
			t.Errorf("%s: a manifest points at blob %s (inline %v), which cannot be read: %v", when, h, info.Inline, err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: list blobs: %v", when, err)
	}
}
