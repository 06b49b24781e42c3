package migrate

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/taskerfs/taskerfs/gen"
	"github.com/taskerfs/taskerfs/vfs"
)

// fixedNow stamps updatedAt in tests.
var fixedNow = func() time.Time { return time.Date(2025, 11, 1, 12, 0, 0, 0, time.UTC) }

// generate writes a dataset in layout and returns its dir and manifest.
func generate(t testing.TB, layout gen.Layout, o gen.Options) (string, gen.Manifest) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), string(layout))
	o.Layout = layout
	m, err := gen.Generate(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return dir, m
}

// smallOptions is a small dataset with two screenshot chunks per session
// and duplicate screenshots.
func smallOptions() gen.Options {
	o := gen.DefaultOptions()
	o.Sessions, o.Screenshots, o.AudioSegments, o.Dup, o.Workers = 4, 12, 4, 0.4, 2
	return o
}

// openData opens a fresh data dir; it is closed at the end of the test.
func openData(t testing.TB) *vfs.FS {
	t.Helper()
	return reopen(t, filepath.Join(t.TempDir(), "data"))
}

func reopen(t testing.TB, dir string) *vfs.FS {
	t.Helper()
	v, err := vfs.Open(dir, vfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

func importDir(t testing.TB, src string, dst Tree, o ImportOptions) *Report {
	t.Helper()
	s, err := OpenSource(src)
	if err != nil {
		t.Fatal(err)
	}
	if o.Now == nil {
		o.Now = fixedNow
	}
	rep, err := Import(s, dst, o)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// treeFiles maps every regular file under root (slash paths) to its bytes.
func treeFiles(t testing.TB, root string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// withoutKeys re-renders a JSON object without the given top-level keys.
func withoutKeys(t testing.TB, data []byte, keys ...string) string {
	t.Helper()
	o, err := parseObject(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		o.take(k)
	}
	out, err := prettyJSON(o.appendJSON(nil))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// normalized decodes JSON into generic values, dropping "hash" members of
// records (which import adds to the legacy data) when dropHash is set.
func normalized(t testing.TB, data []byte, dropHash bool) any {
	t.Helper()
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%v in %.200s", err, data)
	}
	if dropHash {
		v = dropHashes(v)
	}
	return v
}

func dropHashes(v any) any {
	switch x := v.(type) {
	case map[string]any:
		delete(x, "hash")
		for k, e := range x {
			x[k] = dropHashes(e)
		}
	case []any:
		for i, e := range x {
			x[i] = dropHashes(e)
		}
	}
	return v
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

func gzipWriter(w io.Writer) *gzip.Writer { return gzip.NewWriter(w) }
