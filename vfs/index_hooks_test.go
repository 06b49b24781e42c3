package vfs

import (
	"reflect"
	"testing"

	"github.com/taskerfs/taskerfs/meta"
)

// searchIDs returns the session ids a query finds, in order.
func searchIDs(t *testing.T, v *FS, q string) []string {
	t.Helper()
	hits, err := v.Snippets(q)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, h := range hits {
		ids = append(ids, h.SessionID)
	}
	return ids
}

func checkIndex(t *testing.T, v *FS) {
	t.Helper()
	if problems, err := v.index.Check(v.IndexSource()); err != nil || len(problems) > 0 {
		t.Fatalf("index check: %v %v", problems, err)
	}
}

// TestIndexFollowsNamespace: renaming a whole session tree moves its
// postings (a key rewrite), and a hard-linked session file that loses the
// name it was indexed under leaves no stale postings behind.
func TestIndexFollowsNamespace(t *testing.T) {
	v, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	files := map[string]string{
		"sessions/a/metadata.json":                `{"id": "a", "name": "Parser work", "tags": ["go"]}`,
		"sessions/a/summary.json":                 `{"narrative": "rewrote the lexer"}`,
		"sessions/a/screenshots/chunk-000.json":   `[{"id": "s1", "aiAnalysis": {"summary": "editing tokenizer"}}]`,
		"sessions/b/metadata.json":                `{"id": "b", "name": "Reading"}`,
		"sessions/b/transcription.json":           `"talked about the quokka"`,
		"notes/keep.txt":                          "x",
		"sessions/c/metadata.json":                `{"id": "c", "name": "Other"}`,
		"sessions/c/audioInsights.json":           `{"narrative": "zanzibar trip"}`,
		"sessions/c/screenshots/chunk-001.json":   `[]`,
		"sessions/c/audioSegments/chunk-000.json": `[]`,
	}
	for p, data := range files {
		if err := v.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := searchIDs(t, v, "lexer"); !reflect.DeepEqual(got, []string{"a"}) {
		t.Fatalf("lexer: %v", got)
	}
	sessions, err := v.Resolve("sessions")
	if err != nil {
		t.Fatal(err)
	}

	// Rename the whole session a -> renamed.
	if err := v.meta.Update(false, func(tx *meta.Tx) error {
		return tx.Rename(sessions.Ino, "a", sessions.Ino, "renamed", 0)
	}); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string][]string{"lexer": {"renamed"}, "tokenizer": {"renamed"}, "tag:go": {"renamed"}, "parser": {"renamed"}} {
		if got := searchIDs(t, v, q); !reflect.DeepEqual(got, want) {
			t.Errorf("after rename, %s: %v, want %v", q, got, want)
		}
	}
	checkIndex(t, v)

	// Hard-link b's transcription outside sessions/, then unlink its
	// session name: the word must leave the index.
	tr, err := v.Resolve("sessions/b/transcription.json")
	if err != nil {
		t.Fatal(err)
	}
	notes, err := v.Resolve("notes")
	if err != nil {
		t.Fatal(err)
	}
	b, err := v.Resolve("sessions/b")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.meta.Update(false, func(tx *meta.Tx) error {
		if _, err := tx.Link(tr.Ino, notes.Ino, "t.json"); err != nil {
			return err
		}
		return tx.Unlink(b.Ino, "transcription.json")
	}); err != nil {
		t.Fatal(err)
	}
	if got := searchIDs(t, v, "quokka"); len(got) != 0 {
		t.Errorf("after unlinking the indexed name of a hard-linked file, quokka finds %v", got)
	}
	checkIndex(t, v)

	// Move a file between sessions: its postings follow.
	c, err := v.Resolve("sessions/c")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.meta.Update(false, func(tx *meta.Tx) error {
		return tx.Rename(c.Ino, "audioInsights.json", b.Ino, "audioInsights.json", 0)
	}); err != nil {
		t.Fatal(err)
	}
	if got := searchIDs(t, v, "zanzibar"); !reflect.DeepEqual(got, []string{"b"}) {
		t.Errorf("after moving a file, zanzibar: %v", got)
	}
	// A chunk moved to where its kind changes is indexed from its content.
	if err := v.meta.Update(false, func(tx *meta.Tx) error {
		return tx.Rename(c.Ino, "screenshots", c.Ino, "audioSegments2", 0)
	}); err != nil {
		t.Fatal(err)
	}
	checkIndex(t, v)

	// Unlinks: a session file's postings go with its last name; a file
	// moved out of sessions/ (alone, or with its session's directory)
	// left the index when it moved, and its unlink there leaves nothing.
	renamed, err := v.Resolve("sessions/renamed")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.meta.Update(false, func(tx *meta.Tx) error {
		if err := tx.Unlink(renamed.Ino, "summary.json"); err != nil {
			return err
		}
		return tx.Rename(renamed.Ino, "metadata.json", notes.Ino, "m.json", 0)
	}); err != nil {
		t.Fatal(err)
	}
	if got := searchIDs(t, v, "lexer OR parser"); len(got) != 0 {
		t.Errorf("after the unlink and the move out, lexer OR parser finds %v", got)
	}
	if got := searchIDs(t, v, "tokenizer"); !reflect.DeepEqual(got, []string{"renamed"}) {
		t.Errorf("tokenizer: %v", got)
	}
	checkIndex(t, v)
	if err := v.meta.Update(false, func(tx *meta.Tx) error {
		if err := tx.Rename(sessions.Ino, "renamed", notes.Ino, "old", 0); err != nil {
			return err
		}
		return tx.Unlink(notes.Ino, "m.json")
	}); err != nil {
		t.Fatal(err)
	}
	checkIndex(t, v)
	old, err := v.Resolve("notes/old/screenshots")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.meta.Update(false, func(tx *meta.Tx) error {
		return tx.Unlink(old.Ino, "chunk-000.json")
	}); err != nil {
		t.Fatal(err)
	}
	if got := searchIDs(t, v, "tokenizer"); len(got) != 0 {
		t.Errorf("after the move of its session out of sessions/, tokenizer finds %v", got)
	}
	checkIndex(t, v)
	if err := v.meta.Update(false, func(tx *meta.Tx) error {
		if err := tx.Unlink(c.Ino, "metadata.json"); err != nil {
			return err
		}
		return tx.Unlink(notes.Ino, "t.json") // the hard link whose indexed name went before
	}); err != nil {
		t.Fatal(err)
	}
	if got := searchIDs(t, v, "other"); len(got) != 0 {
		t.Errorf("after unlinking c's metadata, other finds %v", got)
	}
	checkIndex(t, v)
}
