package index

import (
	"reflect"
	"strings"
	"testing"

	"github.com/taskerfs/taskerfs/index/internal/oracle"
)

func TestTokenize(t *testing.T) {
	long := strings.Repeat("x", 100)
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"Fix the OAuth login bug", []string{"fix", "oauth", "login", "bug"}},
		{"a an and or but in on at to for the", nil},
		{"x y z ab", []string{"ab"}},
		{"snake_case-and.dots/slash", []string{"snake", "case", "dots", "slash"}},
		{"v2 2025-10-01T10:00", []string{"v2", "2025", "10", "01t10", "00"}},
		{"Größe über Straße", []string{"größe", "über", "straße"}},
		{"日本語 テキスト", []string{"日本語", "テキスト"}},
		{"café naïve", []string{"café", "naïve"}},
		{"cafe\u0301 crème", []string{"cafe\u0301", "crème"}}, // combining accent stays in the word
		{"ÉCOLE", []string{"école"}},
		{"emoji🙂split", []string{"emoji", "split"}},
		{"bad\xffutf8", []string{"bad", "utf8"}},
		{long, []string{strings.Repeat("x", maxTermBytes)}},
		{"The AND", nil},
		{"Ω", nil},
		{"ωω", []string{"ωω"}},
	}
	for _, tc := range tests {
		if got := Tokenize(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Tokenize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestScanTokensOffsets(t *testing.T) {
	text := "  Hello, wörld!  x Again"
	type tok struct {
		tok        string
		start, end int
	}
	var got []tok
	scanTokens(text, func(s string, start, end int) bool {
		got = append(got, tok{s, start, end})
		return true
	})
	want := []tok{{"hello", 2, 7}, {"wörld", 9, 15}, {"again", 20, 25}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for _, w := range want {
		if !strings.EqualFold(text[w.start:w.end], w.tok) {
			t.Errorf("offsets of %q point at %q", w.tok, text[w.start:w.end])
		}
	}
}

// FuzzTokenizeOracle holds the tokenizer (its ASCII table and stop-word
// switch) to the frozen one of the oracle: the index and every query
// depend on both cutting the same terms.
func FuzzTokenizeOracle(f *testing.F) {
	for _, s := range []string{"", "Fix the OAuth login bug", "a an and or but in on at to for the AND",
		"Größe über Straße", "cafe\u0301 crème", "bad\xffutf8", strings.Repeat("é", 40) + "abc",
		strings.Repeat("x", 63) + "éabc def", "ÉCOLE 日本語 emoji🙂split v2 2025-10-01T10:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, want := Tokenize(s), oracle.Tokenize(s)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Tokenize(%q) = %q, oracle %q", s, got, want)
		}
	})
}
