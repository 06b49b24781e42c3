package meta

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/taskerfs/taskerfs/blobstore"
)

func pendingOutline(t *testing.T, s *Store) []blobstore.Hash {
	t.Helper()
	var hs []blobstore.Hash
	if err := s.PendingOutline(nil, 1000, func(h blobstore.Hash) error { hs = append(hs, h); return nil }); err != nil {
		t.Fatal(err)
	}
	return hs
}

// TestOutline: an inline blob over InlineMax is marked; Outline turns it
// into a file blob (counters follow) and drops the mark; a mark survives a
// restart; dropping the last reference drops the mark with the blob.
func TestOutline(t *testing.T) {
	e := newEnv(t)
	r := rand.New(rand.NewPCG(1, 2))
	big := func() []byte {
		b := make([]byte, InlineMax+1000)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	inlineRef := func(data []byte) *BlobRef {
		return &BlobRef{Hash: blobstore.Sum(data), Size: uint32(len(data)), Codec: blobstore.CodecRaw,
			Stored: int64(len(data)) + 1, Inline: data}
	}
	a, b := e.mkfile("a"), e.mkfile("b")
	da, db := big(), big()
	small := []byte("small")
	if err := e.s.Update(true, func(tx *Tx) error {
		if err := tx.SetChunk(a.Ino, 0, inlineRef(da)); err != nil {
			return err
		}
		if err := tx.SetChunk(a.Ino, 1, inlineRef(small)); err != nil {
			return err
		}
		return tx.SetChunk(b.Ino, 0, inlineRef(db))
	}); err != nil {
		t.Fatal(err)
	}
	if got := pendingOutline(t, e.s); len(got) != 2 {
		t.Fatalf("%d marks, want 2 (the small blob needs none)", len(got))
	}
	e.reopen()
	if got := pendingOutline(t, e.s); len(got) != 2 {
		t.Fatalf("after a restart: %d marks, want 2", len(got))
	}

	// a's blob moves to a file.
	ha := blobstore.Sum(da)
	info, err := e.blobs.Put(ha, da)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.blobs.Sync(); err != nil {
		t.Fatal(err)
	}
	before := e.s.Counters()
	if err := e.s.Outline([]Outlined{{Hash: ha, Info: info}}); err != nil {
		t.Fatal(err)
	}
	bi, ok, err := e.s.BlobInfo(ha)
	if err != nil || !ok || bi.Inline || bi.Stored != info.Stored || bi.Refs != 1 {
		t.Fatalf("after Outline: %+v %v %v", bi, ok, err)
	}
	after := e.s.Counters()
	if after.InlineBlobs != before.InlineBlobs-1 || after.StoredBytes != before.StoredBytes-int64(len(da))-1+info.Stored {
		t.Fatalf("counters: before %+v after %+v", before, after)
	}
	if e.has(inlineKey(ha)) || e.has(outlineKey(ha)) {
		t.Fatal("inline payload or mark left behind")
	}
	if got, err := e.s.Blob(ha); err != nil || !bytes.Equal(got, da) {
		t.Fatalf("moved blob reads back wrong: %v", err)
	}
	// Outlining again, or a blob that is not inline, only drops a mark.
	if err := e.s.Outline([]Outlined{{Hash: ha, Info: info}}); err != nil {
		t.Fatal(err)
	}
	if bi2, _, _ := e.s.BlobInfo(ha); bi2 != bi {
		t.Fatalf("second Outline changed the record: %+v -> %+v", bi, bi2)
	}

	// b's last reference goes: the blob and its mark go together.
	if err := e.s.Update(true, func(tx *Tx) error { return tx.SetChunk(b.Ino, 0, nil) }); err != nil {
		t.Fatal(err)
	}
	if got := pendingOutline(t, e.s); len(got) != 0 {
		t.Fatalf("%d marks left, want 0", len(got))
	}
	var problems []Problem
	if err := e.s.Check(func(p Problem) { problems = append(problems, p) }); err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Fatalf("check: %v", problems)
	}
}
