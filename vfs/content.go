package vfs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/taskerfs/taskerfs/meta"
	"github.com/taskerfs/taskerfs/writeback"
)

// commitOne commits ino's pending changes so its manifest is current.
func (v *FS) commitOne(ino uint64) error {
	return v.wb.CommitNow(func(i uint64) bool { return i == ino })
}

// ContentHash is the SHA-256 of a file's content as readers see it now
// (every close() that returned included). A file of one chunk is one blob,
// so its hash is also the blob's name under attachments-ca/.
func (v *FS) ContentHash(ino uint64) (string, error) {
	if err := v.commitOne(ino); err != nil {
		return "", err
	}
	// While a handle is open, close() of another does not queue a
	// snapshot: the manifest may be older than the content, so hash what a
	// read returns (the live and queued content) instead.
	committed := !v.wb.IsOpen(ino)
	a, err := v.GetAttr(ino)
	if err != nil {
		return "", err
	}
	if committed && a.Size > 0 && a.Size <= meta.ChunkSize {
		if c, ok, err := v.meta.Chunk(ino, 0); err != nil {
			return "", err
		} else if ok && uint64(c.Size) == a.Size {
			return c.Hash.String(), nil
		}
	}
	h := sha256.New()
	buf := make([]byte, meta.ChunkSize)
	var rc writeback.ReadCache
	for off := uint64(0); off < a.Size; {
		n, err := v.wb.Read(ino, buf, int64(off), &rc)
		if err != nil {
			return "", err
		}
		if n == 0 {
			break
		}
		h.Write(buf[:n])
		off += uint64(n)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ChunkList describes a file's manifest, one "offset length sha256" line
// per stored chunk (holes are absent).
func (v *FS) ChunkList(ino uint64) ([]string, error) {
	if err := v.commitOne(ino); err != nil {
		return nil, err
	}
	var out []string
	err := v.meta.Chunks(ino, func(idx uint64, c meta.ChunkRef) error {
		out = append(out, fmt.Sprintf("%d %d %s", idx*meta.ChunkSize, c.Size, c.Hash))
		return nil
	})
	return out, err
}
