package migrate

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	appenvelope "github.com/taskerfs/taskerfs/envelope"
)

// The real app wraps every .json file in an envelope; package envelope
// opens it (the one decoder, shared with the index). Files without it are
// plain JSON.

const gzipPrefix = appenvelope.Prefix

// maxSourceFile caps what import and export read whole: one source file
// (a session, an attachment, sessions.json) and what one GZIP_V1 payload
// may inflate to. Legacy sessions.json arrays can be large; a gzip bomb
// still cannot take more than this.
const maxSourceFile = 1 << 30

// unwrap returns the JSON inside an envelope, or content itself when it is
// not one (or not valid JSON, which the caller's parse reports). A session
// file's GZIP_V1 payload inflates to at most appenvelope.MaxDecodedBytes,
// as in the index.
func unwrap(content []byte) ([]byte, error) {
	return unwrapLimit(content, appenvelope.MaxDecodedBytes)
}

// unwrapLimit is unwrap with a cap of limit bytes: maxSourceFile for what
// may hold media (sessions.json, attachment records).
func unwrapLimit(content []byte, limit int64) ([]byte, error) {
	out, err := appenvelope.UnwrapLimit(content, limit)
	if errors.Is(err, appenvelope.ErrInvalidJSON) {
		return content, nil
	}
	return out, err
}

// readSourceFile reads a whole source file of at most maxSourceFile bytes.
func readSourceFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readCapped(f, path)
}

// readCapped reads r whole, failing beyond maxSourceFile bytes.
func readCapped(r io.Reader, name string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxSourceFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxSourceFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, maxSourceFile)
	}
	return data, nil
}

// parseDocument parses a JSON object file, unwrapping an envelope whose
// payload inflates to at most limit bytes.
func parseDocument(content []byte, limit int64) (*object, error) {
	inner, err := appenvelope.UnwrapLimit(content, limit)
	if errors.Is(err, appenvelope.ErrInvalidJSON) {
		return parseObject(content) // fails, with the decoder's message
	}
	if err != nil {
		return nil, err
	}
	return parseValidObject(inner) // UnwrapLimit returns valid JSON only
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
		data, err := appenvelope.DecodeBase64(payload)
		return data, mime, err
	}
	data, err = appenvelope.DecodeBase64(s)
	return data, "", err
}
