// Package envelope opens the real app's JSON envelope. The app wraps every
// session .json file in {version, checksum, timestamp, compressed, data},
// where data is "GZIP_V1:"+base64(gzip(json)), a string holding raw JSON, a
// bare string value (a transcription) or the JSON value itself. Files
// without an envelope are plain JSON and pass through unchanged.
//
// It is the one decoder of envelopes: index (extraction) and migrate
// (import and export) both use it. Its input is untrusted, so decoding is
// bounded: at most MaxDepth nested envelopes are opened and a GZIP_V1
// payload may inflate to at most a caller-given number of bytes.
package envelope

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/klauspost/compress/gzip"
)

const (
	// Prefix marks a gzip-compressed, base64-encoded payload.
	Prefix = "GZIP_V1:"
	// MaxDecodedBytes is the default cap on what one GZIP_V1 payload may
	// inflate to: far above any real session file, far below a gzip bomb.
	MaxDecodedBytes = 64 << 20
	// MaxDepth is how many nested envelopes are opened.
	MaxDepth = 4
)

var (
	// ErrInvalidJSON: the content is not JSON (so not an envelope either).
	ErrInvalidJSON = errors.New("envelope: not valid JSON")
	// ErrTooLarge: a GZIP_V1 payload inflates beyond the cap.
	ErrTooLarge = errors.New("envelope: decoded payload too large")
	// ErrCorrupt: a GZIP_V1 payload is not base64 of gzip of JSON.
	ErrCorrupt = errors.New("envelope: corrupt GZIP_V1 payload")
)

// Unwrap returns the JSON inside content's envelope (opening nested ones),
// or content itself when it is plain JSON. A GZIP_V1 payload inflates to at
// most MaxDecodedBytes.
func Unwrap(content []byte) ([]byte, error) {
	return UnwrapLimit(content, MaxDecodedBytes)
}

// UnwrapLimit is Unwrap with a cap of limit bytes per GZIP_V1 payload. The
// result is valid JSON or an error: ErrInvalidJSON when content is not
// JSON, ErrCorrupt or ErrTooLarge (wrapped) when its payload is bad.
func UnwrapLimit(content []byte, limit int64) ([]byte, error) {
	if !Valid(content) {
		return nil, ErrInvalidJSON
	}
	for range MaxDepth {
		data, ok := Data(content)
		if !ok {
			return content, nil
		}
		inner, more, err := open(data, limit)
		if err != nil {
			return nil, err
		}
		content = inner
		if !more {
			break
		}
	}
	return content, nil
}

// Data returns the data member of content when content (valid JSON) is an
// envelope: an object with a data member and at least two of version,
// checksum, timestamp and compressed. Keys match exactly, as JSON.parse
// does; of duplicate keys the last wins.
func Data(content []byte) (json.RawMessage, bool) {
	var data json.RawMessage
	present := 0
	seen := [4]bool{}
	ok := EachMemberTransient(content, func(key string, val []byte) {
		switch key {
		case "data":
			data = val
		case "version":
			seen[0] = true
		case "checksum":
			seen[1] = true
		case "timestamp":
			seen[2] = true
		case "compressed":
			seen[3] = true
		}
	})
	if !ok || data == nil {
		return nil, false
	}
	for _, s := range seen {
		if s {
			present++
		}
	}
	return data, present >= 2
}

// open decodes one envelope's data member. more reports whether the
// result may itself be an envelope (it came from a string or a value that
// is an object).
func open(data []byte, limit int64) (out []byte, more bool, err error) {
	if FirstByte(data) != '"' {
		return data, true, nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if rest, ok := strings.CutPrefix(s, Prefix); ok {
		raw, err := DecodeBase64(rest)
		if err != nil {
			return nil, false, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		out, err := gunzip(raw, limit)
		if err != nil {
			return nil, false, err
		}
		if !Valid(out) {
			return nil, false, fmt.Errorf("%w: payload is not JSON", ErrCorrupt)
		}
		return out, true, nil
	}
	if Valid([]byte(s)) {
		return []byte(s), true, nil
	}
	// Not JSON text: the string is the value (e.g. a transcription).
	return data, false, nil
}

func gunzip(raw []byte, limit int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	defer zr.Close()
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if n > limit {
		return nil, fmt.Errorf("%w (more than %d bytes)", ErrTooLarge, limit)
	}
	return buf.Bytes(), nil
}

// DecodeBase64 decodes base64 as the app writes it: standard, as is, then
// with white space removed, with or without padding; URL-safe is accepted
// too.
func DecodeBase64(s string) ([]byte, error) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	stripped := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n', '=':
			return -1
		}
		return r
	}, s)
	if b, err := base64.RawStdEncoding.DecodeString(stripped); err == nil {
		return b, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(stripped)
	if err != nil {
		return nil, fmt.Errorf("invalid base64: %w", err)
	}
	return b, nil
}

// FirstByte is the first byte of b that is not JSON white space (0 if
// there is none): which kind of JSON value b holds.
func FirstByte(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c
	}
	return 0
}

// EachMember calls fn with every top-level member of a JSON object, in
// order, whose validity the caller has checked; false if content is not an
// object. Values share content's memory.
func EachMember(content []byte, fn func(key string, val []byte)) bool {
	return eachMember(content, fn, false)
}

// EachMemberTransient is EachMember for a caller that only looks at the
// keys while fn runs (compares them, never keeps them): a key without
// escapes is then content's own bytes, not a copy (one allocation per
// member less, on the index's extraction path). fn must not keep a key.
func EachMemberTransient(content []byte, fn func(key string, val []byte)) bool {
	return eachMember(content, fn, true)
}

func eachMember(content []byte, fn func(key string, val []byte), transient bool) bool {
	i := skipSpace(content, 0)
	if i >= len(content) || content[i] != '{' {
		return false
	}
	i = skipSpace(content, i+1)
	for i < len(content) && content[i] != '}' {
		end := scanValue(content, i)
		rawKey := content[i:end]
		var key string
		if bytes.IndexByte(rawKey, '\\') >= 0 || !utf8.Valid(rawKey) {
			if json.Unmarshal(rawKey, &key) != nil {
				return false
			}
		} else if inner := rawKey[1 : len(rawKey)-1]; transient && len(inner) > 0 {
			key = unsafe.String(&inner[0], len(inner))
		} else {
			key = string(inner)
		}
		i = skipSpace(content, end)
		i = skipSpace(content, i+1) // the colon
		end = scanValue(content, i)
		fn(key, content[i:end:end])
		i = skipSpace(content, end)
		if i < len(content) && content[i] == ',' {
			i = skipSpace(content, i+1)
		}
	}
	return true
}

// EachElement calls fn with every element of a JSON array, in order, whose
// validity the caller has checked; false if content is not an array.
// Elements share content's memory.
func EachElement(content []byte, fn func(elem []byte)) bool {
	i := skipSpace(content, 0)
	if i >= len(content) || content[i] != '[' {
		return false
	}
	i = skipSpace(content, i+1)
	for i < len(content) && content[i] != ']' {
		end := scanValue(content, i)
		fn(content[i:end:end])
		i = skipSpace(content, end)
		if i < len(content) && content[i] == ',' {
			i = skipSpace(content, i+1)
		}
	}
	return true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\r', '\n':
			i++
			continue
		}
		break
	}
	return i
}

// scanValue returns the end of the valid JSON value starting at i.
func scanValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return scanString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = scanString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default: // number, true, false, null
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return i
			}
			i++
		}
		return i
	}
}

// scanString returns the end of the string starting at b[i] == '"'.
//
// A session file's bytes are mostly inside strings, and every level of a
// walk (EachMember, EachElement and the walks inside them) scans the
// strings below it again, so this finds the next quote with
// bytes.IndexByte (vectorized) instead of a byte loop: the quote closes
// the string when an even run of backslashes precedes it (each backslash
// escapes the byte after it; in valid JSON a backslash is only ever part
// of an escape).
func scanString(b []byte, i int) int {
	start := i
	for i++; i < len(b); i++ {
		k := bytes.IndexByte(b[i:], '"')
		if k < 0 {
			return len(b)
		}
		i += k
		n := 0
		for p := i - 1; p > start && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return i + 1
		}
	}
	return i
}
