package index

import (
	"encoding/binary"
	"errors"

	"github.com/cockroachdb/pebble"
)

// Prepared is what one file's content contributes to the index, built
// (JSON extraction, tokenizing, snippet text) without touching the index:
// the caller builds it outside its transaction, where it holds no lock, and
// applies it inside (ApplyPrepared), which only reads and writes keys.
//
// It is built for a session id and a kind (the file's path when it was
// prepared); the transaction checks with Matches that the file still has
// them, and indexes the content there (UpdateFile) when it does not.
type Prepared struct {
	sid  string
	kind Kind
	rec  *fileRecord
	text []byte // the snippet text as stored (encodeText)
}

// Prepare extracts what content contributes as file kind of session
// sessionID. It reads no index state and is safe to call concurrently.
func (x *Index) Prepare(sessionID string, kind Kind, content []byte) *Prepared {
	rec, text := buildRecord(sessionID, kind, content)
	return &Prepared{sid: sessionID, kind: kind, rec: rec, text: x.storedForm(text)}
}

// Matches reports whether p was prepared for sessionID and kind.
func (p *Prepared) Matches(sessionID string, kind Kind) bool {
	return p != nil && p.sid == sessionID && p.kind == kind
}

// ApplyPrepared is UpdateFile with the extraction done beforehand: it
// replaces everything file fid contributed before with p. The same p may
// be applied again in a later batch (a retried commit).
func (x *Index) ApplyPrepared(b *pebble.Batch, fileID uint64, p *Prepared) error {
	if err := checkBatch(b); err != nil {
		return err
	}
	if p == nil || p.sid == "" {
		return errors.New("index: empty session id")
	}
	return x.apply(b, fileID, p.rec, p.text, true, nil)
}

// Append appends p's encoded form (for DecodePrepared) to b: a flag (1 when
// there is a record), the stored text, the record.
func (p *Prepared) Append(b []byte) []byte {
	w := &byteWriter{b: b}
	if p.rec == nil {
		w.byte1(0)
		w.str(p.sid)
		w.uint(uint64(p.kind))
		return w.bytes()
	}
	w.byte1(1)
	w.uint(uint64(len(p.text)))
	w.b = append(w.b, p.text...)
	w.b = append(w.b, p.rec.encode()...)
	return w.bytes()
}

// maxPreparedBytes bounds an encoded Prepared: a record and a stored text.
const maxPreparedBytes = maxRecordBytes + storedTextCap + 64

// decodePrepared decodes what Append encoded.
func decodePrepared(b []byte) (*Prepared, error) {
	if len(b) > maxPreparedBytes {
		return nil, errCorrupt
	}
	r := newReader(b)
	switch r.byte1() {
	case 0:
		p := &Prepared{sid: r.str(), kind: Kind(r.uint())}
		if r.err != nil || len(r.b) != 0 {
			return nil, errCorrupt
		}
		return p, nil
	case 1:
		n := r.uint()
		if r.err != nil || n > uint64(len(r.b)) {
			return nil, errCorrupt
		}
		var text []byte
		if n > 0 {
			text = r.b[:n:n]
		}
		rec, err := decodeRecord(r.b[n:])
		if err != nil {
			return nil, err
		}
		if at, ok := numOffset(r.b[n:]); ok {
			rec.encoded, rec.numAt = r.b[n:], at
		}
		return &Prepared{sid: rec.sid, kind: rec.kind, rec: rec, text: text}, nil
	}
	return nil, errCorrupt
}

// numOffset is where the session number is in an encoded record of the
// current version (plain: its version, its session id, then the number).
func numOffset(enc []byte) (int, bool) {
	if len(enc) == 0 || enc[0] != recordVersion {
		return 0, false
	}
	n, k := binary.Uvarint(enc[1:])
	at := 1 + k + int(n)
	if k <= 0 || n > uint64(len(enc)) || at+4 > len(enc) {
		return 0, false
	}
	return at, true
}
