package blobstore_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/blobstore/storetest"
)

// A dedup hit on a blob this process wrote or read is trusted on a stat;
// the file changing in place (same size, byte flipped, no Get in between)
// or being replaced must still send the Put back to the full comparison,
// which stores the content again.
func TestLocalDedupHitAfterDamageInProcess(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, p string)
	}{
		{"rewritten in place", func(t *testing.T, p string) {
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			b := make([]byte, 1)
			if _, err := f.ReadAt(b, 100); err != nil {
				t.Fatal(err)
			}
			b[0] ^= 0x40
			if _, err := f.WriteAt(b, 100); err != nil {
				t.Fatal(err)
			}
		}},
		{"replaced by rename", func(t *testing.T, p string) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0x40
			if err := os.WriteFile(p+".x", b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(p+".x", p); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		for _, how := range []string{"put", "get"} {
			t.Run(c.name+" after "+how, func(t *testing.T) {
				l := openLocal(t)
				defer l.Close()
				for _, data := range [][]byte{storetest.Random(300<<10, 7), storetest.JSON(300<<10, 8)} {
					h, _ := putLocal(t, l, data)
					if how == "get" {
						if got, err := l.Get(h); err != nil || !bytes.Equal(got, data) {
							t.Fatalf("Get: %v", err)
						}
					}
					c.damage(t, blobPath(l.Dir(), h))
					putLocal(t, l, data) // must not deduplicate onto the damage
					if got, err := l.Get(h); err != nil || !bytes.Equal(got, data) {
						t.Fatalf("Get after a second Put of the damaged blob's content: %v", err)
					}
				}
			})
		}
	}
}

// A dedup hit of a verified blob answers the same Info as the first Put.
func TestLocalDedupHitInfo(t *testing.T) {
	l := openLocal(t)
	defer l.Close()
	for _, data := range [][]byte{storetest.Random(200<<10, 1), storetest.JSON(200<<10, 2)} {
		h, first := putLocal(t, l, data)
		_, again := putLocal(t, l, data)
		if again != first {
			t.Errorf("dedup hit Info %+v, first Put %+v", again, first)
		}
		if _, err := l.Get(h); err != nil {
			t.Fatal(err)
		}
		if _, third := putLocal(t, l, data); third != first {
			t.Errorf("dedup hit after Get: Info %+v, first Put %+v", third, first)
		}
	}
}

// BenchmarkLocalPutDuplicate is a dedup hit of a 1 MiB chunk: "verified"
// on a blob this process wrote (a stat), "cold" on one a fresh store
// finds on disk (read back and compared).
func BenchmarkLocalPutDuplicate(b *testing.B) {
	data := storetest.Random(1<<20, 11)
	h := blobstore.Sum(data)
	dir := b.TempDir()
	l, err := blobstore.OpenLocal(dir, blobstore.LocalOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Put(h, data); err != nil {
		b.Fatal(err)
	}
	b.Run("verified", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := l.PutHashed(h, data, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cold", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			b.StopTimer()
			l2, err := blobstore.OpenLocal(dir, blobstore.LocalOptions{})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, err := l2.PutHashed(h, data, nil); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			l2.Close()
			b.StartTimer()
		}
	})
}
