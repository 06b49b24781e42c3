package vfs

import (
	"encoding/hex"
	"errors"
	"log/slog"
	"syscall"

	"github.com/taskerfs/taskerfs/blobstore"
)

// attachments-ca/ is a read-only view of the content store in the seed
// app's layout: <ab>/<hash>/data.bin and metadata.json for every blob that
// some file references and that the caller could read through one of
// those files. Nothing is cached across store changes: every lookup and
// listing reads the refcount table, so a blob whose last reference went
// (and that gc then removes) disappears at once.
const (
	casDirName  = "attachments-ca"
	casDataName = "data.bin"
	casMetaName = "metadata.json"
	// XattrSHA256 names a file's content hash (real files and data.bin).
	XattrSHA256 = "user.taskerfs.sha256"
	// XattrChunks lists a file's chunks.
	XattrChunks = "user.taskerfs.chunks"
)

// freshContent commits closed files' pending writes so the view includes
// them. A failed commit is the writer's error (its close or fsync reports
// it); the view then shows what is committed.
func (v *FS) freshContent() {
	if err := v.FreshContent(); err != nil {
		slog.Warn("commit before reading the content view", "view", casDirName, "err", err)
	}
}

func (v *FS) casView() *vnode {
	d := newDir("/" + casDirName)
	d.lookup = func(c *Ctx, name string) (*vnode, error) {
		b, ok := parseLowerHex(name, 1)
		if !ok {
			return nil, nil
		}
		v.freshContent()
		found, err := v.shardVisible(c, b[0])
		if err != nil || !found {
			return nil, err
		}
		return v.casShard(b[0]), nil
	}
	d.list = func(c *Ctx, after string, fn func(*vnode) bool) error {
		v.freshContent()
		var shards []byte
		err := v.meta.RefShards(func(shard byte) error {
			shards = append(shards, shard)
			return nil
		})
		if err != nil {
			return err
		}
		for _, s := range shards {
			name := hex.EncodeToString([]byte{s})
			if name <= after {
				continue
			}
			ok, err := v.shardVisible(c, s)
			if err != nil {
				return err
			}
			if ok && !fn(v.casShard(s)) {
				return nil
			}
		}
		return nil
	}
	return d
}

// shardVisible reports whether the caller may see a blob in shard.
func (v *FS) shardVisible(c *Ctx, shard byte) (bool, error) {
	if v.privileged(c) {
		return v.meta.HasRefShard(shard)
	}
	found := false
	var ferr error
	err := v.meta.RefBlobsInShard(shard, nil, func(h blobstore.Hash, _ BlobInfo) bool {
		found, ferr = v.blobVisible(c, h)
		return !found && ferr == nil
	})
	if err == nil {
		err = ferr
	}
	return found, err
}

// casShard is attachments-ca/<ab>/: one directory per referenced blob
// whose hash starts with that byte, listed straight from pebble in hash
// order.
func (v *FS) casShard(shard byte) *vnode {
	d := newDir("/" + casDirName + "/" + hex.EncodeToString([]byte{shard}))
	d.lookup = func(c *Ctx, name string) (*vnode, error) {
		b, ok := parseLowerHex(name, len(blobstore.Hash{}))
		if !ok || b[0] != shard {
			return nil, nil
		}
		var h blobstore.Hash
		copy(h[:], b)
		v.freshContent()
		info, ok, err := v.meta.BlobInfo(h)
		if err != nil || !ok {
			return nil, err
		}
		if ok, err := v.blobVisible(c, h); err != nil || !ok {
			return nil, err
		}
		return v.casBlob(d.path, h, info), nil
	}
	d.list = func(c *Ctx, after string, fn func(*vnode) bool) error {
		v.freshContent()
		var from []byte
		if after != "" {
			b, ok := parseLowerHex(after, len(blobstore.Hash{}))
			if !ok {
				return syscall.EINVAL
			}
			from = append(b, 0) // the smallest key after it
		}
		var ferr error
		err := v.meta.RefBlobsInShard(shard, from, func(h blobstore.Hash, info BlobInfo) bool {
			ok, err := v.blobVisible(c, h)
			if err != nil {
				ferr = err
				return false
			}
			return !ok || fn(v.casBlob(d.path, h, info))
		})
		if err == nil {
			err = ferr
		}
		return err
	}
	return d
}

// casBlob is attachments-ca/<ab>/<hash>/ with data.bin and metadata.json.
func (v *FS) casBlob(shardPath string, h blobstore.Hash, info BlobInfo) *vnode {
	p := shardPath + "/" + h.String()
	// Every node of the blob is there while the blob is referenced and
	// the caller may see it.
	valid := func(c *Ctx) error {
		v.freshContent()
		ok, err := v.blobVisible(c, h)
		if err == nil && !ok {
			err = syscall.ENOENT
		}
		return err
	}
	data := &vnode{path: p + "/" + casDataName, mode: syscall.S_IFREG | 0o444, size: int64(info.Size), stored: info.Stored,
		keep: true, valid: valid, xattrs: map[string][]byte{XattrSHA256: []byte(h.String())}}
	data.content = func(c *Ctx) ([]byte, error) {
		// One load per open, whatever the blob's size; reads then slice it.
		b, err := v.meta.Blob(h)
		if errors.Is(err, blobstore.ErrNotFound) {
			return nil, syscall.ENOENT
		}
		return b, err
	}
	md := newFile(p+"/"+casMetaName, 0o444, func(c *Ctx) ([]byte, error) {
		md, ok, err := v.blobMetadataFor(c, h)
		if errors.Is(err, blobstore.ErrNotFound) || err == nil && !ok {
			return nil, syscall.ENOENT
		}
		if err != nil {
			return nil, err
		}
		return MarshalBlobMetadata(md)
	})
	md.now, md.valid = false, valid
	d := staticDir(p, data, md)
	d.valid = valid
	return d
}

// blobMetadataFor is metadata.json as the caller may see it: only the
// references the caller could read, and their count.
func (v *FS) blobMetadataFor(c *Ctx, h blobstore.Hash) (BlobMetadata, bool, error) {
	v.freshContent()
	md, ok, err := v.BlobMetadata(h)
	if err != nil || !ok || v.privileged(c) {
		return md, ok, err
	}
	refs := md.References[:0:0]
	for _, r := range md.References {
		if v.canReadPath(c, r.Path) {
			refs = append(refs, r)
		}
	}
	if len(refs) == 0 {
		return BlobMetadata{}, false, nil
	}
	md.References, md.RefCount = refs, uint64(len(refs))
	return md, true, nil
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
