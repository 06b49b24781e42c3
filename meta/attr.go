package meta

import (
	"encoding/binary"
	"errors"
	"syscall"
)

// Attr is an inode's attributes. Parent and Name record the link the inode
// was created under (or last renamed to): exact for directories, which
// cannot be hard-linked, and used to find a file's path for indexing.
type Attr struct {
	Ino    uint64
	Mode   uint32 // type bits and permissions, as in stat(2)
	Uid    uint32
	Gid    uint32
	Nlink  uint32
	Rdev   uint32
	Size   uint64
	Atime  int64 // nanoseconds since the epoch
	Mtime  int64
	Ctime  int64
	Parent uint64
	Name   string
}

func (a *Attr) IsDir() bool     { return a.Mode&syscall.S_IFMT == syscall.S_IFDIR }
func (a *Attr) IsRegular() bool { return a.Mode&syscall.S_IFMT == syscall.S_IFREG }
func (a *Attr) IsSymlink() bool { return a.Mode&syscall.S_IFMT == syscall.S_IFLNK }

const attrVersion = 1

func (a *Attr) encode() []byte {
	b := make([]byte, 0, 80+len(a.Name))
	b = append(b, attrVersion)
	b = binary.AppendUvarint(b, uint64(a.Mode))
	b = binary.AppendUvarint(b, uint64(a.Uid))
	b = binary.AppendUvarint(b, uint64(a.Gid))
	b = binary.AppendUvarint(b, uint64(a.Nlink))
	b = binary.AppendUvarint(b, uint64(a.Rdev))
	b = binary.AppendUvarint(b, a.Size)
	b = binary.AppendVarint(b, a.Atime)
	b = binary.AppendVarint(b, a.Mtime)
	b = binary.AppendVarint(b, a.Ctime)
	b = binary.AppendUvarint(b, a.Parent)
	b = binary.AppendUvarint(b, uint64(len(a.Name)))
	return append(b, a.Name...)
}

var errBadRecord = errors.New("meta: malformed record")

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errBadRecord
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errBadRecord
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if uint64(len(d.b)) < n {
		d.err = errBadRecord
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func decodeAttr(ino uint64, raw []byte) (Attr, error) {
	if len(raw) == 0 || raw[0] != attrVersion {
		return Attr{}, errBadRecord
	}
	d := decoder{b: raw[1:]}
	a := Attr{Ino: ino}
	a.Mode = uint32(d.uvarint())
	a.Uid = uint32(d.uvarint())
	a.Gid = uint32(d.uvarint())
	a.Nlink = uint32(d.uvarint())
	a.Rdev = uint32(d.uvarint())
	a.Size = d.uvarint()
	a.Atime = d.varint()
	a.Mtime = d.varint()
	a.Ctime = d.varint()
	a.Parent = d.uvarint()
	a.Name = string(d.bytes(d.uvarint()))
	return a, d.err
}
