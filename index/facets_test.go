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
	}
	for _, tc := range tests {
		if got := EscapeName(tc.value); got != tc.name {
			t.Errorf("EscapeName(%q) = %q, want %q", tc.value, got, tc.name)
		}
		back, err := UnescapeName(tc.name)
		if err != nil || back != tc.value {
			t.Errorf("UnescapeName(%q) = %q, %v; want %q", tc.name, back, err, tc.value)
		}
		if name := EscapeName(tc.value); strings.ContainsAny(name, "/\x00") || name == "." || name == ".." || name == "" || strings.HasPrefix(name, ".") {
			t.Errorf("EscapeName(%q) = %q is not a safe path component", tc.value, name)
		}
	}
}

func TestUnescapeNameRejectsNonCanonical(t *testing.T) {
	for _, name := range []string{
		"a/b", "a\x00b", ".hidden", "%2e", "%2f", "%41", "%", "%%", "%4", "%G0", "abc%", "bad\xffbyte", "%2Ea%2E",
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
	for _, s := range []string{"", ".", "a/b", "%", "\xff", "ok"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		name := EscapeName(value)
		if strings.ContainsAny(name, "/\x00") || strings.HasPrefix(name, ".") || name == "" {
			t.Fatalf("EscapeName(%q) = %q is not a safe path component", value, name)
		}
		back, err := UnescapeName(name)
		if err != nil || back != value {
			t.Fatalf("round trip of %q: %q, %v", value, back, err)
		}
	})
}
