package fs

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"log"
	"os"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/meta"
	"github.com/taskerfs/taskerfs/vfs"
)

// attachments-ca/ is a read-only view of the content store in the seed
// app's layout: <ab>/<hash>/data.bin and metadata.json for every blob that
// some file references. Nothing is cached: every lookup and listing reads
// the refcount table, so a blob whose last reference went (and that gc
// then removes) disappears at once.
const (
	casDirName   = "attachments-ca"
	casDataName  = "data.bin"
	casMetaName  = "metadata.json"
	casShardPage = 256 // hashes read per pebble iterator while listing a shard
)

func init() {
	virtualEntries[casDirName] = func(r *Root) virtualDir {
		return &casView{root: r, born: time.Now(), uid: uint32(os.Getuid()), gid: uint32(os.Getgid())}
	}
}

// casView is shared by every node of the view.
type casView struct {
	root     *Root
	born     time.Time // the only true timestamp the view has
	uid, gid uint32
}

func (cv *casView) node() (gofs.InodeEmbedder, uint32) {
	return &casRoot{casNode{view: cv, path: "/" + casDirName}}, syscall.S_IFDIR
}

// fresh commits closed files' pending writes so the view includes them. A
// failed commit is the writer's error (its close or fsync reports it); the
// view then shows what is committed.
func (cv *casView) fresh() {
	if err := cv.root.v.FreshContent(); err != nil {
		log.Printf("%s: commit before reading the view: %v", casDirName, err)
	}
}

// casNode is what every node of the view shares: attributes, and EROFS
// for every operation that would change something (roNode has the rest).
type casNode struct {
	roNode
	view *casView
	path string // under the mount root; names the inode number
}

func (c *casNode) ino() uint64 { return virtualIno(c.path) }

func (c *casNode) fill(out *fuse.Attr, mode uint32, size, stored int64) {
	out.Ino = c.ino()
	out.Mode = mode
	out.Nlink = 1
	if mode&syscall.S_IFMT == syscall.S_IFDIR {
		out.Nlink = 2
	}
	out.Uid, out.Gid = c.view.uid, c.view.gid
	out.Size = uint64(size)
	out.Blocks = uint64(stored+511) / 512
	out.Blksize = 4096
	sec, nsec := uint64(c.view.born.Unix()), uint32(c.view.born.Nanosecond())
	out.Atime, out.Mtime, out.Ctime = sec, sec, sec
	out.Atimensec, out.Mtimensec, out.Ctimensec = nsec, nsec, nsec
}

// newChild makes (or finds) the inode of a view node whose attributes
// are already in out.
func (c *casNode) newChild(ctx context.Context, child gofs.InodeEmbedder, mode uint32, out *fuse.EntryOut) *gofs.Inode {
	ch := c.NewInode(ctx, child, gofs.StableAttr{Mode: mode & syscall.S_IFMT, Ino: out.Attr.Ino})
	out.SetEntryTimeout(0)
	out.SetAttrTimeout(0)
	return ch
}

func (c *casNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	mountRoot := &node{root: c.view.root, ino: meta.RootIno}
	return mountRoot.Statfs(ctx, out)
}

func (c *casNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (c *casNode) Rmdir(ctx context.Context, name string) syscall.Errno { return syscall.EROFS }

func (c *casNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	return 0, syscall.ENODATA
}

func (c *casNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return 0, 0
}

// dots are a directory's "." and ".." entries.
func dots(self, parent uint64) []fuse.DirEntry {
	return []fuse.DirEntry{
		{Name: ".", Ino: self, Mode: syscall.S_IFDIR},
		{Name: "..", Ino: parent, Mode: syscall.S_IFDIR},
	}
}

// casRoot is attachments-ca/: one directory per hash byte in use.
type casRoot struct{ casNode }

func (r *casRoot) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	r.fill(&out.Attr, syscall.S_IFDIR|0o555, 0, 0)
	return 0
}

func (r *casRoot) shardPath(shard byte) string {
	return r.path + "/" + hex.EncodeToString([]byte{shard})
}

func (r *casRoot) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	b, ok := parseLowerHex(name, 1)
	if !ok {
		return nil, syscall.ENOENT
	}
	r.view.fresh()
	found, err := r.view.root.v.Meta.HasRefShard(b[0])
	if err != nil {
		return nil, toErrno("lookup", err)
	}
	if !found {
		return nil, syscall.ENOENT
	}
	s := &casShard{casNode: casNode{view: r.view, path: r.shardPath(b[0])}, shard: b[0]}
	s.fill(&out.Attr, syscall.S_IFDIR|0o555, 0, 0)
	return r.newChild(ctx, s, syscall.S_IFDIR, out), 0
}

func (r *casRoot) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	r.view.fresh()
	entries := dots(r.ino(), meta.RootIno)
	err := r.view.root.v.Meta.RefShards(func(shard byte) error {
		entries = append(entries, fuse.DirEntry{
			Name: hex.EncodeToString([]byte{shard}),
			Mode: syscall.S_IFDIR,
			Ino:  virtualIno(r.shardPath(shard)),
		})
		return nil
	})
	if err != nil {
		return nil, toErrno("readdir", err)
	}
	return gofs.NewListDirStream(entries), 0
}

// casShard is attachments-ca/<ab>/: one directory per referenced blob
// whose hash starts with that byte, listed straight from pebble.
type casShard struct {
	casNode
	shard byte
}

func (s *casShard) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	s.fill(&out.Attr, syscall.S_IFDIR|0o555, 0, 0)
	return 0
}

func (s *casShard) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	b, ok := parseLowerHex(name, len(blobstore.Hash{}))
	if !ok || b[0] != s.shard {
		return nil, syscall.ENOENT
	}
	var h blobstore.Hash
	copy(h[:], b)
	s.view.fresh()
	info, ok, err := s.view.root.v.Meta.BlobInfo(h)
	if err != nil {
		return nil, toErrno("lookup", err)
	}
	if !ok {
		return nil, syscall.ENOENT
	}
	return s.blobChild(ctx, h, info, out), 0
}

func (s *casShard) blobChild(ctx context.Context, h blobstore.Hash, info meta.BlobInfo, out *fuse.EntryOut) *gofs.Inode {
	d := &casBlobDir{casNode: casNode{view: s.view, path: s.path + "/" + h.String()}, hash: h, size: int64(info.Size), stored: info.Stored}
	d.fill(&out.Attr, syscall.S_IFDIR|0o555, 0, 0)
	return s.newChild(ctx, d, syscall.S_IFDIR, out)
}

func (s *casShard) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	s.view.fresh()
	parent := virtualIno("/" + casDirName)
	return &casShardHandle{s: s, dots: dots(s.ino(), parent)}, 0, 0
}

// casShardHandle streams a shard in pages of casShardPage hashes, each
// read with its own short-lived iterator. A hash entry's offset is the
// hash's first 8 bytes, so Seekdir resumes with one seek; two hashes
// sharing their first 64 bits (never seen in practice) would make a seek
// between them skip the second.
type casShardHandle struct {
	s    *casShard
	dots []fuse.DirEntry
	pos  int    // dot entries returned
	from []byte // the next page starts at the first hash >= from
	page []shardBlob
	eof  bool
	last *shardBlob // the entry returned last, for READDIRPLUS lookups
}

type shardBlob struct {
	hash blobstore.Hash
	info meta.BlobInfo
}

// hashOff is a hash entry's directory offset; 0 to 2 belong to the start
// and the dot entries.
func hashOff(h blobstore.Hash) uint64 { return max(binary.BigEndian.Uint64(h[:8]), 3) }

func (h *casShardHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if h.pos < len(h.dots) {
		e := h.dots[h.pos]
		h.pos++
		e.Off = uint64(h.pos)
		return &e, 0
	}
	if len(h.page) == 0 && !h.eof {
		err := h.s.view.root.v.Meta.RefBlobsInShard(h.s.shard, h.from, func(hash blobstore.Hash, info meta.BlobInfo) bool {
			h.page = append(h.page, shardBlob{hash, info})
			return len(h.page) < casShardPage
		})
		if err != nil {
			return nil, toErrno("readdir", err)
		}
		h.eof = len(h.page) < casShardPage
		if n := len(h.page); n > 0 {
			h.from = append(h.page[n-1].hash[:], 0) // the smallest key after it
		}
	}
	if len(h.page) == 0 {
		return nil, 0
	}
	b := h.page[0]
	h.page = h.page[1:]
	h.last = &b
	name := b.hash.String()
	return &fuse.DirEntry{Name: name, Mode: syscall.S_IFDIR, Ino: virtualIno(h.s.path + "/" + name), Off: hashOff(b.hash)}, 0
}

func (h *casShardHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	h.page, h.eof, h.last, h.from = nil, false, nil, nil
	switch {
	case off <= uint64(len(h.dots)):
		h.pos = int(off)
	case off == ^uint64(0):
		h.pos, h.eof = len(h.dots), true
	default:
		h.pos = len(h.dots)
		h.from = binary.BigEndian.AppendUint64(nil, off+1)
	}
	return 0
}

// Lookup serves READDIRPLUS from the entry just listed, without another
// read of pebble per entry.
func (h *casShardHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if h.last != nil && h.last.hash.String() == name {
		return h.s.blobChild(ctx, h.last.hash, h.last.info, out), 0
	}
	return h.s.Lookup(ctx, name, out)
}

func (h *casShardHandle) Releasedir(ctx context.Context, releaseFlags uint32) {}

// casBlobDir is attachments-ca/<ab>/<hash>/.
type casBlobDir struct {
	casNode
	hash         blobstore.Hash
	size, stored int64
}

func (d *casBlobDir) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.fill(&out.Attr, syscall.S_IFDIR|0o555, 0, 0)
	return 0
}

// referenced reports whether the blob is still in use (and so in the view).
func (d *casBlobDir) referenced() (bool, syscall.Errno) {
	_, ok, err := d.view.root.v.Meta.BlobInfo(d.hash)
	return ok, toErrno("lookup", err)
}

func (d *casBlobDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if name != casDataName && name != casMetaName {
		return nil, syscall.ENOENT
	}
	d.view.fresh()
	if ok, errno := d.referenced(); errno != 0 || !ok {
		return nil, firstErrno(errno, syscall.ENOENT)
	}
	path := d.path + "/" + name
	if name == casDataName {
		f := &casData{casNode: casNode{view: d.view, path: path}, hash: d.hash, size: d.size, stored: d.stored}
		f.fill(&out.Attr, syscall.S_IFREG|0o444, d.size, d.stored)
		return d.newChild(ctx, f, syscall.S_IFREG, out), 0
	}
	f := &casMeta{casNode: casNode{view: d.view, path: path}, hash: d.hash}
	var ao fuse.AttrOut
	if errno := f.Getattr(ctx, nil, &ao); errno != 0 {
		return nil, errno
	}
	out.Attr = ao.Attr
	return d.newChild(ctx, f, syscall.S_IFREG, out), 0
}

func (d *casBlobDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	d.view.fresh()
	if ok, errno := d.referenced(); errno != 0 || !ok {
		return nil, firstErrno(errno, syscall.ENOENT)
	}
	shard := d.path[:len(d.path)-len(d.hash.String())-1]
	entries := append(dots(d.ino(), virtualIno(shard)),
		fuse.DirEntry{Name: casDataName, Mode: syscall.S_IFREG, Ino: virtualIno(d.path + "/" + casDataName)},
		fuse.DirEntry{Name: casMetaName, Mode: syscall.S_IFREG, Ino: virtualIno(d.path + "/" + casMetaName)},
	)
	return gofs.NewListDirStream(entries), 0
}

// casData is data.bin: the blob's exact bytes. Content is named by its
// hash, so it can never go stale and the kernel may keep its pages.
type casData struct {
	casNode
	hash         blobstore.Hash
	size, stored int64
}

func (f *casData) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	f.fill(&out.Attr, syscall.S_IFREG|0o444, f.size, f.stored)
	return 0
}

func (f *casData) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if writeFlags(flags) {
		return nil, 0, syscall.EROFS
	}
	v := f.view.root.v
	if _, ok, err := v.Meta.BlobInfo(f.hash); err != nil || !ok {
		return nil, 0, firstErrno(toErrno("open", err), syscall.ENOENT)
	}
	// One load per open, whatever the blob's size; reads then slice it.
	data, err := v.Meta.Blob(f.hash)
	if errors.Is(err, blobstore.ErrNotFound) {
		return nil, 0, syscall.ENOENT
	}
	if err != nil {
		return nil, 0, toErrno("open", err)
	}
	return &casBytes{data: data}, fuse.FOPEN_KEEP_CACHE, 0
}

func (f *casData) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if attr != xattrSHA256 {
		return 0, syscall.ENODATA
	}
	return copyXattr([]byte(f.hash.String()), dest)
}

func (f *casData) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return copyXattr(append([]byte(xattrSHA256), 0), dest)
}

// casMeta is metadata.json, rendered afresh on every open and stat. The
// kernel must not cache it (its references change), hence direct I/O.
type casMeta struct {
	casNode
	hash blobstore.Hash
}

func (f *casMeta) render() ([]byte, syscall.Errno) {
	f.view.fresh()
	md, ok, err := f.view.root.v.BlobMetadata(f.hash)
	if errors.Is(err, blobstore.ErrNotFound) || err == nil && !ok {
		return nil, syscall.ENOENT
	}
	if err != nil {
		return nil, toErrno("metadata.json", err)
	}
	b, err := vfs.MarshalBlobMetadata(md)
	return b, toErrno("metadata.json", err)
}

func (f *casMeta) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	b, errno := f.render()
	if errno != 0 {
		return errno
	}
	f.fill(&out.Attr, syscall.S_IFREG|0o444, int64(len(b)), int64(len(b)))
	return 0
}

func (f *casMeta) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if writeFlags(flags) {
		return nil, 0, syscall.EROFS
	}
	b, errno := f.render()
	if errno != 0 {
		return nil, 0, errno
	}
	return &casBytes{data: b}, fuse.FOPEN_DIRECT_IO, 0
}

// casBytes serves reads from bytes fixed at open.
type casBytes struct{ data []byte }

func (h *casBytes) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off >= int64(len(h.data)) {
		return fuse.ReadResultData(nil), 0
	}
	return fuse.ReadResultData(h.data[off:min(off+int64(len(dest)), int64(len(h.data)))]), 0
}

func writeFlags(flags uint32) bool {
	return flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0
}

// parseLowerHex decodes exactly n bytes written as lowercase hex, the only
// spelling the view uses, so each blob has one name.
func parseLowerHex(s string, n int) ([]byte, bool) {
	if len(s) != 2*n {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return nil, false
		}
	}
	b, err := hex.DecodeString(s)
	return b, err == nil
}

// firstErrno returns the first non-zero errno.
func firstErrno(errs ...syscall.Errno) syscall.Errno {
	for _, e := range errs {
		if e != 0 {
			return e
		}
	}
	return 0
}

// Compile-time checks: the view answers every mutating operation itself.
var (
	_ gofs.NodeGetattrer      = (*casRoot)(nil)
	_ gofs.NodeLookuper       = (*casRoot)(nil)
	_ gofs.NodeReaddirer      = (*casRoot)(nil)
	_ gofs.NodeSetattrer      = (*casRoot)(nil)
	_ gofs.NodeStatfser       = (*casRoot)(nil)
	_ gofs.NodeCreater        = (*casRoot)(nil)
	_ gofs.NodeMkdirer        = (*casRoot)(nil)
	_ gofs.NodeMknoder        = (*casRoot)(nil)
	_ gofs.NodeSymlinker      = (*casRoot)(nil)
	_ gofs.NodeLinker         = (*casRoot)(nil)
	_ gofs.NodeUnlinker       = (*casRoot)(nil)
	_ gofs.NodeRmdirer        = (*casRoot)(nil)
	_ gofs.NodeRenamer        = (*casRoot)(nil)
	_ gofs.NodeGetxattrer     = (*casRoot)(nil)
	_ gofs.NodeSetxattrer     = (*casRoot)(nil)
	_ gofs.NodeRemovexattrer  = (*casRoot)(nil)
	_ gofs.NodeListxattrer    = (*casRoot)(nil)
	_ gofs.NodeOpendirHandler = (*casShard)(nil)
	_ gofs.NodeReaddirer      = (*casBlobDir)(nil)
	_ gofs.NodeOpener         = (*casData)(nil)
	_ gofs.NodeOpener         = (*casMeta)(nil)

	_ gofs.FileReaddirenter = (*casShardHandle)(nil)
	_ gofs.FileSeekdirer    = (*casShardHandle)(nil)
	_ gofs.FileLookuper     = (*casShardHandle)(nil)
	_ gofs.FileReleasedirer = (*casShardHandle)(nil)
	_ gofs.FileReader       = (*casBytes)(nil)
)
