package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/taskerfs/taskerfs/vfs"
)

func init() {
	var data string
	c := &cobra.Command{
		Use:   "reindex [--data DIR]",
		Short: "Rebuild the search index of an unmounted data dir from its files",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := openUnmounted(data)
			if err != nil {
				return err
			}
			err = v.Reindex()
			sessions, files, _, serr := v.IndexStats()
			if cerr := v.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			if serr == nil {
				fmt.Printf("reindex: %d sessions, %d files indexed\n", sessions, files)
			}
			return serr
		},
	}
	c.Flags().StringVar(&data, "data", vfs.DefaultDataDir(), "data dir")
	rootCmd.AddCommand(c)
}
