package vfs

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"testing"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/meta"
)

// addInlineBlobs makes one file per content under bulk/, each referencing
// its content as one inline blob, many files per transaction.
func addInlineBlobs(t testing.TB, v *FS, contents [][]byte) {
	t.Helper()
	dir, err := v.MkdirAll("bulk", 0o755)
	if err != nil {
		t.Fatal(err)
	}
	const perTx = 2000
	for start := 0; start < len(contents); start += perTx {
		err := v.meta.Update(false, func(tx *meta.Tx) error {
			for i, data := range contents[start:min(start+perTx, len(contents))] {
				a, err := tx.Create(dir.Ino, fmt.Sprintf("f%d", start+i), meta.NewNode{Mode: syscall.S_IFREG | 0o644})
				if err != nil {
					return err
				}
				a.Size = uint64(len(data))
				if err := tx.PutAttr(&a); err != nil {
					return err
				}
				ref := &meta.BlobRef{Hash: blobstore.Sum(data), Size: uint32(len(data)), Codec: blobstore.CodecRaw,
					Stored: int64(len(data)) + 1, Inline: data}
				if err := tx.SetChunk(a.Ino, 0, ref); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// contentsInShard returns n distinct contents whose hashes start with
// shard, and the rest of the contents it generated on the way.
func contentsInShard(shard byte, n int) (in, others [][]byte) {
	for i := 0; len(in) < n; i++ {
		c := fmt.Appendf(nil, "blob %d", i)
		if blobstore.Sum(c)[0] == shard {
			in = append(in, c)
		} else {
			others = append(others, c)
		}
	}
	return in, others
}

// readAll lists an open directory to its end.
func readAll(t testing.TB, o *Ops, c *Ctx, h *DirHandle) []DirEntry {
	t.Helper()
	var out []DirEntry
	for {
		e, err := o.Readdir(c, h)
		if err != nil {
			t.Fatalf("readdir: %v", err)
		}
		if e == nil {
			return out
		}
		out = append(out, *e)
	}
}

func TestCASShardListing(t *testing.T) {
	f := newTFS(t)
	c := rootCtx()
	const shard = 0x5a
	in, others := contentsInShard(shard, 2*dirPage+17) // three pages
	addInlineBlobs(t, f.v, append(slices.Clone(in), others[:300]...))
	want := []string{".", ".."}
	var hashes []string
	for _, b := range in {
		hashes = append(hashes, blobstore.Sum(b).String())
	}
	slices.Sort(hashes)
	want = append(want, hashes...)

	h, err := f.o.Opendir(c, f.mustWalk(c, fmt.Sprintf("attachments-ca/%02x", shard)).Node)
	if err != nil {
		t.Fatal(err)
	}
	entries := readAll(t, f.o, c, h)
	var names []string
	offs := map[uint64]bool{}
	for _, e := range entries {
		names = append(names, e.Name)
		if offs[e.Off] || e.Off == 0 {
			t.Errorf("entry %s has offset %d, zero or used before", e.Name, e.Off)
		}
		offs[e.Off] = true
		if e.Mode != syscall.S_IFDIR {
			t.Errorf("entry %s has mode %o", e.Name, e.Mode)
		}
	}
	if !slices.Equal(names, want) {
		t.Fatalf("listed %d entries, want %d (the shard's hashes in order)", len(names), len(want))
	}

	// Seeking to an entry's offset resumes right after it.
	for _, k := range []int{-1, 0, 1, 2, dirPage, dirPage + 1, dirPage + 2, len(entries) - 1} {
		off := uint64(0)
		if k >= 0 {
			off = entries[k].Off
		}
		if err := f.o.Seekdir(c, h, off); err != nil {
			t.Fatalf("seekdir %d: %v", off, err)
		}
		rest := readAll(t, f.o, c, h)
		if len(rest) != len(entries)-k-1 || len(rest) > 0 && rest[0].Name != entries[k+1].Name {
			t.Errorf("after seekdir to entry %d: %d entries left, want %d", k, len(rest), len(entries)-k-1)
		}
	}

	// The root lists exactly the shards in use.
	wantShards := []string{}
	for _, b := range append(slices.Clone(in), others[:300]...) {
		wantShards = append(wantShards, fmt.Sprintf("%02x", blobstore.Sum(b)[0]))
	}
	slices.Sort(wantShards)
	wantShards = slices.Compact(wantShards)
	if got := f.names(c, "attachments-ca"); !slices.Equal(got, wantShards) {
		t.Errorf("root lists %v\nwant %v", got, wantShards)
	}

	// A shard with no blob does not exist.
	empty := byte(0)
	for slices.Contains(wantShards, fmt.Sprintf("%02x", empty)) {
		empty++
	}
	if _, err := f.walk(c, fmt.Sprintf("attachments-ca/%02x", empty)); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("empty shard: %v, want ENOENT", err)
	}
}

func TestCASFiles(t *testing.T) {
	f := newTFS(t)
	c := rootCtx()
	content := []byte(`{"id": "s-1"}`)
	addInlineBlobs(t, f.v, [][]byte{content})
	dir := casPath(string(content))
	data, md := f.mustWalk(c, dir+"/data.bin"), f.mustWalk(c, dir+"/metadata.json")
	if data.Attr.Size != uint64(len(content)) || data.Attr.Mode != syscall.S_IFREG|0o444 {
		t.Errorf("data.bin attr %+v", data.Attr)
	}

	for _, flags := range []uint32{syscall.O_WRONLY, syscall.O_RDWR, syscall.O_RDONLY | syscall.O_TRUNC} {
		for _, e := range []Entry{data, md} {
			if _, err := f.o.Open(c, e.Node, flags); err != syscall.EROFS {
				t.Errorf("open %s with flags %#x: %v, want EROFS", e.Attr.Name, flags, err)
			}
		}
	}

	h, err := f.o.Open(c, data.Node, syscall.O_RDONLY)
	if err != nil || !h.KeepCache() {
		t.Fatalf("open data.bin: keep cache %v, %v", h != nil && h.KeepCache(), err)
	}
	reads := []struct {
		off  int64
		size int
		want string
	}{
		{0, 100, string(content)},
		{1, 4, `"id"`},
		{int64(len(content)) - 2, 10, `"}`},
		{int64(len(content)), 10, ""},
		{1 << 40, 10, ""},
	}
	for _, r := range reads {
		buf := make([]byte, r.size)
		n, err := f.o.Read(c, h, buf, r.off)
		if err != nil {
			t.Fatal(err)
		}
		if string(buf[:n]) != r.want {
			t.Errorf("read %d@%d = %q, want %q", r.size, r.off, buf[:n], r.want)
		}
	}
	if v, err := f.o.Getxattr(c, data.Node, XattrSHA256); err != nil || string(v) != blobstore.Sum(content).String() {
		t.Errorf("data.bin sha256 xattr %q, %v", v, err)
	}

	mh, err := f.o.Open(c, md.Node, syscall.O_RDONLY)
	if err != nil || mh.KeepCache() {
		t.Fatalf("open metadata.json: keep cache %v, %v", mh != nil && mh.KeepCache(), err)
	}
	var got BlobMetadata
	if err := json.Unmarshal(mh.data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Hash != blobstore.Sum(content).String() || got.RefCount != 1 || got.MimeType != "application/json" || !got.Inline {
		t.Errorf("metadata.json: %+v", got)
	}
	if a, err := f.o.Getattr(c, md.Node, nil); err != nil || a.Size != uint64(len(mh.data)) {
		t.Errorf("getattr metadata.json: size %d, %v; the file has %d bytes", a.Size, err, len(mh.data))
	}

	// Once nothing references the blob, it is gone from the view, while an
	// open data.bin keeps its bytes.
	if err := f.o.Unlink(c, f.mustWalk(c, "bulk").Node, "f0"); err != nil {
		t.Fatal(err)
	}
	for _, e := range []Entry{data, md} {
		if _, err := f.o.Open(c, e.Node, syscall.O_RDONLY); err != syscall.ENOENT {
			t.Errorf("open %s of an unreferenced blob: %v, want ENOENT", e.Attr.Name, err)
		}
	}
	if _, err := f.walk(c, dir); err != syscall.ENOENT {
		t.Errorf("lookup of an unreferenced blob: %v, want ENOENT", err)
	}
	if n, _ := f.o.Read(c, h, make([]byte, 100), 0); n != len(content) {
		t.Errorf("an open data.bin lost its bytes")
	}
}

func TestParseLowerHex(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want bool
	}{
		{"ab", 1, true},
		{"09", 1, true},
		{"AB", 1, false},
		{"aB", 1, false},
		{"a", 1, false},
		{"abc", 1, false},
		{"zz", 1, false},
		{"", 0, true},
		{"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 32, true},
		{"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeF", 32, false},
		{"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde", 32, false},
	}
	for _, tt := range tests {
		if _, ok := parseLowerHex(tt.s, tt.n); ok != tt.want {
			t.Errorf("parseLowerHex(%q, %d) = %v, want %v", tt.s, tt.n, ok, tt.want)
		}
	}
}

// BenchmarkCASListShard lists one shard (as `ls attachments-ca/<ab>/`
// does) of stores of growing size, as the owner and as another user (who
// pays a permission walk per blob, cached while the store is unchanged).
func BenchmarkCASListShard(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		for _, who := range []string{"owner", "other"} {
			b.Run(fmt.Sprintf("blobs=%d/%s", n, who), func(b *testing.B) {
				f := newTFS(b)
				contents := make([][]byte, n)
				for i := range contents {
					contents[i] = fmt.Appendf(nil, "blob %d", i)
				}
				addInlineBlobs(b, f.v, contents)
				c := rootCtx()
				if who == "other" {
					c = NewCtxGroups(bobUID, bobUID)
				}
				node := f.mustWalk(c, "attachments-ca/ab").Node
				entries := 0
				for b.Loop() {
					h, err := f.o.Opendir(c, node)
					if err != nil {
						b.Fatal(err)
					}
					entries = len(readAll(b, f.o, c, h)) - 2
				}
				b.ReportMetric(float64(entries), "entries/shard")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(entries), "ns/entry")
			})
		}
	}
}
