package blobstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	pvfs "github.com/cockroachdb/pebble/vfs"
)

// On-disk blob file: a fixed header, then the payload in its codec.
//
//	0  4  magic "TFSB"
//	4  1  format version: 2 (written now) or 1
//	5  1  codec
//	6  1  zstd level of the last recompression (recompress.go), else zero
//	7  1  reserved, zero
//	8  8  version 1: logical size, little endian
//	8  4  version 2: logical size, little endian
//	12 4  version 2: CRC-32C of the blob's hash, header bytes 0-5 and 8-11
//	      and the payload (blobCRC)
//
// A read checks a version 2 file against its CRC instead of hashing the
// decoded bytes with SHA-256 again: the CRC finds the damage a disk does
// (any burst of up to 32 bits, anything else but for one time in 2^32) at
// a tenth of the cost, and since the blob's hash is part of it, a valid
// blob file of another hash renamed or copied over this one fails it too.
// fsck still re-hashes every blob with SHA-256, a dedup hit still compares
// bytes (verified.go), and a version 1 file is verified with SHA-256 on
// every read, as before.
const (
	headerSize    = 16
	formatVersion = 2
	tmpDirName    = "tmp"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// blobCRC is the CRC-32C a version 2 header of blob h carries; hdr is the
// header (its bytes 6, 7 and the CRC itself are left out).
func blobCRC(h Hash, hdr []byte, payload []byte) uint32 {
	c := crc32.Update(0, castagnoli, h[:])
	c = crc32.Update(c, castagnoli, hdr[0:6])
	c = crc32.Update(c, castagnoli, hdr[8:12])
	return crc32.Update(c, castagnoli, payload)
}

var headerMagic = [4]byte{'T', 'F', 'S', 'B'}

// LocalOptions tunes a Local store.
type LocalOptions struct {
	// PutDelay is slept at the start of every Put, to simulate a slow
	// disk in tests of the layers above. Zero in production.
	PutDelay time.Duration
	// FS, when set, holds the store instead of the local disk (dir is then
	// a path in FS). With pebble's vfs.NewStrictMem() a test can drop
	// everything not fsynced, as a power loss does.
	FS pvfs.FS
}

// Local keeps blobs as files dir/<first 2 hex>/<64 hex>.
//
// New blobs are written under dir/tmp and renamed into their shard, so a
// crash never leaves a partial blob under its final name, and Open clears
// leftovers by emptying one directory instead of scanning every shard.
type Local struct {
	dir    string
	opts   LocalOptions
	closed atomic.Bool

	fs      blobFS
	syncMu  sync.Mutex // serialises Sync and Close
	syncErr error      // first sync failure, returned by every later Sync

	verified verifiedSet // blobs seen intact by this process (verified.go)

	// Shard directories made since the store opened, and how many of
	// them a SyncBlobs has made durable with an fsync of the root (a
	// shard's entry there must be durable before any blob in it is).
	shardsMade, shardsSynced atomic.Int64
}

var _ Store = (*Local)(nil)

// OpenLocal opens (creating if needed) a store rooted at dir and removes
// temp files left by a crash.
func OpenLocal(dir string, opts LocalOptions) (*Local, error) {
	var bfs blobFS
	if opts.FS != nil {
		if err := opts.FS.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("blobstore: open %s: %w", dir, err)
		}
		bfs = newVFSFS(opts.FS)
	} else {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("blobstore: open %s: %w", dir, err)
		}
		o, err := newOSFS(dir)
		if err != nil {
			return nil, fmt.Errorf("blobstore: open %s: %w", dir, err)
		}
		bfs = o
	}
	l := &Local{dir: dir, opts: opts, fs: bfs}
	if err := l.init(); err != nil {
		bfs.close()
		return nil, err
	}
	return l, nil
}

// init clears temp files and creates the temp directory, durably. Shard
// directories are made by the first Put into each (newShard) and removed
// by PruneShards when they are empty, so an empty store is two
// directories, not 257.
func (l *Local) init() error {
	tmp := filepath.Join(l.dir, tmpDirName)
	if err := l.fs.removeAll(tmp); err != nil {
		return fmt.Errorf("blobstore: clear temp files: %w", err)
	}
	if err := l.fs.mkdir(tmp); err != nil {
		return fmt.Errorf("blobstore: open %s: %w", l.dir, err)
	}
	for _, d := range []string{l.dir, filepath.Dir(l.dir)} {
		if err := l.fs.fsync(d); err != nil {
			return fmt.Errorf("blobstore: sync %s: %w", d, err)
		}
	}
	return nil
}

// Dir is the store's root directory.
func (l *Local) Dir() string { return l.dir }

func (l *Local) path(h Hash) string {
	s := h.String()
	return filepath.Join(l.dir, s[:2], s)
}

// Put stores data under h. If a readable blob is already there it is kept
// (a file with a damaged header is replaced). Put does not fsync: see Sync.
func (l *Local) Put(h Hash, data []byte) (Info, error) { return l.put(h, data, true, nil) }

// PutHashed is Put for a caller that has just computed h from data itself
// (the write-back path), sparing a second pass of SHA-256; hint is the
// stream data belongs to (see Hint; nil for none).
func (l *Local) PutHashed(h Hash, data []byte, hint *Hint) (Info, error) {
	return l.put(h, data, false, hint)
}

func (l *Local) put(h Hash, data []byte, verify bool, hint *Hint) (Info, error) {
	if l.closed.Load() {
		return Info{}, ErrClosed
	}
	if l.opts.PutDelay > 0 {
		time.Sleep(l.opts.PutDelay)
	}
	if verify && Sum(data) != h {
		return Info{}, fmt.Errorf("blobstore: put %v: data hashes to %v", h, Sum(data))
	}
	if info, ok, err := l.existing(h, data); ok || err != nil {
		return info, err
	}
	codec, payload := EncodeHint(data, hint)
	err := l.writeFile(h, codec, len(data), payload, false)
	if errors.Is(err, fs.ErrExist) {
		// Another Put of h placed its file since the check: keep it if it
		// holds h's bytes, else (a damaged copy) replace it.
		if info, ok, err := l.existing(h, data); ok || err != nil {
			return info, err
		}
		err = l.writeFile(h, codec, len(data), payload, true)
	}
	if err != nil {
		return Info{}, fmt.Errorf("blobstore: put %v: %w", h, err)
	}
	info := Info{Size: int64(len(data)), Stored: int64(headerSize + len(payload)), Codec: codec}
	if s, ok, err := statStamp(l.fs, l.path(h)); err == nil && ok {
		l.markVerified(h, s, info)
	}
	return info, nil
}

// existing reports whether h is already stored with exactly data. A
// damaged copy (bad header, payload that does not decode to data) is not:
// the Put then replaces it, so a correct rewrite heals the blob instead of
// deduplicating onto the damage. A blob this process has seen intact, in a
// file nothing has touched since, is trusted on a stat (verified.go);
// otherwise the copy is read back and compared, which costs less than
// writing it again (a raw payload is compared without decoding).
func (l *Local) existing(h Hash, data []byte) (Info, bool, error) {
	if info, ok := l.stillVerified(h); ok && info.Size == int64(len(data)) {
		return info, true, nil
	}
	buf, st, stamped, err := readStamped(l.fs, l.path(h))
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, false, nil
	}
	if errors.Is(err, ErrCorrupt) {
		return Info{}, false, nil // not a blob file: replace it
	}
	if err != nil {
		return Info{}, false, err
	}
	info, err := parseHeader(buf, int64(len(buf)))
	if err != nil || info.Size != int64(len(data)) {
		return Info{}, false, nil
	}
	payload := buf[headerSize:]
	same := false
	if info.Codec == CodecRaw {
		same = bytes.Equal(payload, data)
	} else {
		got, err := Decode(info.Codec, payload, int(info.Size))
		same = err == nil && bytes.Equal(got, data)
	}
	if same && stamped {
		l.markVerified(h, st, info)
	}
	return info, same, nil
}

// writeFile writes blob h into a temp file and moves it to its path. It
// never replaces a file there unless replace (a damaged copy): two Puts of
// one blob can race (a spill and the commit of the same chunk), and a
// rename of the second over the first, whose bytes a committed manifest
// may already rely on, puts the second file's unsynced bytes under the
// name; a directory fsync for another blob in the same shard can then make
// that name durable before those bytes, and a power loss leaves the
// manifest pointing at an empty file (TestPowerLoss saw this once in 40
// seeds under CI's load).
func (l *Local) writeFile(h Hash, codec Codec, logical int, payload []byte, replace bool) error {
	f, err := l.fs.createTemp(filepath.Join(l.dir, tmpDirName), "put-*")
	if err != nil {
		return err
	}
	hdr := encodeHeader(h, codec, logical, payload)
	_, err = f.Write(hdr[:])
	if err == nil {
		_, err = f.Write(payload)
	}
	if err == nil {
		f.startWriteback()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = l.moveIn(f.Name(), h, replace)
	}
	if err != nil {
		l.fs.remove(f.Name())
	}
	return err
}

// moveIn moves the file from to h's name: over a file there if replace,
// else only if there is none (place). The shard may not exist: never
// made, or emptied and removed by PruneShards, which can also remove it
// again between a mkdir here and the rename (its rmdir then finds it
// empty). Every retry follows a mkdir; a prune that wins every round
// would need to run 8 times within one move.
func (l *Local) moveIn(from string, h Hash, replace bool) error {
	to := l.path(h)
	for try := 0; ; try++ {
		var err error
		if replace {
			err = l.fs.rename(from, to)
		} else {
			err = l.fs.place(from, to)
		}
		if err == nil || !errors.Is(err, fs.ErrNotExist) || try == 8 {
			return err
		}
		if err := l.newShard(filepath.Dir(to)); err != nil {
			return err
		}
	}
}

// newShard makes a shard directory that a rename into it found missing.
func (l *Local) newShard(dir string) error {
	if err := l.fs.mkdir(dir); err != nil {
		return err
	}
	l.shardsMade.Add(1)
	return nil
}

// PruneShards removes the shard directories that hold no blob, and
// returns how many it removed and the disk space they took. gc calls it
// after deleting blobs: a directory keeps the blocks it grew to while it
// held many entries, 4 to 12 KiB on ext4, and 256 of them are most of what
// an emptied store takes. A Put racing with it makes the shard again
// (moveIn); a shard that is not empty stays (rmdir refuses). The removals
// are durable after the next Sync, like Delete's.
func (l *Local) PruneShards() (int, int64, error) {
	if l.closed.Load() {
		return 0, 0, ErrClosed
	}
	n, freed := 0, int64(0)
	for _, shard := range shardNames("") {
		dir := filepath.Join(l.dir, shard)
		size, err := l.fs.allocated(dir)
		if err == nil {
			err = l.fs.rmdir(dir)
		}
		switch {
		case err == nil:
			n++
			freed += size
		case errors.Is(err, fs.ErrNotExist), isNotEmpty(err):
		default:
			return n, freed, fmt.Errorf("blobstore: prune shard %s: %w", shard, err)
		}
	}
	return n, freed, nil
}

// encodeHeader is the header of blob h stored as payload in codec.
func encodeHeader(h Hash, codec Codec, logical int, payload []byte) [headerSize]byte {
	var hdr [headerSize]byte
	copy(hdr[:4], headerMagic[:])
	hdr[5] = byte(codec)
	if uint64(logical) > math.MaxUint32 {
		hdr[4] = 1 // no blob is this large (maxBlobFile), but keep it exact
		binary.LittleEndian.PutUint64(hdr[8:], uint64(logical))
		return hdr
	}
	hdr[4] = formatVersion
	binary.LittleEndian.PutUint32(hdr[8:], uint32(logical))
	binary.LittleEndian.PutUint32(hdr[12:], blobCRC(h, hdr[:], payload))
	return hdr
}

// checkCRC verifies a version 2 blob file (header and payload in buf) of
// blob h; false for a version 1 file, which has no CRC to check.
func checkCRC(h Hash, buf []byte) (checked bool, err error) {
	if len(buf) < headerSize || buf[4] != 2 {
		return false, nil
	}
	if binary.LittleEndian.Uint32(buf[12:]) != blobCRC(h, buf[:headerSize], buf[headerSize:]) {
		return true, fmt.Errorf("%w: CRC mismatch", ErrCorrupt)
	}
	return true, nil
}

// parseHeader checks the header of a blob file of fileSize bytes.
func parseHeader(hdr []byte, fileSize int64) (Info, error) {
	if len(hdr) < headerSize || !bytes.Equal(hdr[:4], headerMagic[:]) {
		return Info{}, fmt.Errorf("%w: bad blob header", ErrCorrupt)
	}
	var logical uint64
	switch hdr[4] {
	case 1:
		logical = binary.LittleEndian.Uint64(hdr[8:])
	case 2:
		logical = uint64(binary.LittleEndian.Uint32(hdr[8:]))
	default:
		return Info{}, fmt.Errorf("%w: blob format version %d", ErrCorrupt, hdr[4])
	}
	info := Info{Stored: fileSize, Codec: Codec(hdr[5])}
	if logical > 1<<62 {
		return Info{}, fmt.Errorf("%w: logical size %d", ErrCorrupt, logical)
	}
	info.Size = int64(logical)
	switch info.Codec {
	case CodecRaw:
		if info.Size != fileSize-headerSize {
			return Info{}, fmt.Errorf("%w: raw blob of %d bytes in a %d-byte file", ErrCorrupt, info.Size, fileSize)
		}
	case CodecZstd:
	default:
		return Info{}, fmt.Errorf("%w: unknown codec %v", ErrCorrupt, info.Codec)
	}
	return info, nil
}

// Get reads, decodes and verifies a blob.
func (l *Local) Get(h Hash) ([]byte, error) {
	data, _, err := l.get(h, false)
	return data, err
}

// GetLent is Get into a lent buffer (see Lender).
func (l *Local) GetLent(h Hash) ([]byte, *Lent, error) { return l.get(h, true) }

func (l *Local) get(h Hash, lend bool) (data []byte, lent *Lent, err error) {
	if l.closed.Load() {
		return nil, nil, ErrClosed
	}
	buf, lent, st, stamped, err := readStampedLent(l.fs, l.path(h), lend)
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			l.verified.del(h)
			return nil, nil, fmt.Errorf("blobstore: get %v: %w", h, err)
		}
		return nil, nil, notFound(h, err)
	}
	fail := func(err error) ([]byte, *Lent, error) {
		lent.Return()
		l.verified.del(h)
		return nil, nil, fmt.Errorf("blobstore: get %v: %w", h, err)
	}
	info, err := parseHeader(buf, int64(len(buf)))
	if err != nil {
		return fail(err)
	}
	crcChecked, err := checkCRC(h, buf)
	if err != nil {
		return fail(err)
	}
	if info.Codec == CodecZstd && lend {
		// Decode into a lent buffer of its own and give the read one (if
		// lent) back.
		out, dec, derr := decodeZstdLent(buf[headerSize:], int(info.Size))
		lent.Return()
		data, lent, err = out, dec, derr
	} else {
		data, err = Decode(info.Codec, buf[headerSize:], int(info.Size))
	}
	if err != nil {
		return fail(err)
	}
	if !crcChecked && Sum(data) != h {
		return fail(ErrCorrupt)
	}
	if stamped {
		l.markVerified(h, st, info)
	}
	return data, lent, nil
}

// Has reports whether a file exists for h; it does not read it.
func (l *Local) Has(h Hash) (bool, error) {
	if l.closed.Load() {
		return false, ErrClosed
	}
	return l.fs.exists(l.path(h))
}

// Stat reads only the header.
func (l *Local) Stat(h Hash) (Info, error) {
	if l.closed.Load() {
		return Info{}, ErrClosed
	}
	var hdr [headerSize]byte
	n, size, err := l.fs.readHeader(l.path(h), hdr[:])
	if err != nil {
		return Info{}, fmt.Errorf("blobstore: stat %v: %w", h, notFound(h, err))
	}
	info, err := parseHeader(hdr[:n], size)
	if err != nil {
		return Info{}, fmt.Errorf("blobstore: stat %v: %w", h, err)
	}
	return info, nil
}

// Allocated is the disk space (st_blocks) of the blob's file: what
// deleting it gives back.
func (l *Local) Allocated(h Hash) (int64, error) {
	if l.closed.Load() {
		return 0, ErrClosed
	}
	n, err := l.fs.allocated(l.path(h))
	if err != nil {
		return 0, notFound(h, err)
	}
	return n, nil
}

// Delete removes the blob's file. It is durable after the next Sync.
func (l *Local) Delete(h Hash) error {
	if l.closed.Load() {
		return ErrClosed
	}
	l.verified.del(h)
	return notFound(h, l.fs.remove(l.path(h)))
}

func notFound(h Hash, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %v", ErrNotFound, h)
	}
	return err
}

// List walks the shards that can hold prefix in order, reading one shard
// directory at a time, so memory is bounded by the largest shard (1/256 of
// the store), not by the store.
func (l *Local) List(prefix string, fn func(Hash) error) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if len(prefix) > 64 || !isLowerHex(prefix) {
		return fmt.Errorf("blobstore: list prefix %q: want up to 64 lowercase hex digits", prefix)
	}
	for _, shard := range shardNames(prefix) {
		names, err := l.fs.list(filepath.Join(l.dir, shard))
		if err != nil {
			return fmt.Errorf("blobstore: list %s: %w", shard, err)
		}
		for _, name := range names {
			if len(name) != 64 || !isLowerHex(name) || len(prefix) > 2 && name[:len(prefix)] != prefix {
				continue
			}
			h, err := ParseHash(name)
			if err != nil {
				return err
			}
			if err := fn(h); err != nil {
				return err
			}
		}
	}
	return nil
}

// shardNames lists, in order, the two-hex-digit shards whose hashes can
// start with prefix.
func shardNames(prefix string) []string {
	if len(prefix) >= 2 {
		return []string{prefix[:2]}
	}
	const hex = "0123456789abcdef"
	var names []string
	for _, a := range hex {
		if len(prefix) == 1 && byte(a) != prefix[0] {
			continue
		}
		for _, b := range hex {
			names = append(names, string(a)+string(b))
		}
	}
	return names
}

func isLowerHex(s string) bool {
	for i := range len(s) {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Sync makes every Put and Delete that returned before it durable with one
// syncfs(2) on the store's filesystem (over LocalOptions.FS: an fsync of
// every file and directory changed since the last Sync).
//
// Puts never fsync: write-back commits a window of many files at once and
// then needs them all durable before the pebble batch that references them.
// Per-blob durability would cost an fsync of each file plus its shard
// directory (two journal flushes per blob); syncfs flushes all dirty data
// and metadata, renames included, with one flush per window. It also writes
// back unrelated dirty data on the same filesystem, which durability
// requires anyway for the staging files of the same commit.
//
// syncfs reports a write-back error (EIO, ENOSPC) once per descriptor that
// existed when it happened, so Sync uses the descriptor opened by OpenLocal
// (it sees every error since then) and, because an error may belong to Puts
// of a caller other than the one whose Sync saw it, makes it sticky: after
// one failure every Sync fails, and nothing more is claimed durable.
func (l *Local) Sync() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.closed.Load() {
		return ErrClosed
	}
	if l.syncErr != nil {
		return l.syncErr
	}
	if err := l.fs.syncAll(); err != nil {
		l.syncErr = fmt.Errorf("blobstore: sync %s: %w", l.dir, err)
		return l.syncErr
	}
	return nil
}

// Close marks the store closed; later calls return ErrClosed. It does not
// sync: call Sync first if un-synced Puts must survive.
func (l *Local) Close() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.closed.Swap(true) {
		return ErrClosed
	}
	return l.fs.close()
}
