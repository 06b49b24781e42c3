package vfs

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/meta"
)

// heal looks for good copies of damaged or missing file blobs in the
// files under each root (a backup, an export, the original recordings):
// every file is hashed whole and chunk by chunk (as manifests cut files),
// and a piece that hashes to a damaged blob is stored again, replacing the
// damaged copy. Healed blobs move from Corrupt/Missing to Healed.
func (v *FS) heal(r *FsckReport, roots []string) error {
	want := map[blobstore.Hash]bool{}
	for _, list := range [][]BlobDamage{r.Corrupt, r.Missing} {
		for _, d := range list {
			if h, err := blobstore.ParseHash(d.Hash); err == nil {
				want[h] = true
			}
		}
	}
	if len(want) == 0 {
		return nil
	}
	healed := map[blobstore.Hash]string{}
	buf := make([]byte, meta.ChunkSize)
	try := func(data []byte, from string) error {
		h := blobstore.Sum(data)
		if !want[h] {
			return nil
		}
		if _, err := v.blobs.Put(h, data); err != nil {
			return fmt.Errorf("store a good copy of %s from %s: %w", h, from, err)
		}
		if _, err := v.blobs.Get(h); err != nil {
			return fmt.Errorf("blob %s still unreadable after storing a good copy from %s: %w", h, from, err)
		}
		delete(want, h)
		healed[h] = from
		return nil
	}
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() || len(want) == 0 {
				return nil // unreadable entries are skipped: this is a search
			}
			f, err := os.Open(p)
			if err != nil {
				return nil
			}
			defer f.Close()
			for idx := 0; len(want) > 0; idx++ {
				n, rerr := io.ReadFull(f, buf)
				if n > 0 {
					if err := try(buf[:n], fmt.Sprintf("%s (chunk %d)", p, idx)); err != nil {
						return err
					}
				}
				if rerr != nil {
					break
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if len(healed) == 0 {
		return nil
	}
	if err := v.blobs.Sync(); err != nil {
		return err
	}
	keep := func(list []BlobDamage) []BlobDamage {
		var out []BlobDamage
		for _, d := range list {
			h, _ := blobstore.ParseHash(d.Hash)
			if from, ok := healed[h]; ok {
				r.Healed = append(r.Healed, d)
				r.Repaired = append(r.Repaired, fmt.Sprintf("blob %s healed from %s", d.Hash, from))
				continue
			}
			out = append(out, d)
		}
		return out
	}
	r.Corrupt, r.Missing = keep(r.Corrupt), keep(r.Missing)
	return nil
}
