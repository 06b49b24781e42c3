package index

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// The seed corpora live in testdata/fuzz/<FuzzName>/.

func FuzzParseQuery(f *testing.F) {
	f.Add("oauth tag:go -status:active")
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseQuery(s)
		if err != nil {
			if !errors.Is(err, ErrBadQuery) {
				t.Fatalf("ParseQuery(%q): error %v does not wrap ErrBadQuery", s, err)
			}
			return
		}
		canon := q.String()
		again, err := ParseQuery(canon)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", canon, s, err)
		}
		if again.String() != canon {
			t.Fatalf("canonical form of %q is unstable: %q then %q", s, canon, again.String())
		}
	})
}

func FuzzExtract(f *testing.F) {
	f.Add(byte(KindMetadata), []byte(`{"name":"x","tags":"a,b","startTime":1730000000000}`))
	f.Fuzz(func(t *testing.T, kindByte byte, content []byte) {
		kind := Kind(kindByte%9 + 1)
		e := extract(kind, content)
		if e.textBytes > maxTextBytes || len(e.tags) > maxFacetValues || len(e.topics) > maxFacetValues {
			t.Fatalf("caps exceeded: %d text bytes, %d tags, %d topics", e.textBytes, len(e.tags), len(e.topics))
		}
		for _, v := range append(append([]string{e.status, e.category, e.sub}, e.tags...), e.topics...) {
			if v != "" && (v != lowerBytes(strings.TrimSpace(v)) || len(EscapeName(v)) > 255) {
				t.Fatalf("facet value %q is not normalized", v)
			}
		}
		if e.date != "" && (len(e.date) != 10 || e.date[4] != '-' || e.date[7] != '-') {
			t.Fatalf("day %q", e.date)
		}
		rec, text := buildRecord("sid", kind, content)
		if len(text) > storedTextCap || !utf8.ValidString(text) {
			t.Fatalf("stored text of %d bytes, valid UTF-8 %v", len(text), utf8.ValidString(text))
		}
		for i := 1; i < len(rec.terms); i++ {
			if rec.terms[i-1].term >= rec.terms[i].term {
				t.Fatalf("terms not sorted and distinct: %q, %q", rec.terms[i-1].term, rec.terms[i].term)
			}
		}
		back, err := decodeRecord(rec.encode())
		if err != nil || string(back.encode()) != string(rec.encode()) {
			t.Fatalf("record does not round-trip: %v", err)
		}
	})
}
