// Package s3test starts a real S3 server (Versity S3 Gateway, posix
// backend) on 127.0.0.1 for tests: a random port, a temp dir, stopped at
// cleanup. Tests find the binary through $TASKERFS_VERSITYGW, then PATH,
// then $(go env GOPATH)/bin; .ci/run installs it there. Without it a test
// skips, except under CI=true, where it fails.
package s3test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Install is the command .ci/run uses to build the server.
const Install = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// Server is one running (or stopped) gateway.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Dir       string // the posix backend's root: one directory per bucket

	t    testing.TB
	bin  string
	addr string
	log  *os.File

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Binary locates versitygw, skipping (or, under CI=true, failing) the
// test when it is absent.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("TASKERFS_VERSITYGW"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("TASKERFS_VERSITYGW=%s: %v", p, err)
		}
		return p
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, d := range filepath.SplitList(strings.TrimSpace(string(out))) {
			p := filepath.Join(d, "bin", "versitygw")
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	msg := "S3 test server versitygw not found (set TASKERFS_VERSITYGW or run: " + Install + ")"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Start runs a fresh server and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	log, err := os.Create(filepath.Join(dir, "..", "versitygw-"+strconv.Itoa(os.Getpid())+"-"+filepath.Base(dir)+".log"))
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &Server{Endpoint: "http://" + addr, AccessKey: "taskerfs-test-access", SecretKey: "taskerfs-test-secret-key",
		Dir: root, t: t, bin: bin, addr: addr, log: log}
	t.Cleanup(func() {
		s.Stop()
		log.Close()
		if t.Failed() {
			if b, err := os.ReadFile(log.Name()); err == nil && len(b) > 0 {
				t.Logf("versitygw log:\n%s", tail(b, 4000))
			}
		}
		os.Remove(log.Name())
	})
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	return s
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// Env is the credential environment for clients of this server (what a
// user exports before `taskerfs mount --blobs s3://...`).
func (s *Server) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + s.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s.SecretKey, "AWS_REGION=us-east-1"}
}

// Restart starts the server again (same port, same data) after Stop, and
// waits until it accepts connections.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("versitygw already running")
	}
	cmd := exec.Command(s.bin, "--port", s.addr, "--quiet", "posix", s.Dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+s.AccessKey, "ROOT_SECRET_ACCESS_KEY="+s.SecretKey)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start versitygw: %w", err)
	}
	exited := make(chan error, 1)
	done := make(chan struct{})
	go func() { exited <- cmd.Wait(); close(done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			return fmt.Errorf("versitygw exited at start: %v (log %s)", err, s.log.Name())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("versitygw did not listen on %s within 60 s", s.addr)
		}
	}
	s.cmd, s.done = cmd, done
	return nil
}

// Pause freezes the server (SIGSTOP): connections are accepted by the
// kernel but never answered, as with a hung server or a dead link.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume undoes Pause.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.cmd.Process.Signal(sig)
	}
}

// Stop kills the server (as a crash or a network cut would look to a
// client) and waits for it to exit.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill() // also ends a paused server
	<-s.done
	s.cmd = nil
}
