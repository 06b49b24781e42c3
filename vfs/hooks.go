package vfs

import (
	"strings"
	"syscall"

	"github.com/taskerfs/taskerfs/index"
	"github.com/taskerfs/taskerfs/meta"
	"github.com/taskerfs/taskerfs/writeback"
)

// maxIndexedFile bounds what the indexer reads of one file.
const maxIndexedFile = 64 << 20

// hooks keep the index in step with namespace changes, in the same batch.
type hooks struct{ v *FS }

var (
	_ meta.PathLostHook = hooks{}
	_ meta.BatchHooks   = hooks{}
)

// Begin, BeforeCommit and End let the index gather the term postings of a
// whole transaction (a commit window of many files) and write one key per
// term before it commits.
func (h hooks) Begin(tx *meta.Tx)              { h.v.index.BeginBatch(tx.Batch()) }
func (h hooks) BeforeCommit(tx *meta.Tx) error { return h.v.index.FlushBatch(tx.Batch()) }
func (h hooks) End(tx *meta.Tx)                { h.v.index.EndBatch(tx.Batch()) }

// Detached: the file's last name goes. Only a file whose recorded path
// the index takes can have postings (every hook that changes a path or
// loses it keeps that so), so an unlink elsewhere skips the index's read
// of its record: a path walk through the attribute cache instead of a
// pebble point read under the namespace lock, for every file of an
// `rm -rf` outside sessions/. A path that cannot be read asks the index.
func (h hooks) Detached(tx *meta.Tx, ino uint64) error {
	if p, ok, err := tx.PathOf(ino); err == nil && ok {
		if _, _, indexable := index.Classify(p); !indexable {
			return nil
		}
	}
	return h.v.index.RemoveFile(tx.Batch(), ino)
}

// Created indexes a new session file as empty, in the batch that creates
// it: a file closed without a write never commits content, and the index
// must still know it (fsck checks that it does).
func (h hooks) Created(tx *meta.Tx, ino uint64) error {
	p, ok, err := tx.PathOf(ino)
	if err != nil || !ok {
		return err
	}
	sid, kind, indexable := index.Classify(p)
	if !indexable {
		return nil // a new inode: the index does not know it
	}
	return h.v.index.UpdateFile(tx.Batch(), ino, sid, kind, nil)
}

// PathLost: a hard-linked session file lost the name it was indexed
// under; its postings go (the name it keeps has no recorded path).
func (h hooks) PathLost(tx *meta.Tx, ino uint64) error {
	return h.v.index.RemoveFile(tx.Batch(), ino)
}

func (h hooks) Renamed(tx *meta.Tx, ino uint64) error {
	a, err := tx.GetAttr(ino)
	if err != nil {
		return err
	}
	if a.IsRegular() {
		return h.v.reindexCommitted(tx, a)
	}
	if !a.IsDir() {
		return nil
	}
	return tx.WalkFiles(ino, func(f meta.Attr) error { return h.v.reindexCommitted(tx, f) })
}

// reindexCommitted moves a file's postings to its new path: a key rewrite
// from the index's record of the file when there is one (a session renamed,
// a file moved between sessions), else (the file was not indexed, or its
// kind changed) they are derived from its committed content; uncommitted
// changes are indexed when they commit.
func (v *FS) reindexCommitted(tx *meta.Tx, a meta.Attr) error {
	p, ok, err := tx.PathOf(a.Ino)
	if err != nil {
		return err
	}
	sid, kind, indexable := index.Classify(p)
	if !ok || !indexable || a.Size > maxIndexedFile {
		return v.index.RemoveFile(tx.Batch(), a.Ino)
	}
	if moved, err := v.index.MoveFile(tx.Batch(), a.Ino, sid, kind); err != nil || moved {
		return err
	}
	content, err := v.committedContent(a)
	if err != nil {
		return err
	}
	return v.index.UpdateFile(tx.Batch(), a.Ino, sid, kind, content)
}

// snippetContent is file ino's committed content, which the index cuts
// snippets from (index.SetContentSource).
func (v *FS) snippetContent(ino uint64) ([]byte, error) {
	a, err := v.meta.GetAttr(ino)
	if err != nil {
		return nil, err
	}
	if !a.IsRegular() || a.Size > maxIndexedFile {
		return nil, syscall.EINVAL // not a file the index reads
	}
	return v.committedContent(a)
}

func (v *FS) committedContent(a meta.Attr) ([]byte, error) {
	buf := make([]byte, a.Size)
	err := v.meta.ChunksOfSize(a.Ino, a.Size, func(idx uint64, c meta.ChunkRef) error {
		start := idx * meta.ChunkSize
		if start >= a.Size {
			return nil
		}
		d, err := v.meta.ChunkBlob(c)
		if err != nil {
			return err
		}
		copy(buf[start:], d)
		return nil
	})
	return buf, err
}

// prepareCommit extracts what a session file's new content contributes
// to the index before the commit's transaction, with no lock held: the
// transaction only writes keys (onCommit). The path is read as committed
// now; onCommit checks that it still holds. Whatever fails here is left
// to onCommit, which then does the work itself (and fails as it would).
func (v *FS) prepareCommit(ino, size uint64, content func() ([]byte, error)) (any, error) {
	if size > maxIndexedFile {
		return nil, nil // onCommit removes it
	}
	p, ok, err := v.meta.PathOf(ino)
	if err != nil || !ok {
		return nil, nil
	}
	sid, kind, indexable := index.Classify(p)
	if !indexable {
		return nil, nil
	}
	data, err := content()
	if err != nil {
		return nil, nil
	}
	return v.index.Prepare(sid, kind, data), nil
}

// onCommit indexes a session file in the batch that commits its content:
// from what prepareCommit built when the file's path still gives the same
// session and kind, else from the content.
func (v *FS) onCommit(tx *meta.Tx, ino uint64, content func() ([]byte, error), prepared any) error {
	p, ok, err := tx.PathOf(ino)
	if err != nil {
		return err
	}
	sid, kind, indexable := index.Classify(p)
	if !ok || !indexable {
		return v.index.RemoveFile(tx.Batch(), ino)
	}
	a, err := tx.GetAttr(ino)
	if err != nil {
		return err
	}
	if a.Size > maxIndexedFile {
		return v.index.RemoveFile(tx.Batch(), ino)
	}
	if pr, _ := prepared.(*index.Prepared); pr.Matches(sid, kind) {
		return v.index.ApplyPrepared(tx.Batch(), ino, pr)
	}
	data, err := content()
	if err != nil {
		return err
	}
	return v.index.UpdateFile(tx.Batch(), ino, sid, kind, data)
}

// prioritize makes a session's metadata.json critical, as the app saves
// it immediately; other files wait for the window.
func (v *FS) prioritize(ino uint64) writeback.Priority {
	if v.bulk.Load() {
		return writeback.Normal
	}
	a, err := v.meta.PeekAttr(ino)
	if err == nil && a.Name == "metadata.json" {
		if p, ok, _ := v.meta.PathOf(ino); ok && strings.HasPrefix(p, SessionsDir+"/") && strings.Count(p, "/") == 2 {
			return writeback.Critical
		}
	}
	return writeback.Normal
}

// SetBulkIngest, while on, lets a session's metadata.json commit with the
// write-back window like every other file, instead of alone and with a WAL
// sync of its own: for a bulk writer of whole sessions (import into an
// unmounted data dir) that makes its own durable points with SyncAll. A
// close() still promises nothing more than it does without, and fsync()
// still returns once the file is durable.
func (v *FS) SetBulkIngest(on bool) { v.bulk.Store(on) }

// indexable reports whether committing ino would change the index.
func (v *FS) indexable(ino uint64) bool {
	p, ok, err := v.meta.PathOf(ino)
	if err != nil || !ok {
		return false
	}
	_, _, ok = index.Classify(p)
	return ok
}

// Fresh commits every pending change to a session file, so that a search
// or facet listing reflects every file whose close() has returned.
func (v *FS) Fresh() error { return v.wb.CommitNow(v.indexable) }
