package index

import (
	"fmt"
	"sync/atomic"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
	"github.com/cockroachdb/pebble/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/sstable"
	"github.com/cockroachdb/pebble/vfs"
)

// A rebuild writes the file records and snippet texts, about nine tenths
// of the index's bytes, into tables of its own that pebble then takes in
// whole (DB.Ingest), instead of through the WAL, the memtable, a flush and
// the compactions that rewrite them level by level (at 100k sessions those
// compactions were a fifth of a reindex's CPU). A table's keys must
// ascend: the files come in inode order (vfs.IndexSource), so the records
// of successive files do. A file that does not come after the last one
// written first ingests what the tables hold, so that every record the
// rebuild reads back (a file met again) is in pebble; the order of the
// source only decides how many ingests there are, never what is indexed.

// SetIngest lets rebuilds write their records and texts as tables in dir,
// created through fs (the file system of the index's pebble: Ingest links
// them from there), and ingest them. Without it, a rebuild writes them
// through batches. A rebuild creates dir and removes it when it ends.
func (x *Index) SetIngest(fs vfs.FS, dir string) {
	x.ingestFS, x.ingestDir = fs, dir
}

// ingestSeq names the tables of one process's rebuilds.
var ingestSeq atomic.Uint64

// tables is a rebuild's pair of tables being written: records and texts.
type tables struct {
	db    *pebble.DB
	fs    vfs.FS
	dir   string
	last  uint64 // the last file written; 0: none
	rec   *sstable.Writer
	text  *sstable.Writer
	paths [2]string
	has   [2]bool // keys written to each
	// ingests counts DB.Ingest calls (tests).
	ingests int
}

func newTables(db *pebble.DB, fs vfs.FS, dir string) (*tables, error) {
	if err := fs.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// Tables a crash left behind are never ingested.
	if names, err := fs.List(dir); err == nil {
		for _, n := range names {
			_ = fs.Remove(fs.PathJoin(dir, n))
		}
	}
	return &tables{db: db, fs: fs, dir: dir}, nil
}

// tableOptions are the options of the tables a rebuild writes.
func (t *tables) tableOptions() sstable.WriterOptions {
	return sstable.WriterOptions{
		TableFormat: t.db.FormatMajorVersion().MaxTableFormat(),
		// As the store's own tables in its last level, where these land
		// (meta.LevelOptions): a bloom filter answers point reads of
		// absent keys, and 32 KiB blocks let snappy find what neighbouring
		// records repeat (4 KiB blocks: half as many bytes again).
		FilterPolicy: bloom.FilterPolicy(10),
		FilterType:   pebble.TableFilter,
		BlockSize:    32 << 10,
		// Blocks compressed and written beside the rebuild, not in its
		// one goroutine that applies the files.
		Parallelism: true,
	}
}

// open starts the two tables.
func (t *tables) open() error {
	opts := t.tableOptions()
	for i, w := range []**sstable.Writer{&t.rec, &t.text} {
		t.paths[i] = t.fs.PathJoin(t.dir, fmt.Sprintf("rebuild-%d.sst", ingestSeq.Add(1)))
		f, err := t.fs.Create(t.paths[i])
		if err != nil {
			t.abort()
			return err
		}
		*w = sstable.NewWriter(objstorageprovider.NewFileWritable(f), opts)
		t.has[i] = false
	}
	return nil
}

// takes reports whether file fid's keys can go into the tables: it comes
// after every file written to them.
func (t *tables) takes(fid uint64) bool { return fid > t.last }

// add writes file fid's record and its snippet text: with no text, a
// deletion of any older one when old (the file was met before).
func (t *tables) add(fid uint64, rec, text []byte, old bool) error {
	if t.rec == nil {
		if err := t.open(); err != nil {
			return err
		}
	}
	if err := t.rec.Set(fileKey(fid), rec); err != nil {
		return err
	}
	t.has[0] = true
	switch {
	case text != nil:
		if err := t.text.Set(textKey(fid), text); err != nil {
			return err
		}
		t.has[1] = true
	case old:
		if err := t.text.Delete(textKey(fid)); err != nil {
			return err
		}
		t.has[1] = true
	}
	t.last = fid
	return nil
}

// ingest closes the tables and hands pebble those holding keys.
func (t *tables) ingest() error {
	if t.rec == nil {
		return nil
	}
	var paths []string
	var err error
	for i, w := range []*sstable.Writer{t.rec, t.text} {
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if t.has[i] {
			paths = append(paths, t.paths[i])
		} else {
			_ = t.fs.Remove(t.paths[i])
		}
	}
	t.rec, t.text, t.last, t.paths = nil, nil, 0, [2]string{}
	if err == nil && len(paths) > 0 {
		t.ingests++
		err = t.db.Ingest(paths) // removes them once linked
	}
	if err != nil {
		for _, p := range paths {
			_ = t.fs.Remove(p)
		}
	}
	return err
}

// abort drops the tables being written.
func (t *tables) abort() {
	for i, w := range []*sstable.Writer{t.rec, t.text} {
		if w != nil {
			_ = w.Close()
		}
		if t.paths[i] != "" {
			_ = t.fs.Remove(t.paths[i])
		}
	}
	t.rec, t.text, t.last, t.paths = nil, nil, 0, [2]string{}
}
