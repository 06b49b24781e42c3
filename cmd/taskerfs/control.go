package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/taskerfs/taskerfs/vfs"
)

// The running daemon owns the data dir (pebble allows one process), so
// operator commands reach a mounted data dir through a unix socket in it.
const controlSocket = "control.sock"

// serveControl answers operator commands for a mounted data dir.
func serveControl(v *vfs.FS, routes map[string]http.HandlerFunc) (stop func(), err error) {
	path := filepath.Join(v.Dir, controlSocket)
	os.Remove(path) // a dead daemon's socket; the data dir lock says we own it
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	os.Chmod(path, 0o600)
	mux := http.NewServeMux()
	for p, h := range routes {
		mux.HandleFunc(p, h)
	}
	// Profiles of a live daemon, for whoever can reach its 0600 socket.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// TASKERFS_CONTENTION_PROFILE=1 fills /debug/pprof/mutex and
	// /debug/pprof/block (who waits on whom: every mutex wait, every block
	// over a microsecond); off by default, it costs every lock.
	if os.Getenv("TASKERFS_CONTENTION_PROFILE") == "1" {
		runtime.SetMutexProfileFraction(1)
		runtime.SetBlockProfileRate(1000)
	}
	new(cpuProfiler).register(mux)
	mux.HandleFunc("/debug/pebble", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, v.EngineMetrics())
	})
	srv := &http.Server{Handler: mux}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Printf("control socket: %v", err)
		}
	}()
	return func() {
		srv.Close()
		os.Remove(path)
	}, nil
}

// callControl sends a request to the daemon holding dataDir and decodes
// its JSON answer into out.
func callControl(dataDir, route string, params url.Values, out any) error {
	path := filepath.Join(dataDir, controlSocket)
	// A daemon that is still opening the data dir holds it before its
	// socket exists: wait for the socket as import waits for the mountpoint.
	for deadline := time.Now().Add(mountpointWait); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil || time.Now().After(deadline) {
			break
		}
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}, Timeout: 30 * time.Minute}
	resp, err := client.Get("http://taskerfs" + route + "?" + params.Encode())
	if err != nil {
		return fmt.Errorf("data dir %s is mounted but its daemon does not answer: %w", dataDir, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("daemon: %s", body)
	}
	return json.Unmarshal(body, out)
}

func writeJSON(w http.ResponseWriter, v any, err error) {
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// withDataDir runs fn on the data dir directly when it is not mounted, or
// calls route on the daemon that holds it.
func withDataDir[T any](dataDir, route string, params url.Values, fn func(v *vfs.FS) (T, error)) (T, error) {
	var zero T
	opts, err := baseOptions()
	if err != nil {
		return zero, err
	}
	v, err := vfs.Open(dataDir, opts)
	if errors.Is(err, vfs.ErrLocked) {
		var out T
		return out, callControl(dataDir, route, params, &out)
	}
	if err != nil {
		return zero, err
	}
	res, err := fn(v)
	if cerr := v.Close(); err == nil {
		err = cerr
	}
	return res, err
}

// controlRoutes are the daemon's answers to operator commands.
func controlRoutes(v *vfs.FS) (map[string]http.HandlerFunc, error) {
	return mergeRoutes(baseRoutes(v), undoRoutes(v) /* cmd_snapshot.go */)
}

// mergeRoutes joins sets of routes, refusing a path that two sets answer:
// one set's handler silently replaced the other's once (/gc), and a fix
// made in the replaced one never reached the verb.
func mergeRoutes(sets ...map[string]http.HandlerFunc) (map[string]http.HandlerFunc, error) {
	routes := map[string]http.HandlerFunc{}
	for _, set := range sets {
		for p, h := range set {
			if _, dup := routes[p]; dup {
				return nil, fmt.Errorf("control: route %s is registered twice", p)
			}
			routes[p] = h
		}
	}
	return routes, nil
}

func baseRoutes(v *vfs.FS) map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"/stats": func(w http.ResponseWriter, r *http.Request) {
			s, err := v.Stats()
			writeJSON(w, s, err)
		},
		"/search": func(w http.ResponseWriter, r *http.Request) {
			hits, err := v.Snippets(r.URL.Query().Get("q"))
			writeJSON(w, hits, err)
		},
		"/sync": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, struct{}{}, v.SyncAll())
		},
	}
}

// serveMetrics serves /metrics; an address without a host binds loopback
// so that figures are not exposed by accident.
func serveMetrics(v *vfs.FS, addr string) (stop func(), err error) {
	if strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(v.Registry(), promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	log.Printf("taskerfs: metrics on http://%s/metrics", l.Addr())
	return func() { srv.Close() }, nil
}
