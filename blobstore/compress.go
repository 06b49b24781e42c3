package blobstore

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

// DefaultLevel is the zstd level Encode uses. Measured with BenchmarkEncode
// on 1 MiB of session JSON (2 cores): SpeedFastest 278 MB/s at ratio 0.242,
// SpeedDefault 215 MB/s at 0.234, SpeedBetterCompression 150 MB/s at 0.223.
// Default saves 3% of bytes for 30% more CPU on the write-back path, so
// fastest it is; EncodeLevel serves background recompression. Random data
// costs 40 µs per MiB at any level thanks to the probe (a full attempt is
// about 800 µs).
const DefaultLevel = zstd.SpeedFastest

const (
	// minCompressSize: below this a zstd frame (header, block header,
	// checksum) cannot save the 1/8 we ask for often enough to be worth a try.
	minCompressSize = 64
	// probeSize is how much of a larger blob is test-compressed before
	// spending CPU on all of it.
	probeSize = 32 << 10
	// maxExpansion bounds the logical/stored ratio of a valid zstd frame: an
	// RLE block is 4 bytes for at most 128 KiB of output. Decode rejects
	// sizes beyond it before allocating, so a damaged header cannot make us
	// allocate gigabytes.
	maxExpansion = (128 << 10) / 4
)

// Shared coders: EncodeAll and DecodeAll are safe for concurrent use and
// each keeps a pool of GOMAXPROCS internal states, so one per level suffices.
var (
	encoderOnce [zstd.SpeedBestCompression + 1]sync.Once
	encoders    [zstd.SpeedBestCompression + 1]*zstd.Encoder
	encoderErrs [zstd.SpeedBestCompression + 1]error

	decoderOnce sync.Once
	decoder     *zstd.Decoder
	decoderErr  error
)

// encoderWindow is the zstd window of blob encoders: one chunk.
const encoderWindow = 1 << 20

func encoderFor(level zstd.EncoderLevel) (*zstd.Encoder, error) {
	encoderOnce[level].Do(func() {
		// A blob is at most a chunk (1 MiB), so no match is ever further
		// back than that: a 1 MiB window compresses exactly as the default
		// 8 MiB one, and each of the GOMAXPROCS encoder states keeps a
		// history buffer of the window's size (8 MiB each at the default:
		// the daemon's largest single allocation after a commit).
		encoders[level], encoderErrs[level] = zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithWindowSize(encoderWindow))
	})
	return encoders[level], encoderErrs[level]
}

func sharedDecoder() (*zstd.Decoder, error) {
	decoderOnce.Do(func() {
		decoder, decoderErr = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(0), // one state per GOMAXPROCS
			zstd.WithDecodeAllCapLimit(true))
	})
	return decoder, decoderErr
}

// Encode picks the cheaper representation of data at DefaultLevel.
// See EncodeLevel.
func Encode(data []byte) (Codec, []byte) { return EncodeLevel(data, DefaultLevel) }

// Hint is what the chunks of one stream (a file, written in order) have
// shown about compressing, so that a stream whose bytes do not compress
// is not probed again for every chunk. btrfs does the same per inode (a
// failed attempt sets NOCOMPRESS); here it is softer: after a chunk that
// was stored raw, the stream's next hintSkip chunks are stored raw
// without a probe, and the one after them is tried again, so a stream
// that changes character is compressed again within hintSkip chunks. Raw
// is always a correct encoding: a hint costs at most the space zstd would
// have saved on those chunks. The zero Hint knows nothing; a nil *Hint
// is a stream of one chunk. Safe for concurrent use.
//
// Only chunks larger than the probe take part: a smaller one is tried
// whole anyway, and a small file rewritten often (a session's
// metadata.json) must not have one version that zstd could not shrink
// store the next seven raw.
type Hint struct{ skip atomic.Int32 }

// hintSkip is how many chunks a raw chunk lets its stream's next chunks
// skip the probe for. Under fio's bytes (about 0.9 of them compress) the
// probe was 15% of the daemon's CPU on a sequential write: one chunk in
// eight keeps 2% of it.
const hintSkip = 7

// EncodeHint is Encode for a chunk of a stream: see Hint.
func EncodeHint(data []byte, hint *Hint) (Codec, []byte) {
	return encodeHinted(data, DefaultLevel, hint)
}

// EncodeLevel returns data as zstd at level when that saves at least 1/8,
// otherwise CodecRaw and data itself (not a copy). Already-compressed
// formats are recognised by their magic numbers and never compressed; for
// the rest a 32 KiB sample is compressed first so incompressible blobs cost
// little CPU. An unknown level means DefaultLevel.
func EncodeLevel(data []byte, level zstd.EncoderLevel) (Codec, []byte) {
	return encodeHinted(data, level, nil)
}

func encodeHinted(data []byte, level zstd.EncoderLevel, hint *Hint) (Codec, []byte) {
	if len(data) < minCompressSize {
		return CodecRaw, data
	}
	if len(data) <= probeSize {
		hint = nil
	}
	if hint != nil {
		if n := hint.skip.Load(); n > 0 && hint.skip.CompareAndSwap(n, n-1) {
			return CodecRaw, data
		}
	}
	codec, out := encodeLevel(data, level)
	if hint != nil {
		if codec == CodecRaw {
			hint.skip.Store(hintSkip)
		} else {
			hint.skip.Store(0)
		}
	}
	return codec, out
}

func encodeLevel(data []byte, level zstd.EncoderLevel) (Codec, []byte) {
	if IsCompressedFormat(data) {
		return CodecRaw, data
	}
	if level < zstd.SpeedFastest || level > zstd.SpeedBestCompression {
		level = DefaultLevel
	}
	if len(data) > probeSize {
		// Two 4 KiB glances (head and middle) that zstd cannot shrink at
		// all settle it for a few microseconds: random and media bytes, and
		// fio's buffers, whose 4 KiB pieces hold no repeat zstd can use.
		// Otherwise a 32 KiB probe decides.
		if stored(data[:glanceSize]) && stored(data[len(data)/2:][:glanceSize]) {
			return CodecRaw, data
		}
		if !probeShrinks(data[:probeSize], level) {
			return CodecRaw, data
		}
	}
	enc, err := encoderFor(level)
	if err != nil {
		// Raw is always a correct encoding; failing to build an encoder
		// (an invalid option, which tests would catch) costs only space.
		return CodecRaw, data
	}
	out := enc.EncodeAll(data, make([]byte, 0, len(data)-len(data)/8))
	if !savesEnough(len(data), len(out)) {
		return CodecRaw, data
	}
	return CodecZstd, out
}

// probeShrinks compresses sample at the fastest level and reports whether
// the result is small enough that compressing the whole blob at level is
// likely to save the 1/8 Encode asks for.
//
// At the fastest level (the write-back path) the probe is the same coder
// as the real attempt, and a 32 KiB sample compresses a few percent worse
// than the 1 MiB blob it comes from, so the probe must clear the final bar
// of 1/8 itself. A looser bar (1/16, on 64 KiB) let through "marginal" data
// such as fio's buffers (random bytes with zeroed fields: 64 KiB -> 0.90,
// 32 KiB -> 0.91, 1 MiB -> 0.88), which then cost a full zstd pass per
// chunk only to be stored raw: 57% of the daemon's CPU under fio. Blobs
// that would have saved between 1/8 and about 1/6 are stored raw instead,
// which costs a few percent of their size. On such data zstd runs at about
// 110 MB/s, so 32 KiB rather than 64 KiB quarters the probe (0.3 ms instead
// of 1.2 ms per chunk); on random bytes it gives up at once either way.
// Higher levels (background recompression, where CPU is cheap) do better
// than the probe, so there the bar is 1/16.
func probeShrinks(sample []byte, level zstd.EncoderLevel) bool {
	enc, err := encoderFor(zstd.SpeedFastest)
	if err != nil {
		return false
	}
	bp := probeBufs.Get().(*[]byte)
	out := enc.EncodeAll(sample, (*bp)[:0])
	n := len(out)
	*bp = out[:0]
	probeBufs.Put(bp)
	bar := len(sample) / 16
	if level <= zstd.SpeedFastest {
		bar = len(sample) / 8
	}
	return n <= len(sample)-bar
}

// glanceSize is the sample stored looks at.
const glanceSize = 4 << 10

// stored reports whether zstd at the fastest level cannot shrink sample by
// a single byte (it emits the block raw).
func stored(sample []byte) bool {
	enc, err := encoderFor(zstd.SpeedFastest)
	if err != nil {
		return false
	}
	bp := probeBufs.Get().(*[]byte)
	out := enc.EncodeAll(sample, (*bp)[:0])
	n := len(out)
	*bp = out[:0]
	probeBufs.Put(bp)
	return n >= len(sample)
}

// probeBufs holds output buffers for probes (a probe's output is thrown
// away, so the buffer is reused).
var probeBufs = sync.Pool{New: func() any { b := make([]byte, 0, probeSize+probeSize/8); return &b }}

func savesEnough(logical, stored int) bool { return stored <= logical-logical/8 }

// Decode reverses Encode: it returns exactly logicalSize bytes or an error
// wrapping ErrCorrupt. For CodecRaw the result is stored itself.
func Decode(c Codec, stored []byte, logicalSize int) ([]byte, error) {
	if logicalSize < 0 {
		return nil, fmt.Errorf("%w: negative logical size %d", ErrCorrupt, logicalSize)
	}
	switch c {
	case CodecRaw:
		if len(stored) != logicalSize {
			return nil, fmt.Errorf("%w: raw blob has %d bytes, want %d", ErrCorrupt, len(stored), logicalSize)
		}
		return stored, nil
	case CodecZstd:
		return decodeZstd(stored, logicalSize)
	}
	return nil, fmt.Errorf("%w: unknown codec %v", ErrCorrupt, c)
}

func decodeZstd(stored []byte, logicalSize int) ([]byte, error) {
	return decodeZstdInto(stored, logicalSize, nil)
}

// decodeZstdLent is decodeZstd into a lent buffer when the output is
// lendable; on error nothing stays lent.
func decodeZstdLent(stored []byte, logicalSize int) ([]byte, *Lent, error) {
	if !lendable(logicalSize) {
		out, err := decodeZstd(stored, logicalSize)
		return out, nil, err
	}
	lent, dst := borrow(logicalSize)
	out, err := decodeZstdInto(stored, logicalSize, dst[:0])
	if err != nil {
		lent.Return()
		return nil, nil, err
	}
	return out, lent, nil
}

// decodeZstdInto decodes into dst's memory (nil: a new buffer); dst must
// have room for logicalSize bytes.
func decodeZstdInto(stored []byte, logicalSize int, dst []byte) ([]byte, error) {
	var hdr zstd.Header
	if err := hdr.Decode(stored); err != nil {
		return nil, fmt.Errorf("%w: zstd header: %v", ErrCorrupt, err)
	}
	// EncodeAll records the content size except for inputs under 256
	// bytes; when present it must agree with the size we were told.
	if hdr.HasFCS && hdr.FrameContentSize != uint64(logicalSize) {
		return nil, fmt.Errorf("%w: zstd frame size %d (known %v), want %d",
			ErrCorrupt, hdr.FrameContentSize, hdr.HasFCS, logicalSize)
	}
	if uint64(logicalSize) > uint64(len(stored))*maxExpansion {
		return nil, fmt.Errorf("%w: %d stored bytes cannot hold %d logical bytes", ErrCorrupt, len(stored), logicalSize)
	}
	dec, err := sharedDecoder()
	if err != nil {
		return nil, fmt.Errorf("blobstore: zstd decoder: %w", err)
	}
	if dst == nil {
		dst = make([]byte, 0, logicalSize)
	}
	out, err := dec.DecodeAll(stored, dst)
	if err != nil {
		return nil, fmt.Errorf("%w: zstd: %v", ErrCorrupt, err)
	}
	if len(out) != logicalSize {
		return nil, fmt.Errorf("%w: zstd gave %d bytes, want %d", ErrCorrupt, len(out), logicalSize)
	}
	return out, nil
}

// magics are prefixes of formats whose payload is already compressed.
var magics = [][]byte{
	{0xFF, 0xD8, 0xFF}, // JPEG
	{0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A}, // PNG
	[]byte("GIF87a"),
	[]byte("GIF89a"),
	[]byte("ID3"),                      // MP3 with an ID3v2 tag
	{'P', 'K', 0x03, 0x04},             // zip (also docx, jar, epub, ...)
	{'P', 'K', 0x05, 0x06},             // empty zip
	{'P', 'K', 0x07, 0x08},             // spanned zip
	{0x1F, 0x8B},                       // gzip
	{0x28, 0xB5, 0x2F, 0xFD},           // zstd
	{0xFD, '7', 'z', 'X', 'Z', 0x00},   // xz
	[]byte("BZh"),                      // bzip2
	{'7', 'z', 0xBC, 0xAF, 0x27, 0x1C}, // 7z
	{0x04, 0x22, 0x4D, 0x18},           // lz4 frame
	[]byte("Rar!\x1A\x07"),             // rar
	[]byte("OggS"),                     // ogg (vorbis, opus)
	[]byte("fLaC"),                     // flac
	{0x1A, 0x45, 0xDF, 0xA3},           // matroska, webm
}

// isoBoxes are the first box types of ISO-BMFF / QuickTime files (MP4,
// MOV, M4A, HEIC, AVIF), found at offset 4 after the box size.
var isoBoxes = [][]byte{[]byte("ftyp"), []byte("moov"), []byte("mdat"), []byte("wide")}

// IsCompressedFormat reports whether data starts like a format whose
// content is already compressed, so zstd would only waste CPU on it.
func IsCompressedFormat(data []byte) bool {
	for _, m := range magics {
		if bytes.HasPrefix(data, m) {
			return true
		}
	}
	if len(data) >= 12 && bytes.Equal(data[:4], []byte("RIFF")) && bytes.Equal(data[8:12], []byte("WEBP")) {
		return true
	}
	if len(data) >= 8 {
		for _, b := range isoBoxes {
			if bytes.Equal(data[4:8], b) {
				return true
			}
		}
	}
	return isMPEGAudioFrame(data)
}

// isMPEGAudioFrame matches an MP3 (MPEG-1/2/2.5 layer II or III) or AAC
// ADTS frame header without an ID3 tag. It is strict on purpose: a loose
// 11-bit sync check would also match the UTF-16LE byte order mark FF FE,
// and misjudging compressible text costs more than probing real audio.
func isMPEGAudioFrame(data []byte) bool {
	if len(data) < 3 || data[0] != 0xFF || data[1]&0xE0 != 0xE0 {
		return false
	}
	if data[1]&0xF6 == 0xF0 { // ADTS: 12-bit sync, layer 00
		return true
	}
	version := data[1] >> 3 & 3
	layer := data[1] >> 1 & 3
	bitrate := data[2] >> 4
	rate := data[2] >> 2 & 3
	return version != 1 && (layer == 1 || layer == 2) && bitrate != 0 && bitrate != 15 && rate != 3
}
