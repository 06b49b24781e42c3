package vfs

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/index"
	"github.com/taskerfs/taskerfs/internal/ordered"
	"github.com/taskerfs/taskerfs/meta"
)

// Fsck checks an unmounted data dir: the namespace invariants and
// refcounts (meta.Check), every referenced blob's content against its
// hash, blob files that nothing references, and the search index against
// the files. Run it on a freshly opened FS that nothing else uses.

// FsckProgress is how far a check is.
type FsckProgress struct {
	Stage string // "blobs"
	Done  int
}

// FsckOptions tune Fsck.
type FsckOptions struct {
	// Repair fixes what can be fixed: refcounts and reverse entries are
	// recomputed from the manifests, unreferenced blob files deleted and
	// the index rebuilt. Damaged or missing blob content cannot be
	// repaired; the files that use it are listed.
	Repair bool
	// Progress, if set, is called (never concurrently) as blobs are verified.
	Progress func(FsckProgress)
	// From lists dirs (or files) where Repair looks for good copies of
	// damaged or missing blobs: a backup, an export, the original files.
	From []string
}

// BlobDamage is a referenced blob whose content is missing or wrong.
type BlobDamage struct {
	Hash  string   `json:"hash"`
	Paths []string `json:"paths"` // files that use it
	Err   string   `json:"error"`
}

// FsckReport is what Fsck found and did.
type FsckReport struct {
	Blobs       int          `json:"blobs"`       // referenced blobs checked
	InlineBlobs int          `json:"inlineBlobs"` // of which kept in pebble
	BlobFiles   int          `json:"blobFiles"`   // files in the blob store
	Corrupt     []BlobDamage `json:"corrupt"`     // content does not hash to its name
	Missing     []BlobDamage `json:"missing"`     // referenced, not in the store
	Namespace   []string     `json:"namespace"`   // broken namespace or refcount invariants
	Index       []string     `json:"index"`       // index problems
	Healed      []BlobDamage `json:"healed"`      // damaged blobs Repair restored from a good copy
	// Reclaimable lists blob files nothing references: old versions after
	// overwrites await gc, which is normal and no damage (--repair or gc
	// deletes them).
	Reclaimable      []string `json:"reclaimable"`
	ReclaimableBytes int64    `json:"reclaimableBytes"`
	Repaired         []string `json:"repaired"` // what Repair did
	// Unrepaired holds the problems still there after Repair (all of
	// them without it).
	Unrepaired int `json:"unrepaired"`
}

// Damaged reports whether Fsck found any problem.
func (r *FsckReport) Damaged() bool {
	return len(r.Corrupt)+len(r.Missing)+len(r.Healed)+len(r.Namespace)+len(r.Index) > 0
}

// Fsck checks the data dir and, with Repair, fixes what it can.
func (v *FS) Fsck(opts FsckOptions) (FsckReport, error) {
	var r FsckReport
	if err := v.wb.SyncAll(); err != nil {
		return r, err
	}
	// Without Repair nothing writes: the namespace check runs beside the
	// blob and index checks. Repair fixes the namespace first.
	var ns struct {
		left int // problems left after any repair
		err  error
	}
	nsDone := make(chan struct{})
	checkNS := func() {
		ns.left, ns.err = v.fsckNamespace(&r, opts.Repair)
		close(nsDone)
	}
	if opts.Repair {
		checkNS()
	} else {
		go checkNS()
	}
	defer func() { <-nsDone }() // an early return does not leave it running on the FS

	// The index check begins now: what it reads of the index alone (the
	// tables' sums, the records' content sums) goes beside the blob check,
	// and its files wait for the blob check's sums (and any healing).
	sums := &blobSums{}
	var blobsErr error // set before blobsDone closes
	blobsDone := make(chan struct{})
	type indexResult struct {
		problems []string
		err      error
	}
	indexDone := make(chan indexResult, 1)
	go func() {
		problems, err := v.index.CheckFiles(func(fn func(index.SourceFile) error) error {
			<-blobsDone
			if blobsErr != nil {
				return blobsErr
			}
			return v.fsckSource(sums)(fn)
		})
		indexDone <- indexResult{problems, err}
	}()
	blobsErr = v.checkBlobs(&r, sums, opts.Progress)
	if blobsErr == nil && opts.Repair && len(opts.From) > 0 {
		blobsErr = v.heal(&r, opts.From)
	}
	close(blobsDone)
	err := blobsErr
	if err == nil {
		// Beside the index check: it reads only referenced blobs.
		err = v.checkOrphanBlobs(&r, opts.Repair)
	}
	ix := <-indexDone
	if err != nil {
		return r, err
	}
	unrepaired := len(r.Corrupt) + len(r.Missing)
	if ix.err != nil {
		return r, fmt.Errorf("index check: %w", ix.err)
	}
	r.Index = ix.problems
	<-nsDone
	if ns.err != nil {
		return r, ns.err
	}
	r.Unrepaired += ns.left + unrepaired
	switch {
	case opts.Repair && len(r.Index) > 0:
		if err := v.index.Rebuild(v.IndexSource()); err != nil {
			return r, fmt.Errorf("index rebuild: %w", err)
		}
		r.Repaired = append(r.Repaired, "index rebuilt")
		left, err := v.index.Check(v.IndexSource())
		if err != nil {
			return r, err
		}
		r.Unrepaired += len(left)
	default:
		r.Unrepaired += len(r.Index)
	}
	return r, nil
}

// fsckNamespace checks the namespace into r.Namespace and, with repair,
// fixes refcounts and counters (r.Repaired), returning how many problems
// are left. Without repair it touches nothing of r but r.Namespace, so
// that it can run beside the other checks.
func (v *FS) fsckNamespace(r *FsckReport, repair bool) (int, error) {
	problems, err := v.checkNamespace()
	r.Namespace = problems
	if err != nil || !repair || len(problems) == 0 {
		return len(problems), err
	}
	fixed, err := v.meta.RepairRefcounts()
	if err != nil {
		return 0, fmt.Errorf("repair refcounts: %w", err)
	}
	r.Repaired = append(r.Repaired, fmt.Sprintf("refcounts: %d rewritten, %d dropped, %d recreated, %d reverse entries fixed",
		fixed.Refcounts, fixed.Dropped, fixed.Created, fixed.UsersFixed))
	// The stats counters last: recounted after the refcounts changed.
	if slices.ContainsFunc(problems, func(p string) bool {
		return strings.HasPrefix(p, string(meta.ProblemCounters)+":")
	}) {
		c, err := v.meta.RepairCounters()
		if err != nil {
			return 0, fmt.Errorf("repair counters: %w", err)
		}
		r.Repaired = append(r.Repaired, fmt.Sprintf("stats counters recounted: %d files, %d dirs, %d blobs",
			c.Files, c.Dirs, c.Blobs))
	}
	left, err := v.checkNamespace()
	return len(left), err
}

func (v *FS) checkNamespace() ([]string, error) {
	var out []string
	err := v.meta.Check(func(p meta.Problem) { out = append(out, p.String()) })
	if err == nil { // snapshots: their own invariants and the blobs they hold
		_, err = v.meta.CheckSnapshots(func(p meta.SnapshotProblem) { out = append(out, p.String()) })
	}
	return out, err
}

// checkBlobs reads every referenced blob and verifies it against its hash.
// File blobs are read from the store directly, past the cache.
func (v *FS) checkBlobs(r *FsckReport, sums *blobSums, progress func(FsckProgress)) error {
	type item struct {
		h       blobstore.Hash
		info    meta.BlobInfo
		payload []byte   // an inline blob's stored bytes
		sum     *blobSum // where its content sum goes
	}
	var (
		mu       sync.Mutex // guards r and firstErr
		firstErr error
		done     int
		items    = make(chan item, 64)
		wg       sync.WaitGroup
	)
	// Reads and hashing overlap: twice as many workers as CPUs.
	for range 2 * max(runtime.GOMAXPROCS(0), 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range items {
				d, kind, err := v.checkBlob(it.h, it.info, it.payload, it.sum)
				mu.Lock()
				switch {
				case err != nil:
					if firstErr == nil {
						firstErr = err
					}
				case kind == blobMissing:
					r.Missing = append(r.Missing, d)
				case kind == blobCorrupt:
					r.Corrupt = append(r.Corrupt, d)
				}
				done++
				if progress != nil {
					progress(FsckProgress{Stage: "blobs", Done: done})
				}
				mu.Unlock()
			}
		}()
	}
	err := v.meta.RefBlobsWithPayload(func(h blobstore.Hash, info meta.BlobInfo, payload []byte) error {
		r.Blobs++
		if info.Inline {
			r.InlineBlobs++
		}
		mu.Lock()
		stop := firstErr
		mu.Unlock()
		if stop != nil {
			return stop
		}
		items <- item{h, info, payload, sums.add(h)}
		return nil
	})
	close(items)
	wg.Wait()
	sums.sort() // the blobs came in the payload tables' order, not by hash
	if err == nil {
		err = firstErr
	}
	byHash := func(a, b BlobDamage) int { return strings.Compare(a.Hash, b.Hash) }
	slices.SortFunc(r.Missing, byHash)
	slices.SortFunc(r.Corrupt, byHash)
	return err
}

const (
	blobOK = iota
	blobMissing
	blobCorrupt
)

// checkBlob reads and verifies one referenced blob (payload: an inline
// blob's stored bytes, read with its record) and sets sum's content sum
// when it is whole.
func (v *FS) checkBlob(h blobstore.Hash, info meta.BlobInfo, payload []byte, sum *blobSum) (BlobDamage, int, error) {
	var (
		err  error
		data []byte
	)
	if info.Inline {
		data, err = meta.DecodeInline(h, info, payload)
	} else {
		data, err = v.blobs.Get(h)
		switch {
		case err != nil:
		case len(data) != int(info.Size):
			err = fmt.Errorf("%w: %d bytes, recorded %d", blobstore.ErrCorrupt, len(data), info.Size)
		case blobstore.Sum(data) != h:
			// A read checks a blob file's CRC; fsck hashes it whole
			// again, as the blob's name promises.
			err = fmt.Errorf("%w: content hashes to %v", blobstore.ErrCorrupt, blobstore.Sum(data))
		}
	}
	if err == nil {
		sum.sum = index.ContentSum(data)
		return BlobDamage{}, blobOK, nil
	}
	d := BlobDamage{Hash: h.String(), Err: err.Error()}
	_, uses, _, uerr := v.meta.BlobUses(h)
	if uerr != nil {
		return d, blobOK, uerr
	}
	for _, u := range uses {
		p := u.Path
		if p == "" {
			p = fmt.Sprintf("(inode %d, unlinked)", u.Ino)
		}
		d.Paths = append(d.Paths, p)
	}
	switch {
	case errors.Is(err, blobstore.ErrNotFound):
		return d, blobMissing, nil
	case errors.Is(err, blobstore.ErrCorrupt):
		return d, blobCorrupt, nil
	}
	return d, blobOK, fmt.Errorf("blob %s: %w", h, err)
}

func (v *FS) checkOrphanBlobs(r *FsckReport, repair bool) error {
	var orphans []blobstore.Hash
	err := v.blobs.List("", func(h blobstore.Hash) error {
		r.BlobFiles++
		if _, ok, err := v.meta.BlobInfo(h); err != nil || ok {
			return err
		}
		if held, err := v.meta.HeldBySnapshot(h); err != nil || held {
			return err
		}
		orphans = append(orphans, h)
		r.Reclaimable = append(r.Reclaimable, h.String())
		if info, err := v.blobs.Stat(h); err == nil {
			r.ReclaimableBytes += info.Stored
		}
		return nil
	})
	if err != nil || len(orphans) == 0 || !repair {
		return err
	}
	var freed int64
	for _, h := range orphans {
		if info, err := v.blobs.Stat(h); err == nil {
			freed += info.Stored
		}
		if err := v.blobs.Delete(h); err != nil && !errors.Is(err, blobstore.ErrNotFound) && !errors.Is(err, blobstore.ErrInGrace) {
			return err
		}
	}
	if err := v.blobs.Sync(); err != nil {
		return err
	}
	r.Repaired = append(r.Repaired, fmt.Sprintf("%d unreferenced blob files deleted (%d bytes)", len(orphans), freed))
	return nil
}

// IndexSource yields every file the index should hold: each regular file
// whose path classifies as a session file, once, with its committed
// content, in inode order (meta.ScanFiles: sequential scans of the inode
// and manifest tables; a tree copied in comes session by session). Files
// whose content cannot be read (damaged blobs, which fsck reports) are
// left out. The contents are read on every CPU, a few files ahead of fn.
func (v *FS) IndexSource() index.FileSource {
	return func(fn func(fileID uint64, sessionID string, kind index.Kind, content []byte) error) error {
		type item struct {
			f       meta.ScannedFile
			sid     string
			kind    index.Kind
			content []byte
			err     error
		}
		readers := max(runtime.GOMAXPROCS(0), 2)
		errStop := errors.New("stopped")
		return ordered.Run(readers, 2*readers, func(emit func(*item) bool) error {
			return v.eachIndexable(func(f *meta.ScannedFile, sid string, kind index.Kind) error {
				if !emit(&item{f: *f, sid: sid, kind: kind}) {
					return errStop
				}
				return nil
			})
		}, func(it *item) { it.content, it.err = v.scannedContent(&it.f) },
			func(it *item) error {
				if it.err != nil {
					return nil // an unreadable file is left out
				}
				return fn(it.f.Ino, it.sid, it.kind, it.content)
			})
	}
}

// eachIndexable calls fn with every file the index should hold (a regular
// file whose path classifies as a session file, of at most
// maxIndexedFile bytes), in inode order, with its session and kind.
func (v *FS) eachIndexable(fn func(f *meta.ScannedFile, sid string, kind index.Kind) error) error {
	return v.meta.ScanFiles(func(f *meta.ScannedFile) error {
		sid, kind, indexable := index.Classify(f.Path)
		if !indexable || f.Size > maxIndexedFile {
			return nil
		}
		return fn(f, sid, kind)
	})
}

// scannedContent reads a scanned file's committed content: a file of one
// chunk from the entry the scan found, without reading its manifest again.
func (v *FS) scannedContent(f *meta.ScannedFile) ([]byte, error) {
	if f.HasFirst && f.Size > 0 && uint64(f.First.Size) == f.Size {
		return v.meta.ChunkBlob(f.First)
	}
	return v.committedContent(f.Attr)
}
