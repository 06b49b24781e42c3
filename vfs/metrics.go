package vfs

import (
	"bytes"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// statsCollector exposes Stats as Prometheus metrics, computed on scrape.
type statsCollector struct{ v *FS }

type metricDef struct {
	name, help string
	counter    bool
	value      func(s *Stats) float64
}

var metricDefs = []metricDef{
	{"taskerfs_sessions", "Session directories under sessions/.", false, func(s *Stats) float64 { return float64(s.Sessions) }},
	{"taskerfs_files", "Regular files.", false, func(s *Stats) float64 { return float64(s.Files) }},
	{"taskerfs_logical_bytes", "Sum of file sizes.", false, func(s *Stats) float64 { return float64(s.LogicalBytes) }},
	{"taskerfs_unique_bytes", "Logical bytes of distinct blobs.", false, func(s *Stats) float64 { return float64(s.UniqueBytes) }},
	{"taskerfs_stored_bytes", "Blob bytes on disk after dedup and compression.", false, func(s *Stats) float64 { return float64(s.StoredBytes) }},
	{"taskerfs_blobs", "Distinct referenced blobs.", false, func(s *Stats) float64 { return float64(s.Blobs) }},
	{"taskerfs_dedup_ratio", "Logical bytes per unique byte.", false, func(s *Stats) float64 { return s.DedupRatio }},
	{"taskerfs_compression_ratio", "Unique bytes per stored byte.", false, func(s *Stats) float64 { return s.CompressionRatio }},
	{"taskerfs_meta_bytes", "Pebble disk usage.", false, func(s *Stats) float64 { return float64(s.MetaBytes) }},
	{"taskerfs_index_bytes", "Search index size.", false, func(s *Stats) float64 { return float64(s.IndexBytes) }},
	{"taskerfs_cache_hits_total", "Blob cache hits.", true, func(s *Stats) float64 { return float64(s.CacheHits) }},
	{"taskerfs_cache_misses_total", "Blob cache misses.", true, func(s *Stats) float64 { return float64(s.CacheMisses) }},
	{"taskerfs_queue_critical", "Queued critical commits.", false, func(s *Stats) float64 { return float64(s.Queue.QueueCritical) }},
	{"taskerfs_queue_normal", "Queued normal commits.", false, func(s *Stats) float64 { return float64(s.Queue.QueueNormal) }},
	{"taskerfs_queue_low", "Queued low-priority commits.", false, func(s *Stats) float64 { return float64(s.Queue.QueueLow) }},
	{"taskerfs_queue_oldest_age_seconds", "Age of the oldest queued commit.", false, func(s *Stats) float64 { return s.Queue.OldestAgeSeconds }},
	{"taskerfs_dirty_bytes", "Bytes written but not yet persisted.", false, func(s *Stats) float64 { return float64(s.Queue.DirtyBytes) }},
	{"taskerfs_commits_total", "Successful group commits.", true, func(s *Stats) float64 { return float64(s.Queue.Commits) }},
	{"taskerfs_committed_items_total", "Files committed.", true, func(s *Stats) float64 { return float64(s.Queue.ItemsCommitted) }},
	{"taskerfs_coalesced_writes_total", "Closes merged into an already queued commit.", true, func(s *Stats) float64 { return float64(s.Queue.Coalesced) }},
	{"taskerfs_commit_retries_total", "Commit attempts that failed and were retried.", true, func(s *Stats) float64 { return float64(s.Queue.Retries) }},
	{"taskerfs_commit_failures_total", "Commits that kept failing (logged, still retried).", true, func(s *Stats) float64 { return float64(s.Queue.Failures) }},
	{"taskerfs_recompress_saved_bytes", "Stored bytes saved by background recompression.", false, func(s *Stats) float64 { return float64(s.RecompressSaved) }},
	{"taskerfs_throttled_writes_total", "Writes that waited for the backlog to drain.", true, func(s *Stats) float64 { return float64(s.Queue.Throttled) }},
}

func (c statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range metricDefs {
		ch <- prometheus.NewDesc(d.name, d.help, nil, nil)
	}
}

func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	s, err := c.v.Stats()
	if err != nil {
		return
	}
	for _, d := range metricDefs {
		t := prometheus.GaugeValue
		if d.counter {
			t = prometheus.CounterValue
		}
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(d.name, d.help, nil, nil), t, d.value(&s))
	}
}

// Registry is a Prometheus registry with this data dir's figures.
func (v *FS) Registry() *prometheus.Registry {
	v.regOnce.Do(func() {
		v.reg = prometheus.NewRegistry()
		v.reg.MustRegister(statsCollector{v}, v.obs.ops, v.obs.latency)
		if c, ok := v.blobs.(prometheus.Collector); ok {
			v.reg.MustRegister(c)
		}
	})
	return v.reg
}

// MetricsText renders the figures in the Prometheus text format.
func (v *FS) MetricsText() ([]byte, error) {
	mfs, err := v.Registry().Gather()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}
