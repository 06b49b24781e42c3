package meta

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"syscall"

	"github.com/cockroachdb/pebble"
	"github.com/taskerfs/taskerfs/blobstore"
)

// Check and RepairRefcounts are the namespace half of fsck: the invariants
// every operation keeps, checked from one snapshot. Blob contents are not
// read here; the caller verifies them against the blob store.

// ProblemKind names a broken invariant.
type ProblemKind string

const (
	ProblemEntry    ProblemKind = "entry"    // a directory entry that disagrees with its inode
	ProblemNlink    ProblemKind = "nlink"    // a link count that disagrees with the names
	ProblemOrphan   ProblemKind = "orphan"   // an orphan record that disagrees with the link count
	ProblemManifest ProblemKind = "manifest" // a manifest entry of a missing inode, or unreadable
	ProblemRefcount ProblemKind = "refcount" // a refcount that differs from the manifests' references
	ProblemUser     ProblemKind = "user"     // a reverse blob->file entry without its manifest entry, or missing
	ProblemInline   ProblemKind = "inline"   // an inline payload present while unreferenced, or missing
	ProblemRecord   ProblemKind = "record"   // a per-inode record of a missing inode or one of the wrong kind
	ProblemCounters ProblemKind = "counters" // the persisted stats counters differ from a scan
)

// Problem is one broken invariant.
type Problem struct {
	Kind ProblemKind
	Ino  uint64         // the inode concerned, if any
	Hash blobstore.Hash // the blob concerned, if any
	Msg  string
}

func (p Problem) String() string { return string(p.Kind) + ": " + p.Msg }

// Check reports, through report, every broken invariant: directory link
// counts are 2 + subdirectories and file link counts equal their names;
// directories record their exact parent and name; unreachable inodes are
// orphans with no links; blob refcounts equal the manifest entries that
// point at them; every manifest entry has its reverse entry and no reverse
// entry is left over; inline payloads exist exactly while referenced;
// directory entries, xattrs, symlink targets and orphan records belong to
// a live inode of the right kind. Memory grows with the number of
// distinct blobs and of directories.
func (s *Store) Check(report func(Problem)) error {
	snap := s.db.NewSnapshot()
	defer snap.Close()
	// The stats counters are summed up by the passes over the inode and
	// refcount tables that the other checks make anyway.
	cs, err := newCounterScan(snap)
	if err != nil {
		return err
	}
	if err := checkTree(snap, cs, report); err != nil {
		return err
	}
	if err := checkRecordOwners(snap, report); err != nil {
		return err
	}
	users := &userSums{seed: maphash.MakeSeed()}
	refs, err := countReferences(snap, users, report)
	if err != nil {
		return err
	}
	if err := checkRefcounts(snap, refs, users, cs, report); err != nil {
		return err
	}
	return checkCounters(snap, cs.c, report)
}

// checkTree walks the namespace from the root and compares link counts
// and orphan records with the names found; cs counts every inode. The
// directories' inodes are read first, in one scan: the walk reads only
// the directory entries, and every entry is compared with its inode in the
// final scan of the inode table (no point read per entry).
func checkTree(r pebble.Reader, cs *counterScan, report func(Problem)) error {
	type dirLink struct {
		parent uint64
		name   string
	}
	dirs := map[uint64]dirLink{}
	if err := allInodes(r, func(a Attr) error {
		if a.IsDir() {
			dirs[a.Ino] = dirLink{a.Parent, a.Name}
		}
		return nil
	}); err != nil {
		return err
	}
	// named is what the entries in reachable directories say of an inode.
	type named struct {
		n     uint32
		typ   uint32 // the type the first entry gives
		mixed bool   // entries give different types
		met   bool   // the inode exists
	}
	names := map[uint64]named{}
	subdirs := map[uint64]uint32{}
	seen := map[uint64]bool{RootIno: true}
	stack := []uint64{RootIno}
	troot := cs.root // the trash tree is a second root (meta/trash.go)
	if troot != 0 {
		seen[troot] = true
		stack = append(stack, troot)
	}
	for len(stack) > 0 {
		dir := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		p := direntPrefix(dir)
		it, err := r.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
		if err != nil {
			return err
		}
		for ok := it.First(); ok; ok = it.Next() {
			name := string(it.Key()[len(p):])
			v := it.Value()
			if len(v) != 9 {
				report(Problem{Kind: ProblemEntry, Ino: dir, Msg: fmt.Sprintf("entry %q in dir %d is malformed", name, dir)})
				continue
			}
			ino, typ := binary.BigEndian.Uint64(v), uint32(v[8])<<12
			if e, ok := names[ino]; !ok {
				names[ino] = named{n: 1, typ: typ}
			} else {
				e.n++
				e.mixed = e.mixed || e.typ != typ
				names[ino] = e
			}
			d, isDir := dirs[ino]
			if !isDir {
				continue
			}
			subdirs[dir]++
			if d.parent != dir || d.name != name {
				report(Problem{Kind: ProblemEntry, Ino: ino, Msg: fmt.Sprintf("dir %d found as %d/%q records %d/%q", ino, dir, name, d.parent, d.name)})
			}
			if seen[ino] {
				report(Problem{Kind: ProblemEntry, Ino: ino, Msg: fmt.Sprintf("dir %d is reached twice", ino)})
				continue
			}
			seen[ino] = true
			stack = append(stack, ino)
		}
		if err := it.Close(); err != nil {
			return err
		}
	}
	orphans, err := newSeeker(r, pfxOrphan)
	if err != nil {
		return err
	}
	defer orphans.close()
	err = allInodes(r, func(a Attr) error {
		if err := cs.inode(&a); err != nil {
			return err
		}
		_, orphan := orphans.find(orphanKey(a.Ino))
		var want uint32
		if e, ok := names[a.Ino]; ok {
			e.met = true
			names[a.Ino] = e
			want = e.n
			if e.mixed || e.typ != a.Mode&syscall.S_IFMT {
				report(Problem{Kind: ProblemEntry, Ino: a.Ino, Msg: fmt.Sprintf("inode %d (%q) has type %o, an entry naming it gives %o", a.Ino, a.Name, a.Mode&syscall.S_IFMT, e.typ)})
			}
		}
		if a.IsDir() && (want > 0 || a.Ino == RootIno || a.Ino == troot) {
			want = 2 + subdirs[a.Ino]
		}
		if a.Nlink != want {
			report(Problem{Kind: ProblemNlink, Ino: a.Ino, Msg: fmt.Sprintf("inode %d (%q) has nlink %d, want %d", a.Ino, a.Name, a.Nlink, want)})
		}
		if (a.Nlink == 0) != orphan {
			report(Problem{Kind: ProblemOrphan, Ino: a.Ino, Msg: fmt.Sprintf("inode %d has nlink %d but orphan record %v", a.Ino, a.Nlink, orphan)})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for ino, e := range names {
		if !e.met {
			report(Problem{Kind: ProblemEntry, Ino: ino, Msg: fmt.Sprintf("%d entries point at inode %d, which is missing", e.n, ino)})
		}
	}
	return nil
}

// checkRecordOwners checks that every per-inode record belongs to a live
// inode of the kind that can have it.
func checkRecordOwners(r pebble.Reader, report func(Problem)) error {
	owners := []struct {
		pfx  byte
		what string
		ok   func(a *Attr) bool
	}{
		{pfxDirent, "directory entry", (*Attr).IsDir},
		{pfxXattr, "xattr", func(*Attr) bool { return true }},
		{pfxSymlink, "symlink target", (*Attr).IsSymlink},
		{pfxOrphan, "orphan record", func(a *Attr) bool { return a.Nlink == 0 }},
	}
	for _, o := range owners {
		var last uint64
		lastOK, started := true, false
		err := scanKeys(r, []byte{o.pfx}, func(k, _ []byte) error {
			if len(k) < 9 {
				report(Problem{Kind: ProblemRecord, Msg: fmt.Sprintf("%s key %x is malformed", o.what, k)})
				return nil
			}
			ino := binary.BigEndian.Uint64(k[1:])
			if started && ino == last {
				if !lastOK {
					return nil // reported once per inode
				}
			} else {
				a, err := getAttr(r, ino)
				last, lastOK, started = ino, err == nil && o.ok(&a), true
			}
			if !lastOK {
				report(Problem{Kind: ProblemRecord, Ino: ino, Msg: fmt.Sprintf("%s of inode %d, which is missing or cannot have one", o.what, ino)})
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func allInodes(r pebble.Reader, fn func(a Attr) error) error { return eachInode(r, false, fn) }

// countReferences counts the manifest entries per blob and checks that
// each belongs to an inode whose size covers it. The manifest and the
// inode tables are both in inode order: one pass over each. users gets the
// count and the sum of the reverse entries the manifests call for.
func countReferences(r pebble.Reader, users *userSums, report func(Problem)) (map[blobstore.Hash]refUse, error) {
	refs := map[blobstore.Hash]refUse{}
	inodes, err := newSeeker(r, pfxInode)
	if err != nil {
		return nil, err
	}
	defer inodes.close()
	err = scanKeys(r, []byte{pfxChunk}, func(k, v []byte) error {
		if len(k) != 17 {
			report(Problem{Kind: ProblemManifest, Msg: fmt.Sprintf("manifest key %x is malformed", k)})
			return nil
		}
		ino, index := binary.BigEndian.Uint64(k[1:]), binary.BigEndian.Uint64(k[9:])
		c, err := decodeChunkRef(v)
		if err != nil {
			report(Problem{Kind: ProblemManifest, Ino: ino, Msg: fmt.Sprintf("manifest entry %d of inode %d: %v", index, ino, err)})
			return nil
		}
		if v, found := inodes.find(inodeKey(ino)); !found {
			report(Problem{Kind: ProblemManifest, Ino: ino, Hash: c.Hash, Msg: fmt.Sprintf("manifest entry %d of missing inode %d", index, ino)})
		} else if a, err := decodeAttr(ino, v); err == nil && index >= (a.Size+ChunkSize-1)/ChunkSize {
			// Freeing an inode drops the entries its size covers; one past
			// it would keep its blob referenced for ever.
			report(Problem{Kind: ProblemManifest, Ino: ino, Hash: c.Hash, Msg: fmt.Sprintf("manifest entry %d of inode %d lies past its size %d", index, ino, a.Size)})
		}
		users.add(c.Hash, ino, index)
		refs[c.Hash] = refs[c.Hash].add(c.Payload)
		return nil
	})
	if err == nil {
		err = inodes.err()
	}
	return refs, err
}

// refUse is what the manifest entries say of one blob: how many name it,
// and the inline payload id they name (mixed: not all the same one).
type refUse struct {
	n       uint64
	payload uint64
	mixed   bool
}

func (u refUse) add(payload uint64) refUse {
	if u.n == 0 {
		u.payload = payload
	} else if u.payload != payload {
		u.mixed = true
	}
	u.n++
	return u
}

// userSums is a count and a sum of hashes of reverse entries (blob, inode,
// index): the manifests' side and the reverse table's side are summed in
// their own key orders and compared; only when they differ are the two
// tables matched entry by entry (diffUsers).
type userSums struct {
	seed maphash.Seed
	n    int
	sum  uint64
}

func (u *userSums) add(h blobstore.Hash, ino, index uint64) {
	var b [48]byte
	copy(b[:], h[:])
	binary.BigEndian.PutUint64(b[32:], ino)
	binary.BigEndian.PutUint64(b[40:], index)
	u.n++
	u.sum += maphash.Bytes(u.seed, b[:])
}

// diffUsers finds the manifest entries without their reverse entry and the
// reverse entries without their manifest entry, with a point read each.
func diffUsers(r pebble.Reader, report func(Problem)) error {
	err := scanKeys(r, []byte{pfxChunk}, func(k, v []byte) error {
		c, err := decodeChunkRef(v)
		if len(k) != 17 || err != nil {
			return nil // reported by countReferences
		}
		ino, index := binary.BigEndian.Uint64(k[1:]), binary.BigEndian.Uint64(k[9:])
		if _, found, err := get(r, userKey(c.Hash, ino, index)); err != nil {
			return err
		} else if !found {
			report(Problem{Kind: ProblemUser, Ino: ino, Hash: c.Hash, Msg: fmt.Sprintf("blob %s used by inode %d chunk %d has no reverse entry", c.Hash, ino, index)})
		}
		return nil
	})
	if err != nil {
		return err
	}
	return scanKeys(r, []byte{pfxUser}, func(k, _ []byte) error {
		if len(k) != 1+32+16 {
			return nil // reported by checkRefcounts
		}
		var h blobstore.Hash
		copy(h[:], k[1:33])
		ino, index := binary.BigEndian.Uint64(k[33:]), binary.BigEndian.Uint64(k[41:])
		c, found, err := get(r, chunkKey(ino, index))
		if err != nil {
			return err
		}
		if cr, derr := decodeChunkRef(c); !found || derr != nil || cr.Hash != h {
			report(Problem{Kind: ProblemUser, Ino: ino, Hash: h, Msg: fmt.Sprintf("reverse entry says inode %d chunk %d uses blob %s; its manifest does not", ino, index, h)})
		}
		return nil
	})
}

// checkRefcounts compares the refcount table with refs and checks inline
// payloads against it (both tables in hash order: one pass over each) and
// the reverse table against the manifests' sum in want; cs counts every
// refcount record.
func checkRefcounts(r pebble.Reader, refs map[blobstore.Hash]refUse, want *userSums, cs *counterScan, report func(Problem)) error {
	// The payloads keyed by id (in id order, not the records' hash order):
	// each is met by the record that names it, or reported.
	byID := map[blobstore.Hash]uint64{}
	type idPayload struct {
		id uint64
		h  blobstore.Hash
	}
	var extra []idPayload // a second payload for one hash
	if err := scanKeys(r, []byte{pfxPayload}, func(k, _ []byte) error {
		if len(k) != payloadKeyLen {
			report(Problem{Kind: ProblemInline, Msg: fmt.Sprintf("inline payload key %x is malformed", k)})
			return nil
		}
		id, h := binary.BigEndian.Uint64(k[1:]), blobstore.Hash(k[9:])
		if _, dup := byID[h]; dup {
			extra = append(extra, idPayload{id, h})
		} else {
			byID[h] = id
		}
		return nil
	}); err != nil {
		return err
	}
	ip := []byte{pfxInline}
	inline, err := r.NewIter(&pebble.IterOptions{LowerBound: ip, UpperBound: prefixEnd(ip)})
	if err != nil {
		return err
	}
	defer inline.Close()
	inOK := inline.First()
	// unrecorded reports the inline payloads before h (all of them: nil)
	// that no refcount record names.
	unrecorded := func(h *blobstore.Hash) {
		for ; inOK && (h == nil || bytes.Compare(inline.Key()[1:], h[:]) < 0); inOK = inline.Next() {
			var k blobstore.Hash
			copy(k[:], inline.Key()[1:])
			if refs[k].n == 0 {
				report(Problem{Kind: ProblemInline, Hash: k, Msg: fmt.Sprintf("inline payload of unreferenced blob %s", k)})
			}
		}
	}
	// The journal's marks (journal.go): few, held in memory.
	marks := map[blobstore.Hash]bool{}
	if err := scanKeys(r, []byte{pfxJournal}, func(k, _ []byte) error {
		var h blobstore.Hash
		copy(h[:], k[1:])
		marks[h] = true
		return nil
	}); err != nil {
		return err
	}
	err = scanRefs(r, func(h blobstore.Hash, rec blobRecord) error {
		if want := rec.Inline && journaled(rec.Size); want != marks[h] {
			report(Problem{Kind: ProblemInline, Hash: h, Msg: fmt.Sprintf("blob %s of %d bytes, inline=%v, has journal mark=%v", h, rec.Size, rec.Inline, marks[h])})
		}
		delete(marks, h)
		cs.ref(&rec)
		use := refs[h]
		if rec.Refs != use.n {
			report(Problem{Kind: ProblemRefcount, Hash: h, Msg: fmt.Sprintf("blob %s has refcount %d, manifests hold %d", h, rec.Refs, use.n)})
		}
		if rec.Inline && use.n > 0 && (use.mixed || use.payload != rec.Payload) {
			report(Problem{Kind: ProblemManifest, Hash: h, Msg: fmt.Sprintf("inline blob %s has payload %d; its manifest entries name %d (mixed=%v)", h, rec.Payload, use.payload, use.mixed)})
		}
		delete(refs, h) // what stays is referenced without a record
		unrecorded(&h)
		hasInline := inOK && bytes.Equal(inline.Key()[1:], h[:])
		if hasInline {
			inOK = inline.Next()
		}
		if rec.Payload != 0 {
			// Keyed by id: the one the record names.
			hasInline = false
			if id, ok := byID[h]; ok && id == rec.Payload {
				hasInline = true
				delete(byID, h)
			}
			for i := range extra {
				if extra[i].h == h && extra[i].id == rec.Payload {
					hasInline = true
					extra[i].id = 0 // met
				}
			}
		}
		if hasInline != rec.Inline {
			report(Problem{Kind: ProblemInline, Hash: h, Msg: fmt.Sprintf("blob %s is recorded inline=%v, payload present=%v", h, rec.Inline, hasInline)})
		}
		return nil
	})
	if err != nil {
		return err
	}
	unrecorded(nil)
	if err := inline.Error(); err != nil {
		return err
	}
	for _, e := range extra {
		if e.id != 0 {
			report(Problem{Kind: ProblemInline, Hash: e.h, Msg: fmt.Sprintf("inline payload %d of blob %s, which its record does not name", e.id, e.h)})
		}
	}
	for h, id := range byID {
		report(Problem{Kind: ProblemInline, Hash: h, Msg: fmt.Sprintf("inline payload %d of blob %s, which no record names", id, h)})
	}
	for h := range marks {
		report(Problem{Kind: ProblemInline, Hash: h, Msg: fmt.Sprintf("journal mark of unreferenced blob %s", h)})
	}
	for h, u := range refs {
		report(Problem{Kind: ProblemRefcount, Hash: h, Msg: fmt.Sprintf("blob %s referenced %d times has no refcount", h, u.n)})
	}
	have := userSums{seed: want.seed}
	if err := scanKeys(r, []byte{pfxUser}, func(k, _ []byte) error {
		if len(k) != 1+32+16 {
			report(Problem{Kind: ProblemUser, Msg: fmt.Sprintf("reverse entry %x is malformed", k)})
			return nil
		}
		var h blobstore.Hash
		copy(h[:], k[1:33])
		have.add(h, binary.BigEndian.Uint64(k[33:]), binary.BigEndian.Uint64(k[41:]))
		return nil
	}); err != nil {
		return err
	}
	if have != *want {
		return diffUsers(r, report)
	}
	return nil
}

// seeker finds keys of one table in ascending order with one iterator:
// successive forward seeks step instead of searching anew.
type seeker struct{ it *pebble.Iterator }

func newSeeker(r pebble.Reader, pfx byte) (*seeker, error) {
	p := []byte{pfx}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, err
	}
	return &seeker{it}, nil
}

// find returns key's value (valid until the next find) and whether it is there.
func (s *seeker) find(key []byte) ([]byte, bool) {
	if s.it.Valid() && bytes.Equal(s.it.Key(), key) { // found last time
		return s.it.Value(), true
	}
	if s.it.SeekGE(key) && bytes.Equal(s.it.Key(), key) {
		return s.it.Value(), true
	}
	return nil, false
}

func (s *seeker) err() error { return s.it.Error() }
func (s *seeker) close()     { s.it.Close() }

func scanRefs(r pebble.Reader, fn func(h blobstore.Hash, rec blobRecord) error) error {
	return scanKeys(r, []byte{pfxRef}, func(k, v []byte) error {
		var h blobstore.Hash
		copy(h[:], k[1:])
		rec, err := decodeBlobRecord(v)
		if err != nil {
			return fmt.Errorf("meta: refcount record of %s: %w", h, err)
		}
		return fn(h, rec)
	})
}

func scanKeys(r pebble.Reader, prefix []byte, fn func(k, v []byte) error) error {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if err := fn(it.Key(), it.Value()); err != nil {
			return err
		}
	}
	return it.Error()
}

// RefRepair reports what RepairRefcounts changed.
type RefRepair struct {
	Refcounts     int // records whose count was rewritten
	Dropped       int // records (and inline payloads) nothing referenced
	Created       int // records made for referenced blobs that had none
	UsersFixed    int // reverse entries added or removed
	PayloadIDs    int // manifest entries given their inline blob's payload id
	Unrecoverable int // referenced inline blobs whose payload is gone
}

// RepairRefcounts makes the refcount table and the reverse blob->file
// entries agree with the manifests, in one transaction. A referenced blob
// that has no record gets one from its inline payload or, failing that,
// from the blob store's header; one whose content is nowhere is counted
// as unrecoverable and left for the caller to report. Run it only while
// nothing else writes (an unmounted data dir).
func (s *Store) RepairRefcounts() (RefRepair, error) {
	var res RefRepair
	err := s.Update(true, func(tx *Tx) error {
		refs := map[blobstore.Hash]refUse{}
		users := map[string]bool{}
		err := scanKeys(tx.b, []byte{pfxChunk}, func(k, v []byte) error {
			c, err := decodeChunkRef(v)
			if len(k) != 17 || err != nil {
				return nil // a malformed entry is Check's to report
			}
			ino, index := binary.BigEndian.Uint64(k[1:]), binary.BigEndian.Uint64(k[9:])
			refs[c.Hash] = refs[c.Hash].add(c.Payload)
			users[string(userKey(c.Hash, ino, index))] = true
			return nil
		})
		if err != nil {
			return err
		}
		stale := map[blobstore.Hash]blobRecord{}
		ids := map[blobstore.Hash]uint64{} // inline blobs whose entries name other payload ids
		err = scanRefs(tx.b, func(h blobstore.Hash, rec blobRecord) error {
			u, used := refs[h]
			delete(refs, h)
			if used && rec.Inline && (u.mixed || u.payload != rec.Payload) {
				ids[h] = rec.Payload
			}
			switch {
			case !used:
				stale[h] = rec
			case rec.Refs != u.n:
				old := rec
				rec.Refs = u.n
				res.Refcounts++
				return tx.setRef(h, &old, rec)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := tx.fixPayloadIDs(ids, &res); err != nil {
			return err
		}
		for h, rec := range stale {
			res.Dropped++
			tx.delRef(h, rec)
			tx.b.Delete(payloadKey(rec.Payload, h), nil)
			tx.b.Delete(journalKey(h), nil)
		}
		for h, u := range refs {
			rec, ok, err := s.recoverRecord(tx, h, u)
			if err != nil {
				return err
			}
			if !ok {
				res.Unrecoverable++
				continue
			}
			if rec.Inline && (u.mixed || u.payload != rec.Payload) {
				if err := tx.fixPayloadIDs(map[blobstore.Hash]uint64{h: rec.Payload}, &res); err != nil {
					return err
				}
			}
			rec.Refs = u.n
			res.Created++
			tx.setRef(h, nil, rec)
			if rec.Inline && journaled(rec.Size) {
				tx.b.Set(journalKey(h), nil, nil) // moved out by the next mount
			}
		}
		var strayUsers [][]byte
		err = scanKeys(tx.b, []byte{pfxUser}, func(k, _ []byte) error {
			if !users[string(k)] {
				strayUsers = append(strayUsers, append([]byte(nil), k...))
			}
			delete(users, string(k))
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range strayUsers {
			res.UsersFixed++
			tx.b.Delete(k, nil)
		}
		for k := range users {
			res.UsersFixed++
			tx.b.Set([]byte(k), nil, nil)
		}
		return nil
	})
	return res, err
}

// recoverRecord rebuilds the record of a referenced blob that has none,
// from a raw inline payload or the blob store's header. (A zstd inline
// payload cannot be decoded without the size its record held.)
func (s *Store) recoverRecord(tx *Tx, h blobstore.Hash, u refUse) (blobRecord, bool, error) {
	id := u.payload
	p, ok, err := get(tx.b, payloadKey(id, h))
	if err == nil && !ok && id != 0 {
		id = 0
		p, ok, err = get(tx.b, inlineKey(h))
	}
	if err != nil {
		return blobRecord{}, false, err
	}
	if ok {
		if len(p) == 0 || blobstore.Codec(p[0]) != blobstore.CodecRaw || blobstore.Sum(p[1:]) != h {
			return blobRecord{}, false, nil
		}
		return blobRecord{Inline: true, Codec: blobstore.CodecRaw, Size: uint32(len(p) - 1), Stored: int64(len(p)), Payload: id}, true, nil
	}
	info, err := s.blobs.Stat(h)
	if err != nil {
		return blobRecord{}, false, nil
	}
	return blobRecord{Size: uint32(info.Size), Stored: info.Stored, Codec: info.Codec}, true, nil
}

// fixPayloadIDs rewrites the manifest entries of the inline blobs in ids
// that name another payload id than their record's (ids[h]).
func (tx *Tx) fixPayloadIDs(ids map[blobstore.Hash]uint64, res *RefRepair) error {
	if len(ids) == 0 {
		return nil
	}
	type fix struct {
		key []byte
		c   ChunkRef
	}
	var fixes []fix
	err := scanKeys(tx.b, []byte{pfxChunk}, func(k, v []byte) error {
		c, err := decodeChunkRef(v)
		if err != nil {
			return nil
		}
		if id, ok := ids[c.Hash]; ok && c.Payload != id {
			c.Payload = id
			fixes = append(fixes, fix{bytes.Clone(k), c})
		}
		return nil
	})
	for _, f := range fixes {
		res.PayloadIDs++
		tx.b.Set(f.key, encodeChunkRef(f.c), nil)
	}
	return err
}
