// Package s3 keeps blobs in an S3-compatible object store, with the local
// disk still in the write and read paths.
//
// Client: github.com/minio/minio-go/v7. It speaks plain S3 (path-style
// requests, SigV4) to any compatible server, takes credentials from the
// standard chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, the shared
// credentials file, MINIO_* variables), and pulls in a handful of small
// modules, where aws-sdk-go-v2 brings a dozen service and config modules
// for features this backend does not use. Both are well kept; the smaller
// tree won.
//
// Layout: each blob is one object PREFIX<ab>/<64 hex>, holding the same
// bytes as a Local blob file (header, then raw or zstd payload), with its
// logical size and codec also in user metadata so Stat is one HEAD. Small
// blobs (≤ meta.InlineMax, 64 KiB) never reach a blob store: they live
// inline in pebble. So packing several blobs per object would buy little
// and is not done; every object is a 64 KiB – 1 MiB chunk.
//
// Write path: Put stages the blob in a Local store in the data dir
// (SyncBlobs/Sync make it durable there before the commit that references
// it). Uploaders (bounded concurrency) send staged blobs to the bucket,
// retrying with backoff; once the server has confirmed a blob, its staged
// file moves into the read cache. Staged blobs are the pending uploads: a
// restart finds them in the staging directory and resumes. When staged
// bytes reach the budget, Put waits for uploads to free room.
//
// Read path: staging, then a bounded LRU cache of downloaded blobs (files
// in the data dir, so it survives restarts; recency comes from file mtimes
// at open), then the bucket, each request bounded by a timeout so a dead
// server gives EIO instead of a hang.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/taskerfs/taskerfs/blobstore"
)

// Options configure Open.
type Options struct {
	Config
	StagingDir string // Local store for blobs not yet uploaded
	CacheDir   string // Local store for uploaded and downloaded blobs

	CacheBytes   int64         // read cache budget (default 1 GiB)
	StagingBytes int64         // staged bytes at which Put waits (default 2 GiB)
	Uploaders    int           // concurrent uploads (default 4)
	SyncUpload   bool          // Sync/SyncBlobs wait until the blobs are uploaded
	Timeout      time.Duration // bound on one read request (default 10 s)
	Grace        time.Duration // Delete keeps objects younger than this (ErrInGrace)
	MaxBackoff   time.Duration // upload retry backoff cap (default 2 s)

	// Creds overrides the environment credential chain (tests).
	Creds *credentials.Credentials
}

const (
	metaSize  = "Taskerfs-Size"
	metaCodec = "Taskerfs-Codec"
	// maxObject caps what a download reads: a blob is at most one
	// 1 MiB chunk, zstd never grows it much; anything far larger is not ours.
	maxObject = 8 << 20
)

// Store is the S3 backend. It implements blobstore.Store, BlobSyncer and
// HashedPutter.
type Store struct {
	opts    Options
	client  *minio.Client
	staging *blobstore.Local
	cache   *lru

	closed atomic.Bool
	stop   chan struct{}
	wg     sync.WaitGroup

	mu           sync.Mutex
	cond         *sync.Cond               // pending, uploading or reserved changed
	pending      map[blobstore.Hash]int64 // staged, not yet confirmed uploaded: stored bytes
	todo         []blobstore.Hash         // pending blobs no uploader holds
	uploading    map[blobstore.Hash]bool
	pendingBytes int64
	reserved     int64 // staging room claimed by Puts in progress

	st counters
}

type counters struct {
	uploads, uploadBytes, uploadErrors       atomic.Int64
	downloads, downloadBytes, downloadErrors atomic.Int64
	cacheHits, cacheMisses                   atomic.Int64
	stagingWaits                             atomic.Int64
}

var (
	_ blobstore.Store        = (*Store)(nil)
	_ blobstore.BlobSyncer   = (*Store)(nil)
	_ blobstore.HashedPutter = (*Store)(nil)
)

// Credentials is the standard chain: AWS environment variables, the AWS
// shared credentials file (AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE),
// then MINIO_ROOT_USER/MINIO_ROOT_PASSWORD style variables.
func Credentials() *credentials.Credentials {
	return credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.FileAWSCredentials{},
		&credentials.EnvMinio{},
	})
}

// Open connects to the bucket (creating it if absent when the server is
// reachable; an unreachable server is only logged, so a mount works
// offline), opens staging and cache, and resumes pending uploads.
func Open(opts Options) (*Store, error) {
	if opts.Bucket == "" {
		return nil, errors.New("s3: no bucket")
	}
	if opts.CacheBytes <= 0 {
		opts.CacheBytes = 1 << 30
	}
	if opts.StagingBytes <= 0 {
		opts.StagingBytes = 2 << 30
	}
	if opts.Uploaders <= 0 {
		opts.Uploaders = 4
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 2 * time.Second
	}
	if opts.Creds == nil {
		opts.Creds = Credentials()
	}
	if opts.Region == "" {
		opts.Region = os.Getenv("AWS_REGION")
	}
	endpoint, secure := "s3.amazonaws.com", true
	if opts.Endpoint != "" {
		e, err := ParseEndpoint(opts.Endpoint)
		if err != nil {
			return nil, err
		}
		secure = strings.HasPrefix(e, "https://")
		endpoint = e[strings.Index(e, "://")+3:]
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		TLSHandshakeTimeout:   10 * time.Second,
	}
	client, err := minio.New(endpoint, &minio.Options{
		Creds: opts.Creds, Secure: secure, Region: opts.Region, Transport: tr,
		BucketLookup: minio.BucketLookupPath,
		// A few quick retries for a glitch; the uploaders retry with their
		// own backoff, and a read must fail within Timeout.
		MaxRetries: 3,
	})
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	staging, err := blobstore.OpenLocal(opts.StagingDir, blobstore.LocalOptions{})
	if err != nil {
		return nil, err
	}
	cache, err := openLRU(opts.CacheDir, opts.CacheBytes)
	if err != nil {
		staging.Close()
		return nil, err
	}
	s := &Store{opts: opts, client: client, staging: staging, cache: cache, stop: make(chan struct{}),
		pending: map[blobstore.Hash]int64{}, uploading: map[blobstore.Hash]bool{}}
	s.cond = sync.NewCond(&s.mu)
	if err := s.ensureBucket(); err != nil {
		s.closeLocal()
		return nil, err
	}
	err = staging.List("", func(h blobstore.Hash) error {
		info, err := staging.Stat(h)
		if errors.Is(err, blobstore.ErrCorrupt) {
			// Torn by a crash before any commit synced it (a committed
			// blob was synced first), or damaged: it can never be served
			// (reads verify the hash); the bucket may hold a good copy.
			slog.Warn("s3: damaged staged blob dropped", "blob", h, "err", err)
			return staging.Delete(h)
		}
		if err != nil {
			return err
		}
		s.pending[h] = info.Stored
		s.pendingBytes += info.Stored
		s.todo = append(s.todo, h)
		return nil
	})
	if err != nil {
		s.closeLocal()
		return nil, err
	}
	if len(s.todo) > 0 {
		slog.Info("s3: resuming uploads", "blobs", len(s.todo), "bytes", s.pendingBytes)
	}
	for range opts.Uploaders {
		s.wg.Go(s.uploader)
	}
	return s, nil
}

func (s *Store) ensureBucket() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	ok, err := s.client.BucketExists(ctx, s.opts.Bucket)
	if err != nil {
		var ne net.Error
		if !errors.As(err, &ne) && !errors.Is(err, context.DeadlineExceeded) {
			// The server answered (bad credentials, no access): not
			// something to wait out.
			return fmt.Errorf("s3: bucket %s: %w", s.opts.Bucket, err)
		}
		slog.Warn("s3: server unreachable; blobs stay staged until it answers", "endpoint", s.opts.Endpoint, "err", err)
		return nil
	}
	if !ok {
		if err := s.client.MakeBucket(ctx, s.opts.Bucket, minio.MakeBucketOptions{Region: s.opts.Region}); err != nil {
			return fmt.Errorf("s3: create bucket %s: %w", s.opts.Bucket, err)
		}
	}
	return nil
}

func isNotFound(err error) bool {
	switch minio.ToErrorResponse(err).Code {
	case "NoSuchKey", "NotFound":
		return true
	}
	return false
}

// eio marks a failed remote request so the FUSE layer answers EIO. The
// cause is text only: an errno inside it (ECONNREFUSED) must not be what
// the reader gets.
func eio(op string, h blobstore.Hash, err error) error {
	return fmt.Errorf("s3: %s %v: %v: %w", op, h, err, syscall.EIO)
}

func (s *Store) key(h blobstore.Hash) string {
	x := h.String()
	return s.opts.Prefix + x[:2] + "/" + x
}

// Put stages data under h; see the package doc.
func (s *Store) Put(h blobstore.Hash, data []byte) (blobstore.Info, error) {
	return s.put(h, data, true, nil)
}

// PutHashed is Put for a caller that computed h from data itself.
func (s *Store) PutHashed(h blobstore.Hash, data []byte, hint *blobstore.Hint) (blobstore.Info, error) {
	return s.put(h, data, false, hint)
}

func (s *Store) put(h blobstore.Hash, data []byte, verify bool, hint *blobstore.Hint) (blobstore.Info, error) {
	if s.closed.Load() {
		return blobstore.Info{}, blobstore.ErrClosed
	}
	if verify && blobstore.Sum(data) != h {
		return blobstore.Info{}, fmt.Errorf("s3: put %v: data hashes to %v", h, blobstore.Sum(data))
	}
	if info, err := s.staging.Stat(h); err == nil {
		return info, nil
	}
	if info, err := s.cache.store.Stat(h); err == nil {
		return info, nil // uploaded (or downloaded) before
	}
	// Claim staging room; the payload is at most the data plus a header.
	need := int64(len(data)) + blobstore.RawHeaderSize
	s.mu.Lock()
	waited := false
	for !s.closed.Load() && s.pendingBytes+s.reserved > 0 && s.pendingBytes+s.reserved+need > s.opts.StagingBytes {
		if !waited {
			waited = true
			s.st.stagingWaits.Add(1)
		}
		s.cond.Wait()
	}
	s.reserved += need
	s.mu.Unlock()
	if s.closed.Load() {
		s.release(need)
		return blobstore.Info{}, blobstore.ErrClosed
	}
	info, err := s.staging.PutHashed(h, data, hint)
	s.mu.Lock()
	s.reserved -= need
	if err == nil {
		if _, ok := s.pending[h]; !ok {
			s.pending[h] = info.Stored
			s.pendingBytes += info.Stored
			s.todo = append(s.todo, h)
		}
	}
	s.cond.Broadcast()
	s.mu.Unlock()
	return info, err
}

func (s *Store) release(n int64) {
	s.mu.Lock()
	s.reserved -= n
	s.cond.Broadcast()
	s.mu.Unlock()
}

// Get returns a blob from staging, the cache or the bucket, in that order.
func (s *Store) Get(h blobstore.Hash) ([]byte, error) {
	if s.closed.Load() {
		return nil, blobstore.ErrClosed
	}
	d, err := s.staging.Get(h)
	stagedErr := err
	switch {
	case err == nil:
		return d, nil
	case errors.Is(err, blobstore.ErrCorrupt):
		slog.Warn("s3: damaged staged blob; trying the bucket", "blob", h, "err", err)
	case !errors.Is(err, blobstore.ErrNotFound):
		return nil, err
	}
	d, err = s.cache.get(h)
	switch {
	case err == nil:
		s.st.cacheHits.Add(1)
		return d, nil
	case errors.Is(err, blobstore.ErrCorrupt):
		slog.Warn("s3: damaged cache entry dropped", "blob", h, "err", err)
		s.cache.remove(h)
	case !errors.Is(err, blobstore.ErrNotFound):
		return nil, err
	}
	s.st.cacheMisses.Add(1)
	raw, err := s.download(h)
	if errors.Is(err, blobstore.ErrNotFound) && stagedErr != nil && !errors.Is(stagedErr, blobstore.ErrNotFound) {
		return nil, stagedErr // the damaged staged copy was the only one
	}
	if err != nil {
		return nil, err
	}
	data, _, err := blobstore.DecodeRaw(h, raw)
	if err != nil {
		return nil, err
	}
	if err := s.cache.add(h, raw); err != nil {
		slog.Warn("s3: cache write failed", "blob", h, "err", err)
	}
	return data, nil
}

func (s *Store) download(h blobstore.Hash) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	obj, err := s.client.GetObject(ctx, s.opts.Bucket, s.key(h), minio.GetObjectOptions{})
	if err == nil {
		defer obj.Close()
		var raw []byte
		raw, err = io.ReadAll(io.LimitReader(obj, maxObject+1))
		if err == nil && len(raw) > maxObject {
			return nil, fmt.Errorf("s3: get %v: object over %d bytes: %w", h, maxObject, blobstore.ErrCorrupt)
		}
		if err == nil {
			s.st.downloads.Add(1)
			s.st.downloadBytes.Add(int64(len(raw)))
			return raw, nil
		}
	}
	if isNotFound(err) {
		return nil, fmt.Errorf("%w: %v", blobstore.ErrNotFound, h)
	}
	s.st.downloadErrors.Add(1)
	return nil, eio("get", h, err)
}

// Has reports whether h is staged, cached or in the bucket.
func (s *Store) Has(h blobstore.Hash) (bool, error) {
	_, err := s.Stat(h)
	if errors.Is(err, blobstore.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Stat answers from staging or the cache, else with one HEAD request.
func (s *Store) Stat(h blobstore.Hash) (blobstore.Info, error) {
	if s.closed.Load() {
		return blobstore.Info{}, blobstore.ErrClosed
	}
	if info, err := s.staging.Stat(h); !errors.Is(err, blobstore.ErrNotFound) {
		return info, err
	}
	if info, err := s.cache.store.Stat(h); err == nil {
		return info, nil
	}
	info, _, err := s.statRemote(h)
	return info, err
}

func (s *Store) statRemote(h blobstore.Hash) (blobstore.Info, time.Time, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	oi, err := s.client.StatObject(ctx, s.opts.Bucket, s.key(h), minio.StatObjectOptions{})
	if err != nil {
		if isNotFound(err) {
			return blobstore.Info{}, time.Time{}, fmt.Errorf("%w: %v", blobstore.ErrNotFound, h)
		}
		return blobstore.Info{}, time.Time{}, eio("stat", h, err)
	}
	size, err1 := strconv.ParseInt(oi.Metadata.Get("X-Amz-Meta-"+metaSize), 10, 64)
	codec, err2 := strconv.ParseUint(oi.Metadata.Get("X-Amz-Meta-"+metaCodec), 10, 8)
	if err1 == nil && err2 == nil {
		return blobstore.Info{Size: size, Stored: oi.Size, Codec: blobstore.Codec(codec)}, oi.LastModified, nil
	}
	// Written by something else: read the header.
	var opts minio.GetObjectOptions
	opts.SetRange(0, blobstore.RawHeaderSize-1)
	obj, err := s.client.GetObject(ctx, s.opts.Bucket, s.key(h), opts)
	if err != nil {
		return blobstore.Info{}, time.Time{}, eio("stat", h, err)
	}
	defer obj.Close()
	hdr, err := io.ReadAll(io.LimitReader(obj, blobstore.RawHeaderSize))
	if err != nil {
		return blobstore.Info{}, time.Time{}, eio("stat", h, err)
	}
	info, err := blobstore.RawInfo(hdr, oi.Size)
	return info, oi.LastModified, err
}

// Delete removes h from staging, the cache and the bucket. A bucket object
// younger than the grace period is kept (nothing is removed) and Delete
// returns blobstore.ErrInGrace.
func (s *Store) Delete(h blobstore.Hash) error {
	if s.closed.Load() {
		return blobstore.ErrClosed
	}
	_, mod, err := s.statRemote(h)
	remote := err == nil
	if err != nil && !errors.Is(err, blobstore.ErrNotFound) {
		return err
	}
	if remote && s.opts.Grace > 0 && time.Since(mod) < s.opts.Grace {
		return blobstore.ErrInGrace
	}
	found := remote
	s.mu.Lock()
	for s.uploading[h] {
		s.cond.Wait() // an upload in flight would recreate the object
	}
	if n, ok := s.pending[h]; ok {
		delete(s.pending, h)
		s.pendingBytes -= n
		if i := slices.Index(s.todo, h); i >= 0 {
			s.todo = slices.Delete(s.todo, i, i+1)
		}
		s.cond.Broadcast()
	}
	err = s.staging.Delete(h)
	s.mu.Unlock()
	if err == nil {
		found = true
	} else if !errors.Is(err, blobstore.ErrNotFound) {
		return err
	}
	if s.cache.remove(h) {
		found = true
	}
	if !remote {
		// An upload may have finished since the HEAD.
		if _, _, err := s.statRemote(h); err == nil {
			remote = true
		}
	}
	if remote {
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
		defer cancel()
		if err := s.client.RemoveObject(ctx, s.opts.Bucket, s.key(h), minio.RemoveObjectOptions{}); err != nil {
			return eio("delete", h, err)
		}
		found = true
	}
	if !found {
		return fmt.Errorf("%w: %v", blobstore.ErrNotFound, h)
	}
	return nil
}

// PruneShards removes the empty shard directories of staging and of the
// read cache, and returns how many and the disk space they took
// (blobstore.ShardPruner).
func (s *Store) PruneShards() (int, int64, error) {
	if s.closed.Load() {
		return 0, 0, blobstore.ErrClosed
	}
	n, freed, err := s.staging.PruneShards()
	if err != nil {
		return n, freed, err
	}
	m, more, err := s.cache.store.PruneShards()
	return n + m, freed + more, err
}

// List streams the union of staged blobs and bucket objects in hash order.
func (s *Store) List(prefix string, fn func(blobstore.Hash) error) error {
	if s.closed.Load() {
		return blobstore.ErrClosed
	}
	if len(prefix) > 64 || !isLowerHex(prefix) {
		return fmt.Errorf("s3: list prefix %q: want up to 64 lowercase hex digits", prefix)
	}
	// Staged blobs first (a snapshot: the staging budget bounds it), then
	// the bucket: a blob uploaded meanwhile was staged at the snapshot.
	var staged []string
	s.mu.Lock()
	for h := range s.pending {
		if x := h.String(); strings.HasPrefix(x, prefix) {
			staged = append(staged, x)
		}
	}
	s.mu.Unlock()
	slices.Sort(staged)

	keyPrefix := s.opts.Prefix + prefix
	if len(prefix) >= 2 {
		keyPrefix = s.opts.Prefix + prefix[:2] + "/" + prefix
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	last := ""
	emit := func(x string) error {
		if x == last {
			return nil
		}
		last = x
		h, err := blobstore.ParseHash(x)
		if err != nil {
			return err
		}
		return fn(h)
	}
	for oi := range s.client.ListObjects(ctx, s.opts.Bucket, minio.ListObjectsOptions{Prefix: keyPrefix, Recursive: true}) {
		if oi.Err != nil {
			return fmt.Errorf("s3: list %s: %v: %w", keyPrefix, oi.Err, syscall.EIO)
		}
		name := strings.TrimPrefix(oi.Key, s.opts.Prefix)
		if len(name) != 67 || name[2] != '/' || name[:2] != name[3:5] || !isLowerHex(name[3:]) {
			continue // not ours
		}
		x := name[3:]
		for len(staged) > 0 && staged[0] <= x {
			if err := emit(staged[0]); err != nil {
				return err
			}
			staged = staged[1:]
		}
		if err := emit(x); err != nil {
			return err
		}
	}
	for _, x := range staged {
		if err := emit(x); err != nil {
			return err
		}
	}
	return nil
}

func isLowerHex(s string) bool {
	for i := range len(s) {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// SyncBlobs makes the named blobs durable in staging (blobs already
// uploaded need nothing); with SyncUpload it then waits for their upload.
func (s *Store) SyncBlobs(hs []blobstore.Hash) error {
	if s.closed.Load() {
		return blobstore.ErrClosed
	}
	if err := s.staging.SyncBlobs(hs); err != nil {
		return err
	}
	if s.opts.SyncUpload {
		return s.waitUploaded(hs)
	}
	return nil
}

// Sync makes every staged blob durable locally; with SyncUpload it waits
// for every blob staged before the call to be uploaded.
func (s *Store) Sync() error {
	if s.closed.Load() {
		return blobstore.ErrClosed
	}
	if err := s.staging.Sync(); err != nil {
		return err
	}
	if !s.opts.SyncUpload {
		return nil
	}
	s.mu.Lock()
	hs := make([]blobstore.Hash, 0, len(s.pending))
	for h := range s.pending {
		hs = append(hs, h)
	}
	s.mu.Unlock()
	return s.waitUploaded(hs)
}

// WaitUploaded blocks until none of hs is pending upload.
func (s *Store) waitUploaded(hs []blobstore.Hash) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range hs {
		for {
			if s.closed.Load() {
				return blobstore.ErrClosed
			}
			if _, ok := s.pending[h]; !ok {
				break
			}
			s.cond.Wait()
		}
	}
	return nil
}

// Drain waits until every pending upload is done or ctx ends.
func (s *Store) Drain(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.pending) > 0 {
		if s.closed.Load() {
			return blobstore.ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("s3: %d uploads still pending: %w", len(s.pending), err)
		}
		s.cond.Wait()
	}
	return nil
}

// Close stops the uploaders (staged blobs stay for the next open) and
// closes the local stores. Puts waiting for staging room get ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return blobstore.ErrClosed
	}
	close(s.stop)
	s.mu.Lock()
	s.cond.Broadcast()
	s.mu.Unlock()
	s.wg.Wait()
	return s.closeLocal()
}

func (s *Store) closeLocal() error {
	err := s.staging.Close()
	if cerr := s.cache.store.Close(); err == nil {
		err = cerr
	}
	return err
}

// uploader sends pending blobs until Close.
func (s *Store) uploader() {
	backoff := time.Duration(0)
	for {
		h, ok := s.next()
		if !ok {
			return
		}
		err := s.upload(h)
		s.mu.Lock()
		delete(s.uploading, h)
		if err != nil {
			if _, still := s.pending[h]; still {
				s.todo = append(s.todo, h) // retried after the backoff
			}
		}
		s.cond.Broadcast()
		s.mu.Unlock()
		if err == nil {
			backoff = 0
			continue
		}
		s.st.uploadErrors.Add(1)
		backoff = min(max(2*backoff, 50*time.Millisecond), s.opts.MaxBackoff)
		slog.Debug("s3: upload failed; will retry", "blob", h, "err", err, "backoff", backoff)
		select {
		case <-s.stop:
			return
		case <-time.After(backoff):
		}
	}
}

// next takes a pending blob to upload, waiting for one; false on Close.
func (s *Store) next() (blobstore.Hash, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.todo) == 0 && !s.closed.Load() {
		s.cond.Wait()
	}
	if s.closed.Load() {
		return blobstore.Hash{}, false
	}
	h := s.todo[0]
	s.todo = s.todo[1:]
	s.uploading[h] = true
	return h, true
}

// upload sends one staged blob; on success its staged file moves into the
// read cache and it stops being pending. A blob deleted meanwhile is done.
func (s *Store) upload(h blobstore.Hash) error {
	raw, err := s.staging.ReadRaw(h)
	if errors.Is(err, blobstore.ErrNotFound) {
		s.finish(h, false)
		return nil
	}
	if err != nil {
		return err
	}
	// Verify before sending: the bucket must never hold a damaged blob.
	_, info, err := blobstore.DecodeRaw(h, raw)
	if errors.Is(err, blobstore.ErrCorrupt) {
		slog.Error("s3: staged blob is damaged; not uploaded, dropped", "blob", h, "err", err)
		s.staging.Delete(h)
		s.finish(h, false)
		return nil
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout+time.Duration(len(raw)>>10)*time.Millisecond)
	defer cancel()
	_, err = s.client.PutObject(ctx, s.opts.Bucket, s.key(h), bytes.NewReader(raw), int64(len(raw)), minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		UserMetadata: map[string]string{
			metaSize:  strconv.FormatInt(info.Size, 10),
			metaCodec: strconv.Itoa(int(info.Codec)),
		},
		SendContentMd5: true,
	})
	if err != nil {
		return err
	}
	s.st.uploads.Add(1)
	s.st.uploadBytes.Add(int64(len(raw)))
	s.finish(h, true)
	return nil
}

// finish ends h's pending state: the staged file moves into the cache
// (uploaded) or is gone (deleted meanwhile).
func (s *Store) finish(h blobstore.Hash, uploaded bool) {
	s.mu.Lock()
	n, ok := s.pending[h]
	if ok {
		delete(s.pending, h)
		s.pendingBytes -= n
	}
	if ok && uploaded {
		if err := s.cache.adopt(h, s.staging.Path(h)); err != nil {
			slog.Warn("s3: uploaded blob not kept in cache", "blob", h, "err", err)
			s.staging.Delete(h)
		}
	}
	s.mu.Unlock()
	s.cache.evict()
}
