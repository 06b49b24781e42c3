package s3

import "github.com/prometheus/client_golang/prometheus"

// Stats are the backend's figures for `taskerfs stats` and /metrics.
type Stats struct {
	Bucket          string `json:"bucket"`
	PendingUploads  int64  `json:"pendingUploads"`
	PendingBytes    int64  `json:"pendingBytes"`
	Uploads         int64  `json:"uploads"`
	UploadBytes     int64  `json:"uploadBytes"`
	UploadErrors    int64  `json:"uploadErrors"`
	Downloads       int64  `json:"downloads"`
	DownloadBytes   int64  `json:"downloadBytes"`
	DownloadErrors  int64  `json:"downloadErrors"`
	CacheHits       int64  `json:"cacheHits"`
	CacheMisses     int64  `json:"cacheMisses"`
	CacheBlobs      int64  `json:"cacheBlobs"`
	CacheBytes      int64  `json:"cacheBytes"`
	StagingWaits    int64  `json:"stagingWaits"` // Puts that waited for staging room
	StagingBudget   int64  `json:"stagingBudget"`
	CacheBudget     int64  `json:"cacheBudget"`
	SyncUpload      bool   `json:"syncUpload"`
	UploadersActive int    `json:"uploadersActive"`
}

// Stats returns a snapshot of the figures.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	st := Stats{PendingUploads: int64(len(s.pending)), PendingBytes: s.pendingBytes, UploadersActive: len(s.uploading)}
	s.mu.Unlock()
	n, b := s.cache.usage()
	st.Bucket = s.opts.URL()
	st.CacheBlobs, st.CacheBytes = int64(n), b
	st.Uploads, st.UploadBytes, st.UploadErrors = s.st.uploads.Load(), s.st.uploadBytes.Load(), s.st.uploadErrors.Load()
	st.Downloads, st.DownloadBytes, st.DownloadErrors = s.st.downloads.Load(), s.st.downloadBytes.Load(), s.st.downloadErrors.Load()
	st.CacheHits, st.CacheMisses = s.st.cacheHits.Load(), s.st.cacheMisses.Load()
	st.StagingWaits = s.st.stagingWaits.Load()
	st.StagingBudget, st.CacheBudget, st.SyncUpload = s.opts.StagingBytes, s.opts.CacheBytes, s.opts.SyncUpload
	return st
}

// BackendStats is what vfs shows under "blobstore" in stats.json.
func (s *Store) BackendStats() any { return s.Stats() }

var metricDescs = []struct {
	name, help string
	counter    bool
	get        func(Stats) float64
}{
	{"taskerfs_s3_pending_uploads", "Blobs staged locally, not yet confirmed uploaded.", false, func(s Stats) float64 { return float64(s.PendingUploads) }},
	{"taskerfs_s3_pending_bytes", "Bytes staged locally, not yet confirmed uploaded.", false, func(s Stats) float64 { return float64(s.PendingBytes) }},
	{"taskerfs_s3_uploads_total", "Blobs uploaded.", true, func(s Stats) float64 { return float64(s.Uploads) }},
	{"taskerfs_s3_upload_bytes_total", "Bytes uploaded.", true, func(s Stats) float64 { return float64(s.UploadBytes) }},
	{"taskerfs_s3_upload_errors_total", "Failed upload attempts (each is retried).", true, func(s Stats) float64 { return float64(s.UploadErrors) }},
	{"taskerfs_s3_downloads_total", "Blobs downloaded.", true, func(s Stats) float64 { return float64(s.Downloads) }},
	{"taskerfs_s3_download_bytes_total", "Bytes downloaded.", true, func(s Stats) float64 { return float64(s.DownloadBytes) }},
	{"taskerfs_s3_download_errors_total", "Failed downloads (EIO to the reader).", true, func(s Stats) float64 { return float64(s.DownloadErrors) }},
	{"taskerfs_s3_cache_hits_total", "Reads served by the local read cache.", true, func(s Stats) float64 { return float64(s.CacheHits) }},
	{"taskerfs_s3_cache_misses_total", "Reads that went to the bucket.", true, func(s Stats) float64 { return float64(s.CacheMisses) }},
	{"taskerfs_s3_cache_bytes", "Bytes in the local read cache.", false, func(s Stats) float64 { return float64(s.CacheBytes) }},
	{"taskerfs_s3_staging_waits_total", "Writes that waited for staging room.", true, func(s Stats) float64 { return float64(s.StagingWaits) }},
}

// Describe implements prometheus.Collector.
func (s *Store) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range metricDescs {
		ch <- prometheus.NewDesc(m.name, m.help, nil, nil)
	}
}

// Collect implements prometheus.Collector.
func (s *Store) Collect(ch chan<- prometheus.Metric) {
	st := s.Stats()
	for _, m := range metricDescs {
		t := prometheus.GaugeValue
		if m.counter {
			t = prometheus.CounterValue
		}
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(m.name, m.help, nil, nil), t, m.get(st))
	}
}
