package gen

import "encoding/binary"

// Attachment bytes are pure functions of (seed, index): nothing has to be kept
// in memory to write an exact duplicate of an earlier screenshot, and workers
// can run in any order.

const (
	streamSession uint64 = iota + 1
	streamDup
	streamDupSource
	streamImage
	streamAudio
	streamPlant
)

// splitmix64 is a fast, well-mixed 64-bit hash used as a keyed PRNG.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func (g *generator) key(stream, idx uint64) uint64 {
	return splitmix64(splitmix64(g.opts.Seed^stream*0x632be59bd9b4e019) ^ idx)
}

func (g *generator) unit(stream, idx uint64) float64 {
	return float64(g.key(stream, idx)>>11) / (1 << 53)
}

// isDup reports whether global screenshot g copies an earlier one.
func (g *generator) isDup(shot uint64) bool {
	return shot > 0 && g.unit(streamDup, shot) < g.opts.Dup
}

// dupSource picks the earlier screenshot that shot copies: usually one from
// the same session (an idle screen), otherwise any earlier one.
func (g *generator) dupSource(shot uint64) uint64 {
	k := g.key(streamDupSource, shot)
	perSession := uint64(g.opts.Screenshots)
	if j := shot % perSession; j > 0 && k%10 < 7 {
		return shot - j + (k>>8)%j
	}
	return (k >> 8) % shot
}

// imageOrigin follows duplicate links back to the screenshot whose bytes
// were first generated; its index seeds the content.
func (g *generator) imageOrigin(shot uint64) uint64 {
	for g.isDup(shot) {
		shot = g.dupSource(shot)
	}
	return shot
}

const (
	minImage = 100 << 10
	maxImage = 300 << 10
)

func (g *generator) imageSize(origin uint64) int {
	return minImage + int(g.key(streamImage, origin)%(maxImage-minImage+1))
}

// jpegHeader is an SOI marker followed by a JFIF APP0 segment.
var jpegHeader = []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0x00,
	0x01, 0x01, 0x00, 0x00, 0x48, 0x00, 0x48, 0x00, 0x00}

// image fills buf with the JPEG-like bytes of origin: JFIF header,
// incompressible body, EOI marker.
func (g *generator) image(buf []byte, origin uint64) []byte {
	n := g.imageSize(origin)
	buf = fillRandom(buf[:0], n, g.key(streamImage, origin^0xa5a5a5a5))
	copy(buf, jpegHeader)
	buf[n-2], buf[n-1] = 0xFF, 0xD9
	return buf
}

// MP3 framing: MPEG-1 Layer III, 96 kbit/s, 44.1 kHz, mono. A frame is
// 144*96000/44100 = 313 bytes; 10 s is 383 frames, about 120 KB.
var (
	id3Header   = []byte{'I', 'D', '3', 4, 0, 0, 0, 0, 0, 0}
	frameHeader = []byte{0xFF, 0xFB, 0x70, 0xC4}
)

const (
	frameBytes     = 313
	framesPer10Sec = 383
	audioSize      = 10 + frameBytes*framesPer10Sec
)

// audio fills buf with one 10 s MP3-like segment.
func (g *generator) audio(buf []byte, segment uint64) []byte {
	buf = fillRandom(buf[:0], audioSize, g.key(streamAudio, segment))
	copy(buf, id3Header)
	for off := len(id3Header); off < len(buf); off += frameBytes {
		copy(buf[off:], frameHeader)
	}
	return buf
}

// fillRandom appends n bytes of a splitmix64 stream to buf.
func fillRandom(buf []byte, n int, state uint64) []byte {
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	i := 0
	for ; i+8 <= n; i += 8 {
		state += 0x9e3779b97f4a7c15
		binary.LittleEndian.PutUint64(buf[i:], splitmix64(state))
	}
	for ; i < n; i++ {
		state += 0x9e3779b97f4a7c15
		buf[i] = byte(splitmix64(state))
	}
	return buf
}
