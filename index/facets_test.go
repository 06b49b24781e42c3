package index

import (
	"strings"
	"testing"
)

func TestEscapeName(t *testing.T) {
	tests := []struct{ value, name string }{
		{"", "%"},
		{"go", "go"},
		{"c/c++", "c%2Fc++"},
		{"100%", "100%25"},
		{"%", "%25"},
		{"a\x00b", "a%00b"},
		{".", "%2E"},
		{"..", "%2E."},
		{".hidden", "%2Ehidden"},
		{"v1.2", "v1.2"},
		{"bad\xffbyte", "bad%FFbyte"},
		{"\xc3", "%C3"},
		{"ünïcode 日本", "ünïcode 日本"},
		{"with space", "with space"},
		{"%2F", "%252F"},
		// Control characters, separators and bidi controls are escaped by byte.
		{"a\nb", "a%0Ab"},
		{"tab\there", "tab%09here"},
		{"\x1b[31mred", "%1B[31mred"},
		{"del\x7f", "del%7F"},
		{"c1\u0085next", "c1%C2%85next"},
		{"evil\u202Etxt.exe", "evil%E2%80%AEtxt.exe"},
		{"line\u2028sep", "line%E2%80%A8sep"},
		{"iso\u2066late\u2069", "iso%E2%81%A6late%E2%81%A9"},
		{"\u061Carabic", "%D8%9Carabic"},
		{"\xff\xfe", "%FF%FE"},
		{"\uFFFD", "\uFFFD"}, // a real U+FFFD is a character like any other
		{"zwj\u200Dkept", "zwj\u200Dkept"},
	}
	for _, tc := range tests {
		if got := EscapeName(tc.value); got != tc.name {
			t.Errorf("EscapeName(%q) = %q, want %q", tc.value, got, tc.name)
		}
		back, err := UnescapeName(tc.name)
		if err != nil || back != tc.value {
			t.Errorf("UnescapeName(%q) = %q, %v; want %q", tc.name, back, err, tc.value)
		}
		if name := EscapeName(tc.value); !CleanName(name) || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." || name == "" || strings.HasPrefix(name, ".") {
			t.Errorf("EscapeName(%q) = %q is not a safe path component", tc.value, name)
		}
	}
}

func TestUnescapeNameRejectsNonCanonical(t *testing.T) {
	for _, name := range []string{
		"a/b", "a\x00b", ".hidden", "%2e", "%2f", "%41", "%", "%%", "%4", "%G0", "abc%", "bad\xffbyte", "%2Ea%2E",
		"a\nb", "%0a", "evil\u202Etxt", "c1\u0085", "%EF%BF%BD", "%E2%80%8D",
	} {
		if name == "%" {
			continue // the empty value
		}
		if v, err := UnescapeName(name); err == nil {
			t.Errorf("UnescapeName(%q) = %q, want an error", name, v)
		}
	}
}

func FuzzEscapeName(f *testing.F) {
	for _, s := range []string{"", ".", "a/b", "%", "\xff", "ok", "a\nb", "x\u202Ey", "\u0085", "%2F"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		name := EscapeName(value)
		if !CleanName(name) || strings.ContainsAny(name, "/\x00") || strings.HasPrefix(name, ".") || name == "" {
			t.Fatalf("EscapeName(%q) = %q is not a safe path component", value, name)
		}
		back, err := UnescapeName(name)
		if err != nil || back != value {
			t.Fatalf("round trip of %q: %q, %v", value, back, err)
		}
		// name -> value -> name: any string UnescapeName accepts is the
		// one name of its value.
		if v, err := UnescapeName(value); err == nil && EscapeName(v) != value {
			t.Fatalf("UnescapeName(%q) = %q, which escapes to %q", value, v, EscapeName(v))
		}
	})
}

func TestLowerBytesKeepsInvalidBytes(t *testing.T) {
	for in, want := range map[string]string{"ABC": "abc", "Ä\xffB": "ä\xffb", "\xc3": "\xc3", "": ""} {
		if got := lowerBytes(in); got != want {
			t.Errorf("lowerBytes(%q) = %q, want %q", in, got, want)
		}
	}
}
