package vfs

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAccessLog: a reader of .taskerfs/accesslog sees each operation as it
// happens, one line with time, caller, op, arguments, result and duration;
// its own reads are not logged; nobody reading costs nothing.
func TestAccessLog(t *testing.T) {
	f := newTFS(t)
	root := rootCtx()
	if f.v.obs.log.active() {
		t.Fatal("access log active with no reader")
	}
	e := f.mustWalk(root, ".taskerfs/accesslog")
	h, err := f.o.Open(root, e.Node, syscall.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	if h.KeepCache() {
		t.Error("the access log is served with the page cache")
	}
	if !f.v.obs.log.active() {
		t.Fatal("access log inactive with a reader")
	}
	alice := NewCtx(context.Background(), 1000, 1000, 4321)
	if _, err := f.o.Lookup(alice, f.o.Root(), "no-such-name"); !errors.Is(err, syscall.ENOENT) {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := f.o.Read(root, h, buf, 0)
	if err != nil {
		t.Fatal(err)
	}
	line := string(buf[:n])
	for _, want := range []string{"[uid:1000,gid:1000,pid:4321]", " lookup (1,no-such-name): ENOENT <"} {
		if !strings.Contains(line, want) {
			t.Errorf("access log line %q has no %q", line, want)
		}
	}
	if _, err := time.Parse("2006.01.02 15:04:05.000000", line[:26]); err != nil {
		t.Errorf("line does not start with a time: %q", line)
	}
	// Nothing else happened: a read waits, and ends with the request.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if n, err := f.o.Read(NewCtx(ctx, 0, 0, 0), h, buf, 0); n != 0 || !errors.Is(err, syscall.EINTR) {
		t.Errorf("read with nothing logged: %q, %v; want EINTR when interrupted (its own reads are not logged)", buf[:n], err)
	}
	if err := f.o.Release(root, h); err != nil {
		t.Fatal(err)
	}
	if f.v.obs.log.active() {
		t.Error("access log active after its reader closed")
	}
	// Only root and the owner may open it.
	if _, err := f.o.Open(NewCtxGroups(1000, 1000), e.Node, syscall.O_RDONLY); !errors.Is(err, syscall.EACCES) {
		t.Errorf("another user opens the access log: %v, want EACCES", err)
	}
}

// TestCtxGroups reads supplementary groups from /proc for a live process.
func TestCtxGroups(t *testing.T) {
	c := NewCtxGroups(5, 7, 9, 3, 7)
	if got := c.Gids(); len(got) != 3 || got[0] != 3 || got[1] != 7 || got[2] != 9 || !c.inGroup(9) || c.inGroup(5) {
		t.Errorf("gids %v", got)
	}
	if g := readProcGroups(1 << 30); g != nil {
		t.Errorf("groups of a missing process: %v", g)
	}
}

// BenchmarkDone is the seam's bookkeeping per op with nobody reading the
// access log: a timer, a counter and a histogram observation.
func BenchmarkDone(b *testing.B) {
	f := newTFS(b)
	c := rootCtx()
	for b.Loop() {
		var err error
		f.v.done(c, "read", time.Now(), &err, func() string { return "x" })
	}
}

// TestAccessLogUnlisted: .taskerfs lists its finite files and not the
// access log, whose reads wait for the next operation (grep -r over the
// mount would wait on it forever); it still opens by name.
func TestAccessLogUnlisted(t *testing.T) {
	f := newTFS(t)
	root := rootCtx()
	got := strings.Join(f.names(root, ".taskerfs"), " ")
	if got != "README.md metrics stats.json" {
		t.Fatalf(".taskerfs lists %q, want README.md metrics stats.json", got)
	}
	if e := f.mustWalk(root, ".taskerfs/accesslog"); e.Attr.Mode&syscall.S_IFMT != syscall.S_IFREG {
		t.Fatalf("accesslog by name: mode %#o", e.Attr.Mode)
	}
}

// TestOpCountersByResult: every result of an op has its own counter, and a
// counter looked up once keeps counting (the per-errno cache).
func TestOpCountersByResult(t *testing.T) {
	f := newTFS(t)
	root := rootCtx()
	counter := func(op, result string) string {
		m, err := f.v.MetricsText()
		if err != nil {
			t.Fatal(err)
		}
		prefix := `taskerfs_fuse_ops_total{op="` + op + `",result="` + result + `"} `
		for _, line := range strings.Split(string(m), "\n") {
			if v, ok := strings.CutPrefix(line, prefix); ok {
				return v
			}
		}
		return "absent"
	}
	for range 3 {
		if _, err := f.o.Lookup(root, f.o.Root(), "missing"); !errors.Is(err, syscall.ENOENT) {
			t.Fatalf("lookup of a missing name: %v", err)
		}
	}
	for range 2 {
		if _, err := f.o.Mkdir(root, f.o.Root(), "sessions", 0o755); !errors.Is(err, syscall.EEXIST) {
			t.Fatalf("mkdir sessions: %v", err)
		}
	}
	if _, err := f.o.Mkdir(root, f.o.Root(), "new", 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ op, result, want string }{
		{"lookup", "ENOENT", "3"},
		{"mkdir", "EEXIST", "2"},
		{"mkdir", "ok", "1"},
		{"mkdir", "ENOENT", "absent"},
	} {
		if got := counter(c.op, c.result); got != c.want {
			t.Errorf("%s %s: counter %s, want %s", c.op, c.result, got, c.want)
		}
	}
}
