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
		p := &Prepared{sid: "sid", kind: kind, rec: rec, text: encodeText(text)}
		q, err := decodePrepared(p.Append(nil))
		if err != nil || !q.Matches("sid", kind) || string(q.rec.encode()) != string(rec.encode()) || string(q.text) != string(p.text) {
			t.Fatalf("prepared record does not round-trip: %v", err)
		}
		// Applied, it gets a session number: its encoding is patched, and
		// must be what encoding it anew gives.
		q.rec.num, rec.num = 0x01020304, 0x01020304
		if q.rec.encoded == nil || string(q.rec.encode()) != string(rec.encode()) {
			t.Fatalf("a prepared record numbered encodes as %x, want %x", q.rec.encode(), rec.encode())
		}
	})
}

// FuzzDecodePrepared: any bytes decode to a prepared record that encodes
// back to what decodes the same, or to an error; never a panic.
func FuzzDecodePrepared(f *testing.F) {
	rec, text := buildRecord("s1", KindSummary, []byte(`{"summary":"alpha beta alphabet"}`))
	f.Add((&Prepared{sid: "s1", kind: KindSummary, rec: rec, text: encodeText(text)}).Append(nil))
	f.Add((&Prepared{sid: "s2", kind: KindMetadata}).Append(nil))
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodePrepared(b)
		if err != nil {
			return
		}
		again, err := decodePrepared(p.Append(nil))
		if err != nil || again.sid != p.sid || again.kind != p.kind || string(again.text) != string(p.text) ||
			(again.rec == nil) != (p.rec == nil) || p.rec != nil && string(again.rec.encode()) != string(p.rec.encode()) {
			t.Fatalf("%x decodes to a prepared record that does not round-trip: %v", b, err)
		}
	})
}

// TestDecodePreparedTruncated: every prefix of an encoded prepared record
// short of the whole is an error, not a record.
func TestDecodePreparedTruncated(t *testing.T) {
	rec, text := buildRecord("s1", KindSummary, []byte(`{"summary":"alpha beta alphabet gamma"}`))
	for _, p := range []*Prepared{{sid: "s1", kind: KindSummary, rec: rec, text: encodeText(text)}, {sid: "s1", kind: KindSummary, rec: rec}, {sid: "s2", kind: KindMetadata}} {
		b := p.Append(nil)
		for n := range len(b) {
			if _, err := decodePrepared(b[:n]); err == nil {
				t.Fatalf("%d of %d bytes decode", n, len(b))
			}
		}
		if _, err := decodePrepared(b); err != nil {
			t.Fatal(err)
		}
	}
}
