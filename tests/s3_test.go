package tests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/blobstore/s3"
	"github.com/taskerfs/taskerfs/blobstore/s3/s3test"
	"github.com/taskerfs/taskerfs/meta"
)

// s3Env starts a real S3 server (versitygw) for one test and exports its
// credentials the way a user would, for the daemons and commands the
// test runs. The flags are what `taskerfs mount` needs besides --data.
func s3Env(t *testing.T, bucket string, extra ...string) (*s3test.Server, []string) {
	t.Helper()
	requireMountable(t)
	srv := s3test.Start(t)
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	args := []string{"--blobs", "s3://" + bucket + "/device1", "--s3-endpoint", srv.Endpoint, "--s3-timeout", "3s"}
	return srv, append(args, extra...)
}

// s3Figures are the backend's figures in `taskerfs stats --json`.
type s3Figures struct {
	PendingUploads int64 `json:"pendingUploads"`
	Uploads        int64 `json:"uploads"`
	UploadErrors   int64 `json:"uploadErrors"`
	Downloads      int64 `json:"downloads"`
	DownloadErrors int64 `json:"downloadErrors"`
	CacheHits      int64 `json:"cacheHits"`
	StagingWaits   int64 `json:"stagingWaits"`

	// JournalPending (from the queue's figures): blobs an fsync journaled
	// that are not staged for upload yet.
	JournalPending int64 `json:"-"`
}

func s3Stats(t *testing.T, dataDir string) s3Figures {
	t.Helper()
	out := run(t, "", taskerfsBin, "stats", "--json", "--data", dataDir)
	var s struct {
		Blobstore *s3Figures `json:"blobstore"`
		Queue     *struct {
			JournalPending *int64 `json:"journalPending"`
		} `json:"queue"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil || s.Blobstore == nil {
		t.Fatalf("stats --json: no blobstore figures (%v):\n%s", err, out)
	}
	if s.Queue == nil || s.Queue.JournalPending == nil {
		t.Fatalf("stats --json: no queue.journalPending:\n%s", out)
	}
	f := *s.Blobstore
	f.JournalPending = *s.Queue.JournalPending
	return f
}

// waitUploaded waits (bounded) until the mount has no pending uploads:
// none staged, and none still journaled inline (an fsynced blob that a
// kill -9 left in the journal is staged only once the mover, after the
// next mount, moves it out).
func waitUploaded(t *testing.T, m *Mount) s3Figures {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st := s3Stats(t, m.Data)
		if st.PendingUploads == 0 && st.JournalPending == 0 {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("uploads still pending after 3 minutes: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dropLocalBlobs checks that an unmounted data dir stages nothing and
// empties its read cache, so every blob must come from the bucket.
func dropLocalBlobs(t *testing.T, dataDir string) {
	t.Helper()
	if n := countBlobFiles(t, filepath.Join(dataDir, "blobs")); n != 0 {
		t.Fatalf("%d blobs still staged after every upload was confirmed", n)
	}
	if err := os.RemoveAll(filepath.Join(dataDir, "s3cache")); err != nil {
		t.Fatal(err)
	}
}

// countBlobFiles counts blob files (64 hex names) under a Local store.
func countBlobFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && len(d.Name()) == 64 {
			n++
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return n
}

// bucketObjects counts the objects the server holds under bucket/prefix
// (the posix backend keeps one file per object).
func bucketObjects(t *testing.T, srv *s3test.Server, bucket string) int {
	t.Helper()
	return countBlobFiles(t, filepath.Join(srv.Dir, bucket))
}

// TestS3Tools runs the real-tool workloads on a mount whose blobs live in
// S3, then remounts with an empty local cache and reads everything back
// from the bucket; fsck and gc then work against the bucket.
func TestS3Tools(t *testing.T) {
	requireTool(t, "cp", "rsync", "tar", "sqlite3", "git", "sha256sum")
	srv, args := s3Env(t, "tools", "--s3-gc-grace", "0s")
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	makeMixedTree(t, src)
	mustWrite(t, filepath.Join(src, "big.bin"), randomBytes(40, 5<<20)) // several 1 MiB chunks
	sums := sha256Manifest(t, src)
	data := newDataDir(t)
	m := mountFS(t, data, args...)
	all := treeCompare{mtime: time.Nanosecond, hardLinks: true, xattrs: true}

	run(t, "", "cp", "-a", src, m.Path("sessions", "cp"))
	run(t, "", "rsync", "-aHX", src+"/", m.Path("sessions", "rsync")+"/")
	tarArgs := []string{"--format=posix", "--xattrs", "--xattrs-include=user.*"}
	archive := filepath.Join(tmp, "src.tar")
	run(t, "", "tar", append(tarArgs, "-C", src, "-cf", archive, ".")...)
	untarred := mustMkdirAll(t, m.Path("sessions", "untarred"))
	run(t, "", "tar", append(tarArgs, "-C", untarred, "-xpf", archive)...)

	db := filepath.Join(mustMkdirAll(t, m.Path("sessions", "db")), "test.db")
	runStdin(t, "", "PRAGMA journal_mode=WAL;\nCREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB);\n", "sqlite3", db)
	var sql strings.Builder
	sql.WriteString("BEGIN;\n")
	for i := 0; i < 2000; i++ {
		fmt.Fprintf(&sql, "INSERT INTO t(b) VALUES(randomblob(1000));\n")
	}
	sql.WriteString("COMMIT;\nPRAGMA wal_checkpoint(TRUNCATE);\n")
	runStdin(t, "", sql.String(), "sqlite3", db)
	dbSum := run(t, "", "sha256sum", db)[:64]

	repo := mustMkdirAll(t, m.Path("sessions", "repo"))
	git := func(args ...string) string {
		t.Helper()
		base := []string{"-c", "user.name=taskerfs test", "-c", "user.email=test@taskerfs.local", "-c", "init.defaultBranch=main"}
		return run(t, repo, "git", append(base, args...)...)
	}
	git("init", "-q")
	mustWrite(t, filepath.Join(repo, "data.bin"), randomBytes(41, 400<<10))
	git("add", ".")
	git("commit", "-q", "-m", "first")

	st := waitUploaded(t, m)
	if st.Uploads == 0 {
		t.Fatalf("nothing was uploaded: %+v", st)
	}
	m.Unmount()
	if n := bucketObjects(t, srv, "tools"); n == 0 {
		t.Fatal("the bucket holds no objects")
	}
	dropLocalBlobs(t, data)

	m.Start()
	for _, dir := range []string{"cp", "rsync", "untarred"} {
		run(t, m.Path("sessions", dir), "sha256sum", "--quiet", "--strict", "-c", sums)
		compareTrees(t, src, m.Path("sessions", dir), all)
	}
	run(t, "", "tar", "-C", untarred, "--compare", "-f", archive)
	if got := run(t, "", "sha256sum", db)[:64]; got != dbSum {
		t.Errorf("sqlite db after the round trip through S3: sha256 %s, want %s", got, dbSum)
	}
	out := runStdin(t, "", "PRAGMA integrity_check;\nSELECT count(*) FROM t;\n", "sqlite3", db)
	if got := strings.Fields(out); strings.Join(got, " ") != "ok 2000" {
		t.Errorf("sqlite after the round trip: %q", got)
	}
	git("fsck", "--full", "--strict")
	if st := s3Stats(t, data); st.Downloads == 0 || st.DownloadErrors != 0 {
		t.Errorf("reads with an empty cache: %+v, want downloads and no errors", st)
	}
	// gc against the bucket: deleting a tree frees its objects.
	before := bucketObjects(t, srv, "tools")
	run(t, "", "rm", "-rf", m.Path("sessions", "cp"), m.Path("sessions", "rsync"), m.Path("sessions", "untarred"), m.Path("sessions", "repo"))
	run(t, "", taskerfsBin, "sync", "--data", m.Data)
	out = run(t, "", taskerfsBin, "gc", "--data", data)
	if after := bucketObjects(t, srv, "tools"); after >= before {
		t.Errorf("gc (%s): bucket objects %d -> %d, want fewer", strings.TrimSpace(out), before, after)
	}
	if got := run(t, "", "sha256sum", db)[:64]; got != dbSum {
		t.Errorf("sqlite db after gc: sha256 %s, want %s", got, dbSum)
	}
	m.Unmount()
	// fsck reads every blob from the bucket (the data dir remembers it).
	out = run(t, "", taskerfsBin, "fsck", "--data", data)
	if !strings.Contains(out, "fsck: clean") {
		t.Errorf("fsck against the bucket:\n%s", out)
	}
}

// TestS3ServerDown stops the S3 server in the middle of a workload.
func TestS3ServerDown(t *testing.T) {
	srv, args := s3Env(t, "down", "--s3-staging-bytes", "4194304")
	data := newDataDir(t)
	m := mountFS(t, data, args...)
	dir := mustMkdirAll(t, m.Path("sessions", "s"))
	hot, cold := randomBytes(50, 2<<20), randomBytes(51, 2<<20)
	mustWrite(t, filepath.Join(dir, "hot.bin"), hot)
	mustWrite(t, filepath.Join(dir, "cold.bin"), cold)
	waitUploaded(t, m)
	m.Unmount()
	dropLocalBlobs(t, data)
	m.Start()
	if got := mustRead(t, filepath.Join(dir, "hot.bin")); !bytes.Equal(got, hot) {
		t.Fatal("hot.bin differs")
	}

	srv.Stop()
	// Cached blobs still read.
	if got := mustRead(t, filepath.Join(dir, "hot.bin")); !bytes.Equal(got, hot) {
		t.Fatal("hot.bin differs with the server down")
	}
	// An uncached blob: EIO after the request timeout, not a hang.
	readErr := make(chan error, 1)
	go func() { _, err := os.ReadFile(filepath.Join(dir, "cold.bin")); readErr <- err }()
	select {
	case err := <-readErr:
		if !errors.Is(err, syscall.EIO) {
			t.Fatalf("read of an uncached file with the server down: %v, want EIO", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("read of an uncached file with the server down hangs")
	}
	// Writes go on into staging (4 MiB budget), then wait; none fails.
	const n = 12
	want := make([][]byte, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		want[i] = randomBytes(uint64(100+i), 1<<20)
		wg.Go(func() {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("w%02d.bin", i)), want[i], 0o644); err != nil {
				errs <- err
			}
		})
	}
	deadline := time.Now().Add(2 * time.Minute)
	for s3Stats(t, data).StagingWaits == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no write waited for staging room with the server down: %+v", s3Stats(t, data))
		}
		time.Sleep(100 * time.Millisecond)
	}
	for s3Stats(t, data).UploadErrors == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no upload errors counted with the server down: %+v", s3Stats(t, data))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("write while the server was down: %v", err)
	}
	run(t, "", taskerfsBin, "sync", "--data", m.Data)
	waitUploaded(t, m)
	m.Unmount()
	dropLocalBlobs(t, data)
	m.Start()
	if got := mustRead(t, filepath.Join(dir, "cold.bin")); !bytes.Equal(got, cold) {
		t.Fatal("cold.bin differs after the server returned")
	}
	for i := range n {
		if got := mustRead(t, filepath.Join(dir, fmt.Sprintf("w%02d.bin", i))); !bytes.Equal(got, want[i]) {
			t.Fatalf("w%02d.bin differs after the server returned", i)
		}
	}
	m.Unmount()
}

// TestS3Kill9 kills the daemon while uploads are in flight (and while the
// server is down): nothing fsynced is lost, and the next mount resumes
// the uploads.
func TestS3Kill9(t *testing.T) {
	srv, args := s3Env(t, "kill")
	data := newDataDir(t)
	m := mountFS(t, data, args...)
	dir := mustMkdirAll(t, m.Path("sessions", "k"))
	const n = 16
	want := make([][]byte, n)
	write := func(i int) {
		t.Helper()
		want[i] = randomBytes(uint64(200+i), 700<<10)
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("f%02d.bin", i)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(want[i]); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n / 2 {
		write(i)
	}
	syncDir(t, dir)
	m.Kill() // uploads of the last files are likely in flight
	m.Start()
	srv.Stop()
	for i := n / 2; i < n; i++ {
		write(i)
	}
	syncDir(t, dir)
	m.Kill() // with every upload of these pending
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	m.Start()
	waitUploaded(t, m)
	m.Unmount()
	dropLocalBlobs(t, data)
	m.Start()
	for i := range n {
		if got := mustRead(t, filepath.Join(dir, fmt.Sprintf("f%02d.bin", i))); !bytes.Equal(got, want[i]) {
			t.Fatalf("f%02d.bin differs after kill -9 and an empty cache", i)
		}
	}
	if st := s3Stats(t, data); st.Downloads == 0 {
		t.Errorf("no downloads after dropping the cache: %+v", st)
	}
	m.Unmount()
}

// TestS3ServerHangs freezes the server (it accepts connections and never
// answers): closes and fsyncs do not wait for it while staging has room,
// a read of an uncached file fails with EIO after the request timeout
// instead of hanging, and uploads finish once the server answers again.
func TestS3ServerHangs(t *testing.T) {
	srv, args := s3Env(t, "hang")
	data := newDataDir(t)
	m := mountFS(t, data, args...)
	dir := mustMkdirAll(t, m.Path("sessions", "h"))
	cold := randomBytes(60, 1<<20)
	mustWrite(t, filepath.Join(dir, "cold.bin"), cold)
	waitUploaded(t, m)
	m.Unmount()
	dropLocalBlobs(t, data)
	m.Start()

	srv.Pause()
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	const n = 8
	want := make([][]byte, n)
	done := make(chan error, 1)
	go func() {
		for i := range n {
			want[i] = randomBytes(uint64(300+i), 300<<10)
			f, err := os.Create(filepath.Join(dir, fmt.Sprintf("s%02d.bin", i)))
			if err == nil {
				_, err = f.Write(want[i])
			}
			if err == nil {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("write+fsync with the server hung: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("fsync waits for a hung S3 server although staging has room")
	}
	readErr := make(chan error, 1)
	go func() { _, err := os.ReadFile(filepath.Join(dir, "cold.bin")); readErr <- err }()
	select {
	case err := <-readErr:
		if !errors.Is(err, syscall.EIO) {
			t.Fatalf("read of an uncached file with the server hung: %v, want EIO", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("read of an uncached file hangs with the server hung")
	}
	if st := s3Stats(t, data); st.PendingUploads == 0 {
		t.Errorf("no pending uploads with the server hung: %+v", st)
	}
	srv.Resume()
	resumed = true
	waitUploaded(t, m)
	m.Unmount()
	dropLocalBlobs(t, data)
	m.Start()
	if got := mustRead(t, filepath.Join(dir, "cold.bin")); !bytes.Equal(got, cold) {
		t.Fatal("cold.bin differs after the server resumed")
	}
	for i := range n {
		if got := mustRead(t, filepath.Join(dir, fmt.Sprintf("s%02d.bin", i))); !bytes.Equal(got, want[i]) {
			t.Fatalf("s%02d.bin differs after the server resumed", i)
		}
	}
	m.Unmount()
}

// TestS3CrashKill9 is TestCrashKill9 on a mount whose blobs live in S3:
// the daemon is SIGKILLed at random moments while uploads are in flight
// (and, every other cycle, with the server down so that every upload is
// pending); every fsync-acknowledged file must read back after the
// remount, none torn.
func TestS3CrashKill9(t *testing.T) {
	srv, args := s3Env(t, "crash")
	cycles := min(crashCycles(t), 10)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %d cycles", seed, cycles)
	rng := rand.New(rand.NewPCG(seed, 2))
	m := mountFS(t, newDataDir(t), args...)
	dir := mustMkdirAll(t, m.Path("crash"))
	if err := fsyncDir(m.Dir); err != nil {
		t.Fatal(err)
	}
	all := &versions{set: map[sum]bool{}}
	var ids atomic.Int64
	var seq atomic.Uint64
	var lastUnsyncedClose atomic.Int64
	writers := make([]*crashWriter, crashWriters)
	for i := range writers {
		writers[i] = newCrashWriter(i, dir, seed, all, &ids, &seq, &lastUnsyncedClose)
	}
	for cycle := range cycles {
		down := cycle%2 == 1
		if down {
			srv.Stop()
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for _, w := range writers {
			wg.Go(func() { w.run(stop) })
		}
		time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond)
		m.Kill()
		close(stop)
		wg.Wait()
		if down {
			if err := srv.Restart(); err != nil {
				t.Fatal(err)
			}
		}
		checkS3DataDirOffline(t, srv, m.Data, fmt.Sprintf("cycle %d", cycle))
		m.Start()
		verifyCrashDir(t, dir, writers, cycle)
		if t.Failed() {
			return
		}
	}
	acks := 0
	for _, w := range writers {
		acks += w.acks
	}
	if acks == 0 {
		t.Fatal("no operation was ever acknowledged: the test checked nothing")
	}
	// Finally every blob must be readable from the bucket alone.
	waitUploaded(t, m)
	m.Unmount()
	dropLocalBlobs(t, m.Data)
	m.Start()
	verifyCrashDir(t, dir, writers, cycles)
	m.Unmount()
}

// checkS3DataDirOffline is checkDataDirOffline for a data dir with S3
// blobs: namespace checks, and every referenced blob readable (staged,
// cached or in the bucket).
func checkS3DataDirOffline(t *testing.T, srv *s3test.Server, dataDir, when string) {
	t.Helper()
	cfg, ok, err := s3.LoadConfig(dataDir)
	if err != nil || !ok {
		t.Fatalf("%s: the data dir does not remember its bucket (%v)", when, err)
	}
	blobs, err := s3.Open(s3.Options{Config: cfg, StagingDir: filepath.Join(dataDir, "blobs"), CacheDir: filepath.Join(dataDir, "s3cache"),
		Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, "")})
	if err != nil {
		t.Fatalf("%s: open blobs: %v", when, err)
	}
	defer blobs.Close()
	s, err := meta.Open(filepath.Join(dataDir, "meta"), meta.Options{Blobs: blobs})
	if err != nil {
		t.Fatalf("%s: open namespace after the crash: %v", when, err)
	}
	defer s.Close()
	if err := s.Check(func(p meta.Problem) { t.Errorf("%s: fsck: %s", when, p) }); err != nil {
		t.Fatalf("%s: fsck: %v", when, err)
	}
	err = s.RefBlobs(func(h blobstore.Hash, info meta.BlobInfo) error {
		if _, err := s.Blob(h); err != nil {
			t.Errorf("%s: a manifest points at blob %s (inline %v), which cannot be read: %v", when, h, info.Inline, err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: list blobs: %v", when, err)
	}
}

// TestS3SyncUpload: with --s3-sync-upload, fsync returns only once the
// file's blobs are in the bucket: not while the server is frozen, and
// afterwards an fsynced file survives a crash that also loses every local
// blob (staging and cache).
func TestS3SyncUpload(t *testing.T) {
	srv, args := s3Env(t, "syncup", "--s3-sync-upload")
	data := newDataDir(t)
	m := mountFS(t, data, args...)
	dir := mustMkdirAll(t, m.Path("sessions", "u"))
	want := randomBytes(70, 3<<20)
	srv.Pause()
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	synced := make(chan error, 1)
	go func() {
		f, err := os.Create(filepath.Join(dir, "f.bin"))
		if err != nil {
			synced <- err
			return
		}
		defer f.Close()
		if _, err := f.Write(want); err != nil {
			synced <- err
			return
		}
		synced <- f.Sync()
	}()
	// Once an upload attempt has failed the blobs are staged and durable
	// locally: an fsync that did not wait for the bucket has returned.
	deadline := time.Now().Add(2 * time.Minute)
	for s3Stats(t, data).UploadErrors == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no upload attempt failed with the server frozen: %+v", s3Stats(t, data))
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case err := <-synced:
		t.Fatalf("fsync returned (%v) while the server was frozen and the blobs not uploaded", err)
	default:
	}
	srv.Resume()
	resumed = true
	select {
	case err := <-synced:
		if err != nil {
			t.Fatalf("fsync: %v", err)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("fsync did not return after the server resumed")
	}
	syncDir(t, dir)
	m.Kill()
	for _, d := range []string{"blobs", "s3cache"} {
		if err := os.RemoveAll(filepath.Join(data, d)); err != nil {
			t.Fatal(err)
		}
	}
	m.Start()
	if got := mustRead(t, filepath.Join(dir, "f.bin")); !bytes.Equal(got, want) {
		t.Fatal("an fsynced file is lost with the local blobs although --s3-sync-upload was set")
	}
	m.Unmount()
}
