// Package blobstore keeps content-addressed blobs keyed by their SHA-256.
// It knows nothing of files or references: callers (meta, writeback) own
// refcounts and decide when a blob may be deleted.
package blobstore

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// Hash is the SHA-256 of a blob's logical (uncompressed) bytes.
type Hash [32]byte

// Sum hashes data.
func Sum(data []byte) Hash { return sha256.Sum256(data) }

// String is the lowercase hex form used in paths and xattrs.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is the zero value (no blob).
func (h Hash) IsZero() bool { return h == Hash{} }

// ParseHash parses 64 lowercase or uppercase hex digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 64 {
		return h, fmt.Errorf("blobstore: hash %q: want 64 hex digits", s)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("blobstore: hash %q: %w", s, err)
	}
	return h, nil
}

// ErrNotFound is returned by Get, Stat and Delete for an absent blob.
var ErrNotFound = errors.New("blobstore: blob not found")

// ErrCorrupt is returned by Get when stored bytes do not hash to the key.
var ErrCorrupt = errors.New("blobstore: blob content does not match its hash")

// ErrClosed is returned by every method of a closed store.
var ErrClosed = errors.New("blobstore: store is closed")

// Codec says how a blob's bytes sit on disk.
type Codec uint8

const (
	CodecRaw  Codec = 0 // stored as given
	CodecZstd Codec = 1 // zstd frame
)

func (c Codec) String() string {
	switch c {
	case CodecRaw:
		return "raw"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

// Info describes one stored blob.
type Info struct {
	Size   int64 // logical bytes
	Stored int64 // bytes on disk, header included
	Codec  Codec
}

// Allocator is implemented by a store that can tell how much disk space a
// blob takes (what deleting it frees), as gc reports.
type Allocator interface {
	Allocated(h Hash) (int64, error)
}

// Store is a content-addressed blob store. Every backend must pass
// storetest.Run. Implementations are safe for concurrent use.
type Store interface {
	// Put stores data under h (which must be Sum(data)). Putting an existing
	// blob is a cheap no-op. The blob is not durable until Sync returns.
	// Put rejects data that does not hash to h and never keeps data.
	Put(h Hash, data []byte) (Info, error)
	// Get returns the exact logical bytes, verifying them against h.
	Get(h Hash) ([]byte, error)
	Has(h Hash) (bool, error)
	Stat(h Hash) (Info, error)
	Delete(h Hash) error
	// List calls fn for every blob whose hex hash starts with prefix
	// ("" for all), streaming: it never loads the whole store.
	List(prefix string, fn func(Hash) error) error
	// Sync makes every Put that returned before the call durable.
	Sync() error
	Close() error
}
