package index

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"runtime"
	"slices"
	"sync"

	"github.com/taskerfs/taskerfs/internal/ordered"
)

// maxProblems bounds the report of Check.
const maxProblems = 1000

type checker struct {
	r        reader
	x        *Index
	problems []string
	dropped  int

	// Term postings are checked as a whole: the sum of a hash of every
	// (term, session, file, tf) the stored file records list against the
	// same sum over the postings both layers hold. Only when the two differ
	// does termDiff find, term by term, which postings are missing or wrong.
	seed             maphash.Seed
	hash             maphash.Hash
	wantSum, haveSum uint64

	dead        *deadSet // the dead marks (dead.go), once read
	deadPosting uint64   // the term postings they hide
}

// postings reads term t's postings as a search does (without the dead files').
func (c *checker) postings(t string) ([]posting, error) {
	if c.dead == nil {
		d, err := loadDead(c.r)
		if err != nil {
			return nil, err
		}
		c.dead = d
	}
	return readPostings(c.r, c.dead, t)
}

// checkDead checks the dead marks: each has its record and each record its
// mark, the records decode, and no mark names the (session, file) of a live
// file's postings, which it would hide.
func (c *checker) checkDead() error {
	d, err := loadDead(c.r)
	if err != nil {
		if !errors.Is(err, errCorrupt) {
			return err
		}
		c.add("%v", err)
		d = &deadSet{}
	}
	c.dead = d
	recs := 0
	_, err = c.scan(tableKey(tblDeadRec), func(k, v []byte) error {
		f, err := decodeDeadRec(k, v)
		if err != nil {
			c.add("%v", err)
			return nil
		}
		recs++
		c.deadPosting += uint64(len(f.terms))
		if !d.has(f.num, f.fid) {
			c.add("file %d: a dead record without its mark (session %d)", f.fid, f.num)
		}
		rec, err := loadRecord(c.r, f.fid)
		if err != nil {
			return nil // reported in the record pass
		}
		if rec != nil && rec.num == f.num {
			c.add("file %d (session %q): a dead mark hides its postings", f.fid, rec.sid)
		}
		return nil
	})
	if err == nil && recs != len(d.marks) {
		c.add("%d dead marks, %d dead records", len(d.marks), recs)
	}
	return err
}

// The hash of one term posting that the sums add up is the term's hash
// (maphash, seeded with the checker's seed) mixed with the posting's
// numbers: the table side hashes each term once for all its postings.
func termHash(seed maphash.Seed, t string) uint64 { return maphash.String(seed, t) }

// postingHash mixes a posting's session number, file and tf into its
// term's hash th (splitmix64's finalizer after each word).
func postingHash(th uint64, num uint32, fid, tf uint64) uint64 {
	x := mix64(th ^ uint64(num)*0x9e3779b97f4a7c15)
	x = mix64(x ^ fid*0xc2b2ae3d27d4eb4f)
	return mix64(x ^ tf*0x165667b19e3779f9)
}

func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// wantSum is the sum of the hashes of the term postings record rec of file
// fid lists.
func wantSum(seed maphash.Seed, fid uint64, rec *fileRecord) uint64 {
	var sum uint64
	for _, t := range rec.terms {
		sum += postingHash(termHash(seed, t.term), rec.num, fid, t.tf)
	}
	return sum
}

func (c *checker) add(format string, args ...any) {
	if len(c.problems) >= maxProblems {
		c.dropped++
		return
	}
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// srcFile is what Check learned of a file from the source.
type srcFile struct {
	sid     string
	kind    Kind
	indexed bool // the record pass met its record
}

// sources reads the files all yields: seen holds each one, fresh the
// records extracted again, for the files whose content does not have (or
// is not known to have) the sum of their stored records. Contents are read
// and hashed on every CPU; a file whose content cannot be read is left out.
func (c *checker) sources(all SumSource, sums map[uint64]uint64) (map[uint64]srcFile, map[uint64]*extracted, error) {
	seen := map[uint64]srcFile{}
	fresh := map[uint64]*extracted{}
	sids := map[string]string{} // one copy of each session id
	var (
		mu         sync.Mutex // guards fresh and unreadable
		unreadable []uint64
		wg         sync.WaitGroup
		jobs       = make(chan SourceFile, 64)
	)
	for range max(runtime.GOMAXPROCS(0), 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range jobs {
				content, err := f.Content()
				if err != nil {
					mu.Lock()
					unreadable = append(unreadable, f.ID)
					mu.Unlock()
					continue
				}
				if s := sums[f.ID]; s != 0 && s == contentSum(content) {
					continue
				}
				e := &extracted{fid: f.ID, sid: f.Session, kind: f.Kind}
				e.rec, e.text = buildRecord(f.Session, f.Kind, content)
				mu.Lock()
				fresh[f.ID] = e
				mu.Unlock()
			}
		}()
	}
	err := all(func(f SourceFile) error {
		if _, dup := seen[f.ID]; dup {
			c.add("file %d is listed twice", f.ID)
			return nil
		}
		sid, ok := sids[f.Session]
		if !ok {
			sid = f.Session
			sids[sid] = sid
		}
		seen[f.ID] = srcFile{sid: sid, kind: f.Kind}
		if s := sums[f.ID]; s == 0 || f.Sum != s {
			f.Session = sid
			jobs <- f
		}
		return nil
	})
	close(jobs)
	wg.Wait()
	for _, fid := range unreadable {
		delete(seen, fid)
	}
	return seen, fresh, err
}

// storedSum is the content sum of a stored record, read from its last bytes
// without decoding it; 0 when it has none (version 1 or 2, or too short).
func storedSum(v []byte) uint64 {
	if len(v) < 17 || v[0] != recordVersion {
		return 0
	}
	return binary.LittleEndian.Uint64(v[len(v)-16:])
}

// Check compares the index with the files (fsck): all yields every indexable
// file. It reports files not indexed (missing), indexed from other content
// (stale), indexed files that no longer exist (orphan), posting keys missing
// or left behind, and wrong session or global aggregates. The repair is Rebuild.
//
// It reads the index in key order rather than file by file. A file whose
// content has the sum its stored record was built from is not extracted
// again: the record stands for it. Only files whose content changed since
// (or whose records are of version 1) are extracted and compared. The keys
// the records name are checked as a whole, as sums of hashes against sums
// over the tables (term postings, facet and day postings, session parts),
// and file by file only where the sums differ; snippet text against each
// record's textSum, in one merged pass.
func (x *Index) Check(all FileSource) ([]string, error) {
	return x.CheckFiles(func(fn func(SourceFile) error) error {
		return all(func(fid uint64, sid string, kind Kind, content []byte) error {
			return fn(SourceFile{ID: fid, Session: sid, Kind: kind, Content: func() ([]byte, error) { return content, nil }})
		})
	})
}

// SourceFile is one file as CheckFiles meets it.
type SourceFile struct {
	ID      uint64
	Session string
	Kind    Kind
	// Sum is ContentSum of the file's content when the source knows it
	// without reading the file (fsck has it from its blob pass), else 0.
	Sum uint64
	// Content reads the file's content, on Check's workers, when Sum is 0
	// or differs from its stored record's. A file whose content cannot be
	// read (a damaged blob, which the blob check reports) is taken as its
	// record says.
	Content func() ([]byte, error)
}

// A SumSource yields every file the index should hold, once each.
type SumSource func(fn func(SourceFile) error) error

// ContentSum is the sum a file's record keeps of the content it was built
// from (xxhash64, never 0).
func ContentSum(content []byte) uint64 { return contentSum(content) }

// CheckFiles is Check over a source that may know the files' content sums:
// a file whose sum is its stored record's is neither read nor extracted.
func (x *Index) CheckFiles(all SumSource) ([]string, error) {
	snap := x.db.NewSnapshot()
	defer snap.Close()
	c := &checker{r: snap, x: x, seed: maphash.MakeSeed()}
	c.hash.SetSeed(c.seed)

	// 3 (begun now). The tables' side of the sums, on a checker of its own
	// (its problems are reported after the records'): it reads nothing the
	// record pass needs, so it runs beside the reading of the files.
	tc := &checker{r: snap, x: x, seed: c.seed}
	tc.hash.SetSeed(c.seed)
	tablesDone := make(chan error, 1)
	var tables tableSums
	go func() { tablesDone <- tc.tableSums(&tables) }()
	waitTables := func() error {
		if tablesDone == nil {
			return nil
		}
		err := <-tablesDone
		tablesDone = nil
		return err
	}
	defer waitTables() // (an early return must not leave it reading a closed snapshot)

	// 0. The dead marks, before the postings are read.
	if err := c.checkDead(); err != nil {
		return nil, err
	}

	// 1. The content sums of the stored records, then the files: a file
	// whose known sum is its record's is taken as the record says; the
	// others are read and hashed on the workers, and extracted when the
	// sums differ.
	sums := map[uint64]uint64{}
	if _, err := c.scan(tableKey(tblFile), func(k, v []byte) error {
		if len(k) == 10 {
			if s := storedSum(v); s != 0 {
				sums[bytesToFid(k[2:])] = s
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	seen, fresh, err := c.sources(all, sums)
	if err != nil {
		return nil, err
	}
	sums = nil

	// 2. The records, in key order, with the snippet text beside them.
	nums := map[string]uint32{}
	if _, err := c.scan(tableKey(tblSession), func(k, v []byte) error {
		if len(v) == 4 {
			nums[string(k[2:])] = binary.BigEndian.Uint32(v)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	expSessions := map[string]*sessionAgg{}
	var expLength uint64
	count := func(fid uint64, sid string, rec *fileRecord) {
		a := expSessions[sid]
		if a == nil {
			a = &sessionAgg{}
			expSessions[sid] = a
		}
		a.files++
		a.length += rec.length
		expLength += rec.length
		if rec.kind == KindMetadata && (!a.hasMeta || fid > a.metaFid) {
			a.hasMeta, a.metaFid, a.name, a.start, a.day = true, fid, rec.name, rec.start, rec.day
		}
	}
	storedPostings := 0
	var wantKeys uint64 // facet and day postings and session parts the records name
	storedFiles, err := c.records(func(r *storedRecord) error {
		if r.stray {
			c.add("stray key %q", r.key)
			return nil
		}
		fid, rec := r.fid, r.rec
		f, isFile := seen[fid]
		if r.err != nil {
			if isFile {
				f.indexed = true
				seen[fid] = f
				c.add("file %d (session %q, %s): corrupt record", fid, f.sid, f.kind)
				if e := fresh[fid]; e != nil {
					count(fid, f.sid, e.rec)
				}
			} else {
				c.add("orphan: file %d has a corrupt record", fid)
			}
			return nil
		}
		storedPostings += r.postings
		c.wantSum += r.want
		wantKeys += r.keys
		stored, ok := r.text, r.hasText
		if !isFile {
			c.add("orphan: file %d (session %q, %s) is indexed but no longer exists", fid, rec.sid, rec.kind)
			return nil
		}
		f.indexed = true
		seen[fid] = f
		cur := rec // what the file's content gives
		if e := fresh[fid]; e != nil {
			cur = e.rec
			cur.num = rec.num
		} else if rec.sid != f.sid || rec.kind != f.kind {
			moved := *rec
			moved.sid, moved.kind = f.sid, f.kind
			cur = &moved
		}
		count(fid, f.sid, cur)
		if cur != rec && !bytes.Equal(rec.fields(), cur.fields()) {
			c.add("stale: file %d (session %q, %s) is indexed from other content", fid, f.sid, f.kind)
			return nil
		}
		if n, ok := nums[rec.sid]; !ok || n != rec.num {
			c.add("file %d (session %q): indexed under session number %d, which is not the session's", fid, rec.sid, rec.num)
		}
		switch e := fresh[fid]; {
		case e == nil && c.x.content != nil:
			// Snippets come from the content; stored text is left over from
			// before and is dropped when the file is next indexed.
			if ok && r.textSum != rec.textSum {
				c.add("file %d (session %q): snippet text wrong", fid, rec.sid)
			}
		case e == nil:
			if ok != (rec.textSum != 0) || ok && r.textSum != rec.textSum {
				c.add("file %d (session %q): snippet text missing or wrong", fid, rec.sid)
			}
		case c.x.content != nil:
			if ok && string(stored) != e.text {
				c.add("file %d (session %q): snippet text wrong", fid, rec.sid)
			}
		default:
			if string(stored) != e.text || ok != (e.text != "") {
				c.add("file %d (session %q): snippet text missing or wrong", fid, rec.sid)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	files := uint64(0)
	for fid, f := range seen {
		files++
		if !f.indexed {
			c.add("missing: file %d (session %q, %s) is not indexed", fid, f.sid, f.kind)
			count(fid, f.sid, fresh[fid].rec)
		}
	}

	// 3. The tables against what the records name.
	if err := waitTables(); err != nil {
		return nil, err
	}
	for _, p := range tc.problems {
		c.add("%s", p)
	}
	c.dropped += tc.dropped
	c.haveSum = tc.haveSum
	actual, haveKeys, parts, textKeys := tables.postings, tables.keys, tables.parts, tables.texts
	if c.wantSum != c.haveSum {
		if err := c.termDiff(); err != nil {
			return nil, err
		}
	}
	if haveKeys != wantKeys {
		if err := c.keyDiff(); err != nil {
			return nil, err
		}
	}
	if haveKeys != wantKeys || actual != storedPostings || parts != storedFiles || textKeys > storedFiles {
		if err := c.strays(); err != nil {
			return nil, err
		}
	}

	if err := c.checkAggregates(expSessions, files, expLength); err != nil {
		return nil, err
	}
	if c.dropped > 0 {
		c.problems = append(c.problems, fmt.Sprintf("... and %d more problems", c.dropped))
	}
	return c.problems, nil
}

// storedRecord is one file record as Check's record pass meets it, with
// what can be worked out of it alone (on the workers of records).
type storedRecord struct {
	key   []byte
	val   []byte // the stored record
	stray bool   // a key that is not a file's record
	fid   uint64
	rec   *fileRecord
	err   error // the record does not decode

	text    []byte // the stored snippet text, decoded
	hasText bool
	textSum uint64 // textSumOf(text)

	postings   int    // term postings the record lists
	want, keys uint64 // wantSum and keysSum of the record
}

// records calls fn with every file record, in key order, one at a time.
// The records and the snippet texts beside them are read in one pass, then
// decoded, their texts decompressed and their sums taken on every CPU.
// It returns how many keys the record table holds.
func (c *checker) records(fn func(r *storedRecord) error) (int, error) {
	recs, err := prefixIter(c.r, tableKey(tblFile))
	if err != nil {
		return 0, err
	}
	defer recs.Close()
	texts, err := prefixIter(c.r, tableKey(tblText))
	if err != nil {
		return 0, err
	}
	defer texts.Close()

	workers := max(runtime.GOMAXPROCS(0), 1)
	hashes := sync.Pool{New: func() any {
		h := new(maphash.Hash)
		h.SetSeed(c.seed)
		return h
	}}
	n := 0
	err = ordered.Run(workers, 64*workers, func(emit func(*storedRecord) bool) error {
		// Keys, values and texts are copied out of the iterators here.
		textOK := texts.First()
		for ok := recs.First(); ok; ok = recs.Next() {
			k, v := recs.Key(), recs.Value()
			kv := append(append(make([]byte, 0, len(k)+len(v)), k...), v...)
			r := &storedRecord{key: kv[:len(k):len(k)], val: kv[len(k):], stray: len(k) != 10}
			if !r.stray {
				r.fid = bytesToFid(k[2:])
				tk := textKey(r.fid)
				for textOK && bytes.Compare(texts.Key(), tk) < 0 {
					textOK = texts.Next()
				}
				if textOK && bytes.Equal(texts.Key(), tk) {
					r.text, r.hasText = append([]byte(nil), texts.Value()...), true
				}
			}
			if !emit(r) {
				return nil
			}
		}
		return recs.Error()
	}, func(r *storedRecord) {
		if r.stray {
			return
		}
		if r.hasText {
			r.text = decodeText(r.text)
			r.textSum = textSumOf(r.text)
		}
		if r.rec, r.err = decodeRecord(r.val); r.err == nil {
			h := hashes.Get().(*maphash.Hash)
			r.postings = r.rec.postingCount(r.fid)
			r.want = wantSum(c.seed, r.fid, r.rec)
			r.keys = keysSum(h, r.fid, r.rec)
			hashes.Put(h)
		}
	}, func(r *storedRecord) error {
		n++
		return fn(r)
	})
	return n, err
}

// tableSums is what Check's table pass finds: the postings of both kinds,
// the sum of keyHash over the facet and day postings and the session
// parts, the parts and the snippet text keys.
type tableSums struct {
	postings, parts, texts int
	keys                   uint64
}

// tableSums counts and sums the tables into t (haveSum too).
func (c *checker) tableSums(t *tableSums) error {
	var err error
	if t.postings, err = c.countTermPostings(); err != nil {
		return err
	}
	for _, tbl := range []byte{tblFacet, tblDay} {
		n, err := c.scan(tableKey(tbl), func(k, v []byte) error {
			t.keys += c.keyHash(k, v)
			return nil
		})
		if err != nil {
			return err
		}
		t.postings += n
	}
	if t.parts, err = c.scan(tableKey(tblSessFile), func(k, v []byte) error {
		t.keys += c.keyHash(k, v)
		return nil
	}); err != nil {
		return err
	}
	t.texts, err = c.scan(tableKey(tblText), nil)
	return err
}

// keyHash is the hash of one key and its value that Check's key sums add up.
func (c *checker) keyHash(k, v []byte) uint64 { return keyHash(&c.hash, k, v) }

// keyHash is checker.keyHash with h (seeded with the checker's seed).
func keyHash(h *maphash.Hash, k, v []byte) uint64 {
	h.Reset()
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(k)))
	h.Write(n[:])
	h.Write(k)
	h.Write(v)
	return h.Sum64()
}

// keysSum is the sum of keyHash (with h) over the facet and day postings
// and the session part that record rec of file fid names.
func keysSum(h *maphash.Hash, fid uint64, rec *fileRecord) uint64 {
	var sum uint64
	_ = rec.eachOtherPosting(fid, func(k, v []byte) error {
		sum += keyHash(h, k, v)
		return nil
	})
	return sum + keyHash(h, sessFileKey(rec.num, fid), rec.part().encode())
}

// keyDiff runs when the key sums of Check differ: it looks up, record by
// record, the facet and day postings and the session part each names and
// reports those missing or wrong. (Keys no record names: strays.)
func (c *checker) keyDiff() error {
	_, err := c.scan(tableKey(tblFile), func(k, v []byte) error {
		rec, err := decodeRecord(v)
		if err != nil || len(k) != 10 {
			return nil // reported in the record pass
		}
		fid := bytesToFid(k[2:])
		for _, p := range rec.postings(fid) {
			if p.key[1] == tblTerm {
				continue
			}
			v, ok, err := get(c.r, p.key)
			if err != nil {
				return err
			}
			if !ok || !bytes.Equal(v, p.value) {
				c.add("file %d (session %q): posting %q missing or wrong", fid, rec.sid, p.key)
			}
		}
		v, ok, err := get(c.r, sessFileKey(rec.num, fid))
		if err != nil {
			return err
		}
		if !ok || !bytes.Equal(v, rec.part().encode()) {
			c.add("file %d (session %q): session part missing or wrong", fid, rec.sid)
		}
		return nil
	})
	return err
}

// countTermPostings counts the term postings, both layers merged, adds them
// to haveSum and checks the bounds of the base blocks.
func (c *checker) countTermPostings() (int, error) {
	g, err := loadGlobal(c.r)
	if err != nil {
		return 0, err
	}
	shrunk, err := readShrunk(c.r)
	if err != nil {
		return 0, err
	}
	lengths := &lengthReader{r: c.r}
	defer lengths.close()
	n := 0
	err = eachTerm(c.r, func(t string) error {
		ps, err := c.postings(t)
		n += len(ps)
		th := termHash(c.seed, t)
		for _, p := range ps {
			c.haveSum += postingHash(th, p.num, p.fid, p.tf)
		}
		if err == nil && g.flags&flagLengths != 0 {
			err = c.checkBounds(t, shrunk, lengths)
		}
		return err
	})
	return n, err
}

// checkBounds checks that the header of every base block of term t counts
// its sessions and bounds each of them (blocks.go): a point with a tf at
// least the session's and a length at most its current one, unless the
// session got shorter since the block was written.
func (c *checker) checkBounds(t string, shrunk []shrink, lengths *lengthReader) error {
	prefix := blockPrefix(t)
	it, err := prefixIter(c.r, prefix)
	if err != nil {
		return err
	}
	defer it.Close()
	var ps []posting
	for ok := it.First(); ok; ok = it.Next() {
		first, err := blockFirst(it.Key(), prefix)
		if err != nil {
			return err
		}
		h, payload, err := parseBlockHead(it.Value())
		if err == nil {
			ps, err = decodePayload(ps[:0], first, payload)
		}
		if err != nil {
			return err
		}
		if !h.has {
			continue
		}
		sessions := uint64(0)
		for i := 0; i < len(ps); {
			num, tf := ps[i].num, uint64(0)
			for ; i < len(ps) && ps[i].num == num; i++ {
				tf += ps[i].tf
			}
			sessions++
			length, err := lengths.length(num)
			if err != nil {
				continue // reported with the session
			}
			k, _ := slices.BinarySearchFunc(shrunk, num, func(e shrink, num uint32) int { return cmpNum(e.num, num) })
			if k < len(shrunk) && shrunk[k].num == num && shrunk[k].gen > h.gen {
				length = 0 // shorter since: its length is not the block's to bound
			}
			bounded := false
			for _, pt := range h.points[:h.n] {
				bounded = bounded || pt.tf >= tf && (pt.minLen == 0 || pt.minLen-1 <= length)
			}
			if !bounded && length > 0 {
				c.add("term %q: block %d does not bound session %d (tf %d, length %d): %+v", t, first, num, tf, length, h.points[:h.n])
			}
			if !bounded && length == 0 {
				for _, pt := range h.points[:h.n] {
					bounded = bounded || pt.tf >= tf
				}
				if !bounded {
					c.add("term %q: block %d does not bound session %d (tf %d)", t, first, num, tf)
				}
			}
		}
		if sessions != h.sessions {
			c.add("term %q: block %d counts %d sessions, holds %d", t, first, h.sessions, sessions)
		}
	}
	return nil
}

// scan calls fn (if set) for every key under prefix and counts them.
func (c *checker) scan(prefix []byte, fn func(k, v []byte) error) (int, error) {
	it, err := prefixIter(c.r, prefix)
	if err != nil {
		return 0, err
	}
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
		if fn != nil {
			if err := fn(it.Key(), it.Value()); err != nil {
				_ = it.Close()
				return n, err
			}
		}
	}
	return n, it.Close()
}

// strays reports posting, part and text keys whose file record does not list them.
func (c *checker) strays() error {
	owned := map[uint64]map[string]bool{}
	owns := func(fid uint64, key []byte) (bool, error) {
		keys, ok := owned[fid]
		if !ok {
			if len(owned) > 4096 {
				clear(owned)
			}
			rec, err := loadRecord(c.r, fid)
			if err != nil && !errors.Is(err, errCorrupt) {
				return false, err
			}
			keys = map[string]bool{}
			if rec != nil {
				for _, p := range rec.postings(fid) {
					keys[string(p.key)] = true
				}
				keys[string(sessFileKey(rec.num, fid))] = true
				keys[string(textKey(fid))] = true
			}
			owned[fid] = keys
		}
		return keys[string(key)], nil
	}
	err := eachTerm(c.r, func(t string) error {
		ps, err := c.postings(t)
		if err != nil {
			return err
		}
		prefix := termPrefix(t)
		for _, p := range ps {
			key := withNumFid(prefix[:len(prefix):len(prefix)], p.num, p.fid)
			ok, err := owns(p.fid, key)
			if err != nil {
				return err
			}
			if !ok {
				c.add("stray posting of %q (session %d, file %d): no file record lists it", t, p.num, p.fid)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, tbl := range []byte{tblFacet, tblDay, tblSessFile, tblText} {
		_, err := c.scan(tableKey(tbl), func(k, _ []byte) error {
			if len(k) < 10 {
				c.add("stray key %q", k)
				return nil
			}
			ok, err := owns(binary.BigEndian.Uint64(k[len(k)-8:]), k)
			if !ok && err == nil {
				c.add("stray key %q: no file record lists it", k)
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// checkAggregates compares the session numbers and aggregates and the
// global stats with the ones the files imply.
func (c *checker) checkAggregates(exp map[string]*sessionAgg, files, length uint64) error {
	if g, err := loadGlobal(c.r); err == nil && g.flags&flagRebuilding != 0 {
		c.add("the index is incomplete: a rebuild (taskerfs reindex) was interrupted")
	}
	want := globalStats{sessions: uint64(len(exp)), files: files, length: length}
	nums := map[string]uint32{}
	_, err := c.scan(tableKey(tblSession), func(k, v []byte) error {
		if len(v) != 4 {
			c.add("session %q: corrupt number", k[2:])
			return nil
		}
		nums[string(k[2:])] = binary.BigEndian.Uint32(v)
		return nil
	})
	if err != nil {
		return err
	}
	var maxNum uint32
	lengths := map[uint32]uint64{} // session number -> length, from the aggregates
	_, err = c.scan(tableKey(tblNum), func(k, v []byte) error {
		agg, err := decodeAgg(v)
		if err != nil || len(k) != 6 {
			c.add("session aggregate %q is corrupt", k)
			return nil
		}
		num := binary.BigEndian.Uint32(k[2:])
		maxNum = max(maxNum, num)
		lengths[num] = agg.length
		if n, ok := nums[agg.sid]; !ok || n != num {
			c.add("session %q: aggregate under number %d, but the session's number is %d", agg.sid, num, n)
		}
		delete(nums, agg.sid)
		w, ok := exp[agg.sid]
		if !ok {
			c.add("session %q is indexed but has no files", agg.sid)
			return nil
		}
		delete(exp, agg.sid)
		w.sid = agg.sid
		if !bytes.Equal(v, w.encode()) {
			c.add("session %q: aggregate is wrong", agg.sid)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for sid := range exp {
		c.add("session %q has files but is not indexed", sid)
	}
	for sid := range nums {
		c.add("session %q has a number but no aggregate", sid)
	}
	g, err := loadGlobal(c.r)
	if err != nil {
		c.add("global stats are corrupt")
		return nil
	}
	if g.lastNum < maxNum {
		c.add("global stats: last session number %d, but %d is in use", g.lastNum, maxNum)
	}
	if g.flags&flagLengths != 0 {
		if err := c.checkLengths(lengths); err != nil {
			return err
		}
	}
	want.lastNum = g.lastNum
	want.flags, want.pending, want.cursor, want.lengthGen, want.seq = g.flags, g.pending, g.cursor, g.lengthGen, g.seq
	want.dead, want.deadPostings = uint64(len(c.dead.marks)), c.deadPosting
	if g != want {
		c.add("global stats are %+v, want %+v", g, want)
	}
	return nil
}

// checkLengths compares the length column with the aggregates' lengths.
func (c *checker) checkLengths(want map[uint32]uint64) error {
	nums, err := columnSessions(c.r)
	if errors.Is(err, errCorrupt) {
		c.add("the length column is corrupt")
		return nil
	}
	if err != nil {
		return err
	}
	l := &lengthReader{r: c.r}
	defer l.close()
	for _, num := range nums {
		n, err := l.length(num)
		if err != nil {
			return err
		}
		if w, ok := want[num]; !ok || w != n {
			c.add("length column: session %d has length %d, its aggregate %d (present: %v)", num, n, w, ok)
		}
		delete(want, num)
	}
	for num := range want {
		c.add("length column: session %d is missing", num)
	}
	return nil
}

// maxDiffTerms bounds how many terms termDiff compares posting by posting.
const maxDiffTerms = 4096

// termDiff runs when the sums of Check differ: it finds the terms whose
// postings differ from what the stored file records list (per-term sums),
// then compares those terms posting by posting and reports each posting a
// record lists that is missing or has another tf. (Postings no record lists
// are reported by strays, which the count check runs.)
func (c *checker) termDiff() error {
	want := map[string]uint64{}
	_, err := c.scan(tableKey(tblFile), func(k, v []byte) error {
		rec, err := decodeRecord(v)
		if err != nil {
			return nil // reported where the record is read
		}
		fid := bytesToFid(k[2:])
		for _, t := range rec.terms {
			want[t.term] += postingHash(termHash(c.seed, t.term), rec.num, fid, t.tf)
		}
		return nil
	})
	if err != nil {
		return err
	}
	bad := map[string]bool{}
	err = eachTerm(c.r, func(t string) error {
		ps, err := c.postings(t)
		if err != nil {
			return err
		}
		var have uint64
		th := termHash(c.seed, t)
		for _, p := range ps {
			have += postingHash(th, p.num, p.fid, p.tf)
		}
		if have != want[t] && len(bad) < maxDiffTerms {
			bad[t] = true
		}
		delete(want, t)
		return nil
	})
	if err != nil {
		return err
	}
	for t := range want { // terms with no posting at all
		if len(bad) < maxDiffTerms {
			bad[t] = true
		}
	}
	held := map[string][]posting{}
	for t := range bad {
		ps, err := c.postings(t)
		if err != nil {
			return err
		}
		held[t] = ps
	}
	_, err = c.scan(tableKey(tblFile), func(k, v []byte) error {
		rec, err := decodeRecord(v)
		if err != nil {
			return nil
		}
		fid := bytesToFid(k[2:])
		for _, t := range rec.terms {
			ps, ok := held[t.term]
			if !ok {
				continue
			}
			i, found := slices.BinarySearchFunc(ps, posting{num: rec.num, fid: fid}, func(a, b posting) int {
				if a.num != b.num {
					return cmpNum(a.num, b.num)
				}
				return cmp.Compare(a.fid, b.fid)
			})
			if !found || ps[i].tf != t.tf {
				c.add("file %d (session %q): posting of %q missing or wrong", fid, rec.sid, t.term)
			}
		}
		return nil
	})
	return err
}
