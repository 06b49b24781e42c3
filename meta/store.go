// Package meta keeps the filesystem namespace in pebble: inodes, directory
// entries, xattrs, symlinks, file manifests (chunk lists) and blob
// refcounts. Every POSIX operation is one atomic pebble batch; refcounts
// change in the same batch as the manifests that gain or drop a reference.
package meta

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
	"github.com/cockroachdb/pebble/vfs"
	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/cache"
)

// RootIno is the inode number of the mount root.
const RootIno = 1

// Hooks let the layer above keep derived data (the search index) in the
// same batch as the namespace change that affects it.
type Hooks interface {
	// Detached is called when ino lost its last name (it may live on as an
	// orphan while open).
	Detached(tx *Tx, ino uint64) error
	// Renamed is called after ino (a file or a directory) moved.
	Renamed(tx *Tx, ino uint64) error
}

// BatchHooks is an optional addition to Hooks, for derived data that
// gathers what a transaction writes and writes it once: Begin is called
// when a transaction starts, BeforeCommit when its function succeeded and
// before the batch commits (it may still write to the batch), and End
// when the transaction is over, committed or not.
type BatchHooks interface {
	Begin(tx *Tx)
	BeforeCommit(tx *Tx) error
	End(tx *Tx)
}

// PathLostHook is an optional addition to Hooks: PathLost is called when a
// file that keeps other links lost the name its path was recorded under
// (PathOf no longer finds it), so derived data keyed by that path can go.
type PathLostHook interface {
	PathLost(tx *Tx, ino uint64) error
}

// ContentGate keeps a namespace change from committing ahead of the
// content it refers to. The write-back layer holds a closed file's content
// in memory until its commit; a rename or link that made such a file
// reachable under a name before that content landed would, after a crash,
// show the name pointing at the file's older (often empty) content.
type ContentGate interface {
	// Queued reports whether ino has a completed version (closed or
	// fsync'd) whose commit has not landed yet. It is called inside a
	// transaction and must not start one.
	Queued(ino uint64) bool
	// Settle commits ino's queued content (its blobs synced first) and
	// returns once that commit has landed. It is called outside any
	// transaction.
	Settle(ino uint64) error
}

// errUnsettled aborts a transaction that found a file with queued content.
var errUnsettled = errors.New("meta: content not settled")

// Store is the namespace. All mutations are serialized; reads go straight
// to pebble.
type Store struct {
	db      *pebble.DB
	onFatal func(error) // Options.OnFatal, for the snapshots' stores too
	fs      vfs.FS      // what pebble's files go through
	spares  *walSpares  // obsolete WALs kept to be written over (walspace.go)

	compactMu       sync.Mutex
	compactedInodes uint64 // freed.inodes at the last compaction after deletes (gc.go)
	blobs           blobstore.Store

	mu      sync.Mutex // serializes mutations
	nextIno uint64
	// nextPayload is the next inline payload's id (payloadKey); 0 until
	// loaded.
	nextPayload uint64
	hooks       Hooks
	isOpen      func(ino uint64) bool
	gate        ContentGate

	pinMu  sync.Mutex
	pinned map[blobstore.Hash]int

	blobCache BlobCache
	version   atomic.Uint64 // bumped after every committed Update
	attrs     *attrCache    // meta/attrcache.go
	xinos     *xattrInodes  // meta/xattrinos.go; nil: not known
	freed     freedCounters // what the background collector looks at (gc.go)

	dir   string       // pebble's directory
	trash TrashOptions // meta/trash.go; guarded by mu
	snaps snapRegistry // meta/snapshot.go

	// syncedIn is a count of WAL bytes (pebble's WAL.BytesIn) all of
	// whose batches a SyncWAL made durable: while the WAL holds no more,
	// SyncWAL has nothing to do (walsync.go).
	syncedIn atomic.Uint64

	cmu      sync.Mutex // guards counters (written under mu too)
	counters Counters   // meta/counters.go: as of the last commit

	// trashIno caches the trash root's inode once a committed state has
	// one (0: not known yet). The root is made once and never removed,
	// so the cache cannot go stale; it spares every namespace change a
	// point read that misses the memtables and walks pebble's levels.
	trashIno atomic.Uint64
}

// BlobCache caches decoded blob bytes by hash (content is immutable, so
// entries never go stale).
type BlobCache interface {
	Get(h blobstore.Hash) ([]byte, bool)
	Set(h blobstore.Hash, data []byte)
}

// Options configure Open.
type Options struct {
	Blobs     blobstore.Store
	BlobCache BlobCache // optional
	// CacheBytes sizes pebble's block cache (0: 64 MiB).
	CacheBytes int64
	// MemTableBytes sizes pebble's memtables (0: 32 MiB). Up to two are
	// held at once (one filling, one being flushed). Both they and the
	// block cache live outside the Go heap: GOMEMLIMIT does not see them.
	MemTableBytes int64
	// AttrCacheEntries bounds the attribute cache (0: 64k entries, about
	// 6 MiB full, plus ristretto's admission counters: ten per entry).
	AttrCacheEntries int64
	// FS, when set, holds pebble's files instead of the local disk (tests
	// of power loss use vfs.NewStrictMem()).
	FS vfs.FS
	// OnFatal, when set, is called when pebble finds the store itself
	// unusable (a table file gone from under it, corruption it cannot read
	// past). It should not return: pebble's state is then undefined, and
	// a panic that something up the stack recovers (go-fuse recovers every
	// handler's) can leave a table half-loaded in its cache, so that every
	// later read of that table waits forever. The daemon stops. Without
	// it, or if it returns, the call panics with a *FatalError.
	OnFatal func(error)
}

// FatalError is what pebble reported when it found the store unusable.
type FatalError struct{ Msg string }

func (e *FatalError) Error() string { return "meta: store unusable: " + e.Msg }

// numLevels is pebble's level count; bottomBlockSize the block size of the
// last level (the others keep pebble's 4 KiB).
const (
	numLevels       = 7
	bottomBlockSize = 32 << 10
)

// LevelOptions are the store's pebble levels (exported for bench/scale,
// which measures the index in a pebble of its own): a bloom filter on
// every level, and big blocks on the last. The last level holds most of
// the data at rest, the search index's file records among it: a record is
// about a kilobyte of front-coded terms that its neighbours largely
// repeat, and snappy finds that only within a block. 32 KiB blocks there
// keep the records in two thirds of the bytes 4 KiB blocks take (issue
// 14); the upper levels, which recent writes pass through, keep small
// blocks.
func LevelOptions() []pebble.LevelOptions {
	levels := make([]pebble.LevelOptions, numLevels)
	for i := range levels {
		levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	levels[numLevels-1].BlockSize = bottomBlockSize
	return levels
}

// maxOpenTables is how many table files pebble keeps open (its table
// cache): half the descriptors the process may open, at least pebble's
// default of 1000 and at most 16384. Every level's tables are cut at 2 MB,
// so a store of 100k sessions has about 1,900 of them: with pebble's
// default, the point reads of a scan (reindex and fsck read every file's
// inline blob by hash) opened a table again, footer, index and filter
// blocks included, for every other read.
func maxOpenTables() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return openTablesFor(0)
	}
	return openTablesFor(r.Cur)
}

// openTablesFor is maxOpenTables for a descriptor limit of nofile.
func openTablesFor(nofile uint64) int { return int(min(max(nofile/2, 1000), 16384)) }

// Open opens (creating if needed) the namespace in dir and frees inodes
// that were unlinked while open when the last daemon stopped.
func Open(dir string, opts Options) (*Store, error) {
	cacheBytes := opts.CacheBytes
	if cacheBytes == 0 {
		cacheBytes = 64 << 20
	}
	memTable := opts.MemTableBytes
	if memTable <= 0 {
		memTable = 32 << 20
	}
	pc := pebble.NewCache(cacheBytes)
	defer pc.Unref()
	var fs vfs.FS = privateFS{vfs.Default}
	if opts.FS != nil {
		fs = opts.FS
	}
	// As many WAL spares as pebble would recycle: one more than the
	// memtables it lets queue before writes stall (walspace.go).
	spares := &walSpares{fs: fs, dir: dir, max: maxWALSpares, size: memTable}
	if err := spares.clearStale(); err != nil {
		return nil, err
	}
	popts := &pebble.Options{
		Cache:                       pc,
		FS:                          spaceFS{FS: fs, spares: spares}, // walspace.go
		Cleaner:                     newSpareCleaner(pebble.DeleteCleaner{}.Clean, spares),
		MemTableSize:                uint64(memTable),
		MemTableStopWritesThreshold: maxWALSpares - 1,
		MaxOpenFiles:                maxOpenTables(),
		Logger:                      quietLogger{onFatal: opts.OnFatal},
	}
	// Most point reads of a write find nothing (the name a create checks,
	// getxattr of an absent name, the refcount of a new blob, the chunk
	// entry or index record of a new file): a bloom filter per table
	// answers those without reading a block of every level, which matters
	// cold.
	popts.Levels = LevelOptions()
	db, err := pebble.Open(dir, popts)
	if err != nil {
		return nil, fmt.Errorf("meta: open %s: %w", dir, err)
	}
	spares.setRotate(func() error { _, err := db.AsyncFlush(); return err })
	// pebble syncs its own dir, not the entry naming it: without this a
	// power loss soon after the first open can drop the whole namespace.
	if err := syncParent(opts.FS, dir); err != nil {
		db.Close()
		return nil, fmt.Errorf("meta: open %s: %w", dir, err)
	}
	s := &Store{db: db, onFatal: opts.OnFatal, fs: fs, spares: spares, blobs: opts.Blobs, pinned: map[blobstore.Hash]int{}, blobCache: opts.BlobCache,
		isOpen: func(uint64) bool { return false }, dir: dir}
	entries := opts.AttrCacheEntries
	if entries <= 0 {
		// More than the kernel is let keep (--max-kernel-inodes): the
		// inodes it holds are the ones it asks attributes of again. At
		// 256k the cache and its counters reached 20 MB of a daemon that
		// had seen 30,000 files, with nothing in any budget for them.
		entries = 64 << 10
	}
	s.attrs = newAttrCache(int(entries))
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	xi := newXattrInodes(maxXattrInodes)
	if err := xi.load(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("meta: open %s: %w", dir, err)
	}
	s.xinos = xi
	return s, nil
}

func syncParent(fs vfs.FS, dir string) error {
	if fs == nil {
		fs = vfs.Default
	}
	d, err := fs.OpenDir(fs.PathDir(dir))
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// quietLogger leaves pebble's information out of the log, keeps its
// errors, and hands a fatal report to Options.OnFatal.
type quietLogger struct{ onFatal func(error) }

func (quietLogger) Infof(string, ...interface{}) {}
func (quietLogger) Errorf(format string, args ...interface{}) {
	slog.Error("pebble: " + fmt.Sprintf(format, args...))
}

// Fatalf is pebble's report that the store cannot go on (a table file
// missing, corruption); pebble assumes it does not return.
func (l quietLogger) Fatalf(format string, args ...interface{}) {
	err := &FatalError{Msg: fmt.Sprintf("pebble: "+format, args...)}
	slog.Error("the metadata store is unusable", "err", err)
	if l.onFatal != nil {
		l.onFatal(err)
	}
	panic(err)
}

func (s *Store) init() error {
	v, closer, err := s.db.Get(keyNextIno)
	switch {
	case err == nil:
		d := decoder{b: v}
		s.nextIno = d.uvarint()
		closer.Close()
		if d.err != nil {
			return fmt.Errorf("meta: next inode record: %w", d.err)
		}
	case errors.Is(err, pebble.ErrNotFound):
		now := time.Now().UnixNano()
		// The root belongs to whoever makes the data dir, so a user's own
		// mount can create entries at its top.
		root := Attr{Ino: RootIno, Mode: syscall.S_IFDIR | 0o755, Nlink: 2, Atime: now, Mtime: now, Ctime: now,
			Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())}
		b := s.db.NewBatch()
		b.Set(inodeKey(RootIno), root.encode(), nil)
		s.nextIno = RootIno + 1
		b.Set(keyNextIno, uvarintBytes(s.nextIno), nil)
		b.Set(keyCounters, attrCount(&root).encode(), nil)
		if err := b.Commit(pebble.Sync); err != nil {
			return err
		}
	default:
		return err
	}
	if err := s.loadNextPayload(); err != nil {
		return err
	}
	if err := s.loadCounters(); err != nil {
		return err
	}
	return s.purgeOrphans()
}

// DB exposes the pebble handle to packages that keep their own keyspace
// in it (the index).
func (s *Store) DB() *pebble.DB { return s.db }

// FS is the file system pebble's files go through (tables to ingest are
// written with it).
func (s *Store) FS() vfs.FS { return s.fs }

// Blobs is the content store behind the manifests.
func (s *Store) Blobs() blobstore.Store { return s.blobs }

// SetHooks installs the hooks; call before serving.
func (s *Store) SetHooks(h Hooks) { s.hooks = h }

// SetOpenCheck tells meta how to know whether an inode is open, so that
// unlinking it keeps it as an orphan until its last close.
func (s *Store) SetOpenCheck(f func(ino uint64) bool) { s.isOpen = f }

// SetContentGate installs the gate that renames and links wait on; call
// before serving.
func (s *Store) SetContentGate(g ContentGate) { s.gate = g }

// maxSettles bounds how often one namespace change settles a file that
// writers keep closing: after one settle the committed content is already
// a completed version, so going ahead then keeps the contract.
const maxSettles = 3

// updateSettled runs fn like Update, but first commits the queued content
// of every file fn makes reachable under a new name (see needContent), so
// that the namespace change lands in the WAL after that content: after a
// crash at any moment a name never refers to content older than what was
// closed before the change. ext4's auto_da_alloc does the same for a
// rename over a file: it starts the writeback of the renamed file's data
// so the data reaches the disk before the rename's journal commit.
func (s *Store) updateSettled(fn func(tx *Tx) error) error {
	for attempt := 0; ; attempt++ {
		var unsettled []uint64
		err := s.Update(false, func(tx *Tx) error {
			tx.gated = s.gate != nil && attempt < maxSettles
			if err := fn(tx); err != nil {
				return err
			}
			if unsettled = tx.unsettled; len(unsettled) > 0 {
				return errUnsettled
			}
			return nil
		})
		if !errors.Is(err, errUnsettled) {
			return err
		}
		for _, ino := range unsettled {
			if err := s.gate.Settle(ino); err != nil {
				return err
			}
		}
	}
}

// Close closes pebble after a final WAL sync and gives the WAL's space
// back: the memtable is flushed (ReleaseWAL), so that what a stopped store
// keeps is its tables and a short WAL, not the WAL that the shutdown's own
// writes may have moved onto a whole spare (walSpares.wake).
func (s *Store) Close() error {
	s.CloseSnapshots()
	s.spares.stop()
	// A record even when nothing is unsynced (SyncWAL would skip): the
	// WAL then holds one, and ReleaseWAL retires it with a flush, also
	// when it is the short spare a quiet store writes into, whose blocks
	// would otherwise stay with the stopped store.
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		s.db.Close()
		return err
	}
	if err := s.ReleaseWAL(); err != nil {
		// Everything is in the synced WAL: the space waits for the next open.
		slog.Warn("closing the store: WAL space not released", "err", err)
	}
	if err := s.db.Close(); err != nil {
		return err
	}
	return s.spares.release()
}

// Tx is one atomic namespace change. Reads through it see its own writes.
type Tx struct {
	s       *Store
	b       *pebble.Batch
	now     int64
	touched []uint64 // inodes written: their cached attrs go at commit

	// attrs holds the inode records this transaction has read or
	// written, as they stand in its batch (absent: no record), so that a
	// record read twice (a GetAttr and then PutAttr's look at the old
	// one) costs one point read through the indexed batch. Every write
	// of an inode record goes through PutAttr or freeInode, which keep it.
	attrs map[uint64]txAttr
	// names is attrs for directory entries: the ones this transaction
	// has read or written, as they stand in its batch. Every write of an
	// entry goes through setName or delName.
	names   map[nameKey]txName
	newDirs []uint64 // directories this change makes (young ones, attrcache.go)

	gated     bool     // needContent consults the content gate
	unsettled []uint64 // files with queued content this change refers to

	delta       Counters  // what this change adds to the store's counters
	setCounters *Counters // RepairCounters: the figures to write as they are
	newTrash    uint64    // the trash root this change makes (cached at commit)
}

// txAttr is an inode record as a transaction sees it.
type txAttr struct {
	a      Attr
	absent bool
}

// memoAttr reads ino's record through the transaction's memo.
func (tx *Tx) memoAttr(ino uint64) (a Attr, found bool, err error) {
	if m, ok := tx.attrs[ino]; ok {
		return m.a, !m.absent, nil
	}
	if a, ok := tx.s.attrs.peek(ino); ok {
		tx.remember(ino, &a)
		return a, true, nil
	}
	v, ok, err := get(tx.b, inodeKey(ino))
	if err != nil {
		return Attr{}, false, err
	}
	if !ok {
		tx.remember(ino, nil)
		return Attr{}, false, nil
	}
	if a, err = decodeAttr(ino, v); err != nil {
		return Attr{}, false, err // not remembered: every read reports it
	}
	tx.remember(ino, &a)
	return a, true, nil
}

// remember records ino's record as it now stands in the batch (nil: none).
func (tx *Tx) remember(ino uint64, a *Attr) {
	if tx.attrs == nil {
		tx.attrs = make(map[uint64]txAttr, 4)
	}
	if a == nil {
		tx.attrs[ino] = txAttr{absent: true}
		return
	}
	tx.attrs[ino] = txAttr{a: *a}
}

// needContent records that this change makes ino reachable under a name,
// so ino's queued content must land first (see updateSettled).
func (tx *Tx) needContent(ino uint64) {
	if tx.gated && tx.s.gate.Queued(ino) {
		tx.unsettled = append(tx.unsettled, ino)
	}
}

// Batch is the underlying indexed batch, for derived keyspaces.
func (tx *Tx) Batch() *pebble.Batch { return tx.b }

// Now is the timestamp every change in this transaction uses.
func (tx *Tx) Now() int64 { return tx.now }

// Store returns the store the transaction belongs to.
func (tx *Tx) Store() *Store { return tx.s }

// Update runs fn as one transaction and commits it, syncing the WAL when
// sync is set. Nothing is written if fn returns an error.
//
// The WAL sync happens after the mutex is released: every other namespace
// change would otherwise wait out the disk's flush behind it. A batch is
// visible to readers once applied, durable once synced; the caller gets
// its answer only after both, and a sync covers every batch before it, so
// the order of changes on disk is the order they were applied.
func (s *Store) Update(sync bool, fn func(tx *Tx) error) error {
	wait, ok, err := s.update(fn, sync)
	if err != nil || !sync || !ok {
		return err
	}
	if wait != nil {
		return wait()
	}
	return s.SyncWAL()
}

// update applies fn as one batch; ok is true when fn succeeded (with
// nothing to write, a sync still covers earlier batches). With sync, the
// batch is written asking for a WAL sync, and wait (nil when there was
// nothing to write) waits for it: the caller waits after the namespace
// mutex is released, and one pass through pebble's commit pipeline both
// writes and syncs (a separate sync record would cost a second pass and
// a second wake-up of pebble's WAL writer).
func (s *Store) update(fn func(tx *Tx) error, sync bool) (wait func() error, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx := &Tx{s: s, b: s.db.NewIndexedBatch(), now: time.Now().UnixNano()}
	closeBatch := true
	bh, _ := s.hooks.(BatchHooks)
	if bh != nil {
		bh.Begin(tx)
	}
	defer func() {
		if bh != nil {
			bh.End(tx)
		}
		if closeBatch {
			tx.b.Close()
		}
	}()
	if err := fn(tx); err != nil {
		return nil, false, err
	}
	if bh != nil {
		if err := bh.BeforeCommit(tx); err != nil {
			return nil, false, err
		}
	}
	counters, recount := s.counters.add(tx.delta), tx.delta != Counters{}
	if tx.setCounters != nil {
		counters, recount = *tx.setCounters, true
	}
	if recount {
		// In the same batch as the change counted: exact after a crash.
		if err := tx.b.Set(keyCounters, counters.encode(), nil); err != nil {
			return nil, false, err
		}
	}
	if tx.b.Empty() {
		s.attrs.keep(tx)
		return nil, true, nil // nothing to apply; the caller's sync still runs
	}
	// A seqlock: the version is odd while a commit lands, so a reader
	// that saw the same even version before and after its reads saw one
	// state; the attribute cache takes what the commit wrote (attrcache.go).
	s.attrs.begin(&s.version)
	if sync {
		// The batch must stay open until its sync is waited for.
		if err = s.db.ApplyNoSyncWait(tx.b, pebble.Sync); err == nil {
			closeBatch = false
			b := tx.b
			wait = func() error {
				err := b.SyncWait()
				b.Close()
				return err
			}
		}
	} else {
		err = tx.b.Commit(pebble.NoSync)
	}
	if err == nil && tx.newTrash != 0 {
		s.trashIno.Store(tx.newTrash)
	}
	if err == nil && recount {
		s.cmu.Lock()
		s.counters = counters
		s.cmu.Unlock()
	}
	s.attrs.end(&s.version, tx, err == nil)
	return wait, err == nil, err
}

// Version changes whenever a transaction commits, and is odd while one is
// landing: reads made between two equal even Versions saw one state, and a
// result derived from the store (a search) is current while Version is
// unchanged.
func (s *Store) Version() uint64 { return s.version.Load() }

func uvarintBytes(v uint64) []byte { return binary.AppendUvarint(nil, v) }

// get copies the value of key out of r; found is false when absent.
func get(r pebble.Reader, key []byte) (val []byte, found bool, err error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	val = append([]byte(nil), v...)
	closer.Close()
	return val, true, nil
}

// AttrCacheStats reports the attribute cache's hits and misses.
func (s *Store) AttrCacheStats() cache.Stats { return s.attrs.stats() }

// loadNextPayload reads the next inline payload id; a store without one
// (made before payloads had ids) starts at 1 (id 0 is inlineKey's).
func (s *Store) loadNextPayload() error {
	v, closer, err := s.db.Get(keyNextPayload)
	if errors.Is(err, pebble.ErrNotFound) {
		s.nextPayload = 1
		return nil
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	d := decoder{b: v}
	s.nextPayload = d.uvarint()
	if d.err != nil || s.nextPayload == 0 {
		return fmt.Errorf("meta: next payload record: %w", errBadRecord)
	}
	return nil
}
