package main

import (
	"net/url"

	"github.com/spf13/cobra"

	"github.com/taskerfs/taskerfs/vfs"
)

func init() {
	var data string
	c := &cobra.Command{
		Use:   "sync [--data DIR]",
		Short: "Make every change to a mounted data dir durable now",
		Long: "The kernel does not pass sync(2)/syncfs(2) on to a FUSE daemon, so `sync` alone only\n" +
			"bounds loss by the write-back window; `taskerfs sync` returns once everything is on disk.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := withDataDir(data, "/sync", url.Values{}, func(v *vfs.FS) (struct{}, error) {
				return struct{}{}, v.SyncAll()
			})
			return err
		},
	}
	c.Flags().StringVar(&data, "data", vfs.DefaultDataDir(), "data dir")
	rootCmd.AddCommand(c)
}
