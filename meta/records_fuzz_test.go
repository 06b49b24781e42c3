package meta

import (
	"testing"

	"github.com/taskerfs/taskerfs/blobstore"
)

// FuzzDecodeRecords: the manifest entry and refcount record decoders take
// any bytes without panicking, and what they accept encodes back to a
// record that decodes to the same value.
func FuzzDecodeRecords(f *testing.F) {
	h := blobstore.Sum([]byte("seed"))
	f.Add(encodeChunkRef(ChunkRef{Hash: h, Size: 4096}))
	f.Add(encodeChunkRef(ChunkRef{Hash: h, Size: 4096, Payload: 1 << 40}))
	f.Add((&blobRecord{Refs: 3, Inline: true, Size: 10, Stored: 11, Codec: blobstore.CodecRaw, Payload: 7}).encode())
	f.Add((&blobRecord{Refs: 1, Size: 1 << 20, Stored: 4096, Codec: blobstore.CodecZstd}).encode())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := decodeChunkRef(b); err == nil {
			back, err := decodeChunkRef(encodeChunkRef(c))
			if err != nil || back != c {
				t.Fatalf("manifest entry %+v decodes back as %+v, %v", c, back, err)
			}
		}
		if r, err := decodeBlobRecord(b); err == nil {
			back, err := decodeBlobRecord(r.encode())
			if err != nil || back != r {
				t.Fatalf("refcount record %+v decodes back as %+v, %v", r, back, err)
			}
		}
	})
}
