package migrate

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"

	appenvelope "github.com/taskerfs/taskerfs/envelope"
)

// object is a JSON object that keeps its members' order and raw values, so
// a session passes through import and export without losing unknown fields
// or having its keys reordered.
type object struct {
	keys []string
	vals []json.RawMessage
}

var errNotObject = errors.New("not a JSON object")

// parseObject reads one JSON object. Member values are kept verbatim and
// share data's memory.
func parseObject(data []byte) (*object, error) {
	if err := validJSON(data); err != nil {
		return nil, err
	}
	return parseValidObject(data)
}

// parseValidObject is parseObject for data known to be valid JSON (an
// element of a parsed array, a payload envelope.UnwrapLimit accepted):
// it is scanned once, not validated again.
func parseValidObject(data []byte) (*object, error) {
	o := &object{}
	ok := appenvelope.EachMember(data, func(key string, val []byte) {
		v := json.RawMessage(val)
		if k := o.index(key); k >= 0 {
			o.vals[k] = v // JSON.parse keeps the last of duplicate keys
		} else {
			o.keys = append(o.keys, key)
			o.vals = append(o.vals, v)
		}
	})
	if !ok {
		return nil, errNotObject
	}
	return o, nil
}

// parseArray splits a JSON array into its raw elements, which share data's
// memory.
func parseArray(data []byte) ([]json.RawMessage, error) {
	if err := validJSON(data); err != nil {
		return nil, err
	}
	var elems []json.RawMessage
	if !appenvelope.EachElement(data, func(e []byte) { elems = append(elems, e) }) {
		return nil, errors.New("not a JSON array")
	}
	return elems, nil
}

// validJSON checks data, with the decoder's message when it is invalid.
func validJSON(data []byte) error {
	if appenvelope.Valid(data) {
		return nil
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	return errors.New("invalid JSON")
}

// unquote decodes a JSON string token.
func unquote(tok []byte) (string, error) {
	if len(tok) >= 2 && tok[0] == '"' && bytes.IndexByte(tok, '\\') < 0 && utf8.Valid(tok) {
		return string(tok[1 : len(tok)-1]), nil
	}
	var s string
	err := json.Unmarshal(tok, &s)
	return s, err
}

func (o *object) index(key string) int {
	for i, k := range o.keys {
		if k == key {
			return i
		}
	}
	return -1
}

// get returns the value of key; null counts as absent.
func (o *object) get(key string) (json.RawMessage, bool) {
	i := o.index(key)
	if i < 0 || isNull(o.vals[i]) {
		return nil, false
	}
	return o.vals[i], true
}

// str returns key's value when it is a JSON string.
func (o *object) str(key string) (string, bool) {
	v, ok := o.get(key)
	if !ok || appenvelope.FirstByte(v) != '"' {
		return "", false
	}
	s, err := unquote(bytes.TrimSpace(v))
	return s, err == nil
}

// set replaces key's value in place, or appends it.
func (o *object) set(key string, v json.RawMessage) {
	if i := o.index(key); i >= 0 {
		o.vals[i] = v
		return
	}
	o.keys = append(o.keys, key)
	o.vals = append(o.vals, v)
}

// setAfter sets key, placing a new key right after after (or last when
// after is absent).
func (o *object) setAfter(after, key string, v json.RawMessage) {
	if i := o.index(key); i >= 0 {
		o.vals[i] = v
		return
	}
	i := o.index(after)
	if i < 0 {
		o.set(key, v)
		return
	}
	o.keys = append(o.keys[:i+1], append([]string{key}, o.keys[i+1:]...)...)
	o.vals = append(o.vals[:i+1], append([]json.RawMessage{v}, o.vals[i+1:]...)...)
}

// take removes key and returns its value (null counts as absent).
func (o *object) take(key string) (json.RawMessage, bool) {
	i := o.index(key)
	if i < 0 {
		return nil, false
	}
	v := o.vals[i]
	o.keys = append(o.keys[:i], o.keys[i+1:]...)
	o.vals = append(o.vals[:i], o.vals[i+1:]...)
	return v, !isNull(v)
}

func (o *object) clone() *object {
	return &object{keys: append([]string(nil), o.keys...), vals: append([]json.RawMessage(nil), o.vals...)}
}

// appendJSON appends the object with its values as stored (which may hold
// insignificant white space; compact or indent the result).
func (o *object) appendJSON(b []byte) []byte {
	b = append(b, '{')
	for i, k := range o.keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = append(b, o.vals[i]...)
	}
	return append(b, '}')
}

func isNull(v json.RawMessage) bool {
	return len(bytes.TrimSpace(v)) == 0 || string(bytes.TrimSpace(v)) == "null"
}

// appendString appends s as a JSON string without HTML escaping, as the
// app's JSON.stringify and the generator write it.
func appendString(b []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(s) // a string always encodes
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

// rawString is s as a JSON value.
func rawString(s string) json.RawMessage { return appendString(nil, s) }

// rawStrings is ss as a JSON array of strings ([] when empty).
func rawStrings(ss []string) json.RawMessage {
	b := []byte{'['}
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

func rawInt(n int) json.RawMessage { return strconv.AppendInt(nil, int64(n), 10) }

func rawBool(v bool) json.RawMessage { return strconv.AppendBool(nil, v) }

// compactJSON is data without insignificant white space, plus a newline:
// how chunk files are written.
func compactJSON(data []byte) ([]byte, error) {
	var out bytes.Buffer
	out.Grow(len(data) + 1)
	if err := json.Compact(&out, data); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// prettyJSON is data indented by two spaces, plus a newline: how side files
// and legacy sessions are written (JSON.stringify(x, null, 2)).
func prettyJSON(data []byte) ([]byte, error) {
	var out bytes.Buffer
	out.Grow(len(data) + len(data)/4)
	if err := json.Indent(&out, data, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// sameJSON reports whether a and b are the same JSON text up to white
// space between tokens.
func sameJSON(a, b []byte) bool {
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return false
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}
