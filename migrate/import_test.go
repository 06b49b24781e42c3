package migrate

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/gen"
	"github.com/taskerfs/taskerfs/vfs"
)

// compareWithSeed checks that got (an exported chunked tree) holds exactly
// the files of want (the same dataset generated in the seed's layout),
// byte for byte, metadata.json's updatedAt aside.
func compareWithSeed(t *testing.T, want, got string) {
	t.Helper()
	w, g := treeFiles(t, want), treeFiles(t, got)
	kinds := map[string]bool{}
	for p := range w {
		parts := strings.Split(p, "/")
		kinds[parts[2]] = true
	}
	for _, k := range []string{"metadata.json", "summary.json", "audioInsights.json", "canvasSpec.json", "transcription.json",
		"screenshots", "audioSegments", "videoChunks", "attachments"} {
		if !kinds[k] {
			t.Fatalf("the seed dataset has no %s: the comparison would not cover it", k)
		}
	}
	if wk, gk := slices.Sorted(maps.Keys(w)), slices.Sorted(maps.Keys(g)); !slices.Equal(wk, gk) {
		t.Fatalf("file sets differ:\nseed   %d files %v\nimport %d files %v", len(wk), firstN(wk, 8), len(gk), firstN(gk, 8))
	}
	diffs := 0
	for p, wd := range w {
		gd := g[p]
		if filepath.Base(p) == metadataFile {
			if a, b := withoutKeys(t, wd, "updatedAt"), withoutKeys(t, gd, "updatedAt"); a != b {
				t.Errorf("%s differs:\nseed:\n%s\nimport:\n%s", p, firstLines(a, 60), firstLines(b, 60))
				diffs++
			}
		} else if sum(wd) != sum(gd) {
			t.Errorf("%s: sha256 %s, seed layout has %s\nseed:   %.300s\nimport: %.300s", p, sum(gd), sum(wd), wd, gd)
			diffs++
		}
		if diffs > 3 {
			t.FailNow()
		}
	}
}

func firstN(s []string, n int) []string { return s[:min(n, len(s))] }

func TestImportMatchesSeedLayout(t *testing.T) {
	o := smallOptions()
	o.Sessions, o.Screenshots, o.AudioSegments = 3, 21, 51 // 3 and 2 chunks
	legacy, lm := generate(t, gen.LayoutLegacy, o)
	seed, _ := generate(t, gen.LayoutSeed, o)
	v := openData(t)
	rep := importDir(t, legacy, VFSTree{v}, ImportOptions{})
	if len(rep.Failed) > 0 || len(rep.Warnings) > 0 {
		t.Fatalf("failures %v, warnings %v", rep.Failed, rep.Warnings)
	}
	if rep.Sessions != o.Sessions || rep.Attachments != lm.Screenshots+lm.AudioSegments {
		t.Errorf("imported %d sessions, %d attachments; want %d, %d", rep.Sessions, rep.Attachments, o.Sessions, lm.Screenshots+lm.AudioSegments)
	}
	if rep.Duplicates != lm.DuplicateScreenshots || rep.SavedBytes != lm.AttachmentBytes-lm.UniqueAttachmentBytes {
		t.Errorf("duplicates %d saving %d bytes; generated %d duplicates of %d bytes",
			rep.Duplicates, rep.SavedBytes, lm.DuplicateScreenshots, lm.AttachmentBytes-lm.UniqueAttachmentBytes)
	}
	out := filepath.Join(t.TempDir(), "export")
	if _, err := Export(VFSTree{v}, out, ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	compareWithSeed(t, seed, out)
}

// TestLegacyRoundTrip imports a legacy dataset, closes and reopens the data
// dir, exports it in the legacy layout and compares with the source: the
// same sessions (import adds only the attachments' hashes) and the same
// attachments (bytes and records).
func TestLegacyRoundTrip(t *testing.T) {
	o := smallOptions()
	legacy, _ := generate(t, gen.LayoutLegacy, o)
	dataDir := filepath.Join(t.TempDir(), "data")
	v, err := vfs.Open(dataDir, vfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	importDir(t, legacy, VFSTree{v}, ImportOptions{})
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	v = reopen(t, dataDir)
	out := filepath.Join(t.TempDir(), "export")
	rep, err := Export(VFSTree{v}, out, ExportOptions{Monolithic: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sessions != o.Sessions || len(rep.Warnings) > 0 {
		t.Fatalf("exported %d sessions, warnings %v", rep.Sessions, rep.Warnings)
	}
	compareLegacy(t, legacy, out)
}

// compareLegacy checks that got holds the sessions and attachments of want.
func compareLegacy(t *testing.T, want, got string) {
	t.Helper()
	w, g := treeFiles(t, want), treeFiles(t, got)
	if wk, gk := slices.Sorted(maps.Keys(w)), slices.Sorted(maps.Keys(g)); !slices.Equal(wk, gk) {
		t.Fatalf("file sets differ: source %d files, export %d", len(wk), len(gk))
	}
	for p, wd := range w {
		gd := g[p]
		if strings.HasPrefix(p, "sessions/") {
			if a, b := normalized(t, wd, true), normalized(t, gd, true); !reflect.DeepEqual(a, b) {
				t.Fatalf("%s differs:\nsource %.400s\nexport %.400s", p, wd, gd)
			}
			continue
		}
		a, b := attachmentRecord(t, wd), attachmentRecord(t, gd)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%s differs:\nsource %v\nexport %v", p, a, b)
		}
	}
}

// attachmentRecord decodes a legacy attachment, its base64 (data: URL or
// not) replaced by the decoded bytes' hash.
func attachmentRecord(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var rec map[string]any
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	s, _ := rec["base64"].(string)
	if _, after, ok := strings.Cut(s, ";base64,"); ok {
		s = after
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	rec["base64"] = sum(raw)
	return rec
}

// TestDuplicatesStoredOnce imports a dataset where 40% of the screenshots
// are copies: every distinct content is one blob referenced by each of
// its files, and the report's savings are the copies' bytes.
func TestDuplicatesStoredOnce(t *testing.T) {
	o := smallOptions()
	o.Sessions, o.AudioSegments = 12, 0
	legacy, lm := generate(t, gen.LayoutLegacy, o)
	v := openData(t)
	rep := importDir(t, legacy, VFSTree{v}, ImportOptions{})
	if rep.Duplicates != lm.DuplicateScreenshots || lm.DuplicateScreenshots < lm.Screenshots/4 {
		t.Fatalf("report: %d duplicates; generated %d of %d", rep.Duplicates, lm.DuplicateScreenshots, lm.Screenshots)
	}
	if want := lm.AttachmentBytes - lm.UniqueAttachmentBytes; rep.SavedBytes != want {
		t.Errorf("report saves %d bytes, want %d", rep.SavedBytes, want)
	}
	if err := v.SyncAll(); err != nil {
		t.Fatal(err)
	}
	files := map[blobstore.Hash]uint64{}
	var unique int64
	for _, s := range lm.Sessions {
		entries, err := v.ReadDirAt(sessionPath(s.ID, attachmentsDir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			data, err := v.ReadFile(e.Ino)
			if err != nil {
				t.Fatal(err)
			}
			h := blobstore.Sum(data)
			if files[h] == 0 {
				unique += int64(len(data))
			}
			files[h]++
		}
	}
	if unique != lm.UniqueAttachmentBytes {
		t.Errorf("distinct attachment bytes %d, want %d", unique, lm.UniqueAttachmentBytes)
	}
	for h, n := range files {
		info, ok, err := v.BlobInfo(h)
		if err != nil || !ok || info.Refs != n {
			t.Fatalf("blob %s: refs %d (found %v, %v), used by %d files", h, info.Refs, ok, err, n)
		}
	}
	blobFiles := 0
	v.BlobStore().List("", func(blobstore.Hash) error { blobFiles++; return nil })
	if blobFiles < len(files) || blobFiles > len(files)+o.Sessions*4 {
		t.Errorf("%d blob files for %d distinct attachments", blobFiles, len(files))
	}
}

func TestRerunSkipsCompleteSessions(t *testing.T) {
	o := smallOptions()
	o.Sessions = 4
	legacy, lm := generate(t, gen.LayoutLegacy, o)
	v := openData(t)
	importDir(t, legacy, VFSTree{v}, ImportOptions{})
	if err := v.SyncAll(); err != nil { // as a new process would find it
		t.Fatal(err)
	}
	// A crash can leave a file without its content: the session is redone.
	broken := lm.Sessions[2].ID
	if err := v.WriteFile(sessionPath(broken, "screenshots", chunkName(1)), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// A session changed since its import is left as it is.
	edited := sessionPath(lm.Sessions[0].ID, metadataFile)
	md, err := v.ReadFileAt(edited)
	if err != nil {
		t.Fatal(err)
	}
	md = bytes.Replace(md, []byte(`"name": "`), []byte(`"name": "renamed `), 1)
	if err := v.WriteFile(edited, md, 0o644); err != nil {
		t.Fatal(err)
	}
	rep := importDir(t, legacy, VFSTree{v}, ImportOptions{})
	if rep.Skipped != o.Sessions-1 || rep.Sessions != 1 || len(rep.Failed) > 0 {
		t.Fatalf("rerun: %d skipped, %d imported, failed %v", rep.Skipped, rep.Sessions, rep.Failed)
	}
	if rep.Duplicates != rep.Attachments {
		t.Errorf("redone session: %d of %d attachments found stored already", rep.Duplicates, rep.Attachments)
	}
	data, err := v.ReadFileAt(sessionPath(broken, "screenshots", chunkName(1)))
	if err != nil || len(data) == 0 {
		t.Fatalf("chunk not rewritten: %d bytes, %v", len(data), err)
	}
	if got, err := v.ReadFileAt(edited); err != nil || !bytes.Equal(got, md) {
		t.Fatalf("the rerun overwrote a session changed since its import (%v)", err)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	o := smallOptions()
	o.Sessions = 3
	legacy, lm := generate(t, gen.LayoutLegacy, o)
	before := treeFiles(t, legacy)
	v := openData(t)
	dry := importDir(t, legacy, VFSTree{v}, ImportOptions{DryRun: true})
	entries, err := v.ReadDirAt(sessionsDir)
	if err != nil || len(entries) != 0 {
		t.Fatalf("dry run wrote %d sessions (%v)", len(entries), err)
	}
	real := importDir(t, legacy, VFSTree{v}, ImportOptions{})
	if dry.Sessions != real.Sessions || dry.Attachments != real.Attachments || dry.Duplicates != real.Duplicates ||
		dry.SessionBytes != real.SessionBytes || dry.Sessions != len(lm.Sessions) {
		t.Errorf("dry run %+v, real run %+v", *dry, *real)
	}
	if after := treeFiles(t, legacy); !reflect.DeepEqual(before, after) {
		t.Error("the source changed")
	}
}

// TestBadSessionsAreSkipped mixes good sessions with broken ones: each
// broken one is reported, the good ones are imported.
func TestBadSessionsAreSkipped(t *testing.T) {
	o := smallOptions()
	o.Sessions = 3
	legacy, lm := generate(t, gen.LayoutLegacy, o)
	write := func(rel, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(legacy, rel), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("sessions/zz-invalid.json", `{"id": "x", "name": `)
	write("sessions/zz-noid.json", `{"name": "no id", "screenshots": []}`)
	write("sessions/zz-badbase64.json", `{"id": "bad64", "screenshots": [{"id": "s1", "attachmentId": "att-bad"}]}`)
	write("attachments/att-bad.json", `{"id": "att-bad", "mimeType": "image/jpeg", "base64": "data:image/jpeg;base64,@@@not base64@@@"}`)
	write("sessions/zz-dup.json", `{"id": "`+lm.Sessions[0].ID+`"}`)
	v := openData(t)
	rep := importDir(t, legacy, VFSTree{v}, ImportOptions{})
	if rep.Sessions != o.Sessions {
		t.Errorf("imported %d sessions, want %d", rep.Sessions, o.Sessions)
	}
	want := map[string]string{
		"zz-invalid.json":   "invalid session JSON",
		"zz-noid.json":      "no id",
		"zz-badbase64.json": "base64",
		"zz-dup.json":       "duplicate session id",
	}
	if len(rep.Failed) != len(want) {
		t.Fatalf("failures %v, want %d", rep.Failed, len(want))
	}
	for _, f := range rep.Failed {
		if !strings.Contains(f.Err.Error(), want[f.Origin]) {
			t.Errorf("%s failed with %v, want %q", f.Origin, f.Err, want[f.Origin])
		}
	}
	if _, err := v.Resolve(sessionPath("bad64")); err == nil {
		t.Error("the session with undecodable base64 was written")
	}
}

// TestArrayEnvelopeAndDatAttachments imports the same sessions from the
// app's other legacy shapes: one enveloped sessions.json array, and
// attachments as .dat files (base64, some as data: URLs) with .meta.json
// records. The result equals the import of the plain layout.
func TestArrayEnvelopeAndDatAttachments(t *testing.T) {
	o := smallOptions()
	o.Sessions = 3
	legacy, _ := generate(t, gen.LayoutLegacy, o)
	alt := filepath.Join(t.TempDir(), "alt")
	var sessions []json.RawMessage
	files := treeFiles(t, legacy)
	for _, p := range slices.Sorted(maps.Keys(files)) {
		data := files[p]
		switch {
		case strings.HasPrefix(p, "sessions/"):
			sessions = append(sessions, data)
		case strings.HasPrefix(p, "attachments/"):
			var rec map[string]any
			if err := json.Unmarshal(data, &rec); err != nil {
				t.Fatal(err)
			}
			b64 := rec["base64"].(string)
			delete(rec, "base64")
			meta, _ := json.Marshal(rec)
			stem := strings.TrimSuffix(p, ".json")
			mustWrite(t, filepath.Join(alt, stem+".dat"), []byte(b64))
			mustWrite(t, filepath.Join(alt, stem+".meta.json"), envelope(t, meta))
		}
	}
	all, _ := json.Marshal(sessions)
	mustWrite(t, filepath.Join(alt, "sessions.json"), envelope(t, all))
	// The same session also as its own file, reformatted: imported once.
	var again bytes.Buffer
	json.Indent(&again, sessions[1], "", "\t")
	mustWrite(t, filepath.Join(alt, "sessions", "again.json"), again.Bytes())

	export := func(src string, same int) string {
		v := openData(t)
		rep := importDir(t, src, VFSTree{v}, ImportOptions{})
		if len(rep.Failed) > 0 || rep.Sessions != o.Sessions || rep.SameSessions != same {
			t.Fatalf("import of %s: %d sessions, %d seen twice, failed %v", src, rep.Sessions, rep.SameSessions, rep.Failed)
		}
		out := filepath.Join(t.TempDir(), "export")
		if _, err := Export(VFSTree{v}, out, ExportOptions{}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	want, got := treeFiles(t, export(legacy, 0)), treeFiles(t, export(alt, 1))
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("importing the array and .dat layout gave %d files, the plain layout %d, or their contents differ", len(got), len(want))
	}
}

// envelope wraps JSON as the app's storage adapter does.
func envelope(t *testing.T, js []byte) []byte {
	t.Helper()
	var gz bytes.Buffer
	zw := gzipWriter(&gz)
	zw.Write(js)
	zw.Close()
	env, err := json.Marshal(map[string]any{"version": 1, "checksum": gen.Checksum(js), "timestamp": 1730000000000,
		"compressed": true, "data": gzipPrefix + base64.StdEncoding.EncodeToString(gz.Bytes())})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func mustWrite(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestImportIntoDirectory writes through a DirTree, as import does into a
// running mount, and gets the same files as through the core.
func TestImportIntoDirectory(t *testing.T) {
	o := smallOptions()
	o.Sessions = 3
	legacy, _ := generate(t, gen.LayoutLegacy, o)
	dir := filepath.Join(t.TempDir(), "tree")
	rep := importDir(t, legacy, DirTree{dir}, ImportOptions{})
	if rep.Sessions != o.Sessions || len(rep.Failed) > 0 {
		t.Fatalf("imported %d, failed %v", rep.Sessions, rep.Failed)
	}
	v := openData(t)
	importDir(t, legacy, VFSTree{v}, ImportOptions{})
	out := filepath.Join(t.TempDir(), "export")
	if _, err := Export(VFSTree{v}, out, ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(treeFiles(t, dir), treeFiles(t, out)) {
		t.Fatal("the directory import differs from the core import")
	}
	if again := importDir(t, legacy, DirTree{dir}, ImportOptions{}); again.Skipped != o.Sessions {
		t.Errorf("rerun into the directory skipped %d of %d", again.Skipped, o.Sessions)
	}
}
