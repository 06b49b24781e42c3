package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/taskerfs/taskerfs/vfs"
)

// fsck exit statuses, as fsck(8) has them.
const (
	fsckCorrected   = 1 // damage was found and all of it repaired
	fsckUncorrected = 4 // damage is left
)

func init() {
	var (
		data   string
		repair bool
		asJSON bool
		from   []string
	)
	c := &cobra.Command{
		Use:   "fsck [--repair] [--data DIR]",
		Short: "Check an unmounted data dir: blob hashes, refcounts, orphan blobs, the index",
		Long: `fsck checks an unmounted data dir: every blob's content matches its hash (inline
and file blobs), refcounts equal the references, no manifest points at a missing
blob, the namespace's link counts and records are consistent, and the search
index matches the files. Blob files nothing references (old versions after
overwrites, awaiting gc) are reported as reclaimable space, not damage.

--repair recomputes refcounts from the manifests, deletes unreferenced blob
files and rebuilds the index. Damaged or missing blob content is restored
from a good copy found under a --from DIR (a backup, an export, the original
files: every file there is hashed whole and in 1 MiB chunks); what cannot be
found is left damaged and the files that use it are listed.

Exit status: 0 clean, 1 damage found and all of it repaired, 4 damage left.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := openUnmounted(data)
			if err != nil {
				return err
			}
			r, err := v.Fsck(vfs.FsckOptions{Repair: repair, From: from})
			if cerr := v.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(r); err != nil {
					return err
				}
			} else {
				printFsckReport(&r)
			}
			switch {
			case r.Unrepaired > 0:
				return &exitError{code: fsckUncorrected, err: fmt.Errorf("%s is damaged (%d problems left)", data, r.Unrepaired)}
			case r.Damaged():
				return &exitError{code: fsckCorrected, err: fmt.Errorf("%s was damaged; all of it is repaired", data)}
			}
			return nil
		},
	}
	c.Flags().StringVar(&data, "data", vfs.DefaultDataDir(), "data dir")
	addS3Flags(c.Flags())
	c.Flags().BoolVar(&repair, "repair", false, "fix what can be fixed")
	c.Flags().StringArrayVar(&from, "from", nil, "with --repair: a dir or file holding good copies of damaged content (repeatable)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	rootCmd.AddCommand(c)
}

// openUnmounted opens an existing data dir that no daemon holds.
func openUnmounted(data string) (*vfs.FS, error) {
	if _, err := os.Stat(filepath.Join(data, "meta")); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s is not a taskerfs data dir", data)
	}
	opts, err := baseOptions()
	if err != nil {
		return nil, err
	}
	v, err := vfs.Open(data, opts)
	if errors.Is(err, vfs.ErrLocked) {
		return nil, fmt.Errorf("%w: unmount it first", err)
	}
	return v, err
}

func printFsckReport(r *vfs.FsckReport) {
	fmt.Printf("fsck: %d referenced blobs (%d inline), %d blob files checked\n", r.Blobs, r.InlineBlobs, r.BlobFiles)
	for _, d := range r.Corrupt {
		fmt.Printf("corrupt blob %s (%s), used by %v\n", d.Hash, d.Err, d.Paths)
	}
	for _, d := range r.Missing {
		fmt.Printf("missing blob %s, used by %v\n", d.Hash, d.Paths)
	}
	for _, p := range r.Namespace {
		fmt.Println("namespace:", p)
	}
	for _, h := range r.Reclaimable {
		fmt.Printf("unreferenced blob file: %s (reclaimable, not damage)\n", h)
	}
	if n := len(r.Reclaimable); n > 0 {
		fmt.Printf("fsck: %d unreferenced blob files (%d bytes) await gc; `taskerfs gc` or fsck --repair deletes them\n", n, r.ReclaimableBytes)
	}
	for _, p := range r.Index {
		fmt.Println("index:", p)
	}
	for _, p := range r.Repaired {
		fmt.Println("repaired:", p)
	}
	if !r.Damaged() {
		fmt.Println("fsck: clean")
	}
}
