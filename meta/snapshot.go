package meta

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/record"
	"github.com/taskerfs/taskerfs/blobstore"
)

// Snapshots are pebble checkpoints of the whole namespace (inodes,
// manifests, refcounts, inline blobs and the search index) in
// DATA/snapshots/<name>/: sstables are hard-linked, so creating one writes
// a MANIFEST, an OPTIONS file and a near-empty WAL and copies no blob and
// no table. A snapshot is opened read-only with the same code that reads
// the live store, so its sessions/ and its search run unchanged.
//
// The blobs a snapshot references are exactly the blob records ('r' keys)
// in its checkpoint; GC keeps a blob file while any snapshot has a record
// for it (bloom-filtered point lookups, only for blobs the live store no
// longer references). Deleting a snapshot removes its directory; the next
// GC frees the blobs only it held.
//
// Creation is atomic: the checkpoint is made in snapshots/.tmp-<name> and
// renamed into place after its info file is synced.

const snapInfoFile = "TASKERFS-SNAPSHOT.json"

// MaxSnapshotName bounds a snapshot's name.
const MaxSnapshotName = 128

// SnapshotInfo describes one snapshot.
type SnapshotInfo struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	// AddedBytes is what creation wrote (files not shared with the live
	// store by a hard link).
	AddedBytes int64 `json:"addedBytes"`
	// TookNs is how long creation took.
	TookNs int64 `json:"tookNs"`
	// OwnBytes is the snapshot's metadata no longer shared with the live
	// store (it grows as the live store compacts away old tables).
	OwnBytes int64 `json:"ownBytes,omitempty"`
}

type snapRegistry struct {
	// gate: creation and deletion hold it exclusively, a GC decision
	// about one blob shares it, so a snapshot cannot appear between the
	// live check and the snapshot check.
	gate  sync.RWMutex
	mu    sync.Mutex
	open  map[string]*snapHandle
	names map[string]bool // nil until loaded
}

type snapHandle struct {
	st   *Store
	refs int
	dead bool
}

// ErrBadSnapshotName: empty, too long, starts with '.', or contains '/'.
var ErrBadSnapshotName = errors.New("bad snapshot name")

// CheckSnapshotName validates a snapshot name.
func CheckSnapshotName(name string) error {
	if name == "" || len(name) > MaxSnapshotName || strings.HasPrefix(name, ".") || checkName(name) != nil {
		return fmt.Errorf("%w %q", ErrBadSnapshotName, name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w %q", ErrBadSnapshotName, name)
		}
	}
	return nil
}

// SnapshotsDir is where snapshots live: DATA/snapshots.
func (s *Store) SnapshotsDir() string { return filepath.Join(filepath.Dir(s.dir), "snapshots") }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// loadNamesLocked lists the snapshots on disk; called with gate held.
func (s *Store) loadNamesLocked() (map[string]bool, error) {
	s.snaps.mu.Lock()
	defer s.snaps.mu.Unlock()
	if s.snaps.names != nil {
		return s.snaps.names, nil
	}
	names := map[string]bool{}
	ents, err := os.ReadDir(s.SnapshotsDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			if _, err := os.Stat(filepath.Join(s.SnapshotsDir(), e.Name(), snapDeletedFile)); err == nil {
				continue // deleted while held; CleanSnapshotLeftovers removes it
			}
			names[e.Name()] = true
		}
	}
	s.snaps.names = names
	return names, nil
}

// CleanSnapshotLeftovers removes half-made or half-deleted snapshots a
// crash left behind (.tmp-* and .del-*).
func (s *Store) CleanSnapshotLeftovers() error {
	ents, err := os.ReadDir(s.SnapshotsDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		_, derr := os.Stat(filepath.Join(s.SnapshotsDir(), e.Name(), snapDeletedFile))
		if strings.HasPrefix(e.Name(), ".tmp-") || strings.HasPrefix(e.Name(), ".del-") || derr == nil {
			if err := os.RemoveAll(filepath.Join(s.SnapshotsDir(), e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// CreateSnapshot checkpoints the namespace as snapshot name. The caller
// commits pending writes first if they should be included.
func (s *Store) CreateSnapshot(name string) (SnapshotInfo, error) {
	if err := CheckSnapshotName(name); err != nil {
		return SnapshotInfo{}, err
	}
	start := time.Now()
	base := s.SnapshotsDir()
	if err := os.MkdirAll(base, 0o700); err != nil {
		return SnapshotInfo{}, err
	}
	// The memtable goes to an sstable first, so the checkpoint links it
	// instead of copying a WAL.
	if err := s.db.Flush(); err != nil {
		return SnapshotInfo{}, err
	}
	s.snaps.gate.Lock()
	defer s.snaps.gate.Unlock()
	names, err := s.loadNamesLocked()
	if err != nil {
		return SnapshotInfo{}, err
	}
	final := filepath.Join(base, name)
	if _, err := os.Stat(final); err == nil || names[name] {
		return SnapshotInfo{}, fmt.Errorf("snapshot %q: %w", name, syscall.EEXIST)
	}
	tmp := filepath.Join(base, ".tmp-"+name)
	if err := os.RemoveAll(tmp); err != nil {
		return SnapshotInfo{}, err
	}
	s.mu.Lock() // no batch lands during the checkpoint
	err = s.db.Checkpoint(tmp, pebble.WithFlushedWAL())
	s.mu.Unlock()
	if err != nil {
		os.RemoveAll(tmp)
		return SnapshotInfo{}, fmt.Errorf("snapshot %q: %w", name, err)
	}
	if err := trimCopiedWALs(tmp); err != nil {
		os.RemoveAll(tmp)
		return SnapshotInfo{}, fmt.Errorf("snapshot %q: %w", name, err)
	}
	info := SnapshotInfo{Name: name, Created: start.UTC()}
	if info.AddedBytes, err = unsharedBytes(tmp); err != nil {
		os.RemoveAll(tmp)
		return info, err
	}
	info.TookNs = int64(time.Since(start))
	if err := writeSynced(filepath.Join(tmp, snapInfoFile), info); err != nil {
		os.RemoveAll(tmp)
		return info, err
	}
	if err := syncDir(tmp); err != nil {
		os.RemoveAll(tmp)
		return info, err
	}
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(tmp)
		return info, err
	}
	if err := syncDir(base); err != nil {
		return info, err
	}
	s.snaps.mu.Lock()
	s.snaps.names[name] = true
	s.snaps.mu.Unlock()
	return info, nil
}

func writeSynced(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// unsharedBytes sums the files in dir that are not hard links.
func unsharedBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			return err
		}
		if st.Nlink == 1 {
			n += st.Size
		}
		return nil
	})
	return n, err
}

// ListSnapshots returns every snapshot, oldest first.
func (s *Store) ListSnapshots() ([]SnapshotInfo, error) {
	s.snaps.gate.RLock()
	names, err := s.loadNamesLocked()
	var list []string
	s.snaps.mu.Lock()
	for n := range names {
		list = append(list, n)
	}
	s.snaps.mu.Unlock()
	s.snaps.gate.RUnlock()
	if err != nil {
		return nil, err
	}
	out := make([]SnapshotInfo, 0, len(list))
	for _, n := range list {
		info := SnapshotInfo{Name: n}
		dir := filepath.Join(s.SnapshotsDir(), n)
		if b, err := os.ReadFile(filepath.Join(dir, snapInfoFile)); err == nil && len(b) < 1<<16 {
			json.Unmarshal(b, &info)
			info.Name = n
		}
		if own, err := unsharedBytes(dir); err == nil {
			info.OwnBytes = own
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// HasSnapshot reports whether snapshot name exists.
func (s *Store) HasSnapshot(name string) (bool, error) {
	s.snaps.gate.RLock()
	defer s.snaps.gate.RUnlock()
	names, err := s.loadNamesLocked()
	if err != nil {
		return false, err
	}
	s.snaps.mu.Lock()
	defer s.snaps.mu.Unlock()
	return names[name], nil
}

// DeleteSnapshot removes snapshot name. Readers holding it keep reading
// until they release it.
func (s *Store) DeleteSnapshot(name string) error {
	if err := CheckSnapshotName(name); err != nil {
		return err
	}
	s.snaps.gate.Lock()
	defer s.snaps.gate.Unlock()
	names, err := s.loadNamesLocked()
	if err != nil {
		return err
	}
	base := s.SnapshotsDir()
	final := filepath.Join(base, name)
	if _, err := os.Stat(final); err != nil || !names[name] {
		return fmt.Errorf("snapshot %q: %w", name, syscall.ENOENT)
	}
	// The marker makes the deletion durable at once; the directory goes
	// when no reader holds the snapshot (pebble opens tables lazily).
	if err := writeSynced(filepath.Join(final, snapDeletedFile), struct{}{}); err != nil {
		return err
	}
	s.snaps.mu.Lock()
	defer s.snaps.mu.Unlock()
	delete(s.snaps.names, name)
	h := s.snaps.open[name]
	if h == nil {
		return removeSnapshotDir(final)
	}
	delete(s.snaps.open, name)
	h.dead = true
	if h.refs == 0 {
		h.st.closeSnapshot()
		return removeSnapshotDir(final)
	}
	return nil
}

// snapDeletedFile marks a deleted snapshot whose directory is still held.
const snapDeletedFile = "TASKERFS-DELETED"

func removeSnapshotDir(dir string) error {
	del := filepath.Join(filepath.Dir(dir), ".del-"+filepath.Base(dir))
	os.RemoveAll(del)
	if err := os.Rename(dir, del); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return err
	}
	return os.RemoveAll(del)
}

// AcquireSnapshot opens snapshot name read-only (or shares the open
// handle); call release when done.
func (s *Store) AcquireSnapshot(name string) (st *Store, release func(), err error) {
	if CheckSnapshotName(name) != nil {
		return nil, nil, syscall.ENOENT
	}
	s.snaps.gate.RLock()
	defer s.snaps.gate.RUnlock()
	return s.acquireLocked(name)
}

// acquireLocked is AcquireSnapshot with gate held (shared or not).
func (s *Store) acquireLocked(name string) (*Store, func(), error) {
	names, err := s.loadNamesLocked()
	if err != nil {
		return nil, nil, err
	}
	s.snaps.mu.Lock()
	defer s.snaps.mu.Unlock()
	if !names[name] {
		return nil, nil, syscall.ENOENT
	}
	h := s.snaps.open[name]
	if h == nil {
		st, err := s.openSnapshot(filepath.Join(s.SnapshotsDir(), name))
		if err != nil {
			return nil, nil, fmt.Errorf("snapshot %q: %w", name, err)
		}
		h = &snapHandle{st: st}
		if s.snaps.open == nil {
			s.snaps.open = map[string]*snapHandle{}
		}
		s.snaps.open[name] = h
	}
	h.refs++
	var once sync.Once
	return h.st, func() {
		once.Do(func() {
			s.snaps.mu.Lock()
			defer s.snaps.mu.Unlock()
			h.refs--
			if h.dead && h.refs == 0 {
				h.st.closeSnapshot()
				if _, err := os.Stat(filepath.Join(h.st.dir, snapDeletedFile)); err == nil {
					removeSnapshotDir(h.st.dir)
				}
			}
		})
	}, nil
}

// openSnapshot opens a checkpoint read-only, sharing the blob store and
// the decoded-blob cache.
func (s *Store) openSnapshot(dir string) (*Store, error) {
	pc := pebble.NewCache(4 << 20)
	defer pc.Unref()
	db, err := pebble.Open(dir, &pebble.Options{Cache: pc, ReadOnly: true, Logger: quietLogger{onFatal: s.onFatal}})
	if err != nil {
		return nil, err
	}
	st := &Store{db: db, onFatal: s.onFatal, blobs: s.blobs, pinned: map[blobstore.Hash]int{}, blobCache: s.blobCache,
		isOpen: func(uint64) bool { return false }, dir: dir}
	st.attrs = newAttrCache(16 << 10)
	return st, nil
}

func (s *Store) closeSnapshot() {
	s.db.Close()
}

// CloseSnapshots closes every open snapshot handle (at shutdown).
func (s *Store) CloseSnapshots() {
	s.snaps.mu.Lock()
	defer s.snaps.mu.Unlock()
	for n, h := range s.snaps.open {
		h.dead = true
		if h.refs == 0 {
			h.st.closeSnapshot()
		}
		delete(s.snaps.open, n)
	}
}

// heldBySnapshotLocked reports whether any snapshot references blob h;
// called with gate held.
func (s *Store) heldBySnapshotLocked(h blobstore.Hash) (bool, error) {
	names, err := s.loadNamesLocked()
	if err != nil {
		return false, err
	}
	s.snaps.mu.Lock()
	list := make([]string, 0, len(names))
	for n := range names {
		list = append(list, n)
	}
	s.snaps.mu.Unlock()
	for _, n := range list {
		st, release, err := s.acquireLocked(n)
		if err != nil {
			return false, err
		}
		_, ok, err := get(st.db, refKey(h))
		release()
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// HeldBySnapshot reports whether any snapshot references blob h.
func (s *Store) HeldBySnapshot(h blobstore.Hash) (bool, error) {
	s.snaps.gate.RLock()
	defer s.snaps.gate.RUnlock()
	return s.heldBySnapshotLocked(h)
}

// SnapshotProblem is a broken invariant inside a snapshot, or a blob it
// references that the blob store lost.
type SnapshotProblem struct {
	Snapshot string
	Problem
}

func (p SnapshotProblem) String() string { return "snapshot " + p.Snapshot + ": " + p.Problem.String() }

// CheckSnapshots runs Check on every snapshot and verifies that every
// blob file a snapshot references exists.
func (s *Store) CheckSnapshots(report func(SnapshotProblem)) (checked int, err error) {
	list, err := s.ListSnapshots()
	if err != nil {
		return 0, err
	}
	for _, info := range list {
		st, release, err := s.AcquireSnapshot(info.Name)
		if errors.Is(err, syscall.ENOENT) {
			continue // deleted meanwhile
		}
		if err != nil {
			report(SnapshotProblem{info.Name, Problem{Kind: ProblemRecord, Msg: err.Error()}})
			continue
		}
		checked++
		err = st.Check(func(p Problem) { report(SnapshotProblem{info.Name, p}) })
		if err == nil {
			err = scanRefs(st.db, func(h blobstore.Hash, rec blobRecord) error {
				if rec.Inline {
					return nil
				}
				ok, err := s.blobs.Has(h)
				if err == nil && !ok {
					report(SnapshotProblem{info.Name, Problem{Kind: ProblemRefcount, Hash: h,
						Msg: fmt.Sprintf("blob %s is referenced but missing from the blob store", h)}})
				}
				return err
			})
		}
		release()
		if err != nil {
			return checked, err
		}
	}
	return checked, nil
}

// trimCopiedWALs cuts each WAL a checkpoint copied after its last record.
// pebble reuses old WAL files, which keep their length, so a copy of the
// current WAL carries up to a memtable's worth of stale bytes after the
// live records; replay stops where the live records end, so the rest is
// dead weight (17 MB at 100k sessions).
func trimCopiedWALs(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		numStr, ok := strings.CutSuffix(e.Name(), ".log")
		if !ok {
			continue
		}
		num, err := strconv.ParseUint(numStr, 10, 64)
		if err != nil {
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, e.Name()), os.O_RDWR, 0)
		if err != nil {
			return err
		}
		r := record.NewReader(f, pebble.FileNum(num))
		var end int64
		for {
			rec, err := r.Next()
			if err != nil {
				break
			}
			if _, err := io.Copy(io.Discard, rec); err != nil {
				break
			}
			end = r.Offset()
		}
		err = f.Truncate(end)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}
