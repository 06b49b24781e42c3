package tests

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/meta"
)

// The kill -9 crash test (DESIGN.md, "Durability contract"). Writers
// create, overwrite and rename files on the mount; a manifest kept
// outside the mount records only what fsync(file) and then fsync(dir)
// acknowledged. The daemon is SIGKILLed at random moments; after each
// kill the data dir must pass the namespace checks offline, and after the
// remount every acknowledged entry must read back exactly and every file
// must be one version that was written whole (or empty).

const (
	crashWriters       = 3
	crashNamesPerWrite = 6
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

var emptySum = sum(sha256.Sum256(nil))

// versions is every content ever written whole to any file.
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

// ack is what fsync(file) and fsync(dir) acknowledged about a name:
// present with exactly this content, or absent.
type ack struct {
	present bool
	content sum
}

// crashWriter owns a few names in the test dir. Its manifest holds only
// acknowledged states; a name it starts to change leaves the manifest
// until the change is acknowledged.
type crashWriter struct {
	id       int
	dir      string
	rng      *rand.Rand
	names    []string
	manifest map[string]ack // lives outside the mount
	versions *versions
	// lastWrite is the content of the latest write started under each
	// name (following renames), to explain a torn file.
	lastWrite map[string][]byte
	seq       *atomic.Uint64
	// lastUnsyncedClose is when a file was last closed without fsync.
	lastUnsyncedClose *atomic.Int64
	acks              int
}

func newCrashWriter(id int, dir string, seed uint64, v *versions, seq *atomic.Uint64, last *atomic.Int64) *crashWriter {
	w := &crashWriter{id: id, dir: dir, rng: rand.New(rand.NewPCG(seed, uint64(id))), manifest: map[string]ack{},
		versions: v, seq: seq, lastUnsyncedClose: last, lastWrite: map[string][]byte{}}
	for i := range crashNamesPerWrite {
		w.names = append(w.names, fmt.Sprintf("w%d-%d", id, i))
	}
	return w
}

// run performs operations until stop is closed or one fails (the daemon
// died under it); a failed operation acknowledges nothing.
func (w *crashWriter) run(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		var err error
		if w.rng.IntN(4) == 0 {
			err = w.rename()
		} else {
			err = w.write()
		}
		if err != nil {
			return
		}
	}
}

// contentSize is roughly log-uniform in 1 KiB..1 MiB.
func (w *crashWriter) contentSize() int {
	return int(float64(int(1024)<<w.rng.IntN(10)) * (1 + w.rng.Float64()))
}

func (w *crashWriter) write() error {
	name := w.names[w.rng.IntN(len(w.names))]
	sync := w.rng.IntN(3) == 0
	content := crashContent(w.contentSize(), w.seq.Add(1))
	s := sum(sha256.Sum256(content))
	delete(w.manifest, name)
	w.lastWrite[name] = content
	f, err := os.OpenFile(filepath.Join(w.dir, name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	// Several write calls, sometimes with pauses as a slow producer makes,
	// so that a commit of a half-written file would show.
	slow := w.rng.IntN(4) == 0
	for rest := content; len(rest) > 0; {
		n := min(len(rest), 1+w.rng.IntN(len(content)/2+1))
		if _, err := f.Write(rest[:n]); err != nil {
			f.Close()
			return err
		}
		rest = rest[n:]
		if slow && len(rest) > 0 {
			time.Sleep(time.Duration(w.rng.IntN(150)) * time.Millisecond)
		}
	}
	w.versions.add(s)
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if !sync {
		w.lastUnsyncedClose.Store(time.Now().UnixNano())
		return nil
	}
	if err := fsyncDir(w.dir); err != nil {
		return err
	}
	w.manifest[name] = ack{present: true, content: s}
	w.acks++
	return nil
}

// rename moves one owned name onto another (replacing it if present),
// sometimes acknowledging with fsync(dir).
func (w *crashWriter) rename() error {
	from := w.names[w.rng.IntN(len(w.names))]
	to := w.names[w.rng.IntN(len(w.names))]
	if from == to {
		return nil
	}
	if _, err := os.Lstat(filepath.Join(w.dir, from)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	fromAck, fromAcked := w.manifest[from]
	delete(w.manifest, from)
	delete(w.manifest, to)
	if err := os.Rename(filepath.Join(w.dir, from), filepath.Join(w.dir, to)); err != nil {
		return err
	}
	w.lastWrite[to] = w.lastWrite[from]
	delete(w.lastWrite, from)
	if w.rng.IntN(2) == 0 {
		return nil
	}
	if err := fsyncDir(w.dir); err != nil {
		return err
	}
	// The entries are durable now; the content is exact only if the
	// source's content had been acknowledged.
	w.manifest[from] = ack{present: false}
	if fromAcked {
		w.manifest[to] = fromAck
	}
	w.acks++
	return nil
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

	m := mountFS(t, newDataDir(t))
	dir := mustMkdirAll(t, m.Path("crash"))
	if err := fsyncDir(m.Dir); err != nil {
		t.Fatal(err)
	}
	all := &versions{set: map[sum]bool{emptySum: true}}
	var seq atomic.Uint64
	var lastUnsyncedClose atomic.Int64
	writers := make([]*crashWriter, crashWriters)
	for i := range writers {
		writers[i] = newCrashWriter(i, dir, seed, all, &seq, &lastUnsyncedClose)
	}

	var onQueued, onRecentClose, withStats int
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
		verifyCrashDir(t, dir, writers, all, cycle)
		if t.Failed() {
			return
		}
	}

	acks := 0
	for _, w := range writers {
		acks += w.acks
	}
	t.Logf("%d kills: %d with items queued per stats.json read just before the kill (%d reads), %d within %v of a close without fsync; %d acknowledged operations, %d versions written",
		cycles, onQueued, withStats, onRecentClose, unsyncedRecent, acks, len(all.set)-1)
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

// verifyCrashDir checks the remounted dir against the writers' manifests.
func verifyCrashDir(t *testing.T, dir string, writers []*crashWriter, all *versions, cycle int) {
	t.Helper()
	onDisk := map[string]sum{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("cycle %d: read dir after remount: %v", cycle, err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Errorf("cycle %d: read %s after remount: %v", cycle, e.Name(), err)
			continue
		}
		s := sum(sha256.Sum256(b))
		onDisk[e.Name()] = s
		if !all.has(s) {
			t.Errorf("cycle %d: %s is torn: %d bytes (sha256 %s) that were never written whole%s",
				cycle, e.Name(), len(b), s, tornDetail(writers, e.Name(), b))
		}
	}
	for _, w := range writers {
		for name, a := range w.manifest {
			got, present := onDisk[name]
			switch {
			case a.present && !present:
				t.Errorf("cycle %d: %s was fsynced (content %s) but is missing after the crash", cycle, name, a.content)
			case a.present && got != a.content:
				t.Errorf("cycle %d: %s was fsynced with content %s but reads back %s", cycle, name, a.content, got)
			case !a.present && present:
				t.Errorf("cycle %d: %s was renamed away and fsync(dir) acknowledged it, but it is back", cycle, name)
			}
		}
	}
}

// tornDetail relates a torn file to the last version written under its name.
func tornDetail(writers []*crashWriter, name string, got []byte) string {
	for _, w := range writers {
		last, ok := w.lastWrite[name]
		if !ok {
			continue
		}
		same := 0
		for same < len(got) && same < len(last) && got[same] == last[same] {
			same++
		}
		return fmt.Sprintf("; the last version written under this name has %d bytes, of which the first %d are what the file starts with", len(last), same)
	}
	return ""
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
