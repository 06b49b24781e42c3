package storetest

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Random returns n incompressible bytes, the same for the same seed.
func Random(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n - n%8; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Marginal returns n bytes that zstd shrinks by only 6-8%: random bytes
// with a short run of zeros every 128 bytes, like fio's default buffers
// (which carry a zeroed header field per 512-byte block). Worth storing
// raw, but a loose probe of the first 64 KiB would not say so.
func Marginal(n int, seed uint64) []byte {
	b := Random(n, seed)
	for i := 0; i < n; i += 128 {
		clear(b[i:min(n, i+10)])
	}
	return b
}

var words = strings.Fields(`session screenshot audio transcript summary insight blocker
achievement meeting review refactor deploy database query index cache latency error
timeout retry user dashboard chart report design sketch prototype feature branch merge
commit test coverage benchmark memory profile trace request response client server
config token schema migration backup restore archive export import search filter sort
window editor terminal browser slack email calendar document spreadsheet presentation
focus break lunch call standup planning estimate deadline priority bug issue ticket`)

// JSON returns at least n bytes of session-like JSON (ids, timestamps, prose
// from a small vocabulary), compressible the way real app files are.
func JSON(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	var b strings.Builder
	b.WriteString(`{"sessionId":"` + fmt.Sprintf("%016x", r.Uint64()) + `","screenshots":[`)
	for i := 0; b.Len() < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"%016x","timestamp":"2025-%02d-%02dT%02d:%02d:%02d.%03dZ","attachmentId":"att-%08x",`,
			r.Uint64(), 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1000), r.Uint32())
		b.WriteString(`"aiAnalysis":{"summary":"`)
		sentence(&b, r, 12+r.IntN(20))
		b.WriteString(`","detectedActivity":"` + words[r.IntN(len(words))] + `","extractedText":"`)
		sentence(&b, r, 5+r.IntN(40))
		fmt.Fprintf(&b, `","confidence":%.3f},"tags":["%s","%s"]}`, r.Float64(), words[r.IntN(len(words))], words[r.IntN(len(words))])
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

func sentence(b *strings.Builder, r *rand.Rand, n int) {
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(words[r.IntN(len(words))])
	}
}

// JPEG returns n bytes that start with a JPEG signature but are otherwise
// compressible: a store must round-trip them whatever codec it picks.
func JPEG(n int, seed uint64) []byte {
	b := append([]byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0x00}, JSON(n, seed)...)
	return b[:max(n, 11)]
}
