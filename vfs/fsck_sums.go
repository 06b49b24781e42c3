package vfs

import (
	"encoding/binary"
	"sort"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/index"
	"github.com/taskerfs/taskerfs/meta"
)

// blobSums keeps, for every blob fsck's blob check verified, the sum its
// content gives as a whole file's (index.ContentSum), so that the index
// check takes a one-chunk file's sum from it instead of reading and
// decoding the file a second time. Entries are keyed by the first 8 bytes
// of the hash (16 bytes each: 12 MB for 760,000 blobs), appended in the
// order the blob check meets the blobs, in fixed-size pages so that the
// verifying workers can fill in sums while more are appended, and sorted
// once the workers are done (sort).
type blobSums struct {
	pages [][]blobSum
	n     int
}

// blobSum is one blob's entry; sum stays 0 unless the blob verified.
type blobSum struct {
	key, sum uint64
}

const blobSumPage = 1 << 14

func blobSumKey(h blobstore.Hash) uint64 { return binary.BigEndian.Uint64(h[:8]) }

// add appends h's entry and returns it, for a verifying worker to set its sum. On a nil blobSums it
// returns a scratch entry.
func (s *blobSums) add(h blobstore.Hash) *blobSum {
	if s == nil {
		return &blobSum{}
	}
	if s.n%blobSumPage == 0 {
		s.pages = append(s.pages, make([]blobSum, blobSumPage))
	}
	e := &s.pages[s.n/blobSumPage][s.n%blobSumPage]
	e.key = blobSumKey(h)
	s.n++
	return e
}

func (s *blobSums) at(i int) *blobSum { return &s.pages[i/blobSumPage][i%blobSumPage] }

// sort orders the entries by key for lookup; no entry handed out by add
// may be written after it.
func (s *blobSums) sort() {
	if s != nil {
		sort.Sort(sumOrder{s})
	}
}

type sumOrder struct{ s *blobSums }

func (o sumOrder) Len() int           { return o.s.n }
func (o sumOrder) Less(i, j int) bool { return o.s.at(i).key < o.s.at(j).key }
func (o sumOrder) Swap(i, j int)      { *o.s.at(i), *o.s.at(j) = *o.s.at(j), *o.s.at(i) }

// lookup returns h's content sum, or 0 when it is not known: the blob was
// not verified, or another blob shares the first 8 bytes of its hash. The
// entries must be sorted.
func (s *blobSums) lookup(h blobstore.Hash) uint64 {
	if s == nil {
		return 0
	}
	k := blobSumKey(h)
	i := sort.Search(s.n, func(i int) bool { return s.at(i).key >= k })
	if i == s.n || s.at(i).key != k || i+1 < s.n && s.at(i+1).key == k {
		return 0
	}
	return s.at(i).sum
}

// fsckSource yields, for fsck's index check, every file the index should
// hold (as IndexSource, but in inode order, from meta's sequential scan),
// with its content sum where it is known without reading the file: an
// empty file's, and a one-chunk file's from its blob's entry in sums. The
// others are read when the check asks.
func (v *FS) fsckSource(sums *blobSums) index.SumSource {
	return func(fn func(index.SourceFile) error) error {
		emptySum := index.ContentSum(nil)
		return v.eachIndexable(func(sf *meta.ScannedFile, sid string, kind index.Kind) error {
			a, scanned := sf.Attr, *sf
			f := index.SourceFile{ID: a.Ino, Session: sid, Kind: kind,
				Content: func() ([]byte, error) { return v.scannedContent(&scanned) }}
			switch {
			case a.Size == 0:
				f.Sum = emptySum
			case a.Size <= meta.ChunkSize && sf.HasFirst && uint64(sf.First.Size) == a.Size:
				f.Sum = sums.lookup(sf.First.Hash)
			}
			return fn(f)
		})
	}
}
