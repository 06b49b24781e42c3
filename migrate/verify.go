package migrate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/taskerfs/taskerfs/blobstore"
)

// verify reads a written session back from t and checks it against the
// legacy session it came from: every file reads back as written
// (attachments by hash); metadata.json holds every member of the session
// that is not chunked or a side file, unchanged, and the right counts; the
// chunks hold the same records in the same order (ids, timestamps,
// transcriptions and all other fields, hash aside); the side files hold
// the summary, insights, canvas, transcription and context items.
func verify(t Tree, c *converted) error {
	read := map[string][]byte{}
	for _, f := range c.files {
		got, err := t.ReadFile(f.path)
		if err != nil {
			return fmt.Errorf("verify %s: %w", f.path, err)
		}
		if f.attachment {
			if len(got) != len(f.data) || blobstore.Sum(got) != f.hash {
				return fmt.Errorf("verify %s: content differs from the decoded attachment", f.path)
			}
			continue
		}
		if !bytes.Equal(got, f.data) {
			return fmt.Errorf("verify %s: content differs from what was written", f.path)
		}
		read[f.path] = got
	}
	md, err := parseObject(read[sessionPath(c.id, metadataFile)])
	if err != nil {
		return fmt.Errorf("verify metadata.json: %w", err)
	}
	if id, _ := md.str("id"); id != c.id {
		return fmt.Errorf("verify metadata.json: id %q, want %q", id, c.id)
	}
	if err := verifyMembers(c.src, md); err != nil {
		return err
	}
	for _, arr := range chunkedArrays {
		if err := verifyArray(c, md, arr, read); err != nil {
			return err
		}
	}
	for _, sf := range sideFiles {
		want, ok := c.src.get(sf.key)
		got, written := read[sessionPath(c.id, sf.file)]
		if s, isString := jsonStringValue(want); sf.key == "fullTranscription" && isString && s == "" {
			ok = false
		}
		if ok != written || ok && !sameJSON(want, got) {
			return fmt.Errorf("verify %s: does not hold the session's %s", sf.file, sf.key)
		}
	}
	return nil
}

// verifyMembers checks that metadata.json carries every copied member.
func verifyMembers(src, md *object) error {
	moved := map[string]bool{}
	for _, arr := range chunkedArrays {
		moved[arr.key] = true
	}
	for _, sf := range sideFiles {
		moved[sf.key] = true
	}
	for _, k := range derivedKeys {
		moved[k] = k != "video"
	}
	for i, k := range src.keys {
		if moved[k] {
			continue
		}
		got, ok := md.get(k)
		if want := src.vals[i]; isNull(want) != !ok || ok && !sameJSON(got, want) {
			return fmt.Errorf("verify metadata.json: member %q differs from the session's", k)
		}
	}
	return nil
}

// verifyArray checks one chunked array: manifest counts and the records.
func verifyArray(c *converted, md *object, arr chunkedArray, read map[string][]byte) error {
	var manifest map[string]chunkInfo
	raw, _ := md.get("chunks")
	if err := json.Unmarshal(raw, &manifest); err != nil {
		return fmt.Errorf("verify metadata.json chunks: %w", err)
	}
	want := c.records[arr.key]
	info := manifest[arr.key]
	if info.Count != len(want) {
		return fmt.Errorf("verify metadata.json: %s count %d, want %d", arr.key, info.Count, len(want))
	}
	var got []*object
	for i := range info.ChunkCount {
		recs, err := parseRecords(read[sessionPath(c.id, arr.dir, chunkName(i))])
		if err != nil {
			return fmt.Errorf("verify %s chunk %d: %w", arr.key, i, err)
		}
		got = append(got, recs...)
	}
	if len(got) != len(want) {
		return fmt.Errorf("verify %s: chunks hold %d records, want %d", arr.key, len(got), len(want))
	}
	var orig []*object
	if srcRaw, ok := c.src.get(arr.key); ok {
		var err error
		if orig, err = parseRecords(srcRaw); err != nil {
			return err
		}
	}
	for i := range got {
		for _, k := range []string{"id", "timestamp", "transcription"} {
			w, wok := orig[i].get(k)
			g, gok := got[i].get(k)
			if wok != gok || wok && !sameJSON(w, g) {
				return fmt.Errorf("verify %s[%d]: %s differs", arr.key, i, k)
			}
		}
		if !sameRecord(orig[i], got[i]) {
			return fmt.Errorf("verify %s[%d]: record differs", arr.key, i)
		}
	}
	return nil
}

// sameRecord compares two records member by member, ignoring hash (which
// import fills in).
func sameRecord(a, b *object) bool {
	keys := func(o *object) []string {
		return slices.DeleteFunc(slices.Clone(o.keys), func(k string) bool { return k == "hash" })
	}
	ka, kb := keys(a), keys(b)
	if !slices.Equal(ka, kb) {
		return false
	}
	for _, k := range ka {
		va, _ := a.get(k)
		vb, _ := b.get(k)
		if !sameJSON(va, vb) && !(isNull(va) && isNull(vb)) {
			return false
		}
	}
	return true
}
