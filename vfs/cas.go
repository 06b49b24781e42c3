package vfs

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path"
	"strings"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/meta"
)

// The content view (attachments-ca/) shows the blob store as the seed app
// laid it out: one directory per referenced blob with its bytes and a
// metadata.json naming who uses it.

// FreshContent commits every dirty file, so that the content view shows
// each change whose close() has returned.
func (v *FS) FreshContent() error {
	return v.wb.CommitNow(func(uint64) bool { return true })
}

// BlobMetadata is a blob's metadata.json: the seed's fields plus how the
// blob sits on disk. The seed's addedAt, createdAt and lastAccessedAt are
// absent because taskerfs does not record them.
type BlobMetadata struct {
	Hash        string          `json:"hash"`
	MimeType    string          `json:"mimeType"`
	Size        int64           `json:"size"`       // logical bytes
	StoredSize  int64           `json:"storedSize"` // bytes on disk
	Compression string          `json:"compression"`
	Inline      bool            `json:"inline"` // kept in the metadata store, not as a blob file
	RefCount    uint64          `json:"refCount"`
	References  []BlobReference `json:"references"`
}

// BlobReference is one file chunk that uses a blob. SessionID and
// AttachmentID are set for sessions/<id>/attachments/<attachmentId>.<ext>.
type BlobReference struct {
	SessionID    string `json:"sessionId,omitempty"`
	AttachmentID string `json:"attachmentId,omitempty"`
	Path         string `json:"path,omitempty"` // empty for a file unlinked while still open
	// Offset is where the blob sits in a file of several chunks.
	Offset *uint64 `json:"offset,omitempty"`
}

// BlobMetadata describes blob h; ok is false when nothing references it.
func (v *FS) BlobMetadata(h blobstore.Hash) (md BlobMetadata, ok bool, err error) {
	info, uses, ok, err := v.meta.BlobUses(h)
	if err != nil || !ok {
		return md, false, err
	}
	data, err := v.meta.Blob(h)
	if err != nil {
		return md, false, err
	}
	md = BlobMetadata{
		Hash:        h.String(),
		MimeType:    SniffMIME(data),
		Size:        int64(info.Size),
		StoredSize:  info.Stored,
		Compression: info.Codec.String(),
		Inline:      info.Inline,
		RefCount:    info.Refs,
		References:  make([]BlobReference, 0, len(uses)),
	}
	for _, u := range uses {
		md.References = append(md.References, reference(u))
	}
	return md, true, nil
}

func reference(u meta.BlobUse) BlobReference {
	ref := BlobReference{Path: u.Path}
	if u.Size > meta.ChunkSize {
		off := u.Index * meta.ChunkSize
		ref.Offset = &off
	}
	parts := strings.Split(u.Path, "/")
	if len(parts) == 4 && parts[0] == SessionsDir && parts[2] == "attachments" {
		ref.SessionID = parts[1]
		ref.AttachmentID = strings.TrimSuffix(parts[3], path.Ext(parts[3]))
		if ref.AttachmentID == "" {
			ref.AttachmentID = parts[3]
		}
	}
	return ref
}

// MarshalBlobMetadata renders md as metadata.json shows it.
func MarshalBlobMetadata(md BlobMetadata) ([]byte, error) {
	b, err := json.MarshalIndent(md, "", "  ")
	return append(b, '\n'), err
}

// sniffLen is how much of a blob http.DetectContentType looks at.
const sniffLen = 512

// SniffMIME names data's media type from its content: net/http's sniffer
// plus the formats the seed app stores that it does not know (bare MP3 and
// AAC frames, M4A, HEIC, FLAC, JSON).
func SniffMIME(data []byte) string {
	head := data[:min(len(data), sniffLen)]
	for _, s := range extraSniffers {
		if s.match(head) {
			return s.mime
		}
	}
	t := http.DetectContentType(head)
	if strings.HasPrefix(t, "text/plain") && json.Valid(data) {
		return "application/json"
	}
	return t
}

var extraSniffers = []struct {
	mime  string
	match func(head []byte) bool
}{
	{"audio/mpeg", isMPEGAudioFrame},
	{"audio/aac", isADTSFrame},
	{"audio/flac", func(b []byte) bool { return bytes.HasPrefix(b, []byte("fLaC")) }},
	{"audio/mp4", func(b []byte) bool { return hasFtypBrand(b, "M4A ", "M4B ") }},
	{"image/heic", func(b []byte) bool { return hasFtypBrand(b, "heic", "heix", "mif1") }},
}

// isMPEGAudioFrame matches an MPEG-1/2/2.5 layer II or III frame header
// (an MP3 without an ID3 tag; the tagged kind net/http already knows).
// Reserved version, bitrate and sample-rate values are rejected so that
// text such as a UTF-16 byte order mark does not pass.
func isMPEGAudioFrame(b []byte) bool {
	if len(b) < 3 || b[0] != 0xFF || b[1]&0xE0 != 0xE0 {
		return false
	}
	version := b[1] >> 3 & 3
	layer := b[1] >> 1 & 3
	bitrate := b[2] >> 4
	rate := b[2] >> 2 & 3
	return version != 1 && (layer == 1 || layer == 2) && bitrate != 0 && bitrate != 15 && rate != 3
}

// isADTSFrame matches an AAC ADTS header: 12-bit sync, layer 00, and a
// sampling-frequency index below the reserved ones.
func isADTSFrame(b []byte) bool {
	return len(b) >= 3 && b[0] == 0xFF && b[1]&0xF6 == 0xF0 && b[2]>>2&0xF < 13
}

// hasFtypBrand matches an ISO base media file whose major brand is one of
// brands.
func hasFtypBrand(b []byte, brands ...string) bool {
	if len(b) < 12 || string(b[4:8]) != "ftyp" {
		return false
	}
	for _, br := range brands {
		if string(b[8:12]) == br {
			return true
		}
	}
	return false
}
