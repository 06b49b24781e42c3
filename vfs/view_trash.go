package vfs

import (
	"log/slog"
	"syscall"

	"github.com/taskerfs/taskerfs/meta"
)

// .trash/ is not a computed view: it is the trash tree of meta (real
// inodes, see meta/trash.go) served at the root under a reserved name. Its
// directories copy the owner and mode of the originals, so the kernel's
// permission checks apply as they did to the originals; on top of that,
// a caller other than root and the daemon's user does not even see the
// names of entries they could not read (a file without r, a directory
// without r and x), the rule of every view. It is read-only: nothing can
// be created, written, linked or renamed into it; renaming out of it (mv,
// `taskerfs restore`) restores, and unlink or rmdir in it deletes for good.

// TrashName is the reserved root name of the trash.
const TrashName = meta.TrashDirName

// trashEntry is the root of the trash.
func (v *FS) trashEntry() (Attr, error) {
	if v.trashIno == 0 {
		return Attr{}, syscall.ENOENT
	}
	return v.GetAttr(v.trashIno)
}

// inTrash reports whether ino is the trash root or below it.
func (v *FS) inTrash(ino uint64) bool {
	if v.trashIno == 0 {
		return false
	}
	for i := 0; i < 4096 && ino != 0; i++ {
		if ino == v.trashIno {
			return true
		}
		if ino == meta.RootIno {
			return false
		}
		a, err := v.meta.PeekAttr(ino)
		if err != nil {
			return false
		}
		ino = a.Parent
	}
	return false
}

// trashReadOnly refuses a change inside the trash.
func (v *FS) trashReadOnly(ino uint64) error {
	if v.inTrash(ino) {
		return syscall.EROFS
	}
	return nil
}

// trashHides reports whether a, an entry of trash directory parent, is
// hidden from the caller.
func (v *FS) trashHides(c *Ctx, a *Attr) bool {
	if v.privileged(c) {
		return false
	}
	if a.IsDir() {
		return !allowed(c, a, mayRead|mayExec)
	}
	return !allowed(c, a, mayRead)
}

// beforeReplace commits the last closed version of ino before a
// truncation replaces it, so that the trash keeps exactly that version
// (the commit of the truncation moves it to the trash).
func (v *FS) beforeReplace(ino uint64) {
	if v.meta.Trash().Retention <= 0 || v.inTrash(ino) {
		return
	}
	v.wb.CommitNow(func(i uint64) bool { return i == ino })
}

// trashFresh commits queued changes, so that a version a truncation just
// replaced is in the trash when someone looks (as search reflects every
// closed file).
func (v *FS) trashFresh() {
	if err := v.wb.CommitNow(func(uint64) bool { return true }); err != nil {
		slog.Warn("commit before listing the trash", "err", err)
	}
}
