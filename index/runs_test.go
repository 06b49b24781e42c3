package index

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
)

// A run reads back as written: every term in block-prefix order with its
// postings sorted; every truncation of it reads as corrupt or as a shorter
// run that ends at a term's end, never a panic or a posting made up.
func TestRunRoundTripAndTruncations(t *testing.T) {
	fs := vfs.NewMem()
	rb := newRebuilder(1 << 20)
	tb, err := newTables(nil, fs, "ingest")
	if err != nil {
		t.Fatal(err)
	}
	rb.tables = tb
	r := rand.New(rand.NewPCG(7, 8))
	terms := []string{"alpha", "beta", "a\x00b", "a", "zeta", "日本", "ab"}
	want := map[string][]posting{}
	for _, term := range terms {
		for range 1 + r.IntN(40) {
			p := posting{num: uint32(r.IntN(1 << 20)), fid: r.Uint64() >> r.IntN(64), tf: uint64(1 + r.IntN(9))}
			rb.terms[term] = append(rb.terms[term], p)
			want[string(blockPrefix(term))] = append(want[string(blockPrefix(term))], p)
			rb.n++
		}
	}
	for k := range want {
		sortPostings(want[k])
	}
	if err := rb.writeRun(); err != nil {
		t.Fatal(err)
	}
	if rb.n != 0 || len(rb.terms) != 0 || len(rb.runs) != 1 {
		t.Fatalf("after writeRun: n %d, %d terms held, runs %v", rb.n, len(rb.terms), rb.runs)
	}
	f, err := fs.Open(rb.runs[0])
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(f)
	_ = f.Close()
	if err != nil {
		t.Fatal(err)
	}

	read := func(b []byte) (map[string][]posting, []string, error) {
		c := &runCursor{r: bufio.NewReader(bytes.NewReader(b))}
		got := map[string][]posting{}
		var order []string
		for {
			if err := c.next(); err != nil {
				return got, order, err
			}
			if c.done {
				return got, order, nil
			}
			order = append(order, string(c.prefix))
			got[string(c.prefix)] = append([]posting(nil), c.ps...)
		}
	}
	got, order, err := read(data)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("read back: %v\n got %v\nwant %v", err, got, want)
	}
	for i := 1; i < len(order); i++ {
		if order[i-1] >= order[i] {
			t.Fatalf("terms out of order: %q before %q", order[i-1], order[i])
		}
	}
	for n := range len(data) {
		part, _, err := read(data[:n])
		if err != nil {
			if !errors.Is(err, errRunCorrupt) {
				t.Fatalf("prefix %d: %v", n, err)
			}
			continue
		}
		for k, ps := range part {
			if !reflect.DeepEqual(ps, want[k]) {
				t.Fatalf("prefix %d: term %q read as %v", n, k, ps)
			}
		}
	}
	rb.dropRuns()
	if names, _ := fs.List("ingest"); len(names) != 0 {
		t.Fatalf("runs left: %v", names)
	}
}

// The rebuild's held length column leaves the column exactly as writing every
// change through would: across blocks, back to an earlier block, a
// session emptied (0) and a block left empty (no key), over batch commits.
func TestLengthCacheWritesTheSameColumn(t *testing.T) {
	type op struct {
		num uint32
		v   uint64
	}
	r := rand.New(rand.NewPCG(3, 4))
	var ops []op
	for num := uint32(1); num < 900; num += uint32(1 + r.IntN(3)) {
		for range 1 + r.IntN(3) {
			ops = append(ops, op{num, uint64(r.IntN(5000))})
		}
		if r.IntN(20) == 0 { // a late file of an earlier session
			ops = append(ops, op{uint32(1 + r.IntN(int(num))), uint64(r.IntN(5000))})
		}
	}
	for num := uint32(512); num < 768; num++ { // one block emptied whole
		ops = append(ops, op{num, 0})
	}
	column := func(cached bool) (map[string]string, []bool) {
		db := openDB(t)
		g := &globalStats{}
		if cached {
			g.held = &heldKeys{}
		}
		var shrunk []bool
		b := db.NewIndexedBatch()
		for i, o := range ops {
			s, err := setLength(b, g, o.num, o.v)
			if err != nil {
				t.Fatal(err)
			}
			shrunk = append(shrunk, s)
			if i%97 == 0 { // the rebuild commits its batch as it goes
				if b, err = nextBatch(db, b); err != nil {
					t.Fatal(err)
				}
			}
		}
		if cached {
			if err := g.held.flush(b); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		_ = b.Close()
		out := map[string]string{}
		it, err := prefixIter(db, tableKey(tblLength))
		if err != nil {
			t.Fatal(err)
		}
		for it.First(); it.Valid(); it.Next() {
			out[string(it.Key())] = string(it.Value())
		}
		_ = it.Close()
		return out, shrunk
	}
	want, wantShrunk := column(false)
	got, gotShrunk := column(true)
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotShrunk, wantShrunk) {
		t.Fatalf("cached column differs: %d keys against %d", len(got), len(want))
	}
	if _, ok := want[string(lengthKey(2))]; ok || len(want) < 3 {
		t.Fatalf("set-up: %d blocks, the emptied one present %v", len(want), ok)
	}
}
