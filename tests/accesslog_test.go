package tests

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
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
