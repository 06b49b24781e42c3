package blobstore

import (
	"fmt"
)

// Raw access to a Local store's blob files, for backends that keep Local
// as a staging area or a cache and move the same bytes elsewhere (the S3
// backend uploads a blob file as one object, header included).

// Path is the file that holds h (whether or not it exists).
func (l *Local) Path(h Hash) string { return l.path(h) }

// ReadRaw returns h's file as stored (header and payload), unverified.
func (l *Local) ReadRaw(h Hash) ([]byte, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	buf, err := l.fs.readFile(l.path(h))
	if err != nil {
		return nil, notFound(h, err)
	}
	return buf, nil
}

// PutRaw stores raw (as ReadRaw returns it) under h after checking that
// it decodes to bytes hashing to h. Like Put it does not fsync.
func (l *Local) PutRaw(h Hash, raw []byte) (Info, error) {
	if l.closed.Load() {
		return Info{}, ErrClosed
	}
	_, info, err := DecodeRaw(h, raw)
	if err != nil {
		return Info{}, err
	}
	if err := l.writeFile(h, info.Codec, int(info.Size), raw[headerSize:], true); err != nil {
		return Info{}, fmt.Errorf("blobstore: put %v: %w", h, err)
	}
	return info, nil
}

// RawInfo parses the header of a raw blob of rawSize bytes; hdr needs
// only its first RawHeaderSize bytes.
func RawInfo(hdr []byte, rawSize int64) (Info, error) { return parseHeader(hdr, rawSize) }

// RawHeaderSize is the length of a blob file's header.
const RawHeaderSize = headerSize

// DecodeRaw parses, decodes and verifies a raw blob against h.
func DecodeRaw(h Hash, raw []byte) ([]byte, Info, error) {
	info, err := parseHeader(raw, int64(len(raw)))
	if err != nil {
		return nil, Info{}, fmt.Errorf("blobstore: %v: %w", h, err)
	}
	data, err := Decode(info.Codec, raw[headerSize:], int(info.Size))
	if err != nil {
		return nil, Info{}, fmt.Errorf("blobstore: %v: %w", h, err)
	}
	if Sum(data) != h {
		return nil, Info{}, fmt.Errorf("blobstore: %v: %w", h, ErrCorrupt)
	}
	return data, info, nil
}

// ErrInGrace is returned by Delete of a backend that keeps a blob younger
// than its grace period (another writer may be about to reference it).
// Garbage collection skips such a blob and retries it on a later run.
var ErrInGrace = fmt.Errorf("blobstore: blob is younger than the deletion grace period")

// Adopt moves the file at path, which holds blob h as a Local writes it
// (another store's file of h on the same filesystem), into the store under
// h's name, replacing a file there, and makes h's shard if it is missing.
// Like Put, it is durable after the next Sync.
func (l *Local) Adopt(h Hash, path string) error {
	if l.closed.Load() {
		return ErrClosed
	}
	l.verified.del(h)
	return l.moveIn(path, h, true)
}
