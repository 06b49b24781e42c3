package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/taskerfs/taskerfs/meta"
	"github.com/taskerfs/taskerfs/vfs"
)

// undoFlags are the mount's trash settings.
type undoFlags struct {
	trashDays     float64
	trashInterval time.Duration
}

func (u *undoFlags) register(fl *pflag.FlagSet) {
	fl.Float64Var(&u.trashDays, "trash-days", 1, "keep deleted and overwritten files in MOUNT/.trash/ this many days (fractions allowed; 0 disables)")
	fl.DurationVar(&u.trashInterval, "trash-interval", 10*time.Minute, "keep at most one trashed version per file per interval (a newer one replaces it)")
}

func (u *undoFlags) trashOptions() *meta.TrashOptions {
	days := max(u.trashDays, 0)
	return &meta.TrashOptions{Retention: time.Duration(days * float64(24*time.Hour)), Interval: max(u.trashInterval, 0)}
}

// undoRoutes are the daemon's answers to gc, snapshot and restore.
func undoRoutes(v *vfs.FS) map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"/gc": func(w http.ResponseWriter, r *http.Request) {
			res, err := v.GCUndo(r.URL.Query().Get("empty-trash") == "1")
			writeJSON(w, res, err)
		},
		"/snapshot/create": func(w http.ResponseWriter, r *http.Request) {
			info, err := v.CreateSnapshot(r.URL.Query().Get("name"))
			writeJSON(w, info, err)
		},
		"/snapshot/delete": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, struct{}{}, v.DeleteSnapshot(r.URL.Query().Get("name")))
		},
		"/snapshot/list": func(w http.ResponseWriter, r *http.Request) {
			list, err := v.ListSnapshots()
			writeJSON(w, list, err)
		},
	}
}

func init() {
	var data string
	var asJSON bool
	c := &cobra.Command{
		Use:   "snapshot create|list|delete [NAME]",
		Short: "Read-only, metadata-only snapshots of the drive (MOUNT/.snapshots/NAME/)",
		Long: `A snapshot is the whole drive as it was at one moment, kept read-only under
MOUNT/.snapshots/NAME/ (sessions/ and search/ as they were). Creating one copies no
file content: it is a checkpoint of the metadata store whose tables are hard links,
so it costs a few kilobytes at creation and, later, only the metadata the live
drive has since rewritten. Every file content a snapshot refers to is kept by gc
until the snapshot is deleted. Snapshots survive remounts and crashes.

Through the mount: mkdir MOUNT/.snapshots/NAME creates one, rmdir deletes it.
Works on a mounted data dir (through its daemon) and on an unmounted one.`,
		Example: `  taskerfs snapshot create before-cleanup
  taskerfs snapshot list
  ls MOUNT/.snapshots/before-cleanup/sessions/
  cp -a MOUNT/.snapshots/before-cleanup/sessions/abc MOUNT/sessions/
  taskerfs snapshot delete before-cleanup && taskerfs gc`,
	}
	c.PersistentFlags().StringVar(&data, "data", vfs.DefaultDataDir(), "data dir")

	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Snapshot the drive as it is now (every closed file included)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			info, err := withDataDir(data, "/snapshot/create", url.Values{"name": {args[0]}},
				func(v *vfs.FS) (meta.SnapshotInfo, error) { return v.CreateSnapshot(args[0]) })
			if err != nil {
				return err
			}
			fmt.Printf("snapshot %s created in %v, %d bytes added\n", info.Name, time.Duration(info.TookNs).Round(time.Millisecond), info.AddedBytes)
			return nil
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List snapshots, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := withDataDir(data, "/snapshot/list", url.Values{},
				func(v *vfs.FS) ([]meta.SnapshotInfo, error) { return v.ListSnapshots() })
			if err != nil {
				return err
			}
			if asJSON {
				e := json.NewEncoder(os.Stdout)
				e.SetIndent("", "  ")
				return e.Encode(l)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tCREATED (UTC)\tOWN METADATA BYTES")
			for _, s := range l {
				fmt.Fprintf(tw, "%s\t%s\t%d\n", s.Name, s.Created.Format("2006-01-02 15:04:05"), s.OwnBytes)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a snapshot (the next gc frees the content only it held)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := withDataDir(data, "/snapshot/delete", url.Values{"name": {args[0]}},
				func(v *vfs.FS) (struct{}, error) { return struct{}{}, v.DeleteSnapshot(args[0]) })
			if err != nil {
				return err
			}
			fmt.Printf("snapshot %s deleted\n", args[0])
			return nil
		},
	}
	c.AddCommand(create, list, del)
	rootCmd.AddCommand(c)
}
