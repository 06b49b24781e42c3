package vfs

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/meta"
)

func openTestFS(t *testing.T) *FS {
	t.Helper()
	v, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := v.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return v
}

func TestSniffMIME(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"jpeg", []byte("\xFF\xD8\xFF\xE0\x00\x10JFIF\x00"), "image/jpeg"},
		{"png", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), "image/png"},
		{"webp", []byte("RIFF\x00\x00\x00\x00WEBPVP8 "), "image/webp"},
		{"mp3 with ID3", []byte("ID3\x04\x00\x00\x00\x00\x00\x00"), "audio/mpeg"},
		{"mp3 frame, MPEG-1 layer III 128k 44.1k", []byte{0xFF, 0xFB, 0x90, 0x64, 0x00}, "audio/mpeg"},
		{"aac adts", []byte{0xFF, 0xF1, 0x50, 0x80, 0x02, 0x1F, 0xFC}, "audio/aac"},
		{"flac", []byte("fLaC\x00\x00\x00\x22"), "audio/flac"},
		{"m4a", []byte("\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00"), "audio/mp4"},
		{"mp4", []byte("\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"), "video/mp4"},
		{"heic", []byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"), "image/heic"},
		{"webm", []byte("\x1A\x45\xDF\xA3\x9f\x42\x86\x81\x01"), "video/webm"},
		{"json object", []byte(`{"id": "s-1", "screenshots": []}`), "application/json"},
		{"json array with leading space", []byte(" [1, 2, 3]\n"), "application/json"},
		{"plain text", []byte("hello, world\n"), "text/plain; charset=utf-8"},
		{"text that starts like json", []byte(`{"unterminated": `), "text/plain; charset=utf-8"},
		{"utf-16 byte order mark is not mp3", []byte("\xFF\xFEh\x00i\x00"), "text/plain; charset=utf-16le"},
		{"reserved mpeg version is not mp3", []byte{0xFF, 0xEB, 0x90, 0x64}, "text/plain; charset=utf-8"},
		{"binary", []byte{0x00, 0x01, 0x02, 0x03, 0xFE}, "application/octet-stream"},
		{"empty", nil, "text/plain; charset=utf-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SniffMIME(tt.data); got != tt.want {
				t.Errorf("SniffMIME(% x) = %q, want %q", tt.data[:min(len(tt.data), 16)], got, tt.want)
			}
		})
	}
}

func TestReference(t *testing.T) {
	off := func(v uint64) *uint64 { return &v }
	tests := []struct {
		use  meta.BlobUse
		want BlobReference
	}{
		{meta.BlobUse{Path: "sessions/s-1/attachments/att-1.jpg", Size: 10},
			BlobReference{SessionID: "s-1", AttachmentID: "att-1", Path: "sessions/s-1/attachments/att-1.jpg"}},
		{meta.BlobUse{Path: "sessions/s-1/attachments/noext", Size: 10},
			BlobReference{SessionID: "s-1", AttachmentID: "noext", Path: "sessions/s-1/attachments/noext"}},
		{meta.BlobUse{Path: "sessions/s-1/attachments/.jpg", Size: 10},
			BlobReference{SessionID: "s-1", AttachmentID: ".jpg", Path: "sessions/s-1/attachments/.jpg"}},
		{meta.BlobUse{Path: "sessions/s-1/attachments/sub/a.jpg", Size: 10},
			BlobReference{Path: "sessions/s-1/attachments/sub/a.jpg"}},
		{meta.BlobUse{Path: "sessions/s-1/screenshots/a.jpg", Size: 10},
			BlobReference{Path: "sessions/s-1/screenshots/a.jpg"}},
		{meta.BlobUse{Path: "notes/a.jpg", Size: 10}, BlobReference{Path: "notes/a.jpg"}},
		{meta.BlobUse{Path: "", Size: 10}, BlobReference{}},
		{meta.BlobUse{Path: "big.mp4", Size: 3 * meta.ChunkSize, Index: 2},
			BlobReference{Path: "big.mp4", Offset: off(2 * meta.ChunkSize)}},
		{meta.BlobUse{Path: "big.mp4", Size: meta.ChunkSize + 1, Index: 0},
			BlobReference{Path: "big.mp4", Offset: off(0)}},
	}
	for _, tt := range tests {
		got := reference(tt.use)
		if got.Path != tt.want.Path || got.SessionID != tt.want.SessionID || got.AttachmentID != tt.want.AttachmentID ||
			(got.Offset == nil) != (tt.want.Offset == nil) || got.Offset != nil && *got.Offset != *tt.want.Offset {
			t.Errorf("reference(%+v) = %+v, want %+v", tt.use, got, tt.want)
		}
	}
}

func TestBlobMetadata(t *testing.T) {
	v := openTestFS(t)
	shot := append([]byte("\xFF\xD8\xFF\xE0\x00\x10JFIF\x00"), bytes.Repeat([]byte{7}, 100<<10)...)
	chunk := bytes.Repeat([]byte("0123456789abcdef"), meta.ChunkSize/16)
	big := append(append([]byte(nil), chunk...), chunk...) // two chunks, one blob
	files := map[string][]byte{
		"sessions/s-1/attachments/a1.jpg": shot,
		"sessions/s-2/attachments/a2.jpg": shot,
		"notes/shot.jpg":                  shot,
		"video/big.bin":                   big,
		"small.json":                      []byte(`{"x": 1}`),
	}
	for p, data := range files {
		if err := v.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.FreshContent(); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		data       []byte
		mime       string
		inline     bool
		codec      string
		refs       []string // paths, sorted
		offsets    bool
		refCount   uint64
		sessionIDs []string
	}{
		{"shared screenshot (jpeg is not recompressed)", shot, "image/jpeg", false, "raw",
			[]string{"notes/shot.jpg", "sessions/s-1/attachments/a1.jpg", "sessions/s-2/attachments/a2.jpg"}, false, 3, []string{"s-1", "s-2"}},
		{"a chunk used twice by one file", chunk, "text/plain; charset=utf-8", false, "zstd",
			[]string{"video/big.bin", "video/big.bin"}, true, 2, nil},
		{"small json inline", []byte(`{"x": 1}`), "application/json", true, "raw", []string{"small.json"}, false, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := blobstore.Sum(tt.data)
			md, ok, err := v.BlobMetadata(h)
			if err != nil || !ok {
				t.Fatalf("BlobMetadata: ok %v, %v", ok, err)
			}
			if md.Hash != h.String() || md.Size != int64(len(tt.data)) || md.MimeType != tt.mime ||
				md.Inline != tt.inline || md.Compression != tt.codec || md.RefCount != tt.refCount {
				t.Errorf("got %+v", md)
			}
			if md.StoredSize <= 0 || tt.codec == "zstd" && md.StoredSize >= md.Size {
				t.Errorf("storedSize %d for size %d, %s", md.StoredSize, md.Size, md.Compression)
			}
			var paths, sids []string
			var offsets []uint64
			for _, r := range md.References {
				paths = append(paths, r.Path)
				if r.SessionID != "" {
					sids = append(sids, r.SessionID)
				}
				if r.Offset != nil {
					offsets = append(offsets, *r.Offset)
				}
			}
			slices.Sort(paths)
			slices.Sort(sids)
			slices.Sort(offsets)
			if !slices.Equal(paths, tt.refs) || !slices.Equal(sids, tt.sessionIDs) {
				t.Errorf("references %+v", md.References)
			}
			if tt.offsets && !slices.Equal(offsets, []uint64{0, meta.ChunkSize}) || !tt.offsets && offsets != nil {
				t.Errorf("offsets %v", offsets)
			}
			js, err := MarshalBlobMetadata(md)
			if err != nil || !strings.Contains(string(js), `"refCount": `) || strings.Contains(string(js), "addedAt") {
				t.Errorf("metadata.json: %v\n%s", err, js)
			}
		})
	}

	if _, ok, err := v.BlobMetadata(blobstore.Sum([]byte("absent"))); ok || err != nil {
		t.Errorf("an absent blob: ok %v, %v", ok, err)
	}
	// A file unlinked while open keeps its reference, without a path.
	a, err := v.Resolve("small.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.wb.Open(a.Ino); err != nil {
		t.Fatal(err)
	}
	if err := v.meta.Unlink(meta.RootIno, "small.json"); err != nil {
		t.Fatal(err)
	}
	md, ok, err := v.BlobMetadata(blobstore.Sum([]byte(`{"x": 1}`)))
	if err != nil || !ok || len(md.References) != 1 || md.References[0].Path != "" {
		t.Errorf("unlinked while open: ok %v, %v, %+v", ok, err, md.References)
	}
	if err := v.Release(a.Ino); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := v.BlobMetadata(blobstore.Sum([]byte(`{"x": 1}`))); ok || err != nil {
		t.Errorf("after the last close: ok %v, %v", ok, err)
	}
	if _, err := v.Resolve("small.json"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("resolve: %v", err)
	}
}
