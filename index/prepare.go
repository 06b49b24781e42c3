package index

import (
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
