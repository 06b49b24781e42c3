package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDeletedFilesFreeTheirSpace: files the kernel looked up several times
// (create, ls -l, stat, read) and then deleted are freed once the kernel
// forgets them, so gc gives their blobs back without a remount. (A kernel
// reference counted once per lookup reply kept every such file as an orphan
// until the next mount.)
func TestDeletedFilesFreeTheirSpace(t *testing.T) {
	m := mountFS(t, newDataDir(t))
	dir := mustMkdirAll(t, m.Path("sessions", "forget"))
	const n = 20
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("f%d", i))
		if err := os.WriteFile(p, randomBytes(uint64(i+1), 200<<10), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		run(t, "", "ls", "-l", dir)
		for i := range n {
			p := filepath.Join(dir, fmt.Sprintf("f%d", i))
			if _, err := os.ReadFile(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	run(t, "", taskerfsBin, "sync", "--data", m.Data)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	untilForgotten(t, func() error {
		out := run(t, "", taskerfsBin, "gc", "--data", m.Data)
		if files, _ := blobUsage(t, m.Data); files != 0 {
			return fmt.Errorf("%d blob files left after deleting every file and gc (%s)", files, strings.TrimSpace(out))
		}
		return nil
	})
}
