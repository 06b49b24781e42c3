package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/blobstore/s3/s3test"
	"github.com/taskerfs/taskerfs/blobstore/storetest"
)

var bucketSeq atomic.Int64

// env is one server plus the options for stores on it.
type env struct {
	srv *s3test.Server
}

func newEnv(t *testing.T) *env {
	return &env{srv: s3test.Start(t)}
}

func (e *env) options(t *testing.T, dir string) Options {
	return Options{
		Config:     Config{Bucket: fmt.Sprintf("tfs-%d", bucketSeq.Add(1)), Prefix: "blobs/", Endpoint: e.srv.Endpoint, Region: "us-east-1"},
		StagingDir: filepath.Join(dir, "staging"),
		CacheDir:   filepath.Join(dir, "cache"),
		Timeout:    3 * time.Second,
		MaxBackoff: 200 * time.Millisecond,
		Creds:      credentials.NewStaticV4(e.srv.AccessKey, e.srv.SecretKey, ""),
	}
}

func open(t *testing.T, o Options) *Store {
	t.Helper()
	s, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func drain(t *testing.T, s *Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Drain(ctx); err != nil {
		t.Fatalf("Drain: %v", err)
	}
}

// dropCache empties the read cache, so the next Get downloads.
func (s *Store) dropCache() {
	s.cache.mu.Lock()
	var hs []blobstore.Hash
	for h := range s.cache.items {
		hs = append(hs, h)
	}
	s.cache.mu.Unlock()
	for _, h := range hs {
		s.cache.remove(h)
	}
}

// corruptible damages a blob in the bucket (after its upload) and drops
// every local copy.
type corruptible struct {
	*Store
	remoteOnly bool
}

func (c corruptible) Put(h blobstore.Hash, data []byte) (blobstore.Info, error) {
	info, err := c.Store.Put(h, data)
	if err != nil || !c.remoteOnly {
		return info, err
	}
	// Every other call then exercises the bucket path.
	if err := c.Drain(context.Background()); err != nil {
		return info, err
	}
	c.dropCache()
	return info, nil
}

func (c corruptible) Corrupt(h blobstore.Hash) error {
	if err := c.Drain(context.Background()); err != nil {
		return err
	}
	c.dropCache()
	ctx := context.Background()
	obj, err := c.client.GetObject(ctx, c.opts.Bucket, c.key(h), minio.GetObjectOptions{})
	if err != nil {
		return err
	}
	raw, err := readAll(obj)
	if err != nil {
		return err
	}
	raw[len(raw)-1] ^= 0x55
	_, err = c.client.PutObject(ctx, c.opts.Bucket, c.key(h), bytes.NewReader(raw), int64(len(raw)), minio.PutObjectOptions{})
	return err
}

func readAll(o *minio.Object) ([]byte, error) {
	defer o.Close()
	var b bytes.Buffer
	_, err := b.ReadFrom(o)
	return b.Bytes(), err
}

func TestConformance(t *testing.T) {
	e := newEnv(t)
	for _, mode := range []struct {
		name       string
		remoteOnly bool
	}{
		{"staged", false},     // reads race the uploaders
		{"bucket-only", true}, // every Put is uploaded and dropped locally first
	} {
		t.Run(mode.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) blobstore.Store {
				return corruptible{Store: open(t, e.options(t, t.TempDir())), remoteOnly: mode.remoteOnly}
			})
		})
	}
}

func TestRestartResumesUploads(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	o := e.options(t, dir)
	s := open(t, o) // creates the bucket
	s.Close()
	e.srv.Stop()
	s = open(t, o) // server down: Open still works
	var hs []blobstore.Hash
	for i := range 20 {
		data := storetest.Random(70<<10+i, uint64(i))
		h := blobstore.Sum(data)
		if _, err := s.Put(h, data); err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	if err := s.SyncBlobs(hs); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().PendingUploads; got != 20 {
		t.Fatalf("pending uploads with the server down = %d, want 20", got)
	}
	if s.Stats().UploadErrors == 0 {
		time.Sleep(300 * time.Millisecond) // let an uploader try (not asserted below if slow)
	}
	s.Close()
	if err := e.srv.Restart(); err != nil {
		t.Fatal(err)
	}
	s = open(t, o)
	defer s.Close()
	drain(t, s)
	st := s.Stats()
	if st.PendingUploads != 0 || st.Uploads != 20 {
		t.Fatalf("after restart: %+v, want 0 pending and 20 uploads", st)
	}
	// Staging is empty; the blobs are in the bucket.
	if n := countFiles(t, o.StagingDir); n != 0 {
		t.Errorf("%d files left in staging", n)
	}
	s.dropCache()
	for i, h := range hs {
		got, err := s.Get(h)
		if err != nil || !bytes.Equal(got, storetest.Random(70<<10+i, uint64(i))) {
			t.Fatalf("Get %d after upload: %v", i, err)
		}
	}
	if st := s.Stats(); st.Downloads != 20 || st.CacheMisses != 20 {
		t.Errorf("downloads %d, misses %d; want 20 each", st.Downloads, st.CacheMisses)
	}
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n
}

func TestServerDown(t *testing.T) {
	e := newEnv(t)
	o := e.options(t, t.TempDir())
	o.StagingBytes = 1 << 20
	s := open(t, o)
	defer s.Close()
	blob := func(i int) []byte { return storetest.Random(200<<10, uint64(1000+i)) }
	// Uploaded, then one is read back (cached) and one is evicted.
	cached, uncached := blob(0), blob(1)
	for _, d := range [][]byte{cached, uncached} {
		if _, err := s.Put(blobstore.Sum(d), d); err != nil {
			t.Fatal(err)
		}
	}
	drain(t, s)
	s.cache.remove(blobstore.Sum(uncached))

	e.srv.Stop()
	// Cached blobs still read.
	if got, err := s.Get(blobstore.Sum(cached)); err != nil || !bytes.Equal(got, cached) {
		t.Fatalf("cached Get with the server down: %v", err)
	}
	// Uncached ones fail with EIO (after the request timeout), not a hang.
	if _, err := s.Get(blobstore.Sum(uncached)); !errors.Is(err, syscall.EIO) {
		t.Fatalf("uncached Get with the server down: %v, want EIO", err)
	}
	// Writes go into staging up to the budget (1 MiB: five 200 KiB blobs),
	// then wait — no error — until the server returns.
	written := make(chan int, 20)
	errs := make(chan error, 1)
	go func() {
		for i := 2; i < 12; i++ {
			d := blob(i)
			if _, err := s.Put(blobstore.Sum(d), d); err != nil {
				errs <- err
				return
			}
			written <- i
		}
		close(written)
	}()
	// Wait for the writer to block on the budget.
	deadline := time.Now().Add(30 * time.Second)
	for s.Stats().StagingWaits == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("writer never waited for staging room: %+v", s.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := s.Stats(); st.PendingBytes > o.StagingBytes {
		t.Fatalf("staged %d bytes over a %d budget", st.PendingBytes, o.StagingBytes)
	}
	select {
	case err := <-errs:
		t.Fatalf("Put failed while waiting for room: %v", err)
	default:
	}
	if err := e.srv.Restart(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for range written {
		n++
	}
	select {
	case err := <-errs:
		t.Fatalf("Put: %v", err)
	default:
	}
	if n != 10 {
		t.Fatalf("%d of 10 writes done", n)
	}
	drain(t, s)
	s.dropCache()
	for i := range 12 {
		d := blob(i)
		if got, err := s.Get(blobstore.Sum(d)); err != nil || !bytes.Equal(got, d) {
			t.Fatalf("blob %d after the server came back: %v", i, err)
		}
	}
}

func TestCacheBoundAndRestart(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	o := e.options(t, dir)
	o.CacheBytes = 1 << 20
	s := open(t, o)
	var hs []blobstore.Hash
	for i := range 12 { // 12 × 128 KiB of incompressible data: over the budget
		d := storetest.Random(128<<10, uint64(i))
		h := blobstore.Sum(d)
		if _, err := s.Put(h, d); err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	drain(t, s)
	if st := s.Stats(); st.CacheBytes > o.CacheBytes || st.CacheBlobs == 0 {
		t.Fatalf("cache %d bytes in %d blobs, budget %d", st.CacheBytes, st.CacheBlobs, o.CacheBytes)
	}
	last := hs[len(hs)-1]
	if _, err := s.Get(last); err != nil {
		t.Fatal(err)
	}
	kept := s.Stats().CacheBlobs
	s.Close()
	s = open(t, o)
	defer s.Close()
	if st := s.Stats(); st.CacheBlobs != kept || st.CacheBytes > o.CacheBytes {
		t.Fatalf("after reopen the cache has %d blobs (%d bytes), had %d", st.CacheBlobs, st.CacheBytes, kept)
	}
	if _, err := s.Get(last); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.CacheHits != 1 || st.Downloads != 0 {
		t.Fatalf("read of a cached blob after reopen: %+v", st)
	}
	// An evicted blob comes from the bucket. Which ones were evicted
	// depends on the order the concurrent uploads finished in (each
	// uploaded blob enters the cache then), not on the order of the Puts.
	evicted := -1
	s.cache.mu.Lock()
	for i, h := range hs {
		if _, ok := s.cache.items[h]; !ok {
			evicted = i
			break
		}
	}
	s.cache.mu.Unlock()
	if evicted < 0 {
		t.Fatalf("all %d blobs cached within a budget of %d bytes", len(hs), o.CacheBytes)
	}
	if _, err := s.Get(hs[evicted]); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Downloads != 1 {
		t.Fatalf("read of an evicted blob: %d downloads, want 1", st.Downloads)
	}
}

func TestDeleteGrace(t *testing.T) {
	e := newEnv(t)
	o := e.options(t, t.TempDir())
	o.Grace = time.Hour
	s := open(t, o)
	defer s.Close()
	d := storetest.Random(100<<10, 7)
	h := blobstore.Sum(d)
	if _, err := s.Put(h, d); err != nil {
		t.Fatal(err)
	}
	drain(t, s)
	if err := s.Delete(h); !errors.Is(err, blobstore.ErrInGrace) {
		t.Fatalf("Delete of a fresh object: %v, want ErrInGrace", err)
	}
	if got, err := s.Get(h); err != nil || !bytes.Equal(got, d) {
		t.Fatalf("blob after a refused Delete: %v", err)
	}
	// With the server down Delete cannot tell whether the bucket holds the
	// blob: EIO, and the staged copy stays.
	e.srv.Stop()
	d2 := storetest.Random(100<<10, 8)
	h2 := blobstore.Sum(d2)
	if _, err := s.Put(h2, d2); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(h2); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Delete with the server down: %v, want EIO", err)
	}
	if got, err := s.Get(h2); err != nil || !bytes.Equal(got, d2) {
		t.Fatalf("staged blob after a failed Delete: %v", err)
	}
}

func TestSyncUpload(t *testing.T) {
	e := newEnv(t)
	o := e.options(t, t.TempDir())
	o.SyncUpload = true
	s := open(t, o)
	defer s.Close()
	d := storetest.JSON(300<<10, 9)
	h := blobstore.Sum(d)
	if _, err := s.Put(h, d); err != nil {
		t.Fatal(err)
	}
	if err := s.SyncBlobs([]blobstore.Hash{h}); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.PendingUploads != 0 || st.Uploads != 1 {
		t.Fatalf("after SyncBlobs with SyncUpload: %+v", st)
	}
	if _, _, err := s.statRemote(h); err != nil {
		t.Fatalf("object after SyncBlobs: %v", err)
	}
}

// A staged blob damaged by a crash is dropped at open (never uploaded);
// a good copy in the bucket still serves reads.
func TestDamagedStagedBlob(t *testing.T) {
	e := newEnv(t)
	o := e.options(t, t.TempDir())
	s := open(t, o)
	good := storetest.Random(90<<10, 21)
	h := blobstore.Sum(good)
	if _, err := s.Put(h, good); err != nil {
		t.Fatal(err)
	}
	drain(t, s)
	s.Close()
	// The blob reappears in staging, torn (as after a crash that lost the
	// removal but not the first bytes).
	staged := filepath.Join(o.StagingDir, h.String()[:2], h.String())
	raw, err := os.ReadFile(filepath.Join(o.CacheDir, h.String()[:2], h.String()))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(staged, raw[:len(raw)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(o.CacheDir)
	s = open(t, o)
	defer s.Close()
	if st := s.Stats(); st.PendingUploads != 0 {
		t.Fatalf("a damaged staged blob is pending upload: %+v", st)
	}
	if _, err := os.Stat(staged); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("damaged staged blob left in staging: %v", err)
	}
	if got, err := s.Get(h); err != nil || !bytes.Equal(got, good) {
		t.Fatalf("Get after dropping the damaged staged copy: %v", err)
	}
}

// TestPruneShards: once a blob is uploaded (moved from staging into the
// read cache) and deleted, both local stores' shard directories go; a
// later Put and Get make them again.
func TestPruneShards(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	o := e.options(t, dir)
	s := open(t, o)
	defer s.Close()
	d := storetest.Random(100<<10, 9)
	h := blobstore.Sum(d)
	if _, err := s.Put(h, d); err != nil {
		t.Fatal(err)
	}
	drain(t, s)
	if err := s.Delete(h); err != nil {
		t.Fatal(err)
	}
	n, freed, err := s.PruneShards()
	if err != nil || n == 0 || freed <= 0 {
		t.Fatalf("PruneShards = %d dirs, %d bytes, %v; want the emptied shards gone", n, freed, err)
	}
	for _, sub := range []string{"staging", "cache"} {
		if _, err := os.Stat(filepath.Join(dir, sub, h.String()[:2])); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: shard of the deleted blob still there (%v)", sub, err)
		}
	}
	if _, err := s.Put(h, d); err != nil {
		t.Fatalf("Put after the prune: %v", err)
	}
	drain(t, s)
	if got, err := s.Get(h); err != nil || !bytes.Equal(got, d) {
		t.Fatalf("Get after the prune: %d bytes, %v", len(got), err)
	}
}
