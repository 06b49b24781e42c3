package index

import (
	"bytes"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble"
)

// TestCheckTrustsSums: Check takes the stored record of a file whose content
// has the record's sum instead of extracting the file again, and still finds
// every damage of the keys that record names; a file whose content changed,
// or whose record has no sums (version 1), is extracted and compared.
func TestCheckTrustsSums(t *testing.T) {
	summary := map[string]any{"narrative": strings.Repeat("gamma delta epsilon ", 30)}
	paths := map[uint64]string{1: "sessions/s1/metadata.json", 2: "sessions/s1/summary.json", 3: "sessions/s2/metadata.json"}
	initial := func() map[uint64][]byte {
		return map[uint64][]byte{
			1: meta("alpha", "beta", "tags", []any{"t1"}, "startTime", "2025-01-01"),
			2: mustJSON(t, summary),
			3: meta("zeta", "eta"),
		}
	}
	// v1 rewrites file fid's record as version 1 (no sums).
	v1 := func(f *fixture, fid uint64) {
		rec, err := loadRecord(f.db, fid)
		if err != nil || rec == nil {
			t.Fatalf("record %d: %v", fid, err)
		}
		f.batch(func(b *pebble.Batch) {
			_ = b.Set(fileKey(fid), append([]byte{recordVersionV1}, rec.fields()...), nil)
		})
	}
	tests := []struct {
		name   string
		damage func(f *fixture, files map[uint64][]byte)
		want   []string // substrings of the report; none: a clean check
	}{
		{"clean", nil, nil},
		{"snippet text deleted", func(f *fixture, _ map[uint64][]byte) {
			f.batch(func(b *pebble.Batch) { _ = b.Delete(textKey(2), nil) })
		}, []string{"file 2 (session \"s1\"): snippet text missing or wrong"}},
		{"snippet text replaced", func(f *fixture, _ map[uint64][]byte) {
			f.batch(func(b *pebble.Batch) { _ = b.Set(textKey(2), encodeText(strings.Repeat("other words ", 30)), nil) })
		}, []string{"file 2 (session \"s1\"): snippet text missing or wrong"}},
		{"snippet text where the record has none", func(f *fixture, _ map[uint64][]byte) {
			f.batch(func(b *pebble.Batch) { _ = b.Set(textKey(3), []byte("zeta"), nil) })
		}, []string{"file 3 (session \"s2\"): snippet text missing or wrong"}},
		{"session part wrong", func(f *fixture, _ map[uint64][]byte) {
			f.batch(func(b *pebble.Batch) { _ = b.Set(sessFileKey(f.num("s1"), 1), []byte{9}, nil) })
		}, []string{"file 1 (session \"s1\"): session part missing or wrong"}},
		{"session number taken by another session", func(f *fixture, _ map[uint64][]byte) {
			f.batch(func(b *pebble.Batch) { _ = b.Set(sessionKey("s1"), appendNum(nil, f.num("s2")), nil) })
		}, []string{"file 1 (session \"s1\"): indexed under session number"}},
		{"day posting with a value", func(f *fixture, _ map[uint64][]byte) {
			f.batch(func(b *pebble.Batch) {
				k := newKeyBuilder(f.num("s1"), 1)
				_ = b.Set(k.day("2025-01-01"), []byte{1}, nil)
			})
		}, []string{"file 1 (session \"s1\"): posting"}},
		{"facet posting deleted", func(f *fixture, _ map[uint64][]byte) {
			f.batch(func(b *pebble.Batch) { _ = b.Delete(withNumFid(facetPrefix(fieldTag, "t1", ""), f.num("s1"), 1), nil) })
		}, []string{"file 1 (session \"s1\"): posting"}},
		{"term posting deleted", func(f *fixture, _ map[uint64][]byte) {
			f.batch(func(b *pebble.Batch) { _ = setGrouped(b, "alpha", f.num("s1"), 1, 0) })
		}, []string{`file 1 (session "s1"): posting of "alpha" missing or wrong`}},
		{"content changed", func(_ *fixture, files map[uint64][]byte) {
			files[2] = mustJSON(t, map[string]any{"narrative": "changed on disk"})
		}, []string{"stale: file 2"}},
		{"content changed, extracts the same", func(_ *fixture, files map[uint64][]byte) {
			files[2] = append([]byte(" "), files[2]...)
		}, nil},
		{"version 1 record, same content", func(f *fixture, _ map[uint64][]byte) {
			v1(f, 2)
		}, nil},
		{"version 1 record, content changed", func(f *fixture, files map[uint64][]byte) {
			v1(f, 2)
			files[2] = mustJSON(t, map[string]any{"narrative": "changed on disk"})
		}, []string{"stale: file 2"}},
		{"version 1 record, snippet text deleted", func(f *fixture, _ map[uint64][]byte) {
			v1(f, 2)
			f.batch(func(b *pebble.Batch) { _ = b.Delete(textKey(2), nil) })
		}, []string{"file 2 (session \"s1\"): snippet text missing or wrong"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			files := initial()
			for fid := uint64(1); fid <= 3; fid++ {
				f.put(fid, paths[fid], files[fid])
			}
			if tc.damage != nil {
				tc.damage(f, files)
			}
			all := func(fn func(uint64, string, Kind, []byte) error) error {
				for fid := uint64(1); fid <= 3; fid++ {
					sid, kind, _ := Classify(paths[fid])
					if err := fn(fid, sid, kind, files[fid]); err != nil {
						return err
					}
				}
				return nil
			}
			problems, err := f.x.Check(all)
			if err != nil {
				t.Fatal(err)
			}
			report := strings.Join(problems, "\n")
			if len(tc.want) == 0 && len(problems) > 0 {
				t.Fatalf("problems in a sound index:\n%s", report)
			}
			for _, w := range tc.want {
				if !strings.Contains(report, w) {
					t.Errorf("report lacks %q:\n%s", w, report)
				}
			}
		})
	}
}

// TestContentSums: the sums are never 0 for content, 0 only for no text, and
// differ for different bytes.
func TestContentSums(t *testing.T) {
	if textSumOf(nil) != 0 || textSumOf([]byte{}) != 0 {
		t.Fatal("no text has a sum")
	}
	seen := map[uint64][]byte{}
	for _, b := range [][]byte{nil, {}, {0}, []byte("a"), []byte("a "), bytes.Repeat([]byte("x"), 1<<16)} {
		s := contentSum(b)
		if s == 0 {
			t.Fatalf("content %q sums to 0", b)
		}
		if prev, ok := seen[s]; ok && !bytes.Equal(prev, b) {
			t.Fatalf("%q and %q have one sum", prev, b)
		}
		seen[s] = b
	}
}
