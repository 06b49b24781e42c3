package index

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble"
)

// indexKeys dumps every key and value of the index keyspace.
func indexKeys(t testing.TB, db *pebble.DB) [][2][]byte {
	t.Helper()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{keyPrefix}, UpperBound: []byte{keyPrefix + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out [][2][]byte
	for ok := it.First(); ok; ok = it.Next() {
		out = append(out, [2][]byte{slices.Clone(it.Key()), slices.Clone(it.Value())})
	}
	return out
}

// TestApplyPreparedSameAsUpdateFile: preparing outside the batch and
// applying inside leaves exactly the keys UpdateFile leaves, for new
// files, rewrites, files moved between sessions, and a prepared update
// applied again (a retried commit).
func TestApplyPreparedSameAsUpdateFile(t *testing.T) {
	files := benchFiles(t, rand.New(rand.NewPCG(3, 3)), 6)
	slices.SortFunc(files, func(a, b sessionFile) int { return bytes.Compare(a.content, b.content) })
	// Rewrites: every third file again with the content of another file
	// of its kind (a changed file), some under another session.
	steps := slices.Clone(files)
	for i := 0; i < len(files); i += 3 {
		f := files[i]
		for _, g := range files {
			if g.kind == f.kind && g.fid != f.fid {
				f.content = g.content
				if i%2 == 0 {
					f.sid = g.sid
				}
				break
			}
		}
		steps = append(steps, f)
	}
	want, got := newFixture(t), newFixture(t)
	for _, s := range steps {
		want.batch(func(b *pebble.Batch) {
			if err := want.x.UpdateFile(b, s.fid, s.sid, s.kind, s.content); err != nil {
				t.Fatal(err)
			}
		})
		p := got.x.Prepare(s.sid, s.kind, s.content)
		if !p.Matches(s.sid, s.kind) || p.Matches(s.sid+"x", s.kind) {
			t.Fatal("Matches does not check the session id")
		}
		// A first attempt whose batch is dropped, as a failed commit's is.
		b := got.db.NewIndexedBatch()
		if err := got.x.ApplyPrepared(b, s.fid, p); err != nil {
			t.Fatal(err)
		}
		b.Close()
		got.batch(func(b *pebble.Batch) {
			if err := got.x.ApplyPrepared(b, s.fid, p); err != nil {
				t.Fatal(err)
			}
		})
	}
	w, g := indexKeys(t, want.db), indexKeys(t, got.db)
	if len(w) != len(g) {
		t.Fatalf("%d keys after UpdateFile, %d after ApplyPrepared", len(w), len(g))
	}
	for i := range w {
		if !bytes.Equal(w[i][0], g[i][0]) || !bytes.Equal(w[i][1], g[i][1]) {
			t.Fatalf("key %d: UpdateFile wrote %x=%x, ApplyPrepared %x=%x", i, w[i][0], w[i][1], g[i][0], g[i][1])
		}
	}
	if ids := got.ids("needle"); len(ids) != 1 {
		t.Fatalf("needle: %v, want the one session planted with it", ids)
	}
}

// BenchmarkPrepareApply splits UpdateFile of new session files into the
// part a commit now does outside its transaction (Prepare: extraction,
// tokenizing) and the part left inside it (ApplyPrepared: key writes).
func BenchmarkPrepareApply(b *testing.B) {
	files := benchFiles(b, rand.New(rand.NewPCG(1, 1)), 50)
	x := New(nil) // Prepare reads no index state
	b.Run("prepare", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			f := files[i%len(files)]
			x.Prepare(f.sid, f.kind, f.content)
		}
	})
	b.Run("apply", func(b *testing.B) {
		prepared := make([]*Prepared, len(files))
		for i, f := range files {
			prepared[i] = x.Prepare(f.sid, f.kind, f.content)
		}
		fx := newFixture(b)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			batch := fx.db.NewIndexedBatch()
			if err := fx.x.ApplyPrepared(batch, uint64(i+1), prepared[i%len(files)]); err != nil {
				b.Fatal(err)
			}
			if err := batch.Commit(pebble.NoSync); err != nil {
				b.Fatal(err)
			}
			batch.Close()
		}
	})
}
