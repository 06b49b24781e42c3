package index

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble"
)

// TestGroupRoundTripAndDamage: a group value decodes to the postings it was
// made of, and every shorter prefix of it, a count it cannot hold and file
// ids that do not increase within a session are corrupt.
func TestGroupRoundTripAndDamage(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for round := range 50 {
		var ps []posting
		num, fid := uint32(r.IntN(5)), uint64(0)
		for range 1 + r.IntN(40) {
			if r.IntN(3) == 0 {
				num += 1 + uint32(r.IntN(1000))
				fid = 0
			}
			fid += 1 + uint64(r.IntN(1<<20))
			ps = append(ps, posting{num: num, fid: fid, tf: uint64(r.IntN(4))})
		}
		v := appendGroup(nil, ps)
		got, err := decodeGroup(nil, v)
		if err != nil || !reflect.DeepEqual(got, ps) {
			t.Fatalf("round %d: %v, %v; want %v", round, got, err, ps)
		}
		for n := range len(v) {
			if _, err := decodeGroup(nil, v[:n]); err == nil {
				t.Fatalf("round %d: %d of %d bytes decode", round, n, len(v))
			}
		}
		if _, err := decodeGroup(nil, append(slices.Clone(v), 0)); err == nil {
			t.Fatalf("round %d: a trailing byte decodes", round)
		}
	}
	same := appendGroup(nil, []posting{{num: 1, fid: 5, tf: 1}})
	same = append(same[:len(same):len(same)], 0, 0, 1) // num +0, fid +0
	same[0] = 2
	if _, err := decodeGroup(nil, same); err == nil {
		t.Fatal("a repeated file decodes")
	}
	if _, err := decodeGroup(nil, []byte{0xff, 0xff, 0xff, 0x7f, 1, 1, 1}); err == nil {
		t.Fatal("a count the value cannot hold decodes")
	}
}

// TestLastWins keeps the last posting of each file, sorted.
func TestLastWins(t *testing.T) {
	got := lastWins([]posting{{num: 2, fid: 1, tf: 1}, {num: 1, fid: 9, tf: 3}, {num: 2, fid: 1, tf: 0}, {num: 1, fid: 9, tf: 4}, {num: 1, fid: 2, tf: 1}})
	want := []posting{{num: 1, fid: 2, tf: 1}, {num: 1, fid: 9, tf: 4}, {num: 2, fid: 1, tf: 0}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("lastWins: %v, want %v", got, want)
	}
}

// countTable counts the keys of one index table.
func countTable(t *testing.T, db *pebble.DB, tbl byte) int {
	t.Helper()
	it, err := prefixIter(db, tableKey(tbl))
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	return n
}

// TestGroupsOneKeyPerTermAndBatch: a registered batch of many files writes
// one key per term, no per-posting key, and searches, the check and later
// changes (an update that drops a word, a removal, a file met twice in one
// batch) give what per-call groups give.
func TestGroupsOneKeyPerTermAndBatch(t *testing.T) {
	words := []string{"otter", "heron", "quartz", "lichen", "basalt", "fjord", "tundra", "mica"}
	content := func(i int, extra string) []byte {
		return meta(fmt.Sprintf("%s %s %s", words[i%8], words[(i+3)%8], extra), "shared words everywhere")
	}
	queries := []string{"otter", "heron quartz", "shared", "tundra OR mica", "otter -heron", "zebra", "everywhere", "ephemeral OR gone OR moved"}
	run := func(perCall bool) (hits [][]string, groups, keys int) {
		f := newFixture(t)
		f.perCall = perCall
		f.x.sweepMin = 1 << 30 // no sweep: the groups stay as written
		put := func(b *pebble.Batch, i int, extra string) {
			if err := f.x.UpdateFile(b, uint64(i+1), fmt.Sprintf("s%d", i/3), KindMetadata, content(i, extra)); err != nil {
				t.Fatal(err)
			}
		}
		f.batch(func(b *pebble.Batch) {
			for i := range 30 {
				put(b, i, "")
			}
		})
		groups, keys = countTable(t, f.db, tblGroup), countTable(t, f.db, tblTerm)
		f.batch(func(b *pebble.Batch) {
			put(b, 4, "zebra")
			put(b, 4, "zebra again") // the same file twice: the second wins
			put(b, 7, "")            // unchanged
			if err := f.x.RemoveFile(b, 9); err != nil {
				t.Fatal(err)
			}
			// A file indexed and removed in the same batch, its postings
			// still gathered when the removal's purge runs.
			f.x.purgeMin = 1
			if err := f.x.UpdateFile(b, 100, "s50", KindMetadata, meta("ephemeral", "gone before commit")); err != nil {
				t.Fatal(err)
			}
			if err := f.x.UpdateFile(b, 100, "s51", KindMetadata, meta("ephemeral", "moved, its old postings dead")); err != nil {
				t.Fatal(err)
			}
			if err := f.x.RemoveFile(b, 100); err != nil {
				t.Fatal(err)
			}
		})
		for _, q := range queries {
			hits = append(hits, f.ids(q))
		}
		all := func(fn func(uint64, string, Kind, []byte) error) error {
			for i := range 30 {
				if i == 8 { // file 9, removed
					continue
				}
				c := content(i, "")
				if i == 4 {
					c = content(i, "zebra again")
				}
				if err := fn(uint64(i+1), fmt.Sprintf("s%d", i/3), KindMetadata, c); err != nil {
					return err
				}
			}
			return nil
		}
		if problems, err := f.x.Check(all); err != nil || len(problems) > 0 {
			t.Fatalf("perCall=%v: check: %v %v", perCall, problems, err)
		}
		return hits, groups, keys
	}
	batched, groups, keys := run(false)
	perCall, perCallGroups, _ := run(true)
	if !reflect.DeepEqual(batched, perCall) {
		t.Fatalf("batched groups find %v, per-call groups %v", batched, perCall)
	}
	if got := batched[len(batched)-1]; len(got) != 0 {
		t.Errorf("the file removed in its own batch is found: %v", got)
	}
	for i, q := range queries[:len(queries)-3] {
		if q != "otter -heron" && len(batched[i]) == 0 {
			t.Errorf("%s finds nothing", q)
		}
	}
	// 30 files post 8 words + "shared words everywhere" (stop words aside):
	// one group per distinct term, against one per term and file.
	if keys != 0 || groups == 0 || groups > 12 || perCallGroups < 5*groups {
		t.Fatalf("one batch of 30 files: %d groups, %d per-posting keys; per call: %d groups", groups, keys, perCallGroups)
	}
}

// TestGroupsAbortedBatchLeavesNothing: what a batch gathered and never
// flushed (its transaction failed) does not reach the next batch, even one
// that pebble's pool hands back at the same address.
func TestGroupsAbortedBatchLeavesNothing(t *testing.T) {
	f := newFixture(t)
	f.put(1, "sessions/s1/metadata.json", meta("alpha", "kept"))
	b := f.db.NewIndexedBatch()
	f.x.BeginBatch(b)
	if err := f.x.UpdateFile(b, 2, "s2", KindMetadata, meta("walrus", "aborted")); err != nil {
		t.Fatal(err)
	}
	// Another batch written meanwhile is refused, not allowed to drop
	// what b gathered.
	other := f.db.NewIndexedBatch()
	if err := f.x.UpdateFile(other, 5, "s5", KindMetadata, meta("interloper", "")); err == nil {
		t.Fatal("a second batch was written while the first one's postings were gathered")
	}
	_ = other.Close()
	f.x.EndBatch(b) // the transaction failed: no flush, no commit
	_ = b.Close()
	f.put(3, "sessions/s3/metadata.json", meta("beta", "later"))
	if got := f.ids("walrus OR aborted"); len(got) != 0 {
		t.Fatalf("the aborted batch's words are found: %v", got)
	}
	if got := f.ids("beta"); !reflect.DeepEqual(got, []string{"s3"}) {
		t.Fatalf("beta: %v", got)
	}
	// An unregistered batch the gatherer last saw, reused without Begin.
	b2 := f.db.NewIndexedBatch()
	if err := f.x.UpdateFile(b2, 4, "s4", KindMetadata, meta("gamma", "direct")); err != nil {
		t.Fatal(err)
	}
	if err := b2.Commit(pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	_ = b2.Close()
	if got := f.ids("gamma"); !reflect.DeepEqual(got, []string{"s4"}) {
		t.Fatalf("gamma: %v", got)
	}
	all := func(fn func(uint64, string, Kind, []byte) error) error {
		for _, x := range []struct {
			fid uint64
			sid string
			c   []byte
		}{{1, "s1", meta("alpha", "kept")}, {3, "s3", meta("beta", "later")}, {4, "s4", meta("gamma", "direct")}} {
			if err := fn(x.fid, x.sid, KindMetadata, x.c); err != nil {
				return err
			}
		}
		return nil
	}
	if problems, err := f.x.Check(all); err != nil || len(problems) > 0 {
		t.Fatalf("check: %v %v", problems, err)
	}
}

// FuzzDecodeGroup: any bytes decode as corrupt or as postings strictly
// increasing in (num, fid), never more than the value could hold, and a
// decoded group encodes back to a value that decodes the same.
func FuzzDecodeGroup(f *testing.F) {
	f.Add(appendGroup(nil, []posting{{num: 1, fid: 2, tf: 3}, {num: 1, fid: 7, tf: 0}, {num: 4, fid: 1, tf: 1}}))
	f.Add([]byte{0})
	f.Add([]byte{2, 0, 5, 1, 0, 0, 1})
	f.Fuzz(func(t *testing.T, v []byte) {
		ps, err := decodeGroup(nil, v)
		if err != nil {
			return
		}
		if len(ps) > len(v)/3 {
			t.Fatalf("%d postings from %d bytes", len(ps), len(v))
		}
		for i := 1; i < len(ps); i++ {
			if cmpPosting(ps[i-1], ps[i]) >= 0 {
				t.Fatalf("postings not increasing: %v", ps)
			}
		}
		again, err := decodeGroup(nil, appendGroup(nil, ps))
		if err != nil || !reflect.DeepEqual(again, ps) {
			t.Fatalf("re-encoded: %v, %v; want %v", again, err, ps)
		}
	})
}
