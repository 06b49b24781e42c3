package meta

import (
	"encoding/binary"
	"sync"

	"github.com/cockroachdb/pebble"
)

// xattrInodes knows which inodes may have extended attributes, so that a
// getxattr of a file that has none answers without a point read of
// pebble. It matters because the kernel asks for security.capability
// before the first write through every file handle (to drop file
// capabilities), and almost no file has any attribute: that read, which
// misses every memtable and walks the levels, was 3% of the daemon's CPU
// creating 4 KiB files.
//
// The set only grows: SetXattr adds the inode before its transaction
// commits, so a reader that does not find an inode knows no committed
// state gave it an attribute; an inode whose attributes are removed, or
// that is freed, stays (a later read of it costs the point read, as
// before). Past maxXattrInodes the set gives up and every read goes to
// pebble.
type xattrInodes struct {
	mu  sync.Mutex
	m   map[uint64]struct{}
	all bool // too many to track: every inode may have attributes
	max int
}

// maxXattrInodes bounds the set (about 40 bytes an entry).
const maxXattrInodes = 1 << 16

func newXattrInodes(max int) *xattrInodes {
	return &xattrInodes{m: map[uint64]struct{}{}, max: max}
}

// may reports whether ino may have attributes. A nil set knows nothing.
func (x *xattrInodes) may(ino uint64) bool {
	if x == nil {
		return true
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.all {
		return true
	}
	_, ok := x.m[ino]
	return ok
}

// add records that ino may have attributes; full says the set has given
// up tracking.
func (x *xattrInodes) add(ino uint64) (full bool) {
	if x == nil {
		return true
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.all {
		x.m[ino] = struct{}{}
		if len(x.m) > x.max {
			x.all, x.m = true, nil
		}
	}
	return x.all
}

// load adds every inode that has an attribute in r, seeking past each
// inode's names.
func (x *xattrInodes) load(r pebble.Reader) error {
	lo, hi := []byte{pfxXattr}, []byte{pfxXattr + 1}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; {
		k := it.Key()
		if len(k) < 9 {
			ok = it.Next() // not an attribute key; check reports it
			continue
		}
		ino := binary.BigEndian.Uint64(k[1:9])
		if x.add(ino) || ino == ^uint64(0) {
			break
		}
		ok = it.SeekGE(xattrPrefix(ino + 1))
	}
	return it.Close()
}
