package tests

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/taskerfs/taskerfs/gen"
)

// requireBinary skips t when the taskerfs binary is not available; unlike
// requireMountable it does not need FUSE.
func requireBinary(t testing.TB) {
	t.Helper()
	if taskerfsBin == "" || !fileExists(taskerfsBin) {
		cannotRun(t, "TASKERFS_BIN is not set or missing")
	}
}

// taskerfs runs the binary and returns its combined output and exit status.
func taskerfs(t testing.TB, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(taskerfsBin, args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("taskerfs %s: %v", strings.Join(args, " "), err)
	return "", 0
}

// mustTaskerfs runs the binary and fails t unless it exits with want.
func mustTaskerfs(t testing.TB, want int, args ...string) string {
	t.Helper()
	out, code := taskerfs(t, args...)
	if code != want {
		t.Fatalf("taskerfs %s: exit %d, want %d\n%s", strings.Join(args, " "), code, want, out)
	}
	return out
}

// genDataset writes a generated dataset in layout under a temp dir.
func genDataset(t testing.TB, layout gen.Layout, o gen.Options) (string, gen.Manifest) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), string(layout))
	o.Layout = layout
	m, err := gen.Generate(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return dir, m
}

// importOptions: several screenshot and audio chunks per session and 40%
// duplicate screenshots, small enough to import in seconds.
func importOptions() gen.Options {
	o := gen.DefaultOptions()
	o.Sessions, o.Screenshots, o.AudioSegments, o.Dup, o.Workers = 5, 21, 51, 0.4, 2
	return o
}

// compareSessionTrees checks that got/sessions holds the files of
// want/sessions with the same SHA-256, metadata.json compared without its
// updatedAt (the time of the import).
func compareSessionTrees(t *testing.T, want, got string) {
	t.Helper()
	w, g := scanTree(t, filepath.Join(want, "sessions")), scanTree(t, filepath.Join(got, "sessions"))
	if len(w) != len(g) {
		t.Errorf("%d entries under sessions/, want %d", len(g), len(w))
	}
	var rels []string
	for rel := range w {
		rels = append(rels, rel)
	}
	sort.Strings(rels)
	bad := 0
	for _, rel := range rels {
		we, ge := w[rel], g[rel]
		switch {
		case ge.mode == 0:
			t.Errorf("%s: missing", rel)
			bad++
		case filepath.Base(rel) == "metadata.json":
			a := withoutUpdatedAt(t, filepath.Join(want, "sessions", rel))
			b := withoutUpdatedAt(t, filepath.Join(got, "sessions", rel))
			if !reflect.DeepEqual(a, b) {
				t.Errorf("%s differs:\nwant %v\ngot  %v", rel, a, b)
				bad++
			}
		case we.sum != ge.sum:
			t.Errorf("%s: sha256 %s, want %s", rel, ge.sum, we.sum)
			bad++
		}
		if bad > 5 {
			t.FailNow()
		}
	}
}

func withoutUpdatedAt(t *testing.T, p string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(mustRead(t, p), &m); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	delete(m, "updatedAt")
	return m
}

// compareLegacyTrees checks that got holds the sessions and attachments of
// the legacy dataset want: the same JSON (import adds only the records'
// attachment hashes) and attachments with the same record and bytes.
func compareLegacyTrees(t *testing.T, want, got string) {
	t.Helper()
	for _, sub := range []string{"sessions", "attachments"} {
		entries, err := os.ReadDir(filepath.Join(want, sub))
		if err != nil {
			t.Fatal(err)
		}
		gotEntries, err := os.ReadDir(filepath.Join(got, sub))
		if err != nil {
			t.Fatal(err)
		}
		if len(gotEntries) != len(entries) {
			t.Fatalf("%s/: %d files exported, the source has %d", sub, len(gotEntries), len(entries))
		}
		for _, e := range entries {
			a := legacyJSON(t, filepath.Join(want, sub, e.Name()))
			b := legacyJSON(t, filepath.Join(got, sub, e.Name()))
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("%s/%s differs from the source", sub, e.Name())
			}
		}
	}
}

// legacyJSON decodes a legacy file with records' "hash" members dropped
// and an attachment's base64 (data: URL or not) replaced by its bytes.
func legacyJSON(t *testing.T, p string) any {
	t.Helper()
	var v any
	dec := json.NewDecoder(bytes.NewReader(mustRead(t, p)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			delete(x, "hash")
			if s, ok := x["base64"].(string); ok {
				if _, after, found := strings.Cut(s, ";base64,"); found {
					s = after
				}
				raw, err := base64.StdEncoding.DecodeString(s)
				if err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				x["base64"] = string(raw)
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return v
}

// TestImportEqualsChunkedLayout imports a generated legacy dataset and
// compares the mounted result with the same dataset generated directly in
// the chunked layout, then exports it back to the legacy layout through
// the mount and compares that with the source.
func TestImportEqualsChunkedLayout(t *testing.T) {
	requireMountable(t)
	o := importOptions()
	legacy, lm := genDataset(t, gen.LayoutLegacy, o)
	seed, _ := genDataset(t, gen.LayoutSeed, o)
	srcSums := sha256Manifest(t, legacy)
	data := newDataDir(t)

	dry := mustTaskerfs(t, 0, "import", legacy, "--data", data, "--dry-run")
	if !strings.Contains(dry, fmt.Sprintf("would import %d sessions", o.Sessions)) {
		t.Fatalf("dry run:\n%s", dry)
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the dry run created the data dir (%v)", err)
	}
	out := mustTaskerfs(t, 0, "import", legacy, "--data", data)
	want := fmt.Sprintf("imported %d sessions, 0 already imported (skipped), 0 failed", o.Sessions)
	if !strings.Contains(out, want) || !strings.Contains(out, fmt.Sprintf("%d duplicates found", lm.DuplicateScreenshots)) {
		t.Fatalf("import report lacks %q or the duplicate count %d:\n%s", want, lm.DuplicateScreenshots, out)
	}
	run(t, legacy, "sha256sum", "--quiet", "-c", srcSums) // the source is untouched

	m := mountFS(t, data)
	compareSessionTrees(t, seed, m.Dir)

	again := mustTaskerfs(t, 0, "import", legacy, "--data", data)
	if !strings.Contains(again, fmt.Sprintf("imported 0 sessions, %d already imported", o.Sessions)) {
		t.Fatalf("rerun through the mount:\n%s", again)
	}
	exported := filepath.Join(t.TempDir(), "legacy-again")
	mustTaskerfs(t, 0, "export", exported, "--monolithic", "--data", data)
	compareLegacyTrees(t, legacy, exported)

	m.Unmount()
	chunked := filepath.Join(t.TempDir(), "chunked")
	mustTaskerfs(t, 0, "export", chunked, "--data", data)
	compareSessionTrees(t, seed, chunked)
	if out := mustTaskerfs(t, 0, "fsck", "--data", data); !strings.Contains(out, "clean") {
		t.Fatalf("fsck after import:\n%s", out)
	}
}

var dupReport = regexp.MustCompile(`(\d+) duplicates found, ([\d.]+ MB) saved by deduplication`)

// TestImportStoresDuplicatesOnce imports a dataset in which 40% of the
// screenshots are copies: the report counts them and their bytes, and the
// mount's content view shows each distinct screenshot as one blob
// referenced by every file that holds it.
func TestImportStoresDuplicatesOnce(t *testing.T) {
	requireMountable(t)
	o := importOptions()
	o.AudioSegments = 2
	legacy, lm := genDataset(t, gen.LayoutLegacy, o)
	data := newDataDir(t)
	out := mustTaskerfs(t, 0, "import", legacy, "--data", data)
	got := dupReport.FindStringSubmatch(out)
	saved := fmt.Sprintf("%.1f MB", float64(lm.AttachmentBytes-lm.UniqueAttachmentBytes)/1e6)
	if got == nil || got[1] != fmt.Sprint(lm.DuplicateScreenshots) || got[2] != saved {
		t.Fatalf("report %q; want %d duplicates and %s saved:\n%s", got, lm.DuplicateScreenshots, saved, out)
	}
	if lm.DuplicateScreenshots*10 < lm.Screenshots*3 {
		t.Fatalf("the dataset has only %d duplicates of %d screenshots", lm.DuplicateScreenshots, lm.Screenshots)
	}

	m := mountFS(t, data)
	users := map[string]int{}
	shots, _ := filepath.Glob(m.Path("sessions", "*", "attachments", "*.jpg"))
	for _, p := range shots {
		users[hexSum(mustRead(t, p))]++
	}
	if len(shots) != lm.Screenshots || len(users) != lm.Screenshots-lm.DuplicateScreenshots {
		t.Fatalf("%d screenshots with %d distinct contents; generated %d with %d duplicates",
			len(shots), len(users), lm.Screenshots, lm.DuplicateScreenshots)
	}
	for h, n := range users {
		md := readCASMetadata(t, m, h)
		if md.RefCount != uint64(n) {
			t.Fatalf("blob %s: refCount %d, %d files hold it", h, md.RefCount, n)
		}
	}
}

// TestImportThroughMountReportsBadSessions imports into a mounted data dir
// (the writes go through the mount) a dataset with broken sessions: each
// is reported, the others are imported, and the exit status is 2.
func TestImportThroughMountReportsBadSessions(t *testing.T) {
	requireMountable(t)
	o := importOptions()
	o.Sessions, o.AudioSegments = 3, 3
	legacy, lm := genDataset(t, gen.LayoutLegacy, o)
	mustWrite(t, filepath.Join(legacy, "sessions", "broken.json"), []byte(`{"id": "broken", "name": `))
	mustWrite(t, filepath.Join(legacy, "sessions", "badb64.json"), []byte(`{"id": "badb64", "screenshots": [{"id": "x", "attachmentId": "att-x"}]}`))
	mustWrite(t, filepath.Join(legacy, "attachments", "att-x.json"), []byte(`{"id": "att-x", "mimeType": "image/png", "base64": "%%%"}`))
	m := mountFS(t, newDataDir(t))

	out := mustTaskerfs(t, 2, "import", legacy, "--data", m.Data)
	for _, want := range []string{"writing through " + m.Dir, fmt.Sprintf("imported %d sessions", o.Sessions),
		"failed: broken.json", "invalid session JSON", "failed: badb64.json (session badb64)", "base64"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, s := range lm.Sessions {
		md := mustRead(t, m.Path("sessions", s.ID, "metadata.json"))
		var meta struct {
			ID              string `json:"id"`
			ScreenshotCount int    `json:"screenshotCount"`
		}
		if err := json.Unmarshal(md, &meta); err != nil || meta.ID != s.ID || meta.ScreenshotCount != s.Screenshots {
			t.Fatalf("session %s through the mount: %+v (%v)", s.ID, meta, err)
		}
		shots, _ := filepath.Glob(m.Path("sessions", s.ID, "attachments", "*.jpg"))
		if len(shots) != s.Screenshots {
			t.Fatalf("session %s: %d screenshots through the mount, want %d", s.ID, len(shots), s.Screenshots)
		}
		rec := make([]byte, 4096)
		n, err := unix.Getxattr(shots[0], "user.taskerino.attachment", rec)
		if err != nil || !bytes.Contains(rec[:n], []byte(`"mimeType":"image/jpeg"`)) {
			t.Fatalf("attachment record xattr of %s: %q, %v", shots[0], rec[:max(n, 0)], err)
		}
	}
	if _, err := os.Stat(m.Path("sessions", "badb64")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the session with bad base64 was written (%v)", err)
	}
}
