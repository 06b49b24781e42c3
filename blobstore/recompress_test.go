package blobstore_test

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/blobstore/storetest"
)

func TestRecompress(t *testing.T) {
	tests := []struct {
		name    string
		data    []byte
		rewrite bool // a second, smaller encoding exists
	}{
		{"session JSON", storetest.JSON(512<<10, 7), true},
		{"JPEG", storetest.JPEG(256<<10, 7), false},
		{"random bytes", storetest.Random(256<<10, 7), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := openLocal(t)
			h := blobstore.Sum(tt.data)
			put, err := l.Put(h, tt.data)
			if err != nil {
				t.Fatal(err)
			}
			res, err := l.Recompress(h, zstd.SpeedBestCompression)
			if err != nil {
				t.Fatal(err)
			}
			if res.Rewritten != tt.rewrite || res.Before != put {
				t.Fatalf("recompress: %+v (put %+v), want rewritten %v", res, put, tt.rewrite)
			}
			if tt.rewrite && (res.After.Stored >= res.Before.Stored || res.After.Size != int64(len(tt.data))) {
				t.Fatalf("rewritten blob is %+v, was %+v", res.After, res.Before)
			}
			got, err := l.Get(h)
			if err != nil || !bytes.Equal(got, tt.data) {
				t.Fatalf("get after recompress: %v, equal %v", err, bytes.Equal(got, tt.data))
			}
			if st, err := l.Stat(h); err != nil || st != res.After {
				t.Fatalf("stat %+v (%v), want %+v", st, err, res.After)
			}
			again, err := l.Recompress(h, zstd.SpeedBestCompression)
			if err != nil || again.Rewritten || again.Before != res.After {
				t.Fatalf("second recompress: %+v, %v", again, err)
			}
		})
	}
}

func TestRecompressLeavesDamageAlone(t *testing.T) {
	l := openLocal(t)
	data := storetest.JSON(300<<10, 3)
	h := blobstore.Sum(data)
	if _, err := l.Put(h, data); err != nil {
		t.Fatal(err)
	}
	if err := (corruptible{l}).Corrupt(h); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(blobPath(l.Dir(), h))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Recompress(h, zstd.SpeedBestCompression); !errors.Is(err, blobstore.ErrCorrupt) {
		t.Fatalf("recompress of a damaged blob: %v, want ErrCorrupt", err)
	}
	after, _ := os.ReadFile(blobPath(l.Dir(), h))
	if !bytes.Equal(before, after) {
		t.Fatal("recompress changed a damaged blob")
	}
	if _, err := l.Recompress(blobstore.Sum([]byte("absent")), zstd.SpeedBestCompression); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("recompress of an absent blob: %v, want ErrNotFound", err)
	}
}
