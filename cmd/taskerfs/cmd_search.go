package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/taskerfs/taskerfs/index"
	"github.com/taskerfs/taskerfs/vfs"
)

func init() {
	var data string
	var asJSON bool
	c := &cobra.Command{
		Use:   "search QUERY [--data DIR]",
		Short: "Print the sessions matching QUERY, most relevant first (mounted or not)",
		Long:  "QUERY uses the grammar of the mount's search/ directories; see search/README.md there.",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := args[0]
			if _, err := index.ParseQuery(q); err != nil {
				return &exitError{code: 2, err: err}
			}
			hits, err := withDataDir(data, "/search", url.Values{"q": {q}}, func(v *vfs.FS) ([]index.Hit, error) {
				return v.Snippets(q)
			})
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(hits)
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "RANK\tID\tSCORE\tSTART\tNAME")
			for i, h := range hits {
				fmt.Fprintf(w, "%d\t%s\t%.3f\t%s\t%s\n", i+1, h.SessionID, h.Score, h.StartTime, h.Name)
			}
			return w.Flush()
		},
	}
	c.Flags().StringVar(&data, "data", vfs.DefaultDataDir(), "data dir")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON (with snippets)")
	rootCmd.AddCommand(c)
}
