package main

import (
	"errors"
	"fmt"
	"io"
	"log"
	"log/syslog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A background mount re-executes the binary as a daemon in its own
// session. The daemon reports on an inherited pipe, whose fd number is in
// daemonStatusEnv: "READY" once the kernel has the mount, or "ERR <why>".
// Until then its stderr is a second pipe that the starting command copies
// to its own stderr, so fusermount3's complaints reach the user.
const daemonStatusEnv = "TASKERFS_DAEMON_STATUS_FD"

// Files the daemon keeps in the data dir.
const (
	pidFileName = "taskerfs.pid"
	logFileName = "taskerfs.log"
	// logRotateBytes: a log bigger than this at start moves to .1.
	logRotateBytes = 8 << 20
)

// startDaemon runs this command again as a background daemon and returns
// once the mount is ready, or with the error that stopped the daemon.
func startDaemon() error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("--background: cannot find the taskerfs binary: %w", err)
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer statusR.Close()
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		statusW.Close()
		return err
	}
	defer stderrR.Close()
	devNull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		statusW.Close()
		stderrW.Close()
		return err
	}
	cmd := &exec.Cmd{
		Path:       exe,
		Args:       os.Args,
		Env:        append(os.Environ(), daemonStatusEnv+"=3"),
		Stdin:      devNull,
		Stdout:     devNull,
		Stderr:     stderrW,
		ExtraFiles: []*os.File{statusW},
		// Its own session: the terminal's Ctrl-C and hangup are not for it.
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	err = cmd.Start()
	statusW.Close()
	stderrW.Close()
	devNull.Close()
	if err != nil {
		return fmt.Errorf("--background: start the daemon: %w", err)
	}
	copied := make(chan struct{})
	go func() {
		io.Copy(os.Stderr, stderrR)
		close(copied)
	}()
	status, _ := io.ReadAll(statusR)
	msg := strings.TrimSpace(string(status))
	// The daemon has let go of the stderr pipe by now (it exited, or moved
	// stderr to its log); the bound only guards against a stray holder.
	waitCopied := func() {
		select {
		case <-copied:
		case <-time.After(2 * time.Second):
		}
	}
	switch {
	case msg == "READY":
		waitCopied()
		return cmd.Process.Release()
	case strings.HasPrefix(msg, "ERR "):
		werr := cmd.Wait()
		waitCopied()
		code := 1
		var ee *exec.ExitError
		if errors.As(werr, &ee) && ee.ExitCode() > 0 {
			code = ee.ExitCode()
		}
		return &exitError{code: code, err: errors.New(strings.TrimPrefix(msg, "ERR "))}
	default:
		werr := cmd.Wait()
		waitCopied()
		return fmt.Errorf("the taskerfs daemon exited before the mount was ready (%v)", werr)
	}
}

// daemonChild is the background daemon's side of the start-up handshake.
type daemonChild struct {
	status *os.File
	ready  bool
}

// daemonChildFromEnv returns the handshake when this process is a
// background daemon, nil otherwise.
func daemonChildFromEnv() *daemonChild {
	v := os.Getenv(daemonStatusEnv)
	if v == "" {
		return nil
	}
	os.Unsetenv(daemonStatusEnv) // not for fusermount3 or other children
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil
	}
	// Inherited without close-on-exec; no child of ours may keep the
	// starting command waiting.
	unix.CloseOnExec(fd)
	return &daemonChild{status: os.NewFile(uintptr(fd), "daemon-status")}
}

// run serves through serve and reports to the starting command: an error
// before the mount is ready goes to it, and this process exits.
func (c *daemonChild) run(serve func(ready func(stderr *os.File)) error) error {
	err := serve(c.markReady)
	if c.ready {
		return err
	}
	if err == nil {
		err = errors.New("the daemon stopped before the mount was ready")
	}
	fmt.Fprintf(c.status, "ERR %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
	c.status.Close()
	os.Exit(exitCode(err))
	return nil
}

// markReady detaches from the starting command, which exits when told.
func (c *daemonChild) markReady(stderr *os.File) {
	// Do not pin the directory the command was started in (a busy /home).
	os.Chdir("/")
	// From now on stderr (panics, fusermount3 on unmount) goes to the log:
	// the starting command's stderr is about to go away.
	if stderr != nil {
		unix.Dup2(int(stderr.Fd()), 2)
	}
	c.status.WriteString("READY\n")
	c.status.Close()
	c.ready = true
}

// logSink is where the daemon's log goes.
type logSink struct {
	stderr *os.File // the daemon's stderr once it runs alone; nil: unchanged
	close  func()
}

// startLog points the standard logger at target: stderr, file
// (DATA/taskerfs.log) or syslog.
func startLog(target, dataDir string) (*logSink, error) {
	switch target {
	case "file":
		path := filepath.Join(dataDir, logFileName)
		if st, err := os.Stat(path); err == nil && st.Size() > logRotateBytes {
			os.Rename(path, path+".1")
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("log file: %w", err)
		}
		log.SetOutput(f)
		return &logSink{stderr: f, close: func() { f.Close() }}, nil
	case "syslog":
		w, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, "taskerfs")
		if err != nil {
			return nil, fmt.Errorf("syslog: %w (is a syslog daemon or journald listening on /dev/log?)", err)
		}
		devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			w.Close()
			return nil, err
		}
		log.SetFlags(0) // syslog stamps the time itself
		log.SetOutput(w)
		return &logSink{stderr: devNull, close: func() { w.Close(); devNull.Close() }}, nil
	default:
		return &logSink{close: func() {}}, nil
	}
}

// writePidFile records this daemon's pid in the data dir and returns the
// function that removes it again.
func writePidFile(dataDir string) (remove func()) {
	path := filepath.Join(dataDir, pidFileName)
	pid := strconv.Itoa(os.Getpid()) + "\n"
	if err := os.WriteFile(path, []byte(pid), 0o600); err != nil {
		log.Printf("taskerfs: pid file: %v", err)
		return func() {}
	}
	return func() {
		// A daemon that started after us owns the file now.
		if b, err := os.ReadFile(path); err == nil && string(b) == pid {
			os.Remove(path)
		}
	}
}

// sdNotify tells systemd (Type=notify units) about the daemon's state; a
// no-op outside systemd.
func sdNotify(state string) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		log.Printf("taskerfs: sd_notify: %v", err)
		return
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		log.Printf("taskerfs: sd_notify: %v", err)
	}
}
