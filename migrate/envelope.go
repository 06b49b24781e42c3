package migrate

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// The real app wraps every .json file in {version, checksum, timestamp,
// compressed, data}, where data is "GZIP_V1:"+base64(gzip(json)), a string
// holding raw JSON, or the value itself. Files without it are plain JSON.

const gzipPrefix = "GZIP_V1:"

// unwrap returns the JSON inside an envelope, or content itself when it is
// not one (or not valid JSON, which the caller's parse reports).
func unwrap(content []byte) ([]byte, error) {
	if firstByte(content) != '{' {
		return content, nil
	}
	o, err := parseObject(content)
	if err != nil {
		return content, nil
	}
	if data, ok := envelopeData(o); ok {
		return openEnvelope(data)
	}
	return content, nil
}

// parseDocument parses a JSON object file, unwrapping an envelope; a plain
// file is validated and split once.
func parseDocument(content []byte) (*object, error) {
	o, err := parseObject(content)
	if err != nil {
		return nil, err
	}
	data, ok := envelopeData(o)
	if !ok {
		return o, nil
	}
	inner, err := openEnvelope(data)
	if err != nil {
		return nil, err
	}
	return parseObject(inner)
}

// envelopeData returns the data member of an envelope: an object with data
// and at least two of version, checksum, timestamp and compressed.
func envelopeData(o *object) (json.RawMessage, bool) {
	data, ok := o.get("data")
	if !ok {
		return nil, false
	}
	present := 0
	for _, k := range []string{"version", "checksum", "timestamp", "compressed"} {
		if o.index(k) >= 0 {
			present++
		}
	}
	return data, present >= 2
}

// openEnvelope decodes an envelope's data: "GZIP_V1:"+base64(gzip(json)),
// a string holding JSON, a bare string value (a transcription), or the
// value itself.
func openEnvelope(data json.RawMessage) ([]byte, error) {
	if firstByte(data) != '"' {
		return data, nil
	}
	s, err := unquote(bytes.TrimSpace(data))
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	if rest, ok := strings.CutPrefix(s, gzipPrefix); ok {
		raw, err := decodeBase64(rest)
		if err != nil {
			return nil, fmt.Errorf("envelope: %w", err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("envelope: %w", err)
		}
		out, err := io.ReadAll(zr)
		if err != nil {
			return nil, fmt.Errorf("envelope: %w", err)
		}
		return out, nil
	}
	if json.Valid([]byte(s)) {
		return []byte(s), nil
	}
	return data, nil
}

func firstByte(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c
	}
	return 0
}

// decodeBase64 decodes standard base64 as the app does: as is, then with
// white space removed, with or without padding; URL-safe base64 is
// accepted too.
func decodeBase64(s string) ([]byte, error) {
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

// decodeDataURL decodes an attachment's base64 field, which may be a
// data: URL; mime is the URL's media type, if any.
func decodeDataURL(s string) (data []byte, mime string, err error) {
	if rest, ok := strings.CutPrefix(s, "data:"); ok {
		meta, payload, found := strings.Cut(rest, ",")
		if !found {
			return nil, "", fmt.Errorf("data URL without a comma")
		}
		mime, params, _ := strings.Cut(meta, ";")
		if !strings.Contains(";"+params+";", ";base64;") {
			return nil, "", fmt.Errorf("data URL is not base64")
		}
		data, err := decodeBase64(payload)
		return data, mime, err
	}
	data, err = decodeBase64(s)
	return data, "", err
}
