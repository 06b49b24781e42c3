package vfs

import (
	"path/filepath"
	"time"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/blobstore/s3"
)

// S3Options select and tune the S3 blob backend (blobstore/s3). A data dir
// remembers its bucket (s3.ConfigFile), so only the first command needs
// Config; the tuning fields apply to this open only.
type S3Options struct {
	Config       s3.Config // zero: whatever the data dir recorded (local blobs if nothing)
	CacheBytes   int64     // local read cache of downloaded blobs
	StagingBytes int64     // staged, not yet uploaded bytes at which writers wait
	Uploaders    int
	SyncUpload   bool          // fsync returns once the blobs are uploaded
	Timeout      time.Duration // bound on one read from the bucket
	Grace        time.Duration // gc keeps bucket objects younger than this
}

// openBlobStore opens the data dir's blob backend: the local store under
// blobs/, or the S3 backend staging in blobs/ and caching in s3cache/.
func openBlobStore(dir string, opts Options) (blobstore.Store, error) {
	cfg, ok, err := s3.Resolve(dir, opts.S3.Config)
	if err != nil {
		return nil, err
	}
	if !ok {
		return blobstore.OpenLocal(filepath.Join(dir, "blobs"), blobstore.LocalOptions{PutDelay: opts.BlobPutDelay})
	}
	o := opts.S3
	return s3.Open(s3.Options{
		Config: cfg, StagingDir: filepath.Join(dir, "blobs"), CacheDir: filepath.Join(dir, "s3cache"),
		CacheBytes: o.CacheBytes, StagingBytes: o.StagingBytes, Uploaders: o.Uploaders,
		SyncUpload: o.SyncUpload, Timeout: o.Timeout, Grace: o.Grace,
	})
}

// backendStats is implemented by blob backends with figures of their own.
type backendStats interface{ BackendStats() any }
