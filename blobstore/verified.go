package blobstore

import (
	"fmt"
	"io/fs"
	"sync"

	"golang.org/x/sys/unix"
)

// A dedup hit (a Put of content whose blob is already stored) must not
// deduplicate onto a damaged copy: the new file would then read back as
// EIO after a successful fsync. Reading the stored copy back and comparing
// it on every hit guarantees that, but costs a read of up to a chunk for
// every duplicate chunk ingested. The verified set makes the check cheap
// without giving up what it protects against:
//
//   - A blob enters the set when this daemon has just seen its file intact:
//     it wrote it (Put), or read it and its SHA-256 matched (Get, or the
//     full comparison of a dedup hit). The file's identity and change time
//     are recorded with it.
//   - A later dedup hit on a blob in the set stats the file (one syscall)
//     instead of reading it, and trusts it only if it is still the same
//     file (device, inode, size) and nothing changed it since (ctime).
//     Anything that rewrites or patches a blob file in place, a user's
//     editor, a stray dd, a test flipping a byte, or a replacement by
//     rename, moves its ctime or inode and sends the hit back to the full
//     comparison.
//   - A Get that finds the blob damaged drops it from the set.
//   - The set is per process: a new daemon starts empty, so damage done
//     while no daemon ran (tests/damage_test.go) is found by the first
//     dedup hit or read, as before.
//
// What it no longer catches on a dedup hit is damage that leaves the file's
// metadata alone (media bit rot under a filesystem without data checksums)
// during the daemon's life, after it last verified the blob. Reads still
// verify every blob they load, and fsck (manual or scheduled) re-hashes
// every blob, as it is there to.
//
// Memory is bounded: two generations of at most verifiedGen entries each;
// when the current one fills it becomes the old one and the older is
// dropped, so recently written or read blobs stay in.
const verifiedGen = 1 << 14

// stamp identifies one version of a blob file.
type stamp struct {
	dev, ino uint64
	size     int64
	ctime    int64 // ns
}

// verifiedBlob is what the set knows of one blob: its file's stamp when
// it was seen intact, and its header.
type verifiedBlob struct {
	stamp stamp
	info  Info
}

type verifiedSet struct {
	mu       sync.Mutex
	cur, old map[Hash]verifiedBlob
}

func (v *verifiedSet) get(h Hash) (verifiedBlob, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if s, ok := v.cur[h]; ok {
		return s, true
	}
	s, ok := v.old[h]
	return s, ok
}

func (v *verifiedSet) add(h Hash, b verifiedBlob) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cur == nil {
		v.cur = make(map[Hash]verifiedBlob)
	}
	if _, ok := v.cur[h]; !ok && len(v.cur) >= verifiedGen {
		v.old, v.cur = v.cur, make(map[Hash]verifiedBlob, verifiedGen/4)
	}
	v.cur[h] = b
}

func (v *verifiedSet) del(h Hash) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.cur, h)
	delete(v.old, h)
}

// statStamp returns path's stamp; ok is false where the filesystem cannot
// tell (then every dedup hit takes the full comparison).
func statStamp(bfs blobFS, path string) (s stamp, ok bool, err error) {
	if _, isOS := bfs.(*osFS); !isOS {
		return stamp{}, false, nil
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return stamp{}, false, err
	}
	return stampOf(&st), true, nil
}

func stampOf(st *unix.Stat_t) stamp {
	return stamp{
		dev:   uint64(st.Dev),
		ino:   st.Ino,
		size:  st.Size,
		ctime: st.Ctim.Sec*1e9 + st.Ctim.Nsec,
	}
}

// markVerified records that h's file, stamped s, was just seen intact
// with header info.
func (l *Local) markVerified(h Hash, s stamp, info Info) {
	l.verified.add(h, verifiedBlob{stamp: s, info: info})
}

// stillVerified reports whether h was seen intact by this process and its
// file has not been changed or replaced since; info is its header then.
func (l *Local) stillVerified(h Hash) (Info, bool) {
	want, ok := l.verified.get(h)
	if !ok {
		return Info{}, false
	}
	got, ok, err := statStamp(l.fs, l.path(h))
	if err != nil || !ok || got != want.stamp {
		return Info{}, false
	}
	return want.info, true
}

// readStamped reads the file at path whole, with the stamp of the very
// file it read (ok is false where the filesystem cannot tell). On the local
// disk it costs open, fstat, one read of exactly the file's size and close:
// os.ReadFile's probing read for EOF and its spare capacity are skipped.
func readStamped(bfs blobFS, path string) (data []byte, s stamp, ok bool, err error) {
	data, _, s, ok, err = readStampedLent(bfs, path, false)
	return data, s, ok, err
}

// readStampedLent is readStamped into a lent buffer when lend is set and
// the file fits one (lent nil otherwise); on error nothing stays lent.
func readStampedLent(bfs blobFS, path string, lend bool) (data []byte, lent *Lent, s stamp, ok bool, err error) {
	if _, isOS := bfs.(*osFS); !isOS {
		data, err = bfs.readFile(path)
		return data, nil, stamp{}, false, err
	}
	fd, err := openRetry(path)
	if err != nil {
		return nil, nil, stamp{}, false, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, nil, stamp{}, false, &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Size < 0 || st.Size > maxBlobFile {
		return nil, nil, stamp{}, false, fmt.Errorf("%w: blob file of %d bytes", ErrCorrupt, st.Size)
	}
	var buf []byte
	if lend {
		lent, buf = borrow(int(st.Size))
	} else {
		buf = make([]byte, st.Size)
	}
	n := 0
	for n < len(buf) {
		k, err := unix.Pread(fd, buf[n:], int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			lent.Return()
			return nil, nil, stamp{}, false, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if k == 0 {
			break // shrank since fstat: the header check will say so
		}
		n += k
	}
	return buf[:n], lent, stampOf(&st), true, nil
}

// maxBlobFile bounds what a read of one blob file allocates: a chunk's
// bytes stored raw plus the header, with room to spare. A larger file is
// not a blob this store wrote.
const maxBlobFile = 64 << 20

func openRetry(path string) (int, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}
