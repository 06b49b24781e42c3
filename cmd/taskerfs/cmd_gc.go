package main

import (
	"fmt"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/taskerfs/taskerfs/meta"
	"github.com/taskerfs/taskerfs/vfs"
)

func init() {
	var data string
	c := &cobra.Command{
		Use:   "gc [--data DIR]",
		Short: "Remove blobs no file references (safe while mounted)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := withDataDir(data, "/gc", url.Values{}, func(v *vfs.FS) (meta.GCResult, error) { return v.GC() })
			if err != nil {
				return err
			}
			fmt.Printf("gc: scanned %d blobs, removed %d, freed %d bytes\n", res.Scanned, res.Removed, res.BytesFreed)
			return nil
		},
	}
	c.Flags().StringVar(&data, "data", vfs.DefaultDataDir(), "data dir")
	addS3Flags(c.Flags())
	rootCmd.AddCommand(c)
}
