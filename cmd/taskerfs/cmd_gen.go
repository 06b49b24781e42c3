package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/taskerfs/taskerfs/gen"
)

func init() {
	d := gen.DefaultOptions()
	var (
		layout, manifest string
		plants           []string
		opts             = d
	)
	cmd := &cobra.Command{
		Use:   "gen DST",
		Short: "Write a realistic, deterministic session dataset to DST",
		Long: `gen writes DST/sessions/... in the seed's chunked layout (default), the real
app's enveloped layout (--layout app) or the legacy monolithic one (--layout legacy,
with DST/attachments/<id>.json). The same flags always give the same bytes.

--plant WORD=SHARE puts WORD into one indexed text field of about SHARE of the
sessions (repeatable); --manifest FILE records which sessions got it, with each
session's tags, topics, status, category, subCategory and month.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := gen.ParseLayout(layout)
			if err != nil {
				return err
			}
			opts.Layout = l
			for _, p := range plants {
				word, share, ok := strings.Cut(p, "=")
				if !ok {
					return fmt.Errorf("--plant %q: want WORD=SHARE", p)
				}
				f, err := strconv.ParseFloat(share, 64)
				if err != nil {
					return fmt.Errorf("--plant %q: %w", p, err)
				}
				opts.Plant = append(opts.Plant, gen.Plant{Word: word, Share: f})
			}
			start := time.Now()
			m, err := gen.Generate(args[0], opts)
			if err != nil {
				return err
			}
			took := time.Since(start)
			mb := func(n int64) float64 { return float64(n) / 1e6 }
			if manifest != "" {
				data, err := json.MarshalIndent(m, "", "  ")
				if err != nil {
					return err
				}
				if err := os.WriteFile(manifest, data, 0o644); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(),
				"%d sessions, %d files, %.1f MB (%.1f MB JSON, %.1f MB attachments, %.1f MB unique), %d/%d screenshots duplicated, in %.2fs\n",
				len(m.Sessions), m.Files, mb(m.Bytes), mb(m.JSONBytes), mb(m.AttachmentBytes), mb(m.UniqueAttachmentBytes),
				m.DuplicateScreenshots, m.Screenshots, took.Seconds())
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.Sessions, "sessions", d.Sessions, "number of sessions")
	f.IntVar(&opts.Screenshots, "screenshots", d.Screenshots, "screenshots per session")
	f.IntVar(&opts.AudioSegments, "audio", d.AudioSegments, "10 s audio segments per session")
	f.Float64Var(&opts.Dup, "dup", d.Dup, "share of screenshots that are exact copies of earlier ones")
	f.Uint64Var(&opts.Seed, "seed", d.Seed, "random seed")
	f.BoolVar(&opts.JSONOnly, "json-only", false, "write no attachment bytes")
	f.StringVar(&layout, "layout", string(d.Layout), "seed, app or legacy")
	f.StringArrayVar(&plants, "plant", nil, "WORD=SHARE: plant WORD in about SHARE of the sessions (repeatable)")
	f.StringVar(&manifest, "manifest", "", "write the manifest (what was planted where) as JSON to this file")
	f.IntVar(&opts.Workers, "workers", 0, "parallel writers (default: number of CPUs)")
	rootCmd.AddCommand(cmd)
}
