package meta

import "encoding/binary"

// Key layout. Every key starts with one byte naming its table; the index
// package owns the 'X' prefix. Numbers are big-endian so that prefix scans
// come out in numeric order.
const (
	pfxConfig  = 'm' // m<name>                  -> config value
	pfxInode   = 'i' // i<ino>                   -> encoded Attr
	pfxDirent  = 'd' // d<parent><name>          -> <ino><type byte>
	pfxXattr   = 'x' // x<ino><name>             -> value
	pfxSymlink = 'l' // l<ino>                   -> target
	pfxChunk   = 'c' // c<ino><index>            -> encoded ChunkRef
	pfxRef     = 'r' // r<hash>                  -> encoded blobRecord
	pfxInline  = 'B' // B<hash>                  -> codec byte + stored bytes (older stores)
	// 0xF0<id><hash> -> codec byte + stored bytes: an inline payload, keyed
	// by the order it was written in (payloadKey).
	pfxPayload = 0xF0
	pfxOrphan  = 'o' // o<ino>                   -> empty: unlinked while open
	pfxUser    = 'R' // R<hash><ino><index>      -> empty: who uses a blob
	pfxQuery   = 'q' // q<query>                 -> empty: a saved search (old stores)

	pfxUserQuery = 'Q' // Q<uid><query>          -> <gid>: a user's saved search
	// 'T' T<original path> -> the trash's interval record (trash.go)
)

var keyNextIno = []byte{pfxConfig, 'n', 'e', 'x', 't', 'i', 'n', 'o'}

// keyNextPayload holds the next inline payload id (allocPayload).
var keyNextPayload = []byte{pfxConfig, 'n', 'e', 'x', 't', 'p', 'a', 'y'}

func u64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

func inodeKey(ino uint64) []byte   { return u64([]byte{pfxInode}, ino) }
func symlinkKey(ino uint64) []byte { return u64([]byte{pfxSymlink}, ino) }
func orphanKey(ino uint64) []byte  { return u64([]byte{pfxOrphan}, ino) }

func direntPrefix(parent uint64) []byte { return u64([]byte{pfxDirent}, parent) }
func direntKey(parent uint64, name string) []byte {
	return append(direntPrefix(parent), name...)
}

func xattrPrefix(ino uint64) []byte { return u64([]byte{pfxXattr}, ino) }
func xattrKey(ino uint64, name string) []byte {
	return append(xattrPrefix(ino), name...)
}

func chunkPrefix(ino uint64) []byte { return u64([]byte{pfxChunk}, ino) }
func chunkKey(ino, index uint64) []byte {
	return u64(chunkPrefix(ino), index)
}

func userPrefix(h [32]byte) []byte { return append([]byte{pfxUser}, h[:]...) }
func userKey(h [32]byte, ino, index uint64) []byte {
	return u64(u64(userPrefix(h), ino), index)
}

func refKey(h [32]byte) []byte    { return append([]byte{pfxRef}, h[:]...) }
func inlineKey(h [32]byte) []byte { return append([]byte{pfxInline}, h[:]...) }

// Inline payloads are keyed by a number that grows with every new one
// (with the hash after it, so a key names its content and an id can never
// find other bytes), not by the hash alone: new payloads then sort after
// every older one, at the end of the key space, and a flush's payloads
// form a range that overlaps no older table. Keyed by hash, every
// memtable's payloads spread over the whole table and each compaction
// rewrote most of it: 28% of the daemon's CPU in a run of 4 KiB creates.
// A payload written before ids existed stays under inlineKey (id 0).
func payloadKey(id uint64, h [32]byte) []byte {
	if id == 0 {
		return inlineKey(h)
	}
	return append(u64([]byte{pfxPayload}, id), h[:]...)
}

// payloadKeyLen is the length of a payloadKey with an id.
const payloadKeyLen = 1 + 8 + 32

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// InlinePayloadKey is the key of manifest entry c's inline payload (for
// tests that damage a store on purpose).
func InlinePayloadKey(c ChunkRef) []byte { return payloadKey(c.Payload, c.Hash) }
