package index

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/klauspost/compress/gzip"
)

func openDB(t testing.TB) *pebble.DB {
	t.Helper()
	db, err := pebble.Open(t.TempDir(), &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gzipV1 encodes v the way the real app's envelope does: "GZIP_V1:" + base64(gzip(json)).
func gzipV1(t testing.TB, v any) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(mustJSON(t, v)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return "GZIP_V1:" + base64.StdEncoding.EncodeToString(buf.Bytes())
}

// envelope wraps v in the real app's file envelope; compressed selects a
// GZIP_V1 payload, otherwise data holds the raw JSON text as a string.
func envelope(t testing.TB, v any, compressed bool) []byte {
	t.Helper()
	data := string(mustJSON(t, v))
	if compressed {
		data = gzipV1(t, v)
	}
	return mustJSON(t, map[string]any{
		"version": 1, "checksum": "1x2y3z", "timestamp": 1730000000000, "compressed": compressed, "data": data,
	})
}

// fixture is an index over a temp DB that tests feed file by file.
type fixture struct {
	t  testing.TB
	db *pebble.DB
	x  *Index
	// perCall: batches are not registered (BeginBatch), so each index
	// call writes its own groups; else a batch's term postings are
	// gathered and written before it commits, as a mount's transactions do.
	perCall bool
}

func newFixture(t testing.TB) *fixture {
	db := openDB(t)
	x := New(db)
	x.sweepMin = testSweepMin
	return &fixture{t: t, db: db, x: x}
}

// testSweepMin makes compaction sweeps run often in tests, so that searches
// see base blocks and delta keys mixed.
const testSweepMin = 64

// put indexes content as the file fid at path (which must classify) in its own batch.
func (f *fixture) put(fid uint64, path string, content []byte) {
	f.t.Helper()
	f.batch(func(b *pebble.Batch) {
		sid, kind, ok := Classify(path)
		if !ok {
			f.t.Fatalf("%s does not classify", path)
		}
		if err := f.x.UpdateFile(b, fid, sid, kind, content); err != nil {
			f.t.Fatal(err)
		}
	})
}

func (f *fixture) remove(fid uint64) {
	f.t.Helper()
	f.batch(func(b *pebble.Batch) {
		if err := f.x.RemoveFile(b, fid); err != nil {
			f.t.Fatal(err)
		}
	})
}

func (f *fixture) batch(fn func(b *pebble.Batch)) {
	f.t.Helper()
	b := f.db.NewIndexedBatch()
	defer b.Close()
	if !f.perCall {
		f.x.BeginBatch(b)
		defer f.x.EndBatch(b)
	}
	fn(b)
	if err := f.x.FlushBatch(b); err != nil {
		f.t.Fatal(err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		f.t.Fatal(err)
	}
}

// ids runs query and returns the hit ids in order.
func (f *fixture) ids(query string) []string {
	f.t.Helper()
	hits, err := f.x.Search(query)
	if err != nil {
		f.t.Fatalf("search %q: %v", query, err)
	}
	out := []string{}
	for _, h := range hits {
		out = append(out, h.SessionID)
	}
	return out
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// num returns the number the index gave session sid.
func (f *fixture) num(sid string) uint32 {
	f.t.Helper()
	v, ok, err := get(f.db, sessionKey(sid))
	if err != nil || !ok || len(v) != 4 {
		f.t.Fatalf("session %q has no number: %v", sid, err)
	}
	return binary.BigEndian.Uint32(v)
}

// setGrouped writes, as a group later than any the index wrote, the delta
// posting of term t for (num, fid) with tf (0 removes it): what a damaged
// or stray group would say.
func setGrouped(b *pebble.Batch, t string, num uint32, fid, tf uint64) error {
	key := binary.BigEndian.AppendUint64(groupPrefix(t), 1<<62)
	return b.Set(key, appendGroup(nil, []posting{{num: num, fid: fid, tf: tf}}), nil)
}
