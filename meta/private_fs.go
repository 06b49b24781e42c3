package meta

import (
	"os"

	"github.com/cockroachdb/pebble/vfs"
	"golang.org/x/sys/unix"
)

// privateFS makes pebble create its files 0600 and its dirs 0700 whatever
// the umask: the WAL and tables hold small files' contents inline.
type privateFS struct{ vfs.FS }

func (p privateFS) Create(name string) (vfs.File, error) {
	f, err := p.FS.Create(name)
	if err != nil {
		return nil, err
	}
	if fd := f.Fd(); fd != vfs.InvalidFd {
		if err := unix.Fchmod(int(fd), 0o600); err != nil {
			f.Close()
			return nil, &os.PathError{Op: "chmod", Path: name, Err: err}
		}
	}
	return f, nil
}

func (p privateFS) MkdirAll(dir string, _ os.FileMode) error {
	return p.FS.MkdirAll(dir, 0o700)
}
