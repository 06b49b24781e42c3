package blobstore

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"
)

// Background recompression rewrites a blob file in place: same hash, same
// logical bytes, a smaller encoding. Header byte 6 (reserved, ignored by
// readers) records the zstd level the blob was last encoded at, so a
// later pass skips blobs already done without reading them.
const levelByte = 6

// Recompressed is the outcome of one Recompress call.
type Recompressed struct {
	Before, After Info
	Rewritten     bool // false: the blob was already as small as level makes it
}

// Recompress re-encodes blob h with EncodeLevel(level) and replaces its
// file when that stores it in fewer bytes. The logical bytes are decoded
// and verified against h first, so damage is never re-encoded (the error
// then wraps ErrCorrupt). The new file is fsynced before it is renamed
// over the old one: a crash leaves one of two valid encodings. Blobs in a
// compressed format (JPEG, MP3, ...) and blobs marked as encoded at level
// or higher are skipped after reading only their first bytes.
func (l *Local) Recompress(h Hash, level zstd.EncoderLevel) (Recompressed, error) {
	if l.closed.Load() {
		return Recompressed{}, ErrClosed
	}
	f, err := os.Open(l.path(h))
	if err != nil {
		return Recompressed{}, notFound(h, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Recompressed{}, err
	}
	head := make([]byte, headerSize+16)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return Recompressed{}, fmt.Errorf("blobstore: recompress %v: %w", h, err)
	}
	head = head[:n]
	info, err := parseHeader(head, fi.Size())
	if err != nil {
		return Recompressed{}, fmt.Errorf("blobstore: recompress %v: %w", h, err)
	}
	res := Recompressed{Before: info, After: info}
	if head[levelByte] >= byte(level) ||
		info.Codec == CodecRaw && IsCompressedFormat(head[headerSize:]) {
		return res, nil
	}
	buf := make([]byte, fi.Size())
	if _, err := f.ReadAt(buf, 0); err != nil {
		return res, fmt.Errorf("blobstore: recompress %v: %w", h, err)
	}
	data, err := Decode(info.Codec, buf[headerSize:], int(info.Size))
	if err != nil {
		return res, fmt.Errorf("blobstore: recompress %v: %w", h, err)
	}
	if Sum(data) != h {
		return res, fmt.Errorf("blobstore: recompress %v: %w", h, ErrCorrupt)
	}
	codec, payload := EncodeLevel(data, level)
	if int64(headerSize+len(payload)) >= info.Stored {
		return res, l.markLevel(h, level)
	}
	if err := l.replaceFile(h, codec, len(data), payload, level); err != nil {
		return res, fmt.Errorf("blobstore: recompress %v: %w", h, err)
	}
	res.After = Info{Size: info.Size, Stored: int64(headerSize + len(payload)), Codec: codec}
	res.Rewritten = true
	return res, nil
}

// markLevel records in place that h's encoding is as small as level makes
// it. Readers ignore the byte, so a write that lands in a file renamed
// there meanwhile (the same blob) is harmless, and a lost one only costs
// a repeated attempt.
func (l *Local) markLevel(h Hash, level zstd.EncoderLevel) error {
	f, err := os.OpenFile(l.path(h), os.O_WRONLY, 0)
	if err != nil {
		return notFound(h, err)
	}
	_, err = f.WriteAt([]byte{byte(level)}, levelByte)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// replaceFile writes a durable temp file and renames it over h's file.
func (l *Local) replaceFile(h Hash, codec Codec, logical int, payload []byte, level zstd.EncoderLevel) error {
	f, err := os.CreateTemp(filepath.Join(l.dir, tmpDirName), "recompress-*")
	if err != nil {
		return err
	}
	hdr := encodeHeader(h, codec, logical, payload)
	hdr[levelByte] = byte(level) // outside the CRC
	_, err = f.Write(hdr[:])
	if err == nil {
		_, err = f.Write(payload)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), l.path(h))
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
