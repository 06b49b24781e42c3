package main

import (
	"bytes"
	"net/http"
	"runtime/pprof"
	"sync"
)

// cpuProfiler serves a CPU profile whose length the caller decides: POST
// /debug/cpuprofile/start begins one, /debug/cpuprofile/stop ends it and
// answers with the profile (pprof format). bench/run.sh --profile takes
// one per phase this way; /debug/pprof/profile needs the length up front.
type cpuProfiler struct {
	mu  sync.Mutex
	buf *bytes.Buffer // non-nil while a profile runs
}

func (p *cpuProfiler) start(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.buf != nil {
		http.Error(w, "a CPU profile is already running", http.StatusConflict)
		return
	}
	buf := new(bytes.Buffer)
	if err := pprof.StartCPUProfile(buf); err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	p.buf = buf
}

func (p *cpuProfiler) stop(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.buf == nil {
		http.Error(w, "no CPU profile is running", http.StatusConflict)
		return
	}
	pprof.StopCPUProfile()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(p.buf.Bytes())
	p.buf = nil
}

func (p *cpuProfiler) register(mux *http.ServeMux) {
	mux.HandleFunc("POST /debug/cpuprofile/start", p.start)
	mux.HandleFunc("POST /debug/cpuprofile/stop", p.stop)
}
