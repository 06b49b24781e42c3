package tests

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAccessLog reads .taskerfs/accesslog through the mount while another
// process works on the drive: each op shows up as a line naming it, and
// another user may not read the log.
func TestAccessLog(t *testing.T) {
	requireMountable(t)
	m := mountFS(t, newDataDir(t), "--allow-other")
	exposeToAll(t, m.Dir)
	f, err := os.Open(m.Path(".taskerfs", "accesslog"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := os.Stat(m.Path("sessions", "no-such-file-7f3a")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat: %v", err)
	}
	mustWrite(t, m.Path("sessions", "logged-5c1e"), []byte("x"))
	var log strings.Builder
	buf := make([]byte, 1<<16)
	for !strings.Contains(log.String(), "logged-5c1e") || !strings.Contains(log.String(), "release") {
		n, err := f.Read(buf) // blocks until the next lines arrive
		if err != nil {
			t.Fatalf("read the access log: %v (so far %q)", err, log.String())
		}
		log.Write(buf[:n])
	}
	for _, want := range []string{"lookup (2,no-such-file-7f3a): ENOENT", "create (2,logged-5c1e,", "write (", "[uid:0,gid:0,pid:"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("access log has no %q:\n%s", want, log.String())
		}
	}
	err = asUser(bob, func() error { _, err := os.Open(m.Path(".taskerfs", "accesslog")); return err })
	if !errors.Is(err, syscall.EACCES) {
		t.Errorf("bob opens the access log: %v, want EACCES", err)
	}
	f.Close()
	m.Unmount()
}

// TestGrepWholeDrive: `grep -r` over the whole mount ends. It reads every
// file it finds, and a read of the access log waits for the next
// operation, so the log is opened by name and not listed.
func TestGrepWholeDrive(t *testing.T) {
	requireMountable(t)
	requireTool(t, "grep")
	m := mountFS(t, newDataDir(t))
	mustMkdirAll(t, m.Path("sessions", "s1"))
	mustWrite(t, m.Path("sessions", "s1", "metadata.json"), []byte(`{"name":"quetzal-41d7"}`))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "grep", "-rl", "quetzal-41d7", m.Dir).Output()
	if ctx.Err() != nil {
		t.Fatalf("grep -r over the mount did not end within 60 s (found so far: %q)", out)
	}
	if err != nil || !strings.Contains(string(out), "sessions/s1/metadata.json") {
		t.Fatalf("grep -rl: %v, found %q", err, out)
	}
	m.Unmount()
}
