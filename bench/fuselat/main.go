// Command fuselat shows where a workload's time goes between the kernel and
// FUSE daemons: it runs the command under `perf record` with the kernel's
// fuse:fuse_request_send and fuse:fuse_request_end tracepoints and prints,
// per mount and per request type, how many requests there were and how
// long each took from the moment the kernel queued it until the daemon's
// reply arrived (the daemon's work plus the wait for a daemon thread to
// read it). Needs root, perf and tracefs.
//
//	fuselat [-o perf.data] -- CMD [ARGS...]   trace CMD (system-wide), then report
//	fuselat -script FILE                      report from `perf script -F time,event,trace` output
//
// It is how the twenty-second round of BENCHMARKS.md found that an rm -rf
// on a mount with default_permissions asks for the directory's attributes
// after every unlink.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

func main() {
	script := flag.String("script", "", "read `perf script -F time,event,trace` output from FILE instead of running a command")
	out := flag.String("o", "", "keep perf's data file here (default: a temporary file)")
	flag.Parse()
	var r io.Reader
	switch {
	case *script != "":
		f, err := os.Open(*script)
		if err != nil {
			fail(err)
		}
		defer f.Close()
		r = f
	case flag.NArg() > 0:
		data := *out
		if data == "" {
			dir, err := os.MkdirTemp("", "fuselat-")
			if err != nil {
				fail(err)
			}
			defer os.RemoveAll(dir)
			data = filepath.Join(dir, "perf.data")
		}
		rec := exec.Command("perf", append([]string{"record", "-q", "-a", "-o", data,
			"-e", "fuse:fuse_request_send", "-e", "fuse:fuse_request_end", "--"}, flag.Args()...)...)
		rec.Stdin, rec.Stdout, rec.Stderr = os.Stdin, os.Stdout, os.Stderr
		if err := rec.Run(); err != nil {
			fail(fmt.Errorf("perf record: %w", err))
		}
		text, err := exec.Command("perf", "script", "-i", data, "-F", "time,event,trace").Output()
		if err != nil {
			fail(fmt.Errorf("perf script: %w", err))
		}
		r = strings.NewReader(string(text))
	default:
		fmt.Fprintln(os.Stderr, "usage: fuselat [-o perf.data] -- CMD [ARGS...] | fuselat -script FILE")
		os.Exit(2)
	}
	reqs, err := parse(r)
	if err != nil {
		fail(err)
	}
	report(os.Stdout, reqs, mountsByConn())
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "fuselat:", err)
	os.Exit(1)
}

// request is one FUSE request seen queued and answered.
type request struct {
	conn   uint64
	op     string
	queued float64 // seconds
	done   float64 // 0 if no reply was seen (FORGET has none)
}

// parse reads perf script lines such as
//
//	17430.925942: fuse:fuse_request_send: connection 40 req 186262 opcode 25 (FUSE_FLUSH) len 64
//	17430.931505: fuse:fuse_request_end: connection 40 req 186262 len 16 error 0
//
// and pairs sends with ends by connection and request id.
func parse(r io.Reader) ([]request, error) {
	type key struct{ conn, id uint64 }
	open := map[key]int{}
	var reqs []request
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var event string
		switch {
		case strings.Contains(line, "fuse:fuse_request_send:"):
			event = "send"
		case strings.Contains(line, "fuse:fuse_request_end:"):
			event = "end"
		default:
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		t, err := strconv.ParseFloat(strings.TrimSuffix(f[0], ":"), 64)
		if err != nil {
			return nil, fmt.Errorf("bad time in %q", line)
		}
		conn, ok1 := field(f, "connection")
		id, ok2 := field(f, "req")
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("no connection or req in %q", line)
		}
		k := key{conn, id}
		if event == "send" {
			op := "?"
			for _, w := range f {
				if strings.HasPrefix(w, "(FUSE_") || strings.HasPrefix(w, "(CUSE_") {
					op = strings.Trim(w, "()")
				}
			}
			open[k] = len(reqs)
			reqs = append(reqs, request{conn: conn, op: op, queued: t})
			continue
		}
		if i, ok := open[k]; ok {
			reqs[i].done = t
			delete(open, k)
		}
	}
	return reqs, sc.Err()
}

// field returns the number after the word name.
func field(f []string, name string) (uint64, bool) {
	for i := 0; i+1 < len(f); i++ {
		if f[i] == name {
			v, err := strconv.ParseUint(f[i+1], 10, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// stats are one request type's latencies in microseconds.
type stats struct {
	op    string
	lat   []float64
	noEnd int
}

func (s *stats) sum() float64 {
	t := 0.0
	for _, v := range s.lat {
		t += v
	}
	return t
}

func (s *stats) pct(p float64) float64 {
	if len(s.lat) == 0 {
		return 0
	}
	return s.lat[min(len(s.lat)-1, int(p*float64(len(s.lat))))]
}

// summarize groups requests by connection and type, busiest type first.
func summarize(reqs []request) map[uint64][]*stats {
	by := map[uint64]map[string]*stats{}
	for _, q := range reqs {
		m := by[q.conn]
		if m == nil {
			m = map[string]*stats{}
			by[q.conn] = m
		}
		s := m[q.op]
		if s == nil {
			s = &stats{op: q.op}
			m[q.op] = s
		}
		if q.done == 0 {
			s.noEnd++
			continue
		}
		s.lat = append(s.lat, (q.done-q.queued)*1e6)
	}
	res := map[uint64][]*stats{}
	for conn, m := range by {
		var list []*stats
		for _, s := range m {
			sort.Float64s(s.lat)
			list = append(list, s)
		}
		sort.Slice(list, func(i, j int) bool {
			if a, b := list[i].sum(), list[j].sum(); a != b {
				return a > b
			}
			return list[i].op < list[j].op
		})
		res[conn] = list
	}
	return res
}

func report(w io.Writer, reqs []request, mounts map[uint64]string) {
	sum := summarize(reqs)
	conns := make([]uint64, 0, len(sum))
	for c := range sum {
		conns = append(conns, c)
	}
	sort.Slice(conns, func(i, j int) bool { return conns[i] < conns[j] })
	for _, c := range conns {
		name := mounts[c]
		if name == "" {
			name = "(unmounted since)"
		}
		fmt.Fprintf(w, "connection %d %s\n", c, name)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "request\tn\tmean us\tp50 us\tp99 us\ttotal ms\tno reply\t")
		total := 0.0
		for _, s := range sum[c] {
			mean := 0.0
			if len(s.lat) > 0 {
				mean = s.sum() / float64(len(s.lat))
			}
			total += s.sum()
			fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t\n", s.op, len(s.lat)+s.noEnd, mean, s.pct(0.5), s.pct(0.99), s.sum()/1e3, s.noEnd)
		}
		tw.Flush()
		fmt.Fprintf(w, "time in requests: %.1f ms\n\n", total/1e3)
	}
}

// mountsByConn maps FUSE connection numbers (the minor device number of
// the mount) to mount points, for the mounts still there.
func mountsByConn() map[uint64]string {
	m := map[uint64]string{}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		// id parent major:minor root mountpoint ... - fstype source options
		if len(f) < 10 || !strings.Contains(line, " - fuse") {
			continue
		}
		_, minor, ok := strings.Cut(f[2], ":")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(minor, 10, 64); err == nil {
			m[n] = f[4]
		}
	}
	return m
}
