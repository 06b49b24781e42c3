package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// flipBlobByte damages the blob file of content in the middle of its payload.
func flipBlobByte(t *testing.T, data string, content []byte) {
	t.Helper()
	sum := sha256.Sum256(content)
	p := blobFilePath(data, hex.EncodeToString(sum[:]))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("the blob file of the test content: %v", err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDamageDoesNotSpread: through the mount, writing content whose blob
// on disk is damaged stores it again (the new file reads back, and so does
// the old one), rather than deduplicating onto the damage and answering
// EIO after a successful fsync; fsck --repair --from heals a damaged blob
// from a good copy elsewhere.
func TestDamageDoesNotSpread(t *testing.T) {
	requireMountable(t)
	data := newDataDir(t)
	m := mountFS(t, data)
	dir := mustMkdirAll(t, m.Path("sessions", "s1", "attachments"))
	content := crashContent(300<<10, 42) // random: stored raw, in its own blob file
	mustWrite(t, filepath.Join(dir, "a.jpg"), content)
	m.Unmount()

	flipBlobByte(t, data, content)
	m.Start()
	// The cache of the new daemon is cold: a.jpg is unreadable now.
	if _, err := os.ReadFile(filepath.Join(dir, "a.jpg")); err == nil {
		t.Fatal("a damaged blob read back without an error")
	}
	f, err := os.Create(filepath.Join(dir, "b.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync of the rewrite: %v", err)
	}
	f.Close()
	m.Remount() // past every cache
	for _, name := range []string{"b.jpg", "a.jpg"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("%s after a correct rewrite of the same content: %d bytes, %v", name, len(got), err)
		}
	}
	m.Unmount()

	// fsck --repair heals from a good copy outside the data dir.
	flipBlobByte(t, data, content)
	mustTaskerfs(t, 4, "fsck", "--data", data)
	backup := t.TempDir()
	if err := os.WriteFile(filepath.Join(backup, "a.jpg"), content, 0o600); err != nil {
		t.Fatal(err)
	}
	mustTaskerfs(t, 1, "fsck", "--repair", "--from", backup, "--data", data)
	mustTaskerfs(t, 0, "fsck", "--data", data)
	m.Start()
	if got := mustRead(t, filepath.Join(dir, "a.jpg")); !bytes.Equal(got, content) {
		t.Fatalf("a.jpg after fsck --repair --from: %d bytes", len(got))
	}
}

// TestStoreGoneStopsTheDaemon: when the data dir is removed from under a
// live mount, pebble finds a table file missing and reports the store
// unusable. The daemon then stops, so every access fails at once
// (ENOTCONN) and `taskerfs umount` clears the mount. Before, go-fuse
// recovered pebble's panic inside the handler, the table stayed half
// loaded in pebble's cache, and every later read of it (and the
// application doing it) waited forever in the kernel.
func TestStoreGoneStopsTheDaemon(t *testing.T) {
	requireMountable(t)
	data := newDataDir(t)
	m := mountFS(t, data)
	// 12 MiB of small files, stored inline in pebble: more than a
	// memtable holds, so table files are written while the daemon runs.
	for s := range 40 {
		dir := mustMkdirAll(t, m.Path("sessions", fmt.Sprintf("s%02d", s), "attachments"))
		mustWrite(t, filepath.Join(dir, "..", "metadata.json"), []byte(fmt.Sprintf(`{"id":"s%02d","name":"session %d"}`, s, s)))
		for i := range 5 {
			mustWrite(t, filepath.Join(dir, fmt.Sprintf("%d.jpg", i)), crashContent(60<<10, uint64(s*10+i)))
		}
	}
	mustTaskerfs(t, 0, "sync", "--data", data)
	// The daemon may be writing a table while the dir goes: remove again.
	var err error
	for range 20 {
		if err = os.RemoveAll(data); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}

	walked := make(chan struct{})
	go func() {
		defer close(walked)
		filepath.WalkDir(m.Dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() && d.Name() == ".taskerfs" {
				return filepath.SkipDir // its access log streams until the daemon stops
			}
			if err == nil && d.Type().IsRegular() {
				os.ReadFile(p)
			}
			return nil // errors are expected: the store is gone
		})
	}()
	select {
	case <-walked:
	case <-time.After(60 * time.Second):
		abortFuseConn(m.conn) // frees the walk, and the test can clean up
		<-walked
		t.Fatalf("a walk of the mount still waited 60 s after its data dir was removed; stderr:\n%s", m.Stderr())
	}
	select {
	case <-m.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("the daemon still runs 30 s after its store became unusable; stderr:\n%s", m.Stderr())
	}
	var exit *exec.ExitError
	if !errors.As(m.waitErr, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("daemon exit: %v, want exit status 3; stderr:\n%s", m.waitErr, m.Stderr())
	}
	if !strings.Contains(m.Stderr(), "metadata store is unusable") {
		t.Fatalf("the daemon did not say why it stopped; stderr:\n%s", m.Stderr())
	}
	if _, err := os.Stat(m.Path("never-looked-up")); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("a lookup through the stopped daemon's mount: %v, want ENOTCONN", err)
	}
	if out, err := exec.Command(taskerfsBin, "umount", m.Dir).CombinedOutput(); err != nil {
		t.Fatalf("taskerfs umount of the stopped daemon's mount: %v\n%s", err, out)
	}
	if isMountpoint(m.Dir) || isStale(m.Dir) {
		t.Fatalf("%s is still mounted after taskerfs umount", m.Dir)
	}
}
