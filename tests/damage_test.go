package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
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
