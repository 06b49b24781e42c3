package main

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/taskerfs/taskerfs/blobstore/s3"
	"github.com/taskerfs/taskerfs/vfs"
)

// s3Flags select the S3 blob backend. They are shared by mount, gc, fsck,
// import and export; a data dir remembers its bucket, so only the first
// command needs --blobs. Credentials never come from flags (ps shows
// argv): they come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the AWS
// shared credentials file or MINIO_ROOT_USER/MINIO_ROOT_PASSWORD.
type s3Flags struct {
	blobs        string
	endpoint     string
	region       string
	cacheBytes   int64
	stagingBytes int64
	uploaders    int
	syncUpload   bool
	timeout      time.Duration
	grace        time.Duration
}

var s3f s3Flags

func addS3Flags(fl *pflag.FlagSet) {
	fl.StringVar(&s3f.blobs, "blobs", "", "keep blobs in an S3 bucket: s3://BUCKET/PREFIX (remembered by the data dir; credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws/credentials)")
	fl.StringVar(&s3f.endpoint, "s3-endpoint", "", "S3 server URL, http(s)://HOST:PORT (default AWS; remembered)")
	fl.StringVar(&s3f.region, "s3-region", "", "S3 region (default $AWS_REGION, else us-east-1; remembered)")
	fl.Int64Var(&s3f.cacheBytes, "s3-cache-bytes", 1<<30, "local read cache of downloaded blobs, bytes (LRU, kept across mounts)")
	fl.Int64Var(&s3f.stagingBytes, "s3-staging-bytes", 2<<30, "blob bytes staged locally for upload at which writers wait")
	fl.IntVar(&s3f.uploaders, "s3-uploaders", 4, "concurrent uploads")
	fl.BoolVar(&s3f.syncUpload, "s3-sync-upload", false, "fsync returns only once the file's blobs are uploaded (default: once they are durable in the local staging area)")
	fl.DurationVar(&s3f.timeout, "s3-timeout", 10*time.Second, "a read of a blob that is not cached fails with EIO after this long when the server does not answer")
	fl.DurationVar(&s3f.grace, "s3-gc-grace", time.Hour, "gc and fsck --repair keep unreferenced bucket objects younger than this")
}

// s3Options turns the flags into vfs options (zero Config: use what the
// data dir recorded).
func s3Options() (vfs.S3Options, error) {
	o := vfs.S3Options{CacheBytes: s3f.cacheBytes, StagingBytes: s3f.stagingBytes, Uploaders: s3f.uploaders,
		SyncUpload: s3f.syncUpload, Timeout: s3f.timeout, Grace: s3f.grace}
	if s3f.blobs != "" {
		c, err := s3.ParseURL(s3f.blobs)
		if err != nil {
			return o, err
		}
		o.Config = c
	}
	e, err := s3.ParseEndpoint(s3f.endpoint)
	if err != nil {
		return o, err
	}
	o.Config.Endpoint, o.Config.Region = e, s3f.region
	return o, nil
}

// baseOptions are the vfs options of an operator command: the mount's
// default cache sizes (fsck and reindex read every file once; a bigger
// blob cache only held a copy of each, 1.1 GB of RSS for fsck of 10,000
// sessions with vfs's own default).
func baseOptions() (vfs.Options, error) {
	o, err := s3Options()
	return vfs.Options{S3: o, BlobCacheBytes: defaultCacheBytes,
		MetaCacheBytes: metaCacheBytes, MetaMemTableBytes: metaMemTableBytes}, err
}
