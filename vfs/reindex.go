package vfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	pvfs "github.com/cockroachdb/pebble/vfs"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/index"
	"github.com/taskerfs/taskerfs/internal/ordered"
	"github.com/taskerfs/taskerfs/meta"
)

// Reindex rebuilds the search index from the files. Run it while nothing
// else writes (an unmounted data dir).
func (v *FS) Reindex() error { return v.ReindexWith(nil) }

// ReindexWith is Reindex calling progress (if not nil) after each file:
// with Prepared counting up while the inline files are read (the first
// pass), then with Files while they are indexed.
//
// The index numbers sessions in the order it meets them and wants a
// session's files together, so it takes the files in inode order (a tree
// copied in comes session by session). Their inline blobs are stored in
// hash order, and a point read per file reads a whole 32 KiB table block
// for a value of a few kilobytes: at 100k sessions those reads were a
// quarter of a reindex's CPU. So the rebuild reads in two passes. The
// first scans the inline table in its order and prepares the record of
// every file of one inline chunk (extraction on every CPU), writing the
// prepared records to a spill file beside the store (about a kilobyte per
// file: the record's terms, front-coded). The second walks the files in
// inode order and hands the index each file's prepared record, or, for the
// others (blobs in the blob store, files of several chunks), its content.
func (v *FS) ReindexWith(progress func(index.RebuildProgress)) error {
	if err := v.wb.SyncAll(); err != nil {
		return err
	}
	fs := v.meta.FS()
	path := filepath.Join(v.Dir, spillName)
	sp, err := v.prepareInline(fs, path, progress)
	if sp != nil {
		defer sp.close()
	}
	if err != nil {
		return err
	}
	if err := v.reindexRoom(sp); err != nil {
		return err
	}
	return v.index.RebuildFrom(v.reindexSource(sp), progress)
}

// Reindex's room: the rebuild clears the old index before it writes the
// new one, so on a disk too full to hold what it writes it would fail
// midway and leave the index incomplete until a reindex completes. It
// refuses to start instead, the old index untouched. What it writes
// beside the store, measured at 100k sessions (BENCHMARKS.md): runs of
// postings and a table of records in reindex.tmp up to 1.1 times the
// spill of prepared records (which is written already), and for the
// files the first pass did not prepare about 3 KiB each; the old index's
// bytes are freed first, and its successor's last compaction needs
// about as much again. A margin of 64 MiB covers pebble's own files.
const (
	reindexPerOther = 3 << 10
	reindexMargin   = 64 << 20
)

// reindexNeed is the free disk a reindex needs once its spill is written.
func reindexNeed(spillBytes int64, others int) int64 {
	return spillBytes + spillBytes/4 + int64(others)*reindexPerOther + reindexMargin
}

// errNoRoom is the reindex's refusal on a disk too full for it.
var errNoRoom = errors.New("not enough free disk for a reindex")

func (v *FS) reindexRoom(sp *spill) error {
	avail, _, err := v.space()
	if err != nil {
		return fmt.Errorf("reindex: free space of %s: %w", v.Dir, err)
	}
	if need := reindexNeed(sp.bytes, sp.others); avail < need {
		return fmt.Errorf("reindex: %w: it needs about %d MiB beside the store, %s has %d MiB free; the index is unchanged",
			errNoRoom, need>>20, v.Dir, max(avail, 0)>>20)
	}
	return nil
}

// spillName is the spill's name in the data dir.
const spillName = "reindex.spill"

// spillFile is one file of a single inline chunk, as the first pass of a
// reindex meets it.
type spillFile struct {
	ino     uint64
	hash    blobstore.Hash
	payload uint64 // the inline payload's id (its manifest entry's)
	size    uint32
	kind    index.Kind
	sid     string
	// off and n locate the file's prepared record in the spill (n is 0
	// until it is prepared).
	off int64
	n   uint32
}

// spillAt locates the prepared record of file ino in the spill.
type spillAt struct {
	ino  uint64
	off  int64
	n    uint32
	size uint32 // the file's
}

// spill is what the first pass of a reindex prepared: where the records
// of the files are, in inode order, and the file holding them.
type spill struct {
	at     []spillAt
	bytes  int64 // the prepared records' bytes
	others int   // indexable files the first pass did not prepare
	f      pvfs.File
	fs     pvfs.FS
	path   string
}

func (sp *spill) close() {
	_ = sp.f.Close()
	_ = sp.fs.Remove(sp.path)
}

// prepareInline is the first pass of a reindex: every indexable file of a
// single inline chunk, prepared in the inline table's order into a spill
// file at path (through fs).
func (v *FS) prepareInline(fs pvfs.FS, path string, progress func(index.RebuildProgress)) (*spill, error) {
	sp := &spill{fs: fs, path: path}
	var files []spillFile
	last := ""
	err := v.eachIndexable(func(f *meta.ScannedFile, sid string, kind index.Kind) error {
		if f.HasFirst && f.Size > 0 && uint64(f.First.Size) == f.Size {
			if sid != last {
				last = strings.Clone(sid) // not the file's path (a session's files come together)
			}
			files = append(files, spillFile{ino: f.Ino, hash: f.First.Hash, payload: f.First.Payload, size: f.First.Size, kind: kind, sid: last})
		} else {
			sp.others++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// A spill left by a reindex that did not end is replaced.
	if sp.f, err = fs.Create(path); err != nil {
		return nil, fmt.Errorf("reindex: spill: %w", err)
	}
	if len(files) == 0 {
		return sp, nil
	}
	byHash := make([]int32, len(files))
	for i := range byHash {
		byHash[i] = int32(i)
	}
	// In the order the payloads are stored in (meta.PayloadOrder).
	ref := func(i int32) meta.ChunkRef { return meta.ChunkRef{Hash: files[i].hash, Payload: files[i].payload} }
	slices.SortFunc(byHash, func(a, b int32) int { return meta.PayloadOrder(ref(a), ref(b)) })

	type job struct {
		hash    blobstore.Hash
		payload []byte
		files   []int32 // the files of this blob (indexes into files)
		records [][]byte
	}
	w := bufio.NewWriterSize(sp.f, 1<<20)
	var off int64
	prepared := 0
	workers := max(runtime.GOMAXPROCS(0), 1)
	errStop := errors.New("stopped")
	next := 0 // the next of byHash not yet met
	err = ordered.Run(workers, 4*workers, func(emit func(*job) bool) error {
		return v.meta.InlinePayloads(func(h blobstore.Hash, id uint64, payload []byte) error {
			at := meta.ChunkRef{Hash: h, Payload: id}
			for next < len(byHash) && meta.PayloadOrder(ref(byHash[next]), at) < 0 {
				next++ // not inline (its file is read in the second pass)
			}
			first := next
			for next < len(byHash) && meta.PayloadOrder(ref(byHash[next]), at) == 0 {
				next++
			}
			if first == next {
				return nil // no indexable file of one chunk has it
			}
			if !emit(&job{hash: h, payload: bytes.Clone(payload), files: byHash[first:next]}) {
				return errStop
			}
			return nil
		})
	}, func(j *job) {
		content, err := meta.DecodeInline(j.hash, meta.BlobInfo{Inline: true, Size: files[j.files[0]].size}, j.payload)
		j.payload = nil
		if err != nil {
			return // left to the second pass, which reads it again and leaves it out
		}
		j.records = make([][]byte, len(j.files))
		for k, i := range j.files {
			f := &files[i]
			for l := range k { // the same session and kind: the same record
				if g := &files[j.files[l]]; g.sid == f.sid && g.kind == f.kind {
					j.records[k] = j.records[l]
					break
				}
			}
			if j.records[k] == nil {
				j.records[k] = v.index.Prepare(f.sid, f.kind, content).Append(nil)
			}
		}
	}, func(j *job) error {
		if j.records == nil {
			return nil // not decoded: the second pass reads the files
		}
		for k, i := range j.files {
			rec := j.records[k]
			if _, err := w.Write(rec); err != nil {
				return fmt.Errorf("reindex: spill: %w", err)
			}
			files[i].off, files[i].n = off, uint32(len(rec))
			off += int64(len(rec))
			prepared++
		}
		if progress != nil {
			progress(index.RebuildProgress{Prepared: prepared})
		}
		return nil
	})
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		return sp, err
	}
	sp.bytes = off
	sp.others += len(files) - prepared // not decoded here: read in the second pass
	// What the second pass needs of the prepared files, in a third of
	// the memory (about 18 MB at 100k sessions).
	sp.at = make([]spillAt, 0, prepared)
	for i := range files {
		if f := &files[i]; f.n > 0 {
			sp.at = append(sp.at, spillAt{ino: f.ino, off: f.off, n: f.n, size: f.size})
		}
	}
	return sp, nil
}

// reindexSource is the second pass of a reindex: every indexable file in
// inode order, with its record prepared in sp or its content, read on the
// index's workers. Files whose content cannot be read (damaged blobs,
// which fsck reports) are left out.
func (v *FS) reindexSource(sp *spill) index.RecordSource {
	return func(fn func(f *index.RebuildFile) error) error {
		next := 0 // sp.at is in inode order, as the scan
		return v.eachIndexable(func(f *meta.ScannedFile, sid string, kind index.Kind) error {
			for next < len(sp.at) && sp.at[next].ino < f.Ino {
				next++
			}
			out := &index.RebuildFile{ID: f.Ino, SessionID: sid, Kind: kind, Size: int(f.Size)}
			// (The record holds its session and kind: the index checks them.)
			if next < len(sp.at) && sp.at[next].ino == f.Ino && uint64(sp.at[next].size) == f.Size {
				at := sp.at[next]
				sf := *f
				out.Load = func() ([]byte, []byte, error) {
					b := make([]byte, at.n)
					if _, err := sp.f.ReadAt(b, at.off); err == nil {
						return nil, b, nil
					}
					c, err := v.scannedContent(&sf) // read the file instead
					return c, nil, err
				}
			} else {
				sf := *f
				out.Load = func() ([]byte, []byte, error) {
					c, err := v.scannedContent(&sf)
					return c, nil, err
				}
			}
			return fn(out)
		})
	}
}
