package main

import (
	"fmt"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/taskerfs/taskerfs/vfs"
)

func init() {
	var data string
	var emptyTrash bool
	c := &cobra.Command{
		Use:   "gc [--data DIR] [--empty-trash]",
		Short: "Expire old trash, then remove blobs nothing references (not a file, the trash or a snapshot; safe while mounted)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			if emptyTrash {
				q.Set("empty-trash", "1")
			}
			res, err := withDataDir(data, "/gc", q, func(v *vfs.FS) (vfs.UndoGCResult, error) { return v.GCUndo(emptyTrash) })
			if err != nil {
				return err
			}
			fmt.Printf("gc: scanned %d blobs, removed %d, freed %d bytes\n", res.Scanned, res.Removed, res.BytesFreed)
			if emptyTrash || res.TrashExpired.Files > 0 {
				fmt.Printf("gc: trash: %d files (%d bytes) expired\n", res.TrashExpired.Files, res.TrashExpired.Bytes)
			}
			if res.InGrace > 0 {
				fmt.Printf("gc: kept %d unreferenced bucket objects younger than the grace period (--s3-gc-grace); a later gc removes them\n", res.InGrace)
			}
			return nil
		},
	}
	c.Flags().StringVar(&data, "data", vfs.DefaultDataDir(), "data dir")
	c.Flags().BoolVar(&emptyTrash, "empty-trash", false, "delete every trashed version now, whatever its age")
	addS3Flags(c.Flags())
	rootCmd.AddCommand(c)
}
