package index

import (
	"reflect"
	"strings"
	"testing"
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
