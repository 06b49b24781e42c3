package meta

import "github.com/cockroachdb/pebble/vfs"

// walPreallocate caps how much disk pebble reserves ahead of a WAL.
//
// pebble reserves 110% of the memtable size (35 MiB here) with fallocate
// whenever a WAL enters a new block of that size, and keeps a few WALs
// around (live, queued for flush, recycled). These reservations stay
// allocated after the data they were for is deleted: a store emptied by
// rm -rf and gc still held 177 MB of WALs holding 2 MB of records. Capped
// to 1 MiB per block, a WAL costs about what it holds; the writes past
// the reserved part extend the file, which costs a metadata update on
// the fdatasync that follows them, and only for WALs over 1 MiB.
const walPreallocate = 1 << 20

// spaceFS is the OS file system with WAL preallocation capped.
type spaceFS struct{ vfs.FS }

func (fs spaceFS) Create(name string) (vfs.File, error) {
	f, err := fs.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return cappedFile{f}, nil
}

func (fs spaceFS) ReuseForWrite(oldname, newname string) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname)
	if err != nil {
		return nil, err
	}
	return cappedFile{f}, nil
}

type cappedFile struct{ vfs.File }

func (f cappedFile) Preallocate(offset, length int64) error {
	return f.File.Preallocate(offset, min(length, walPreallocate))
}
