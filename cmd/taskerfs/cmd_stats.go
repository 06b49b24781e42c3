package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/taskerfs/taskerfs/blobstore/s3"
	"github.com/taskerfs/taskerfs/vfs"
)

func init() {
	var data string
	var asJSON bool
	c := &cobra.Command{
		Use:   "stats [--json] [--data DIR]",
		Short: "Show storage, dedup, compression, cache and queue figures (live when mounted)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := withDataDir(data, "/stats", url.Values{}, func(v *vfs.FS) (vfs.Stats, error) { return v.Stats() })
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(s)
			}
			printStats(&s)
			return nil
		},
	}
	c.Flags().StringVar(&data, "data", vfs.DefaultDataDir(), "data dir")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	rootCmd.AddCommand(c)
}

func printStats(s *vfs.Stats) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(w, "%s\t%v\n", k, v) }
	row("sessions", s.Sessions)
	row("files", s.Files)
	row("logical bytes", s.LogicalBytes)
	row("unique bytes", s.UniqueBytes)
	row("stored bytes", s.StoredBytes)
	row("dedup ratio", fmt.Sprintf("%.2f", s.DedupRatio))
	row("compression ratio", fmt.Sprintf("%.2f", s.CompressionRatio))
	row("saved bytes", s.SavedBytes)
	row("trash files / bytes", fmt.Sprintf("%d / %d", s.TrashFiles, s.TrashBytes))
	row("snapshots", s.Snapshots)
	row("blobs (inline)", fmt.Sprintf("%d (%d)", s.Blobs, s.InlineBlobs))
	row("metadata bytes", s.MetaBytes)
	row("index sessions / bytes", fmt.Sprintf("%d / %d", s.IndexSessions, s.IndexBytes))
	row("files the kernel holds", s.KernelHeldFiles)
	row("cache hit rate", fmt.Sprintf("%.1f%% (%d hits, %d misses)", 100*s.CacheHitRate, s.CacheHits, s.CacheMisses))
	q := s.Queue
	row("queue critical/normal/low", fmt.Sprintf("%d/%d/%d", q.QueueCritical, q.QueueNormal, q.QueueLow))
	row("queue oldest age", fmt.Sprintf("%.3fs", q.OldestAgeSeconds))
	row("dirty bytes", q.DirtyBytes)
	row("commits / items per batch", fmt.Sprintf("%d / %.1f", q.Commits, q.ItemsPerBatch))
	row("coalesced writes", q.Coalesced)
	row("retries / failures", fmt.Sprintf("%d / %d", q.Retries, q.Failures))
	row("journaled blobs still inline", q.JournalPending)
	if b := backendFigures(s.Blobstore); b != nil {
		row("s3 bucket", b.Bucket)
		row("s3 pending uploads", fmt.Sprintf("%d (%d bytes)", b.PendingUploads, b.PendingBytes))
		row("s3 uploads / bytes / errors", fmt.Sprintf("%d / %d / %d", b.Uploads, b.UploadBytes, b.UploadErrors))
		row("s3 downloads / bytes / errors", fmt.Sprintf("%d / %d / %d", b.Downloads, b.DownloadBytes, b.DownloadErrors))
		row("s3 read cache hits / misses", fmt.Sprintf("%d / %d", b.CacheHits, b.CacheMisses))
		row("s3 read cache", fmt.Sprintf("%d blobs, %d of %d bytes", b.CacheBlobs, b.CacheBytes, b.CacheBudget))
		row("s3 writes that waited for staging", b.StagingWaits)
	}
	w.Flush()
}

// backendFigures reads the S3 backend's figures out of Stats.Blobstore,
// which is an s3.Stats in process and a decoded JSON object from a daemon.
func backendFigures(v any) *s3.Stats {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var st s3.Stats
	if json.Unmarshal(b, &st) != nil || st.Bucket == "" {
		return nil
	}
	return &st
}
