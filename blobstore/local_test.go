package blobstore_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/blobstore/storetest"
)

// corruptible lets the conformance suite damage a Local blob on disk.
type corruptible struct{ *blobstore.Local }

// Corrupt flips the last byte of the blob's file: payload for any
// non-empty blob (a zstd checksum or raw content).
func (c corruptible) Corrupt(h blobstore.Hash) error {
	p := blobPath(c.Dir(), h)
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	b[len(b)-1] ^= 0x01
	return os.WriteFile(p, b, 0o600)
}

func blobPath(dir string, h blobstore.Hash) string {
	return filepath.Join(dir, h.String()[:2], h.String())
}

func openLocal(t testing.TB) *blobstore.Local {
	t.Helper()
	l, err := blobstore.OpenLocal(t.TempDir(), blobstore.LocalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLocalConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) blobstore.Store { return corruptible{openLocal(t)} })
}

func TestLocalLayoutAndReopen(t *testing.T) {
	dir := t.TempDir()
	l, err := blobstore.OpenLocal(dir, blobstore.LocalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data := storetest.JSON(10<<10, 1)
	h := blobstore.Sum(data)
	info, err := l.Put(h, data)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(blobPath(dir, h))
	if err != nil {
		t.Fatalf("blob file not at <dir>/<2 hex>/<64 hex>: %v", err)
	}
	if fi.Size() != info.Stored {
		t.Errorf("file has %d bytes, Info.Stored = %d", fi.Size(), info.Stored)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = blobstore.OpenLocal(dir, blobstore.LocalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got, err := l.Get(h)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get after reopen: err %v, equal %v", err, bytes.Equal(got, data))
	}
}

func TestLocalOpenRemovesCrashTempFiles(t *testing.T) {
	dir := t.TempDir()
	l, err := blobstore.OpenLocal(dir, blobstore.LocalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kept := []byte("a complete blob")
	h, _ := putLocal(t, l, kept)
	l.Close()
	// What a crash between create and rename leaves behind.
	leftover := filepath.Join(dir, "tmp", "put-123456")
	if err := os.WriteFile(leftover, []byte("half a blo"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err = blobstore.OpenLocal(dir, blobstore.LocalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp file survived Open: %v", err)
	}
	if got, err := l.Get(h); err != nil || !bytes.Equal(got, kept) {
		t.Errorf("complete blob after Open: err %v", err)
	}
	if _, err := l.Put(blobstore.Sum([]byte("new")), []byte("new")); err != nil {
		t.Errorf("Put after cleanup: %v", err)
	}
}

func putLocal(t *testing.T, l *blobstore.Local, data []byte) (blobstore.Hash, blobstore.Info) {
	t.Helper()
	h := blobstore.Sum(data)
	info, err := l.Put(h, data)
	if err != nil {
		t.Fatal(err)
	}
	return h, info
}

func TestLocalDetectsDamage(t *testing.T) {
	json := storetest.JSON(20<<10, 2)
	random := storetest.Random(20<<10, 3)
	setSize := func(n uint64) func([]byte) []byte {
		return func(b []byte) []byte { binary.LittleEndian.PutUint64(b[8:16], n); return b }
	}
	cases := []struct {
		name   string
		data   []byte
		damage func([]byte) []byte
	}{
		{"empty file", random, func([]byte) []byte { return nil }},
		{"header only, truncated", random, func(b []byte) []byte { return b[:10] }},
		{"raw payload truncated", random, func(b []byte) []byte { return b[:len(b)-1] }},
		{"zstd payload truncated", json, func(b []byte) []byte { return b[:len(b)/2] }},
		{"raw payload byte flipped", random, func(b []byte) []byte { b[100] ^= 1; return b }},
		{"zstd payload byte flipped", json, func(b []byte) []byte { b[len(b)/2] ^= 1; return b }},
		{"bad magic", json, func(b []byte) []byte { b[0] = 'X'; return b }},
		{"future version", json, func(b []byte) []byte { b[4] = 99; return b }},
		{"unknown codec", json, func(b []byte) []byte { b[5] = 9; return b }},
		{"raw size off by one", random, setSize(uint64(len(random)) - 1)},
		{"zstd size off by one", json, setSize(uint64(len(json)) + 1)},
		{"absurd size", json, setSize(1 << 61)},
		{"raw size off by one, CRC kept", random, func(b []byte) []byte { b[8]--; return b }},
		{"zstd size off by one, CRC kept", json, func(b []byte) []byte { b[8]++; return b }},
		{"CRC byte flipped", json, func(b []byte) []byte { b[13] ^= 0x10; return b }},
		{"other blob's version 2 file", random, func([]byte) []byte {
			// A valid file, CRC and all, of another blob of the same
			// size: the CRC covers the hash, so it fails here.
			o := openLocal(t)
			defer o.Close()
			oh, _ := putLocal(t, o, storetest.Random(20<<10, 4))
			b, err := os.ReadFile(blobPath(o.Dir(), oh))
			if err != nil || b[4] != 2 {
				t.Fatalf("other blob: version %d, %v", b[4], err)
			}
			return b
		}},
		{"other blob's file", json, func([]byte) []byte {
			other := storetest.JSON(20<<10, 99)
			_, payload := blobstore.Encode(other)
			hdr := []byte{'T', 'F', 'S', 'B', 1, byte(blobstore.CodecZstd), 0, 0}
			return append(binary.LittleEndian.AppendUint64(hdr, uint64(len(other))), payload...)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := openLocal(t)
			defer l.Close()
			h, _ := putLocal(t, l, c.data)
			p := blobPath(l.Dir(), h)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, c.damage(b), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Get(h); !errors.Is(err, blobstore.ErrCorrupt) {
				t.Errorf("Get: %v, want ErrCorrupt", err)
			}
			if d, lent, err := l.GetLent(h); !errors.Is(err, blobstore.ErrCorrupt) || d != nil || lent != nil {
				t.Errorf("GetLent: %d bytes, lent %v, %v; want ErrCorrupt and nothing lent", len(d), lent != nil, err)
			}
		})
	}
}

// GetLent gives the same bytes as Get, in a lent buffer when the blob
// fills at least half of one, also when the buffers are reused for blobs of other sizes and
// encodings one after the other, and two held at once never share memory.
func TestLocalGetLent(t *testing.T) {
	l := openLocal(t)
	defer l.Close()
	blobs := []struct {
		name     string
		data     []byte
		lendable bool
	}{
		{"random 1 MiB", storetest.Random(1<<20, 1), true},
		{"json 1 MiB", storetest.JSON(1<<20, 2)[:1<<20], true},
		{"random 600 KiB", storetest.Random(600<<10, 7), true},
		{"json 600 KiB", storetest.JSON(600<<10, 8)[:600<<10], true},
		// Under half a buffer: a buffer of its own size (a reader may hold
		// it while its file is open).
		{"random 20 KiB", storetest.Random(20<<10, 3), false},
		{"json 20 KiB", storetest.JSON(20<<10, 4), false},
		{"empty", []byte{}, false},
		{"random 1 MiB + 1 KiB", storetest.Random(1<<20+1<<10, 5), false},
		{"json 2 MiB", storetest.JSON(2<<20, 6)[:2<<20], false},
	}
	hashes := make([]blobstore.Hash, len(blobs))
	for i, b := range blobs {
		hashes[i], _ = putLocal(t, l, b.data)
	}
	var held [][]byte
	var lents []*blobstore.Lent
	for round := range 3 {
		for i, b := range blobs {
			d, lent, err := l.GetLent(hashes[i])
			if err != nil {
				t.Fatalf("%s: %v", b.name, err)
			}
			if !bytes.Equal(d, b.data) {
				t.Fatalf("round %d, %s: GetLent gave other bytes", round, b.name)
			}
			if (lent != nil) != b.lendable {
				t.Errorf("%s: lent %v, want %v", b.name, lent != nil, b.lendable)
			}
			if round == 0 {
				held, lents = append(held, d), append(lents, lent)
				continue
			}
			lent.Return()
		}
		if round == 0 {
			// Every buffer still held keeps its own bytes.
			for i, d := range held {
				if !bytes.Equal(d, blobs[i].data) {
					t.Fatalf("%s changed while held with the others", blobs[i].name)
				}
			}
			for _, lent := range lents {
				lent.Return()
			}
		}
	}
}

// TestLocalReadsVersion1 reads blob files written before the CRC (format
// version 1: a 64-bit size, no CRC), verified with SHA-256 as then.
func TestLocalReadsVersion1(t *testing.T) {
	for _, data := range [][]byte{storetest.JSON(20<<10, 5), storetest.Random(20<<10, 6)} {
		l := openLocal(t)
		h, _ := putLocal(t, l, data)
		codec, payload := blobstore.Encode(data)
		v1 := append([]byte{'T', 'F', 'S', 'B', 1, byte(codec), 0, 0}, binary.LittleEndian.AppendUint64(nil, uint64(len(data)))...)
		v1 = append(v1, payload...)
		p := blobPath(l.Dir(), h)
		if err := os.WriteFile(p, v1, 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := l.Get(h); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("version 1 %v blob: %v", codec, err)
		}
		v1[len(v1)-3] ^= 1
		if err := os.WriteFile(p, v1, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Get(h); !errors.Is(err, blobstore.ErrCorrupt) {
			t.Fatalf("damaged version 1 %v blob: %v, want ErrCorrupt", codec, err)
		}
		l.Close()
	}
}

func TestLocalPutRepairsDamagedHeader(t *testing.T) {
	l := openLocal(t)
	defer l.Close()
	data := storetest.JSON(20<<10, 4)
	h, want := putLocal(t, l, data)
	if err := os.WriteFile(blobPath(l.Dir(), h), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Stat(h); !errors.Is(err, blobstore.ErrCorrupt) {
		t.Fatalf("Stat of damaged header: %v, want ErrCorrupt", err)
	}
	if _, got := putLocal(t, l, data); got != want {
		t.Errorf("re-Put = %+v, want %+v", got, want)
	}
	if got, err := l.Get(h); err != nil || !bytes.Equal(got, data) {
		t.Errorf("Get after repair: err %v", err)
	}
}

func TestLocalCompressionChoice(t *testing.T) {
	cases := []struct {
		name string
		data []byte
		want blobstore.Codec
	}{
		{"json", storetest.JSON(256<<10, 5), blobstore.CodecZstd},
		{"jpeg", storetest.JPEG(256<<10, 6), blobstore.CodecRaw},
		{"random", storetest.Random(256<<10, 7), blobstore.CodecRaw},
		{"empty", nil, blobstore.CodecRaw},
	}
	l := openLocal(t)
	defer l.Close()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, info := putLocal(t, l, c.data)
			if info.Codec != c.want {
				t.Errorf("codec %v, want %v", info.Codec, c.want)
			}
			fi, err := os.Stat(blobPath(l.Dir(), h))
			if err != nil {
				t.Fatal(err)
			}
			switch c.want {
			case blobstore.CodecZstd:
				if fi.Size() > int64(len(c.data))/2 {
					t.Errorf("compressed file has %d bytes for %d logical", fi.Size(), len(c.data))
				}
			case blobstore.CodecRaw:
				if fi.Size() != int64(len(c.data))+16 {
					t.Errorf("raw file has %d bytes for %d logical + 16 header", fi.Size(), len(c.data))
				}
			}
		})
	}
}

func TestLocalClosed(t *testing.T) {
	l := openLocal(t)
	h, _ := putLocal(t, l, []byte("x"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		name string
		call func() error
	}{
		{"Put", func() error { _, err := l.Put(h, []byte("x")); return err }},
		{"Get", func() error { _, err := l.Get(h); return err }},
		{"Has", func() error { _, err := l.Has(h); return err }},
		{"Stat", func() error { _, err := l.Stat(h); return err }},
		{"Delete", func() error { return l.Delete(h) }},
		{"List", func() error { return l.List("", func(blobstore.Hash) error { return nil }) }},
		{"Sync", l.Sync},
		{"Close", l.Close},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, blobstore.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", c.name, err)
		}
	}
}

func BenchmarkLocalPut(b *testing.B) {
	for _, size := range []int{256 << 10, 1 << 20} {
		for _, kind := range []string{"json", "random"} {
			data := storetest.Random(size, 1)
			if kind == "json" {
				data = storetest.JSON(size, 1)[:size]
			}
			b.Run("new/"+kind+"/"+sizeName(size), func(b *testing.B) {
				l := openLocal(b)
				defer l.Close()
				b.SetBytes(int64(size))
				var n uint64
				for b.Loop() {
					n++
					binary.LittleEndian.PutUint64(data, n) // a new blob each time
					if _, err := l.Put(blobstore.Sum(data), data); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		b.Run("dup/"+sizeName(size), func(b *testing.B) {
			l := openLocal(b)
			defer l.Close()
			data := storetest.JSON(size, 2)[:size]
			h := blobstore.Sum(data)
			if _, err := l.Put(h, data); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := l.Put(h, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLocalGet reads a 1 MiB blob into a new buffer (Get) and into a
// lent one given back after each read (GetLent, a stream's loads).
func BenchmarkLocalGet(b *testing.B) {
	for _, kind := range []string{"json", "random"} {
		for _, lend := range []bool{false, true} {
			name := kind + "/1MiB"
			if lend {
				name += "/lent"
			}
			b.Run(name, func(b *testing.B) {
				l := openLocal(b)
				defer l.Close()
				data := storetest.Random(1<<20, 3)
				if kind == "json" {
					data = storetest.JSON(1<<20, 3)[:1<<20]
				}
				h := blobstore.Sum(data)
				if _, err := l.Put(h, data); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					var err error
					if lend {
						var lent *blobstore.Lent
						_, lent, err = l.GetLent(h)
						lent.Return()
					} else {
						_, err = l.Get(h)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}

func TestSyncBlobs(t *testing.T) {
	l, err := blobstore.OpenLocal(t.TempDir(), blobstore.LocalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, b := storetest.Random(200<<10, 1), storetest.Random(300<<10, 2)
	ha, hb := blobstore.Sum(a), blobstore.Sum(b)
	for _, d := range [][]byte{a, b} {
		if _, err := l.Put(blobstore.Sum(d), d); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Delete(hb); err != nil {
		t.Fatal(err)
	}
	// A deleted blob is skipped; a present one is synced without error.
	if err := l.SyncBlobs([]blobstore.Hash{ha, hb}); err != nil {
		t.Fatalf("SyncBlobs: %v", err)
	}
	l.Close()
	if err := l.SyncBlobs([]blobstore.Hash{ha}); !errors.Is(err, blobstore.ErrClosed) {
		t.Fatalf("SyncBlobs after Close: %v, want ErrClosed", err)
	}
}
