package envelope

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/taskerfs/taskerfs/gen"
)

func TestValid(t *testing.T) {
	deep := func(n int, open, close string) []byte {
		return append(bytes.Repeat([]byte(open), n), bytes.Repeat([]byte(close), n)...)
	}
	tests := [][]byte{
		[]byte(`{"a":1}`), []byte(`[1,2,"x\u00e9"]`), []byte("\"\x01\""), []byte(`01`), []byte(`1.`),
		[]byte(`-`), []byte(`{"a":}`), []byte(`"\ud800"`), []byte("\"\xff\""), []byte(" [ ] "),
		[]byte(`"a\"[["`), []byte(`["\\"]`), []byte(`"unterminated \"`), []byte(``), []byte(` `),
		deep(maxNesting, "[", "]"), deep(maxNesting+1, "[", "]"),
		deep(maxNesting, `{"a":`, "}"), deep(maxNesting+1, `{"a":`, "}"),
		append(deep(maxNesting, "[", "]"), ']'),
		deep(4<<20, "[", "]"),                                 // gjson alone overflows its stack here
		append([]byte(`["`), deep(maxNesting+5, "[", "]")...), // brackets in an unterminated string
	}
	for _, b := range tests {
		if got, want := Valid(b), json.Valid(b); got != want {
			t.Errorf("Valid(%.40q, %d bytes) = %v, encoding/json says %v", b, len(b), got, want)
		}
	}
}

// FuzzValid holds Valid to encoding/json.Valid.
func FuzzValid(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `[1,2,"x\u00e9"]`, "\"\x01\"", `01`, `1.`, `-`, `{"a":}`, `"\ud800"`,
		"\"\xff\"", ` [ ] `, `1e5`, `1E+5`, `-0.0e-0`, `{"a":[{"b":null,"c":true}]}`, `"a\"[["`, `[[[]]`, `tru`, `nul`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Valid(b), json.Valid(b); got != want {
			t.Fatalf("Valid(%q) = %v, encoding/json says %v", b, got, want)
		}
	})
}

// sessionJSON is the valid JSON files of 20 generated sessions and their
// total size, for the benchmarks.
func sessionJSON(b *testing.B) (files [][]byte, n int64) {
	b.Helper()
	dir := b.TempDir()
	opts := gen.DefaultOptions()
	opts.Sessions, opts.JSONOnly = 20, true
	if _, err := gen.Generate(dir, opts); err != nil {
		b.Fatal(err)
	}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(p) == ".json" {
			if data, err := os.ReadFile(p); err == nil && json.Valid(data) {
				files = append(files, data)
				n += int64(len(data))
			}
		}
		return nil
	})
	if len(files) == 0 {
		b.Fatal("no JSON files generated")
	}
	return files, n
}

// BenchmarkValid compares Valid with encoding/json.Valid on the JSON files
// of 20 generated sessions (go test -bench Valid ./envelope).
func BenchmarkValid(b *testing.B) {
	files, n := sessionJSON(b)
	for _, bc := range []struct {
		name  string
		valid func([]byte) bool
	}{{"envelope", Valid}, {"encoding-json", json.Valid}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(n)
			for b.Loop() {
				for _, f := range files {
					if !bc.valid(f) {
						b.Fatal("invalid")
					}
				}
			}
		})
	}
}
