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

// TestKernelInodesBounded: past --max-kernel-inodes the daemon asks the
// kernel to forget the inodes it learned first (FUSE_NOTIFY_PRUNE), so
// what the daemon keeps per file stays bounded on a large tree; every file
// still reads back whole, an open file is not lost, and fsck is clean.
func TestKernelInodesBounded(t *testing.T) {
	m := mountFS(t, newDataDir(t), "--max-kernel-inodes", "400")
	open, err := os.Create(m.Path("sessions", "kept-open"))
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	const dirs, files = 12, 150
	for i := range dirs {
		d := mustMkdirAll(t, m.Path("sessions", fmt.Sprintf("s%02d", i)))
		for j := range files {
			if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%03d", j)), fmt.Appendf(nil, "file %d/%d", i, j), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	held := func() int {
		out := run(t, "", taskerfsBin, "stats", "--data", m.Data)
		for _, line := range strings.Split(out, "\n") {
			if rest, ok := strings.CutPrefix(line, "files the kernel holds"); ok {
				var n int
				if _, err := fmt.Sscan(rest, &n); err == nil {
					return n
				}
			}
		}
		t.Fatalf("stats shows no kernel-held files:\n%s", out)
		return 0
	}
	untilForgotten(t, func() error {
		if n := held(); n > 400 {
			return fmt.Errorf("the kernel holds %d files, over the bound of 400 inodes", n)
		}
		return nil
	})
	for i := range dirs {
		for j := range files {
			p := m.Path("sessions", fmt.Sprintf("s%02d", i), fmt.Sprintf("f%03d", j))
			if got, err := os.ReadFile(p); err != nil || string(got) != fmt.Sprintf("file %d/%d", i, j) {
				t.Fatalf("%s: %q, %v", p, got, err)
			}
		}
	}
	if _, err := open.WriteString("still here"); err != nil {
		t.Fatal(err)
	}
	if err := open.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(m.Path("sessions", "kept-open")); err != nil || string(got) != "still here" {
		t.Fatalf("the file kept open: %q, %v", got, err)
	}
	m.Unmount()
	if out, err := runErr("", taskerfsBin, "fsck", "--data", m.Data); err != nil {
		t.Fatalf("fsck: %v\n%s", err, out)
	}
}
