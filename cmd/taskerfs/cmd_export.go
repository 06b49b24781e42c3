package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/taskerfs/taskerfs/migrate"
	"github.com/taskerfs/taskerfs/vfs"
)

func init() {
	var (
		data       string
		monolithic bool
	)
	c := &cobra.Command{
		Use:   "export DST [--monolithic] [--data DIR]",
		Short: "Export the sessions as a plain chunked tree or in the legacy monolithic layout",
		Long: `export writes the sessions of the data dir under DST: by default a plain copy of
the chunked tree (DST/sessions/<id>/...), with --monolithic the legacy layout
(DST/sessions/<id>.json with everything inline and DST/attachments/<id>.json
carrying base64), which the legacy app and taskerfs import read. DST must not
hold those directories yet. When the data dir is mounted, export reads through
the mount.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dt, err := openDataTree(data, false)
			if err != nil {
				return err
			}
			if dt.tree == nil {
				return fmt.Errorf("data dir %s does not exist", data)
			}
			rep, err := migrate.Export(dt.tree, args[0], migrate.ExportOptions{Monolithic: monolithic})
			if cerr := dt.close(); err == nil {
				err = cerr
			}
			if rep != nil {
				layout := "chunked"
				if monolithic {
					layout = "legacy"
				}
				fmt.Printf("export: %d sessions, %d files (%d attachments), %s in the %s layout under %s\n",
					rep.Sessions, rep.Files, rep.Attachments, mb(rep.Bytes), layout, args[0])
				for _, w := range rep.Warnings {
					fmt.Println("warning:", w)
				}
			}
			return err
		},
	}
	c.Flags().StringVar(&data, "data", vfs.DefaultDataDir(), "data dir")
	addS3Flags(c.Flags())
	c.Flags().BoolVar(&monolithic, "monolithic", false, "write the legacy layout")
	rootCmd.AddCommand(c)
}
