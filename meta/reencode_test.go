package meta_test

import (
	"bytes"
	"syscall"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/meta"
)

func TestRecompressInlineKeepsBytes(t *testing.T) {
	bs, err := blobstore.OpenLocal(t.TempDir(), blobstore.LocalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := meta.Open(t.TempDir(), meta.Options{Blobs: bs})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	data := bytes.Repeat([]byte(`{"summary":"refactor oauth login flow","tags":["auth","ci"]},`), 600)
	h := blobstore.Sum(data)
	codec, enc := blobstore.EncodeLevel(data, zstd.SpeedFastest)
	ref := &meta.BlobRef{Hash: h, Size: uint32(len(data)), Codec: codec, Stored: int64(len(enc)) + 1, Inline: enc}
	if err := s.Update(false, func(tx *meta.Tx) error {
		a, err := tx.Create(meta.RootIno, "f", meta.NewNode{Mode: syscall.S_IFREG | 0o644})
		if err != nil {
			return err
		}
		return tx.SetChunk(a.Ino, 0, ref)
	}); err != nil {
		t.Fatal(err)
	}
	before, after, err := s.RecompressInline(h, zstd.SpeedBestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if before != ref.Stored || after > before {
		t.Fatalf("before %d after %d; stored was %d", before, after, ref.Stored)
	}
	info, ok, err := s.BlobInfo(h)
	if err != nil || !ok || info.Stored != after || !info.Inline || info.Refs != 1 {
		t.Fatalf("record after recompression: %+v ok=%v err=%v", info, ok, err)
	}
	got, err := s.Blob(h)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back after recompression: err %v, equal %v", err, bytes.Equal(got, data))
	}
}
