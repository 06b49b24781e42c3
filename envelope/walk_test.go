package envelope

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// decodedMembers is what encoding/json reads from an object: its keys in
// document order (duplicates kept) and each value's raw bytes.
func decodedMembers(t *testing.T, b []byte) (keys []string, vals [][]byte) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %q", b)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			t.Fatal(err)
		}
		keys, vals = append(keys, tok.(string)), append(vals, raw)
	}
	return keys, vals
}

// decodedElements is what encoding/json reads from an array: each
// element's raw bytes.
func decodedElements(t *testing.T, b []byte) (vals [][]byte) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		t.Fatalf("not an array: %q", b)
	}
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			t.Fatal(err)
		}
		vals = append(vals, raw)
	}
	return vals
}

// checkWalk holds EachMember and EachElement to encoding/json on valid JSON
// b, and walks every value below it the same way.
func checkWalk(t *testing.T, b []byte, depth int) {
	t.Helper()
	if depth > 64 {
		return
	}
	switch FirstByte(b) {
	case '{':
		wantKeys, wantVals := decodedMembers(t, b)
		var keys, transient []string
		var vals [][]byte
		if !EachMember(b, func(k string, v []byte) { keys, vals = append(keys, k), append(vals, v) }) {
			t.Fatalf("EachMember(%q) = false", b)
		}
		EachMemberTransient(b, func(k string, _ []byte) { transient = append(transient, strings.Clone(k)) })
		if !slices.Equal(keys, transient) {
			t.Fatalf("EachMemberTransient(%q) keys %q, EachMember %q", b, transient, keys)
		}
		if len(keys) != len(wantKeys) {
			t.Fatalf("EachMember(%q): %d members %q, encoding/json %d %q", b, len(keys), keys, len(wantKeys), wantKeys)
		}
		for i := range keys {
			if keys[i] != wantKeys[i] || !bytes.Equal(vals[i], wantVals[i]) {
				t.Fatalf("EachMember(%q) member %d: %q=%q, encoding/json %q=%q", b, i, keys[i], vals[i], wantKeys[i], wantVals[i])
			}
			checkWalk(t, vals[i], depth+1)
		}
	case '[':
		want := decodedElements(t, b)
		var got [][]byte
		if !EachElement(b, func(v []byte) { got = append(got, v) }) {
			t.Fatalf("EachElement(%q) = false", b)
		}
		if len(got) != len(want) {
			t.Fatalf("EachElement(%q): %d elements, encoding/json %d", b, len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("EachElement(%q) element %d: %q, encoding/json %q", b, i, got[i], want[i])
			}
			checkWalk(t, got[i], depth+1)
		}
	}
}

var walkCases = []string{
	`{}`, `[]`, ` { "a" : 1 , "b":[1, 2 ,3] } `, `{"a":"x\"y","b":"\\","c":"\\\\\"","d":"\\\"\\"}`,
	`["\\", "\"", "a\\\\", "\\\"]"]`, `{"a\u0062":{"c":[{"d":"}]"}]}, "a\\b": null}`,
	`{"a":1,"a":2}`, `["é", "\u00e9\ud83d\ude00", "tab\tless"]`, `[true,false,null,-1.5e3,"x"]`,
	`{"k":"` + string(bytes.Repeat([]byte(`ab\"`), 40)) + `"}`,
}

func TestWalkMatchesEncodingJSON(t *testing.T) {
	for _, c := range walkCases {
		if !json.Valid([]byte(c)) {
			t.Fatalf("case %q is not valid JSON", c)
		}
		checkWalk(t, []byte(c), 0)
	}
}

// FuzzWalk holds EachMember and EachElement to encoding/json on every valid
// JSON input.
func FuzzWalk(f *testing.F) {
	for _, c := range walkCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		checkWalk(t, b, 0)
	})
}

// BenchmarkWalk walks every member and element of the JSON files of 20
// generated sessions, all the way down, as the index's extraction does.
func BenchmarkWalk(b *testing.B) {
	files, n := sessionJSON(b)
	var walk func(v []byte)
	walk = func(v []byte) {
		switch FirstByte(v) {
		case '{':
			EachMember(v, func(_ string, v []byte) { walk(v) })
		case '[':
			EachElement(v, walk)
		}
	}
	b.SetBytes(n / int64(len(files)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		walk(files[i%len(files)])
	}
}
