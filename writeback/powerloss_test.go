package writeback_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/meta"
	"github.com/taskerfs/taskerfs/writeback"
)

// The power-loss test. A kill -9 keeps the kernel's page cache, so it
// never tests the order of fsyncs of blobs, pebble's WAL and directories.
// Here the namespace (pebble) and the blob store both run over one
// vfs.NewStrictMem(), which keeps only what was fsynced (file data by a
// file's fsync, directory entries by the directory's fsync). A writer
// rewrites files in place (truncate + write + close, sometimes fsync),
// saves them as editors do (temp file, close, rename over), renames,
// unlinks and fsyncs the directory, while the committer runs its windows;
// at a random moment the power goes: syncs stop counting, the stack is
// shut down, everything not fsynced is dropped, and the stack reopens on
// what is left. Then:
//   - the namespace passes meta.Check and every blob it references reads
//     back and hashes right;
//   - every name holds one version that a create, close or fsync
//     completed, never one older than what fsync acknowledged, and never
//     older than what the file held when a rename or link gave it the
//     name (the namespace never commits ahead of content); it is empty only
//     if empty was such a version;
//   - a name whose namespace change fsync(dir) acknowledged is exactly
//     that.
//
// Seeds are deterministic (TASKERFS_POWERLOSS_SEEDS, default 40, picks
// how many); the moment of the crash relative to background commits is
// not, so a failure prints its seed and epoch.

const (
	plNames  = 5
	plEpochs = 3
	plRoot   = "/data"
)

func powerLossSeeds(t *testing.T) int {
	s := os.Getenv("TASKERFS_POWERLOSS_SEEDS")
	if s == "" {
		return 40
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("TASKERFS_POWERLOSS_SEEDS=%q: want a positive number", s)
	}
	return n
}

func TestPowerLoss(t *testing.T) {
	violations := 0
	seeds := powerLossSeeds(t)
	for seed := 1; seed <= seeds; seed++ {
		ok := t.Run(fmt.Sprint(seed), func(t *testing.T) { powerLossRun(t, uint64(seed)) })
		if !ok {
			violations++
		}
	}
	t.Logf("%d seeds × %d power losses, %d seeds with a violation", seeds, plEpochs, violations)
}

// plStack is the daemon's storage stack over the strict in-memory FS.
type plStack struct {
	blobs *blobstore.Local
	store *meta.Store
	wb    *writeback.Manager
}

func openPLStack(t *testing.T, fs vfs.FS, window time.Duration) *plStack {
	t.Helper()
	blobs, err := blobstore.OpenLocal(plRoot+"/blobs", blobstore.LocalOptions{FS: fs})
	if err != nil {
		t.Fatalf("open blobs: %v", err)
	}
	store, err := meta.Open(plRoot+"/meta", meta.Options{Blobs: blobs, FS: fs, CacheBytes: 4 << 20})
	if err != nil {
		t.Fatalf("open namespace: %v", err)
	}
	wb := writeback.New(store, writeback.Options{Window: window, Logf: func(string, ...any) {}})
	store.SetOpenCheck(wb.IsOpen)
	store.SetContentGate(wb)
	return &plStack{blobs: blobs, store: store, wb: wb}
}

// close shuts the stack down after the power went: its syncs no longer
// count, so this only stops the goroutines.
func (s *plStack) close() {
	s.wb.Close()
	s.store.Close()
	s.blobs.Close()
}

func syncDir(t *testing.T, fs vfs.FS, dir string) {
	t.Helper()
	d, err := fs.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	d.Close()
}

func powerLossRun(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b9))
	fs := vfs.NewStrictMem()
	// The data dir exists durably before the daemon first starts.
	if err := fs.MkdirAll(plRoot, 0o700); err != nil {
		t.Fatal(err)
	}
	syncDir(t, fs, "/")
	syncDir(t, fs, plRoot)

	w := &plWriter{rng: rand.New(rand.NewPCG(seed, 7)), state: map[string]*crashName{}, ops: map[string]int{}}
	for i := range plNames {
		w.names = append(w.names, fmt.Sprintf("f%d", i))
	}
	w.names = append(w.names, "tmp")
	for _, n := range w.names {
		w.state[n] = &crashName{}
	}
	for epoch := range plEpochs {
		window := time.Duration(1+rng.IntN(20)) * time.Millisecond
		st := openPLStack(t, fs, window)
		if epoch > 0 {
			w.verify(t, st.store, fmt.Sprintf("seed %d, after power loss %d", seed, epoch))
			if t.Failed() {
				st.close()
				return
			}
		}
		w.st = st
		w.down.Store(false)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); w.run(t) }()
		time.Sleep(time.Duration(rng.IntN(150_000)) * time.Microsecond)
		// Power loss: from now on nothing becomes durable. The flag goes
		// first, so a writer that sees it clear after a sync returned
		// knows that sync counted.
		w.down.Store(true)
		fs.SetIgnoreSyncs(true)
		wg.Wait()
		st.close()
		fs.ResetToSyncedState()
		fs.SetIgnoreSyncs(false)
	}
	st := openPLStack(t, fs, time.Millisecond)
	defer st.close()
	w.verify(t, st.store, fmt.Sprintf("seed %d, after power loss %d", seed, plEpochs))
	t.Logf("seed %d: operations %v", seed, w.ops)
}

// plWriter drives the stack directly (what the FUSE adapter would call)
// and keeps the same model as the kill -9 test (crashName, crashState,
// crashFile).
type plWriter struct {
	rng    *rand.Rand
	st     *plStack
	down   atomic.Bool // the power went
	names  []string
	state  map[string]*crashName
	nextID int
	seq    uint64
	ops    map[string]int
}

func (w *plWriter) newFile() *crashFile {
	w.nextID++
	f := &crashFile{id: w.nextID}
	f.complete(nil)
	return f
}

func (w *plWriter) run(t *testing.T) {
	for !w.down.Load() {
		var err error
		switch r := w.rng.IntN(20); {
		case r < 6:
			err = w.rewrite(w.pick(), true)
		case r < 9:
			err = w.rewrite(w.pick(), false)
		case r < 14:
			err = w.editorSave()
		case r < 16:
			err = w.rename()
		case r < 17:
			err = w.link()
		case r < 18:
			err = w.unlink()
		default:
			err = w.syncDir()
		}
		if err != nil && !w.down.Load() {
			t.Errorf("operation failed with the power on: %v", err)
			return
		}
	}
}

func (w *plWriter) pick() string { return w.names[w.rng.IntN(len(w.names)-1)] }

func (w *plWriter) content() []byte {
	w.seq++
	n := int(float64(int(100)<<w.rng.IntN(15)) * (1 + w.rng.Float64()))
	return data(min(n, 3<<20), w.seq)
}

// lookupOrCreate returns the inode name refers to, creating the file when
// absent.
func (w *plWriter) lookupOrCreate(name string) (uint64, *crashFile, error) {
	st := w.state[name]
	a, err := w.st.store.Lookup(meta.RootIno, name)
	if errors.Is(err, syscall.ENOENT) {
		a, err = w.st.store.Create(meta.RootIno, name, meta.NewNode{Mode: syscall.S_IFREG | 0o644})
		if err != nil {
			return 0, nil, err
		}
		st.set(crashState{f: w.newFile()})
	}
	if err != nil {
		return 0, nil, err
	}
	if st.cur.f == nil {
		return 0, nil, fmt.Errorf("%s exists but the model has it absent", name)
	}
	return a.Ino, st.cur.f, nil
}

// rewrite opens name (creating it if absent), truncates it to zero or to
// a shorter size, writes from offset 0, sometimes fsyncs, and closes.
func (w *plWriter) rewrite(name string, toZero bool) error {
	ino, cf, err := w.lookupOrCreate(name)
	if err != nil {
		return err
	}
	if err := w.st.wb.Open(ino); err != nil {
		return err
	}
	defer w.st.wb.Release(ino)
	old := cf.content
	size := 0
	if !toZero && len(old) > 0 {
		size = w.rng.IntN(len(old))
	}
	w.ops[fmt.Sprintf("rewrite (truncate to zero: %v)", toZero)]++
	if err := w.st.wb.Truncate(ino, uint64(size)); err != nil {
		return err
	}
	newData := w.content()
	if size > 0 && w.rng.IntN(2) == 0 {
		newData = newData[:min(len(newData), w.rng.IntN(size)+1)]
	}
	content := append([]byte(nil), newData...)
	if len(newData) < size {
		content = append(content, old[len(newData):size]...)
	}
	for off := 0; off < len(newData); {
		n := min(len(newData)-off, 128<<10)
		if _, err := w.st.wb.Write(ino, newData[off:off+n], int64(off)); err != nil {
			return err
		}
		off += n
	}
	return w.finish(ino, cf, content, w.rng.IntN(3) == 0)
}

// finish completes a version: fsync (sometimes), then the close (Flush
// and the Release the caller defers).
func (w *plWriter) finish(ino uint64, cf *crashFile, content []byte, fsync bool) error {
	cf.complete(content)
	if fsync {
		if err := w.st.wb.Fsync(ino); err != nil {
			return err
		}
		if !w.down.Load() {
			cf.durable = cf.latest()
		}
	}
	return w.st.wb.Flush(ino)
}

func (w *plWriter) editorSave() error {
	w.ops["editor save"]++
	tmp, target := w.names[len(w.names)-1], w.pick()
	ino, cf, err := w.lookupOrCreate(tmp)
	if err != nil {
		return err
	}
	if err := w.st.wb.Open(ino); err != nil {
		return err
	}
	content := w.content()
	err = w.st.wb.Truncate(ino, 0)
	for off := 0; err == nil && off < len(content); {
		n := min(len(content)-off, 128<<10)
		_, err = w.st.wb.Write(ino, content[off:off+n], int64(off))
		off += n
	}
	if err == nil {
		err = w.finish(ino, cf, content, w.rng.IntN(5) == 0)
	}
	w.st.wb.Release(ino)
	if err != nil {
		return err
	}
	return w.move(tmp, target)
}

func (w *plWriter) rename() error {
	from, to := w.pick(), w.pick()
	if from == to || w.state[from].cur.f == nil {
		return nil
	}
	w.ops["rename"]++
	return w.move(from, to)
}

func (w *plWriter) move(from, to string) error {
	src, dst := w.state[from], w.state[to]
	moved := crashState{f: src.cur.f, min: src.cur.f.latest()}
	if err := w.st.store.Rename(meta.RootIno, from, meta.RootIno, to, 0); err != nil {
		return err
	}
	if dst.cur.f == src.cur.f {
		return nil // two links to one inode: rename does nothing
	}
	dst.set(moved)
	src.set(crashState{})
	return nil
}

// link gives a file a second name (the names then share one inode).
func (w *plWriter) link() error {
	from, to := w.pick(), w.pick()
	if from == to || w.state[from].cur.f == nil || w.state[to].cur.f != nil {
		return nil
	}
	w.ops["link"]++
	a, err := w.st.store.Lookup(meta.RootIno, from)
	if err != nil {
		return err
	}
	f := w.state[from].cur.f
	if _, err := w.st.store.Link(a.Ino, meta.RootIno, to); err != nil {
		return err
	}
	w.state[to].set(crashState{f: f, min: f.latest()})
	return nil
}

func (w *plWriter) unlink() error {
	name := w.pick()
	if w.state[name].cur.f == nil {
		return nil
	}
	w.ops["unlink"]++
	if err := w.st.store.Unlink(meta.RootIno, name); err != nil {
		return err
	}
	w.state[name].set(crashState{})
	return nil
}

// syncDir is fsync(dir): every entry of the dir is durable.
func (w *plWriter) syncDir() error {
	w.ops["fsync(dir)"]++
	if err := w.st.store.SyncWAL(); err != nil {
		return err
	}
	if !w.down.Load() {
		for _, n := range w.state {
			n.alts = nil
		}
	}
	return nil
}

// verify checks the reopened store against the model, then takes what
// it holds as the new exact state.
func (w *plWriter) verify(t *testing.T, s *meta.Store, when string) {
	t.Helper()
	if err := s.Check(func(p meta.Problem) { t.Errorf("%s: fsck: %s", when, p) }); err != nil {
		t.Fatalf("%s: fsck: %v", when, err)
	}
	err := s.RefBlobs(func(h blobstore.Hash, info meta.BlobInfo) error {
		if _, err := s.Blob(h); err != nil {
			t.Errorf("%s: a manifest points at blob %s (inline %v), which cannot be read: %v", when, h, info.Inline, err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: list blobs: %v", when, err)
	}
	var unexpected []string
	if err := s.ReadDir(meta.RootIno, "", func(e meta.DirEntry) bool {
		if _, ok := w.state[e.Name]; !ok {
			unexpected = append(unexpected, e.Name)
		}
		return true
	}); err != nil {
		t.Fatalf("%s: list: %v", when, err)
	}
	if len(unexpected) > 0 {
		t.Errorf("%s: unexpected names %s", when, strings.Join(unexpected, ", "))
	}
	byIno := map[uint64]*crashFile{}
	for _, name := range w.names {
		n := w.state[name]
		a, err := s.Lookup(meta.RootIno, name)
		present := err == nil
		if err != nil && !errors.Is(err, syscall.ENOENT) {
			t.Fatalf("%s: lookup %s: %v", when, name, err)
		}
		var got []byte
		if present {
			if got, err = committedOnce(s, a.Ino); err != nil {
				t.Errorf("%s: read %s: %v", when, name, err)
				continue
			}
		}
		if msg := checkName(n, name, present, got); msg != "" {
			t.Errorf("%s: %s", when, msg)
		}
		fresh := &crashName{}
		if present {
			f := byIno[a.Ino] // names sharing an inode share its versions
			if f == nil {
				w.nextID++
				f = &crashFile{id: w.nextID}
				f.complete(got)
				byIno[a.Ino] = f
			}
			fresh.cur = crashState{f: f}
		}
		w.state[name] = fresh
	}
}

// The model, shared in spirit with tests/crash_test.go.

type crashFile struct {
	id       int
	versions [][32]byte
	sizes    []int
	durable  int
	content  []byte
}

func (f *crashFile) complete(content []byte) {
	f.content = content
	f.versions = append(f.versions, sha256.Sum256(content))
	f.sizes = append(f.sizes, len(content))
}

func (f *crashFile) latest() int { return len(f.versions) - 1 }

type crashState struct {
	f   *crashFile
	min int
}

type crashName struct {
	cur  crashState
	alts []crashState
}

func (n *crashName) set(s crashState) {
	n.alts = append(n.alts, n.cur)
	n.cur = s
}

func checkName(n *crashName, name string, present bool, got []byte) string {
	sum := sha256.Sum256(got)
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
		for i := from; present && i < len(s.f.versions); i++ {
			if s.f.versions[i] == sum {
				return ""
			}
		}
		allowed = append(allowed, fmt.Sprintf("file %d from version %d of %d (sizes %v, fsynced %d)",
			s.f.id, from, s.f.latest(), s.f.sizes, s.f.durable))
	}
	what := "absent"
	if present {
		what = fmt.Sprintf("%d bytes (sha256 %x)", len(got), sum[:6])
	}
	return fmt.Sprintf("%s is %s; allowed: %s", name, what, strings.Join(allowed, "; "))
}
