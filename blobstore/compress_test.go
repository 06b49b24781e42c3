package blobstore_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/blobstore/storetest"
)

func TestEncodeChoosesCodec(t *testing.T) {
	mp3Frame := append([]byte{0xFF, 0xFB, 0x90, 0x64}, storetest.JSON(10<<10, 1)...)
	utf16 := append([]byte{0xFF, 0xFE}, bytes.Repeat([]byte{'{', 0, '"', 0, 'a', 0, '"', 0, ':', 0, '1', 0, '}', 0}, 1000)...)
	cases := []struct {
		name string
		data []byte
		want blobstore.Codec
	}{
		{"empty", nil, blobstore.CodecRaw},
		{"tiny text", []byte("short"), blobstore.CodecRaw},
		{"json 4KiB", storetest.JSON(4<<10, 1), blobstore.CodecZstd},
		{"json 1MiB", storetest.JSON(1<<20, 2), blobstore.CodecZstd},
		{"zeros 1MiB", make([]byte, 1<<20), blobstore.CodecZstd},
		{"random 4KiB", storetest.Random(4<<10, 3), blobstore.CodecRaw},
		{"random 1MiB", storetest.Random(1<<20, 4), blobstore.CodecRaw},
		{"marginal 1MiB (fio-like)", storetest.Marginal(1<<20, 4), blobstore.CodecRaw},
		{"jpeg magic, compressible body", storetest.JPEG(100<<10, 5), blobstore.CodecRaw},
		{"mp3 frame sync, compressible body", mp3Frame, blobstore.CodecRaw},
		{"utf-16 text with BOM", utf16, blobstore.CodecZstd},
		// The probe looks at the first 32 KiB only: a random head hides a
		// compressible tail. That is the price of a cheap probe.
		{"random head, json tail", append(storetest.Random(64<<10, 6), storetest.JSON(1<<20, 6)...), blobstore.CodecRaw},
		{"json head, random tail", append(storetest.JSON(64<<10, 7)[:64<<10], storetest.Random(1<<20, 7)...), blobstore.CodecRaw},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			codec, stored := blobstore.Encode(c.data)
			if codec != c.want {
				t.Errorf("codec %v (%d -> %d bytes), want %v", codec, len(c.data), len(stored), c.want)
			}
			if codec == blobstore.CodecZstd && len(stored) > len(c.data)*7/8 {
				t.Errorf("zstd kept although it saved less than 1/8: %d -> %d", len(c.data), len(stored))
			}
			got, err := blobstore.Decode(codec, stored, len(c.data))
			if err != nil || !bytes.Equal(got, c.data) {
				t.Fatalf("Decode: err %v, equal %v", err, bytes.Equal(got, c.data))
			}
		})
	}
}

// TestEncodeHint: a stream's raw chunk lets its next seven skip the probe
// (stored raw even when they would compress), the eighth is tried again;
// a chunk that compresses ends the skipping at once; a stream that
// compresses is never skipped; a nil hint is Encode.
func TestEncodeHint(t *testing.T) {
	const (
		R = 'r' // incompressible (random)
		M = 'm' // marginal: fio's bytes, refused by the probe
		J = 'j' // JSON: compresses
	)
	cases := []struct {
		name   string
		stream string // chunk kinds, in write order
		want   string // codec per chunk: r raw, z zstd
	}{
		{"json stream", "jjjjjjjjjj", "zzzzzzzzzz"},
		{"random stream", "rrrrrrrrrrrrrrrrr", "rrrrrrrrrrrrrrrrr"},
		{"random then json", "rjjjjjjjjjj", "rrrrrrrrzzz"},
		{"marginal then json", "mjjjjjjjjjj", "rrrrrrrrzzz"},
		{"json, random, json", "jjrjjjjjjjjjj", "zzrrrrrrrrzzz"},
		{"json stays compressed after the skip", "rjjjjjjjjjjjjjjjjj", "rrrrrrrrzzzzzzzzzz"},
		{"a raw retry restarts the skip", "rjjjjjjjrjjjjjjjjj", "rrrrrrrrrrrrrrrrzz"},
	}
	chunk := func(kind byte, i int) []byte {
		switch kind {
		case R:
			return storetest.Random(256<<10, uint64(100+i))
		case M:
			return storetest.Marginal(256<<10, uint64(100+i))
		}
		return storetest.JSON(256<<10, uint64(100+i))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hint blobstore.Hint
			got := make([]byte, len(c.stream))
			for i := range c.stream {
				data := chunk(c.stream[i], i)
				codec, stored := blobstore.EncodeHint(data, &hint)
				got[i] = 'r'
				if codec == blobstore.CodecZstd {
					got[i] = 'z'
				}
				back, err := blobstore.Decode(codec, stored, len(data))
				if err != nil || !bytes.Equal(back, data) {
					t.Fatalf("chunk %d: Decode: err %v, equal %v", i, err, bytes.Equal(back, data))
				}
			}
			if string(got) != c.want {
				t.Errorf("codecs %s, want %s", got, c.want)
			}
		})
	}
	t.Run("small chunks neither skip nor teach", func(t *testing.T) {
		var hint blobstore.Hint
		small := storetest.Random(4<<10, 200)
		if codec, _ := blobstore.EncodeHint(small, &hint); codec != blobstore.CodecRaw {
			t.Fatalf("random 4 KiB: %v, want raw", codec)
		}
		for i, data := range [][]byte{storetest.JSON(8<<10, 201), storetest.JSON(256<<10, 202)} {
			if codec, _ := blobstore.EncodeHint(data, &hint); codec != blobstore.CodecZstd {
				t.Errorf("json chunk %d after a small raw one: %v, want zstd", i, codec)
			}
		}
	})
	t.Run("nil hint", func(t *testing.T) {
		for i, kind := range []byte{R, J, J} {
			data := chunk(kind, i)
			c1, _ := blobstore.EncodeHint(data, nil)
			c2, _ := blobstore.Encode(data)
			if c1 != c2 {
				t.Errorf("chunk %d: EncodeHint(nil) %v, Encode %v", i, c1, c2)
			}
		}
	})
}

func TestEncodeLevels(t *testing.T) {
	data := storetest.JSON(300<<10, 8)
	levels := []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression, zstd.SpeedBestCompression, 0, 99}
	for _, level := range levels {
		t.Run(fmt.Sprint(int(level)), func(t *testing.T) {
			codec, stored := blobstore.EncodeLevel(data, level)
			if codec != blobstore.CodecZstd {
				t.Fatalf("codec %v, want zstd", codec)
			}
			got, err := blobstore.Decode(codec, stored, len(data))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("Decode: err %v, equal %v", err, bytes.Equal(got, data))
			}
		})
	}
}

func TestDecodeRejectsDamage(t *testing.T) {
	data := storetest.JSON(50<<10, 9)
	_, z := blobstore.Encode(data)
	flipped := bytes.Clone(z)
	flipped[len(flipped)/2] ^= 0x40
	cases := []struct {
		name    string
		codec   blobstore.Codec
		stored  []byte
		logical int
	}{
		{"raw too short", blobstore.CodecRaw, []byte("abc"), 4},
		{"raw too long", blobstore.CodecRaw, []byte("abcde"), 4},
		{"negative size", blobstore.CodecRaw, nil, -1},
		{"unknown codec", blobstore.Codec(7), data, len(data)},
		{"zstd truncated", blobstore.CodecZstd, z[:len(z)/2], len(data)},
		{"zstd flipped byte", blobstore.CodecZstd, flipped, len(data)},
		{"zstd wrong size", blobstore.CodecZstd, z, len(data) - 1},
		{"zstd absurd size", blobstore.CodecZstd, z, 1 << 40},
		{"zstd garbage", blobstore.CodecZstd, []byte("not a zstd frame at all"), 100},
		{"zstd empty", blobstore.CodecZstd, nil, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := blobstore.Decode(c.codec, c.stored, c.logical); !errors.Is(err, blobstore.ErrCorrupt) {
				t.Errorf("Decode: %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestIsCompressedFormat(t *testing.T) {
	cases := []struct {
		name string
		head []byte
		want bool
	}{
		{"jpeg", []byte{0xFF, 0xD8, 0xFF, 0xE1}, true},
		{"png", []byte("\x89PNG\r\n\x1a\n...."), true},
		{"gif", []byte("GIF89a.."), true},
		{"webp", []byte("RIFF\x10\x00\x00\x00WEBPVP8 "), true},
		{"wav is riff but not webp", []byte("RIFF\x10\x00\x00\x00WAVEfmt "), false},
		{"mp3 id3", []byte("ID3\x04\x00"), true},
		{"mp3 frame mpeg1 layer3", []byte{0xFF, 0xFB, 0x90, 0x64}, true},
		{"mp3 frame mpeg2 layer3", []byte{0xFF, 0xF3, 0x48, 0xC4}, true},
		{"aac adts", []byte{0xFF, 0xF1, 0x50, 0x80}, true},
		{"mp3 reserved bitrate", []byte{0xFF, 0xFB, 0xF0, 0x64}, false},
		{"utf-16le bom", []byte{0xFF, 0xFE, '{', 0}, false},
		{"mp4", []byte("\x00\x00\x00\x20ftypisom"), true},
		{"mov", []byte("\x00\x00\x00\x08wide\x00\x00"), true},
		{"zip", []byte("PK\x03\x04\x14\x00"), true},
		{"gzip", []byte{0x1F, 0x8B, 0x08}, true},
		{"zstd", []byte{0x28, 0xB5, 0x2F, 0xFD, 0x00}, true},
		{"xz", []byte("\xFD7zXZ\x00\x00"), true},
		{"bzip2", []byte("BZh91AY"), true},
		{"7z", []byte("7z\xBC\xAF\x27\x1C\x00"), true},
		{"json", []byte(`{"id":"x"}`), false},
		{"text", []byte("hello world"), false},
		{"short", []byte{0xFF}, false},
		{"empty", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := blobstore.IsCompressedFormat(c.head); got != c.want {
				t.Errorf("IsCompressedFormat(% x) = %v, want %v", c.head, got, c.want)
			}
		})
	}
}

// BenchmarkEncode compares levels on 1 MiB of random data, of barely
// compressible data (fio's kind) and of JSON;
// "ratio" is stored/logical bytes.
func BenchmarkEncode(b *testing.B) {
	inputs := []struct {
		name string
		data []byte
	}{
		{"random", storetest.Random(1<<20, 1)},
		{"marginal", storetest.Marginal(1<<20, 1)},
		{"json", storetest.JSON(1<<20, 2)[:1<<20]},
	}
	levels := []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression}
	for _, in := range inputs {
		for _, level := range levels {
			b.Run(in.name+"/"+level.String(), func(b *testing.B) {
				b.SetBytes(int64(len(in.data)))
				var stored []byte
				for b.Loop() {
					_, stored = blobstore.EncodeLevel(in.data, level)
				}
				b.ReportMetric(float64(len(stored))/float64(len(in.data)), "ratio")
			})
		}
		// The write-back path: the chunks of one file, in order.
		b.Run(in.name+"/stream", func(b *testing.B) {
			b.SetBytes(int64(len(in.data)))
			var hint blobstore.Hint
			var stored []byte
			for b.Loop() {
				_, stored = blobstore.EncodeHint(in.data, &hint)
			}
			b.ReportMetric(float64(len(stored))/float64(len(in.data)), "ratio")
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	data := storetest.JSON(1<<20, 2)[:1<<20]
	for _, level := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault} {
		codec, stored := blobstore.EncodeLevel(data, level)
		b.Run("json/"+level.String(), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := blobstore.Decode(codec, stored, len(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// zstd leaves out the frame's content size for inputs under 256 bytes;
// such blobs must still decode.
func TestSmallCompressibleRoundTrip(t *testing.T) {
	for _, n := range []int{1, 63, 64, 65, 129, 200, 255, 256, 257, 4096} {
		data := bytes.Repeat([]byte("x"), n)
		codec, stored := blobstore.Encode(data)
		got, err := blobstore.Decode(codec, stored, n)
		if err != nil {
			t.Fatalf("n=%d codec=%v: %v", n, codec, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("n=%d: round trip mismatch", n)
		}
	}
}
