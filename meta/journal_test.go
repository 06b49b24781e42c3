package meta

import (
	"bytes"
	"testing"
	"time"

	"github.com/taskerfs/taskerfs/blobstore"
)

// A blob larger than InlineMax committed inline is the journal's: it is
// marked, reads back, moves to a file with MoveOut, and loses its mark
// with its last reference.
func TestJournaledBlobs(t *testing.T) {
	e := newEnv(t)
	f := e.mkfile("f").Ino
	g := e.mkfile("g").Ino
	big := randomBytes(21, 200<<10)
	gone := randomBytes(22, 100<<10)
	small := randomBytes(23, 1000)
	e.setChunk(f, 0, inlineRef(big))
	e.setChunk(g, 0, inlineRef(gone))
	e.setChunk(f, 1, inlineRef(small))

	marked := func() map[blobstore.Hash]bool {
		t.Helper()
		hs, err := e.s.Journaled(100)
		if err != nil {
			t.Fatal(err)
		}
		m := map[blobstore.Hash]bool{}
		for _, h := range hs {
			m[h] = true
		}
		return m
	}
	hb, hg, hs := blobstore.Sum(big), blobstore.Sum(gone), blobstore.Sum(small)
	if m := marked(); !m[hb] || !m[hg] || m[hs] || len(m) != 2 {
		t.Fatalf("journal marks %v: want the two blobs over InlineMax", m)
	}
	if hs2, err := e.s.Journaled(1); err != nil || len(hs2) != 1 {
		t.Fatalf("Journaled(1) = %v, %v", hs2, err)
	}
	e.fsck()

	// Unlinking g drops its blob, payload and mark together.
	checkErr(t, "unlink", e.s.Unlink(RootIno, "g"), 0)
	if m := marked(); m[hg] {
		t.Fatal("the mark of an unreferenced blob stayed")
	}

	// Without a file (info nil) MoveOut keeps a blob that is still inline.
	if err := e.s.Update(false, func(tx *Tx) error { return tx.MoveOut(hb, nil) }); err != nil {
		t.Fatal(err)
	}
	if !marked()[hb] {
		t.Fatal("MoveOut(nil) dropped the mark of a blob still inline")
	}
	// Still journaled: the payload answers.
	if got, err := e.s.ChunkData(ChunkRef{Hash: hb, Size: uint32(len(big))}); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("ChunkData of a journaled blob: %d bytes, %v", len(got), err)
	}
	var info blobstore.Info
	ok, err := e.s.WithJournaledBlob(hb, func(data []byte) (err error) {
		if !bytes.Equal(data, big) {
			t.Errorf("WithJournaledBlob gives %d bytes, not the blob's", len(data))
		}
		info, err = e.blobs.Put(hb, data)
		return err
	})
	if err != nil || !ok {
		t.Fatalf("WithJournaledBlob: %v, %v", ok, err)
	}
	if err := e.s.Update(false, func(tx *Tx) error { return tx.MoveOut(hb, &info) }); err != nil {
		t.Fatal(err)
	}
	bi, ok, err := e.s.BlobInfo(hb)
	if err != nil || !ok || bi.Inline || bi.Stored != info.Stored {
		t.Fatalf("record after MoveOut: %+v, %v, %v", bi, ok, err)
	}
	if e.has(inlineKey(hb)) || e.has(journalKey(hb)) {
		t.Fatal("payload or mark left after MoveOut")
	}
	if ok, _ := e.s.WithJournaledBlob(hb, func([]byte) error { return nil }); ok {
		t.Fatal("WithJournaledBlob of a moved blob")
	}
	if got, err := e.s.Blob(hb); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("Blob after MoveOut: %d bytes, %v", len(got), err)
	}
	// The manifest entry's way in finds no payload and reads the file.
	cb := ChunkRef{Hash: hb, Size: uint32(len(big))}
	if got, err := e.s.ChunkData(cb); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("ChunkData after MoveOut: %d bytes, %v", len(got), err)
	}
	if got, lent, err := e.s.ChunkDataLent(cb); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("ChunkDataLent after MoveOut: %d bytes, %v", len(got), err)
	} else {
		lent.Return()
	}
	// A mark whose blob has moved (a round that raced) only goes.
	if err := e.s.Update(false, func(tx *Tx) error {
		tx.b.Set(journalKey(hb), nil, nil)
		return tx.MoveOut(hb, nil)
	}); err != nil {
		t.Fatal(err)
	}
	if len(marked()) != 0 {
		t.Fatalf("marks left: %v", marked())
	}
	e.fsck()
}

// Check reports a mark that disagrees with its record, both ways.
func TestCheckJournalMarks(t *testing.T) {
	e := newEnv(t)
	f := e.mkfile("f").Ino
	big := randomBytes(31, 100<<10)
	e.setChunk(f, 0, inlineRef(big))
	h := blobstore.Sum(big)
	stray := blobstore.Sum([]byte("nobody"))
	for _, tt := range []struct {
		name  string
		apply func(tx *Tx)
	}{
		{"mark of an unreferenced blob", func(tx *Tx) { tx.b.Set(journalKey(stray), nil, nil) }},
		{"journaled blob without its mark", func(tx *Tx) { tx.b.Delete(journalKey(h), nil) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := e.s.Update(false, func(tx *Tx) error { tt.apply(tx); return nil }); err != nil {
				t.Fatal(err)
			}
			var problems []Problem
			if err := e.s.Check(func(p Problem) { problems = append(problems, p) }); err != nil {
				t.Fatal(err)
			}
			if len(problems) != 1 || problems[0].Kind != ProblemInline {
				t.Fatalf("problems %v, want one of kind inline", problems)
			}
			// undo
			if err := e.s.Update(false, func(tx *Tx) error {
				tx.b.Delete(journalKey(stray), nil)
				tx.b.Set(journalKey(h), nil, nil)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Inline payloads deleted in bulk leave the disk without a command: the
// collector compacts the inline table once they outweigh half of it.
func TestCollectorCompactsDeletedInlinePayloads(t *testing.T) {
	defer func(v uint64) { compactAfterInline = v }(compactAfterInline)
	compactAfterInline = 1 << 20
	e := newEnv(t)
	f := e.mkfile("f").Ino
	for i := range 40 {
		e.setChunk(f, uint64(i), inlineRef(randomBytes(uint64(100+i), 60<<10)))
	}
	if err := e.s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	lo, hi := []byte{pfxInline}, []byte{pfxInline + 1}
	before, err := e.s.db.EstimateDiskUsage(lo, hi)
	if err != nil {
		t.Fatal(err)
	}
	checkErr(t, "unlink", e.s.Unlink(RootIno, "f"), 0)
	res, err := e.s.NewCollector(0).Pass(time.Now(), false)
	if err != nil {
		t.Fatal(err)
	}
	after, err := e.s.db.EstimateDiskUsage(lo, hi)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Compacted || after > before/10 {
		t.Fatalf("compacted %v; inline table %d bytes before the unlink, %d after the pass", res.Compacted, before, after)
	}
}
