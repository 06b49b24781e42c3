package fs

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/meta"
	"github.com/taskerfs/taskerfs/vfs"
)

func openCASView(t testing.TB) *casView {
	t.Helper()
	v, err := vfs.Open(t.TempDir(), vfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := v.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return &casView{root: &Root{v: v}, born: time.Now()}
}

// addInlineBlobs makes one file per content under bulk/, each referencing
// its content as one inline blob, many files per transaction.
func addInlineBlobs(t testing.TB, cv *casView, contents [][]byte) {
	t.Helper()
	v := cv.root.v
	dir, err := v.MkdirAll("bulk", 0o755)
	if err != nil {
		t.Fatal(err)
	}
	const perTx = 2000
	for start := 0; start < len(contents); start += perTx {
		err := v.Meta.Update(false, func(tx *meta.Tx) error {
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

func (cv *casView) shardNode(shard byte) *casShard {
	return &casShard{casNode: casNode{view: cv, path: fmt.Sprintf("/%s/%02x", casDirName, shard)}, shard: shard}
}

// readAll lists a shard handle to its end.
func readAll(t testing.TB, h *casShardHandle) []fuse.DirEntry {
	t.Helper()
	var out []fuse.DirEntry
	for {
		e, errno := h.Readdirent(context.Background())
		if errno != 0 {
			t.Fatalf("readdirent: %v", errno)
		}
		if e == nil {
			return out
		}
		out = append(out, *e)
	}
}

func TestCASShardListing(t *testing.T) {
	cv := openCASView(t)
	const shard = 0x5a
	in, others := contentsInShard(shard, 2*casShardPage+17) // three pages
	addInlineBlobs(t, cv, append(slices.Clone(in), others[:300]...))
	want := []string{".", ".."}
	var hashes []string
	for _, c := range in {
		hashes = append(hashes, blobstore.Sum(c).String())
	}
	slices.Sort(hashes)
	want = append(want, hashes...)

	fh, _, errno := cv.shardNode(shard).OpendirHandle(context.Background(), 0)
	if errno != 0 {
		t.Fatal(errno)
	}
	h := fh.(*casShardHandle)
	entries := readAll(t, h)
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
	for _, k := range []int{-1, 0, 1, 2, casShardPage, casShardPage + 1, casShardPage + 2, len(entries) - 1} {
		off := uint64(0)
		if k >= 0 {
			off = entries[k].Off
		}
		if errno := h.Seekdir(context.Background(), off); errno != 0 {
			t.Fatalf("seekdir %d: %v", off, errno)
		}
		rest := readAll(t, h)
		if len(rest) != len(entries)-k-1 || len(rest) > 0 && rest[0].Name != entries[k+1].Name {
			t.Errorf("after seekdir to entry %d: %d entries left, want %d", k, len(rest), len(entries)-k-1)
		}
	}

	// The root lists exactly the shards in use.
	ds, errno := (&casRoot{casNode{view: cv, path: "/" + casDirName}}).Readdir(context.Background())
	if errno != 0 {
		t.Fatal(errno)
	}
	var shards []string
	for ds.HasNext() {
		e, _ := ds.Next()
		shards = append(shards, e.Name)
	}
	wantShards := []string{".", ".."}
	for _, c := range append(slices.Clone(in), others[:300]...) {
		wantShards = append(wantShards, fmt.Sprintf("%02x", blobstore.Sum(c)[0]))
	}
	slices.Sort(wantShards[2:])
	wantShards = slices.Compact(wantShards)
	if !slices.Equal(shards, wantShards) {
		t.Errorf("root lists %v\nwant %v", shards, wantShards)
	}

	// An empty shard lists only its dot entries.
	empty := byte(0)
	for slices.Contains(wantShards, fmt.Sprintf("%02x", empty)) {
		empty++
	}
	fh, _, _ = cv.shardNode(empty).OpendirHandle(context.Background(), 0)
	if got := readAll(t, fh.(*casShardHandle)); len(got) != 2 {
		t.Errorf("empty shard lists %v", got)
	}
}

func TestCASFiles(t *testing.T) {
	cv := openCASView(t)
	content := []byte(`{"id": "s-1"}`)
	addInlineBlobs(t, cv, [][]byte{content})
	h := blobstore.Sum(content)
	path := fmt.Sprintf("/%s/%02x/%s/", casDirName, h[0], h)
	data := &casData{casNode: casNode{view: cv, path: path + casDataName}, hash: h, size: int64(len(content))}
	md := &casMeta{casNode: casNode{view: cv, path: path + casMetaName}, hash: h}
	ctx := context.Background()

	for _, flags := range []uint32{syscall.O_WRONLY, syscall.O_RDWR, syscall.O_RDONLY | syscall.O_TRUNC} {
		if _, _, errno := data.Open(ctx, flags); errno != syscall.EROFS {
			t.Errorf("open data.bin with flags %#x: %v, want EROFS", flags, errno)
		}
		if _, _, errno := md.Open(ctx, flags); errno != syscall.EROFS {
			t.Errorf("open metadata.json with flags %#x: %v, want EROFS", flags, errno)
		}
	}

	fh, flags, errno := data.Open(ctx, syscall.O_RDONLY)
	if errno != 0 || flags&fuse.FOPEN_KEEP_CACHE == 0 {
		t.Fatalf("open data.bin: flags %#x, %v", flags, errno)
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
		res, errno := fh.(*casBytes).Read(ctx, make([]byte, r.size), r.off)
		if errno != 0 {
			t.Fatal(errno)
		}
		got, _ := res.Bytes(make([]byte, r.size))
		if string(got) != r.want {
			t.Errorf("read %d@%d = %q, want %q", r.size, r.off, got, r.want)
		}
	}

	fh, flags, errno = md.Open(ctx, syscall.O_RDONLY)
	if errno != 0 || flags&fuse.FOPEN_DIRECT_IO == 0 {
		t.Fatalf("open metadata.json: flags %#x, %v", flags, errno)
	}
	var got vfs.BlobMetadata
	if err := json.Unmarshal(fh.(*casBytes).data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Hash != h.String() || got.RefCount != 1 || got.MimeType != "application/json" || !got.Inline {
		t.Errorf("metadata.json: %+v", got)
	}
	var attr fuse.AttrOut
	if errno := md.Getattr(ctx, nil, &attr); errno != 0 || attr.Size != uint64(len(fh.(*casBytes).data)) {
		t.Errorf("getattr metadata.json: size %d, %v; the file has %d bytes", attr.Size, errno, len(fh.(*casBytes).data))
	}

	// Once nothing references the blob, it is gone from the view, while an
	// open data.bin keeps its bytes.
	open, _, _ := data.Open(ctx, syscall.O_RDONLY)
	if err := cv.root.v.Meta.Unlink(mustResolve(t, cv, "bulk").Ino, "f0"); err != nil {
		t.Fatal(err)
	}
	if _, _, errno := data.Open(ctx, syscall.O_RDONLY); errno != syscall.ENOENT {
		t.Errorf("open data.bin of an unreferenced blob: %v, want ENOENT", errno)
	}
	if _, _, errno := md.Open(ctx, syscall.O_RDONLY); errno != syscall.ENOENT {
		t.Errorf("open metadata.json of an unreferenced blob: %v, want ENOENT", errno)
	}
	if res, _ := open.(*casBytes).Read(ctx, make([]byte, 100), 0); res.Size() != len(content) {
		t.Errorf("an open data.bin lost its bytes")
	}
}

func mustResolve(t testing.TB, cv *casView, p string) meta.Attr {
	t.Helper()
	a, err := cv.root.v.Resolve(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
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
// does) of stores of growing size: the cost follows the shard's size, not
// the store's.
func BenchmarkCASListShard(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("blobs=%d", n), func(b *testing.B) {
			cv := openCASView(b)
			contents := make([][]byte, n)
			for i := range contents {
				contents[i] = fmt.Appendf(nil, "blob %d", i)
			}
			addInlineBlobs(b, cv, contents)
			const shard = 0xab
			entries := 0
			for b.Loop() {
				fh, _, errno := cv.shardNode(shard).OpendirHandle(context.Background(), 0)
				if errno != 0 {
					b.Fatal(errno)
				}
				entries = len(readAll(b, fh.(*casShardHandle))) - 2
			}
			b.ReportMetric(float64(entries), "entries/shard")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(entries), "ns/entry")
		})
	}
}
