package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/taskerfs/taskerfs/migrate"
	"github.com/taskerfs/taskerfs/vfs"
)

func init() {
	var (
		data    string
		dryRun  bool
		workers int
	)
	c := &cobra.Command{
		Use:   "import SRC [--data DIR] [--dry-run]",
		Short: "Import legacy monolithic sessions (Phase 3 layout) into the chunked layout",
		Long: `import converts the sessions of a legacy data dir SRC (sessions/<id>.json
or one sessions.json array, in the app's envelope or not, with attachments as
attachments/<id>.json or .dat + .meta.json carrying base64) into the data dir:
metadata.json, side files, screenshot chunks of 10, audio chunks of 50, video
chunks in one file, and every attachment decoded into
sessions/<id>/attachments/<attachmentId>.<ext>, deduplicated in the store.

Each session is read back and verified after it is written. SRC is never
modified. A rerun skips the sessions already imported. A session that cannot be
imported (invalid JSON, no id, undecodable base64) is reported and skipped; the
exit status is then 2. When the data dir is mounted, import writes through the
mount.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImport(args[0], data, dryRun, workers)
		},
	}
	c.Flags().StringVar(&data, "data", vfs.DefaultDataDir(), "data dir")
	addS3Flags(c.Flags())
	c.Flags().BoolVar(&dryRun, "dry-run", false, "convert and report, write nothing")
	c.Flags().IntVar(&workers, "workers", 0, "sessions converted at once (default: one per CPU)")
	rootCmd.AddCommand(c)
}

// dataTree is a data dir opened for an operator command: directly, or
// through its mount when a daemon holds it.
type dataTree struct {
	tree       migrate.Tree // nil: no data dir yet
	v          *vfs.FS      // set when opened directly
	mountpoint string       // set when reached through the mount
}

// openDataTree opens dataDir, or the mount of the daemon that holds it.
// create=false leaves a missing data dir missing (tree nil).
func openDataTree(dataDir string, create bool) (*dataTree, error) {
	if _, err := os.Stat(dataDir); errors.Is(err, fs.ErrNotExist) && !create {
		return &dataTree{}, nil
	}
	opts, err := baseOptions()
	if err != nil {
		return nil, err
	}
	v, err := vfs.Open(dataDir, opts)
	if err == nil {
		return &dataTree{tree: migrate.VFSTree{V: v}, v: v}, nil
	}
	if !errors.Is(err, vfs.ErrLocked) {
		return nil, err
	}
	// A daemon records its mountpoint once the mount serves, a moment
	// after the kernel shows it mounted: a command started in between
	// waits for the record rather than failing.
	deadline := time.Now().Add(mountpointWait)
	for {
		raw, rerr := os.ReadFile(filepath.Join(dataDir, "mountpoint"))
		mnt := strings.TrimSpace(string(raw))
		if rerr == nil && mnt != "" && isMountpoint(mnt) {
			return &dataTree{tree: migrate.DirTree{Root: mnt}, mountpoint: mnt}, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w, and it records no mountpoint to go through", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mountpointWait is how long a command waits for a daemon holding the data
// dir to record its mountpoint.
const mountpointWait = 5 * time.Second

// close flushes a directly opened data dir.
func (d *dataTree) close() error {
	if d.v == nil {
		return nil
	}
	return d.v.Close()
}

// stats are the data dir's figures, live from the daemon when mounted.
func (d *dataTree) stats(dataDir string) (vfs.Stats, error) {
	if d.v != nil {
		if err := d.v.SyncAll(); err != nil {
			return vfs.Stats{}, err
		}
		return d.v.Stats()
	}
	var s vfs.Stats
	err := callControl(dataDir, "/stats", url.Values{}, &s)
	return s, err
}

func runImport(srcDir, dataDir string, dryRun bool, workers int) error {
	// Import allocates a few buffers per attachment and keeps little: a
	// rarer GC costs some memory and saves a fifth of the CPU.
	// GOGC in the environment has the last word.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	src, err := migrate.OpenSource(srcDir)
	if err != nil {
		return err
	}
	dt, err := openDataTree(dataDir, !dryRun)
	if err != nil {
		return err
	}
	opts := migrate.ImportOptions{DryRun: dryRun, Workers: workers}
	bar := newProgressBar(src.Bytes(), "importing")
	if bar != nil {
		opts.Progress = func(p migrate.Progress) {
			bar.Describe(fmt.Sprintf("%d sessions", p.Sessions))
			bar.Set64(min(p.Bytes, p.TotalBytes))
		}
	}
	if dt.mountpoint != "" {
		fmt.Fprintf(os.Stderr, "import: %s is mounted; writing through %s\n", dataDir, dt.mountpoint)
	}
	rep, err := migrate.Import(src, dt.tree, opts)
	if bar != nil {
		bar.Finish()
		fmt.Fprintln(os.Stderr)
	}
	var st *vfs.Stats
	if err == nil && !dryRun {
		if s, serr := dt.stats(dataDir); serr == nil {
			st = &s
		}
	}
	if cerr := dt.close(); err == nil {
		err = cerr
	}
	if rep != nil {
		printImportReport(rep, st)
	}
	if err != nil {
		return err
	}
	if len(rep.Failed) > 0 {
		return &exitError{code: 2, err: fmt.Errorf("%d of %d sessions were not imported", len(rep.Failed), len(rep.Failed)+rep.Sessions+rep.Skipped)}
	}
	return nil
}

// newProgressBar draws on stderr when it is a terminal, else returns nil.
func newProgressBar(total int64, what string) *progressbar.ProgressBar {
	if !term.IsTerminal(int(os.Stderr.Fd())) {
		return nil
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionFullWidth(),
	)
}

func printImportReport(r *migrate.Report, st *vfs.Stats) {
	verb := "imported"
	if r.DryRun {
		verb = "would import"
	}
	secs := r.Elapsed.Seconds()
	fmt.Printf("import: %s %d sessions, %d already imported (skipped), %d failed, in %.1fs (%.1f sessions/s, %.1f MB/s read)\n",
		verb, r.Sessions, r.Skipped, len(r.Failed), secs, float64(r.Sessions)/secs, float64(r.SourceBytes)/1e6/secs)
	fmt.Printf("attachments: %d (%s), %d duplicates found, %s saved by deduplication\n",
		r.Attachments, mb(r.AttachmentBytes), r.Duplicates, mb(r.SavedBytes))
	if r.SameSessions > 0 {
		fmt.Printf("sessions found twice in the source with the same content (imported once): %d\n", r.SameSessions)
	}
	if r.MissingAttachments > 0 {
		fmt.Printf("attachments referenced but not in the source: %d\n", r.MissingAttachments)
	}
	fmt.Printf("session JSON written: %s\n", mb(r.SessionBytes))
	if st != nil && st.LogicalBytes > 0 {
		fmt.Printf("data dir: %s logical, %s stored (stored/logical %.3f)\n",
			mb(st.LogicalBytes), mb(st.StoredBytes), float64(st.StoredBytes)/float64(st.LogicalBytes))
	}
	const shown = 20
	for i, w := range r.Warnings {
		if i == shown {
			fmt.Printf("warning: ... and %d more\n", len(r.Warnings)-shown)
			break
		}
		fmt.Println("warning:", w)
	}
	for _, f := range r.Failed {
		fmt.Println("failed:", f)
	}
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
