package blobstore

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// The probe decides whether a blob gets a full zstd pass. Data that a full
// pass shrinks by less than the 1/8 Encode keeps must be refused by the
// probe at the write-back level, or every such chunk is compressed twice
// for nothing (fio's buffers: 57% of daemon CPU).
func TestProbeRefusesMarginalSavings(t *testing.T) {
	marginal := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range marginal {
		marginal[i] = byte(r.Uint32())
	}
	for i := 0; i < len(marginal); i += 128 {
		clear(marginal[i : i+10]) // 6-8% compressible, like fio's buffers
	}
	text := bytes.Repeat([]byte(`{"summary":"refactor the cache, then review the index","id":12},`), (1<<20)/64)
	cases := []struct {
		name  string
		data  []byte
		level zstd.EncoderLevel
		want  bool
	}{
		{"marginal at fastest", marginal, zstd.SpeedFastest, false},
		{"text at fastest", text, zstd.SpeedFastest, true},
		{"text at best", text, zstd.SpeedBestCompression, true},
		{"zeros at fastest", make([]byte, 1<<20), zstd.SpeedFastest, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := probeShrinks(c.data[:probeSize], c.level); got != c.want {
				t.Errorf("probeShrinks = %v, want %v", got, c.want)
			}
		})
	}
	// The full pass agrees that marginal data is not worth keeping as zstd.
	enc, err := encoderFor(zstd.SpeedFastest)
	if err != nil {
		t.Fatal(err)
	}
	if out := enc.EncodeAll(marginal, nil); savesEnough(len(marginal), len(out)) {
		t.Fatalf("test data is not marginal: %d -> %d", len(marginal), len(out))
	}
}
