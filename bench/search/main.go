// Command search measures search through a taskerfs mount: it generates
// JSON-only session datasets (10k and 100k sessions by default) with planted
// words, copies each into a fresh taskerfs mount with cp -r, and then times
// `ls MOUNT/search/<query>` end to end for several kinds of query against
// `grep -rl WORD` over the same files on go-fuse's loopback example, in the
// same run, interleaved. It prints markdown tables of medians, the ingest
// rate and the index size per session (from .taskerfs/stats.json).
//
//	go build -o bin/taskerfs ./cmd/taskerfs
//	go build -o /tmp/loopback github.com/hanwen/go-fuse/v2/example/loopback
//	go run ./bench/search -taskerfs bin/taskerfs -loopback /tmp/loopback
//
// Each `ls` is timed twice per round: "fresh" right after an untimed mkdir
// and rmdir in the mount (any committed change makes the daemon evaluate the
// query again instead of reusing its last result), and "repeat" right after
// another ls of the same query. If copying a dataset in takes longer than
// -max-ingest, the copy stops there, the sessions not copied are moved aside
// in the source so that both sides search the same files, and the report says
// how many sessions were measured.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/taskerfs/taskerfs/gen"
)

// plants are the words searched for and the share of sessions holding each.
var plants = []gen.Plant{
	{Word: "zanzibar", Share: 0.001},
	{Word: "quokka", Share: 0.01},
	{Word: "vermilion", Share: 0.1},
	{Word: "obsidian", Share: 0.5},
}

// query is one timed search; grep is the word grep looks for alongside it,
// "" if the query has no single-word grep equivalent.
type query struct {
	kind, path, grep string
}

var queries = []query{
	{"word, 0.1% of sessions", "search/zanzibar", "zanzibar"},
	{"word, 1%", "search/quokka", "quokka"},
	{"word, 10%", "search/vermilion", "vermilion"},
	{"word, 50%", "search/obsidian", "obsidian"},
	{"AND", "search/quokka vermilion", ""},
	{"OR", "search/zanzibar OR quokka", ""},
	{"NOT", "search/quokka -vermilion", ""},
	{"field", "search/tag:feature", ""},
	{"word + fields", "search/vermilion tag:feature status:completed", ""},
	{"after/before", "search/after:2025-01-01 before:2025-02-01", ""},
	{"facet by-tag", "by-tag/feature", ""},
	{"facet by-date", "by-date/2024-06", ""},
}

type config struct {
	work, taskerfs, loopback string
	sizes                    []int
	reps, grepReps           int
	maxIngest                time.Duration
	batch                    int
	opts                     gen.Options
	keep                     bool
}

func main() {
	c := config{opts: gen.DefaultOptions()}
	sizes := flag.String("sizes", "10000,100000", "dataset sizes in sessions, comma-separated")
	flag.StringVar(&c.work, "work", "/var/tmp/taskerfs-search-bench", "work dir: datasets, data dirs, mount points")
	flag.StringVar(&c.taskerfs, "taskerfs", "bin/taskerfs", "taskerfs binary")
	flag.StringVar(&c.loopback, "loopback", "/tmp/loopback", "go-fuse example/loopback binary")
	flag.IntVar(&c.reps, "reps", 11, "rounds of ls per query (medians over them)")
	flag.IntVar(&c.grepReps, "grep-reps", 3, "rounds of grep per word")
	flag.DurationVar(&c.maxIngest, "max-ingest", 90*time.Minute, "stop copying a dataset into the mount after this long")
	flag.IntVar(&c.batch, "batch", 1000, "session dirs per cp -r")
	flag.IntVar(&c.opts.Screenshots, "screenshots", c.opts.Screenshots, "screenshots per session")
	flag.IntVar(&c.opts.AudioSegments, "audio", c.opts.AudioSegments, "audio segments per session")
	flag.BoolVar(&c.keep, "keep", false, "keep the data dirs (datasets are always kept for reruns)")
	flag.Parse()
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fatalf("bad -sizes %q", *sizes)
		}
		c.sizes = append(c.sizes, n)
	}
	var err error
	for _, p := range []*string{&c.taskerfs, &c.loopback} {
		if *p, err = filepath.Abs(*p); err != nil {
			fatalf("%v", err)
		}
		if _, err := os.Stat(*p); err != nil {
			fatalf("%v (see the build lines in the package comment)", err)
		}
	}
	c.opts.JSONOnly, c.opts.Plant, c.opts.Seed = true, plants, 7

	mounts := &mountSet{}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		mounts.cleanup()
		os.Exit(130)
	}()
	defer mounts.cleanup()
	for _, n := range c.sizes {
		if err := c.run(n, mounts); err != nil {
			mounts.cleanup()
			fatalf("%d sessions: %v", n, err)
		}
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench/search: "+format+"\n", args...)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[search-bench %s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// dataset generates (or reuses) n sessions under work/src-n.
func (c *config) dataset(n int) (string, time.Duration, error) {
	src := filepath.Join(c.work, fmt.Sprintf("src-%d", n))
	stamp := filepath.Join(c.work, fmt.Sprintf("src-%d.done", n))
	want := fmt.Sprintf("%+v", c.opts)
	if b, err := os.ReadFile(stamp); err == nil && string(b) == want {
		// Sessions moved aside by an earlier partial ingest come back.
		if err := restoreRest(src); err != nil {
			return "", 0, err
		}
		logf("reusing %s", src)
		return src, 0, nil
	}
	os.Remove(stamp)
	if err := os.RemoveAll(src); err != nil {
		return "", 0, err
	}
	opts := c.opts
	opts.Sessions = n
	start := time.Now()
	m, err := gen.Generate(src, opts)
	if err != nil {
		return "", 0, err
	}
	took := time.Since(start)
	logf("generated %d sessions, %d files, %.0f MB in %v", n, m.Files, float64(m.Bytes)/1e6, took.Round(time.Millisecond))
	return src, took, os.WriteFile(stamp, []byte(want), 0o644)
}

func restoreRest(src string) error {
	rest := filepath.Join(src, "rest")
	names, err := readDirNames(rest)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := os.Rename(filepath.Join(rest, name), filepath.Join(src, "sessions", name)); err != nil {
			return err
		}
	}
	return os.Remove(rest)
}

func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	slices.Sort(names)
	return names, err
}

// ingest copies the sessions into the mount, batch by batch, until done or
// maxIngest has passed; it returns how many sessions were copied.
func (c *config) ingest(src, mnt string) (int, time.Duration, error) {
	names, err := readDirNames(filepath.Join(src, "sessions"))
	if err != nil {
		return 0, 0, err
	}
	if err := os.MkdirAll(filepath.Join(mnt, "sessions"), 0o755); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	done := 0
	for done < len(names) && time.Since(start) < c.maxIngest {
		end := min(done+c.batch, len(names))
		args := []string{"-r"}
		for _, n := range names[done:end] {
			args = append(args, filepath.Join(src, "sessions", n))
		}
		args = append(args, filepath.Join(mnt, "sessions")+"/")
		if out, err := exec.Command("cp", args...).CombinedOutput(); err != nil {
			return done, time.Since(start), fmt.Errorf("cp: %v\n%s", err, out)
		}
		done = end
		el := time.Since(start)
		logf("  copied %d/%d sessions in %v (%.0f sessions/s)", done, len(names), el.Round(time.Second), float64(done)/el.Seconds())
	}
	took := time.Since(start)
	if done < len(names) {
		// Both sides must search the same files: move the rest aside.
		rest := filepath.Join(src, "rest")
		if err := os.MkdirAll(rest, 0o755); err != nil {
			return done, took, err
		}
		for _, n := range names[done:] {
			if err := os.Rename(filepath.Join(src, "sessions", n), filepath.Join(rest, n)); err != nil {
				return done, took, err
			}
		}
	}
	return done, took, nil
}

// stats is what the report needs from .taskerfs/stats.json.
type stats struct {
	Sessions      int64 `json:"sessions"`
	Files         int64 `json:"files"`
	LogicalBytes  int64 `json:"logicalBytes"`
	StoredBytes   int64 `json:"storedBytes"`
	MetaBytes     int64 `json:"metaBytes"`
	IndexSessions int64 `json:"indexSessions"`
	IndexBytes    int64 `json:"indexBytes"`
}

func (c *config) run(n int, mounts *mountSet) error {
	src, genTook, err := c.dataset(n)
	if err != nil {
		return err
	}
	srcFiles, srcBytes, err := treeSize(filepath.Join(src, "sessions"))
	if err != nil {
		return err
	}
	data := filepath.Join(c.work, fmt.Sprintf("data-%d", n))
	if err := os.RemoveAll(data); err != nil {
		return err
	}
	tfs := filepath.Join(c.work, "mnt", "taskerfs")
	lb := filepath.Join(c.work, "mnt", "loopback")
	logs := filepath.Join(c.work, "logs")
	for _, d := range []string{tfs, lb, logs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	settle()
	if err := mounts.start("taskerfs", tfs, filepath.Join(logs, fmt.Sprintf("taskerfs-%d.log", n)), c.taskerfs, "mount", "--data", data, tfs); err != nil {
		return err
	}
	logf("copying %d sessions (%d files, %.0f MB) into the mount", n, srcFiles, float64(srcBytes)/1e6)
	copied, cpTook, err := c.ingest(src, tfs)
	if err != nil {
		return err
	}
	syncStart := time.Now()
	if out, err := exec.Command(c.taskerfs, "sync", "--data", data).CombinedOutput(); err != nil {
		return fmt.Errorf("taskerfs sync: %v\n%s", err, out)
	}
	syncTook := time.Since(syncStart)
	var st stats
	if b, err := os.ReadFile(filepath.Join(tfs, ".taskerfs", "stats.json")); err != nil {
		return err
	} else if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("stats.json: %v", err)
	}
	dataBytes, err := duBytes(data)
	if err != nil {
		return err
	}
	settle()
	if err := mounts.start("loopback", lb, filepath.Join(logs, fmt.Sprintf("loopback-%d.log", n)), c.loopback, "-q", lb, src); err != nil {
		return err
	}

	// Warm both sides (page cache, daemon caches) once, untimed, and check
	// that they find the same sessions.
	bump := filepath.Join(tfs, ".bench-bump")
	hits := map[string]int{}
	for _, q := range queries {
		out, _, err := timeCmd("ls", filepath.Join(tfs, q.path))
		if err != nil {
			return fmt.Errorf("ls %s: %v", q.path, err)
		}
		hits[q.path] = len(strings.Fields(string(out)))
		if q.grep == "" {
			continue
		}
		out, took, err := grep(lb, q.grep)
		if err != nil {
			return err
		}
		if g := grepSessions(out); g != hits[q.path] {
			return fmt.Errorf("%s: taskerfs lists %d sessions, grep -rl finds %d", q.path, hits[q.path], g)
		}
		logf("  warm-up: %s %d hits, grep %v", q.path, hits[q.path], took.Round(time.Millisecond))
	}

	fresh, repeat, grepT := map[string][]time.Duration{}, map[string][]time.Duration{}, map[string][]time.Duration{}
	for r := 0; r < c.reps; r++ {
		for _, q := range queries {
			if err := os.Mkdir(bump, 0o755); err != nil {
				return err
			}
			if err := os.Remove(bump); err != nil {
				return err
			}
			_, t1, err := timeCmd("ls", filepath.Join(tfs, q.path))
			if err != nil {
				return err
			}
			_, t2, err := timeCmd("ls", filepath.Join(tfs, q.path))
			if err != nil {
				return err
			}
			fresh[q.path] = append(fresh[q.path], t1)
			repeat[q.path] = append(repeat[q.path], t2)
			if q.grep != "" && r < c.grepReps {
				_, t3, err := grep(lb, q.grep)
				if err != nil {
					return err
				}
				grepT[q.grep] = append(grepT[q.grep], t3)
			}
		}
		logf("  round %d/%d done", r+1, c.reps)
	}
	if err := mounts.stop("loopback"); err != nil {
		return err
	}
	if err := mounts.stop("taskerfs"); err != nil {
		return err
	}
	if !c.keep {
		if err := os.RemoveAll(data); err != nil {
			return err
		}
	}
	if copied < n {
		if err := restoreRest(src); err != nil {
			return err
		}
	}

	fmt.Printf("\n### %d sessions generated, %d copied in and searched (JSON only, %d screenshots and %d audio segments per session)\n\n",
		n, copied, c.opts.Screenshots, c.opts.AudioSegments)
	if genTook > 0 {
		fmt.Printf("- generate: %v\n", genTook.Round(time.Millisecond))
	}
	frac := float64(copied) / float64(n)
	fmt.Printf("- cp -r into the mount: %v for %d sessions (%.0f sessions/s, %.0f files/s, %.1f MB/s), then taskerfs sync %v\n",
		cpTook.Round(time.Second), copied, float64(copied)/cpTook.Seconds(), float64(st.Files)/cpTook.Seconds(),
		float64(st.LogicalBytes)/1e6/cpTook.Seconds(), syncTook.Round(time.Millisecond))
	if copied < n {
		fmt.Printf("- stopped after -max-ingest %v: all %d would take about %v at this rate\n", c.maxIngest, n,
			(time.Duration(float64(cpTook) / frac)).Round(time.Minute))
	}
	fmt.Printf("- stats.json: %d sessions, %d files, %.0f MB logical, %.0f MB stored, pebble %.0f MB; data dir %.0f MB on disk\n",
		st.Sessions, st.Files, float64(st.LogicalBytes)/1e6, float64(st.StoredBytes)/1e6, float64(st.MetaBytes)/1e6, float64(dataBytes)/1e6)
	if st.IndexSessions > 0 {
		fmt.Printf("- index: %d sessions, %.1f MB, **%.1f KB per session** (%.0f%% of the session JSON)\n",
			st.IndexSessions, float64(st.IndexBytes)/1e6, float64(st.IndexBytes)/float64(st.IndexSessions)/1e3,
			100*float64(st.IndexBytes)/(float64(srcBytes)*frac))
	}
	fmt.Printf("\n| query | hits | ls fresh (median) | ls fresh p90 | ls repeat (median) | grep -rl on loopback (median) | grep / ls fresh |\n")
	fmt.Printf("|---|---:|---:|---:|---:|---:|---:|\n")
	for _, q := range queries {
		f := fresh[q.path]
		g, ratio := "", ""
		if q.grep != "" {
			gm := median(grepT[q.grep])
			g = ms(gm)
			ratio = fmt.Sprintf("%.0f×", float64(gm)/float64(median(f)))
		}
		fmt.Printf("| %s `%s` | %d | %s | %s | %s | %s | %s |\n", q.kind, q.path, hits[q.path], ms(median(f)), ms(quantile(f, 0.9)),
			ms(median(repeat[q.path])), g, ratio)
	}
	fmt.Printf("\n%d rounds of ls (each query fresh, then repeated), %d of grep, interleaved.\n", c.reps, min(c.reps, c.grepReps))
	return nil
}

// grep runs grep -rl word over the loopback mount's sessions.
func grep(lb, word string) ([]byte, time.Duration, error) {
	out, took, err := timeCmd("grep", "-rl", word, filepath.Join(lb, "sessions"))
	if err != nil {
		return nil, 0, fmt.Errorf("grep -rl %s: %v", word, err)
	}
	return out, took, nil
}

// grepSessions counts the distinct sessions among grep -l's file names.
func grepSessions(out []byte) int {
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		p := sc.Text()
		i := strings.Index(p, "/sessions/")
		if i < 0 {
			continue
		}
		id, _, _ := strings.Cut(p[i+len("/sessions/"):], "/")
		seen[id] = true
	}
	return len(seen)
}

// timeCmd runs a command end to end, output captured through a pipe.
func timeCmd(name string, args ...string) ([]byte, time.Duration, error) {
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	start := time.Now()
	err := cmd.Run()
	return out.Bytes(), time.Since(start), err
}

func median(d []time.Duration) time.Duration { return quantile(d, 0.5) }

func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func ms(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return fmt.Sprintf("%.1f ms", float64(d)/1e6)
}

func treeSize(dir string) (files, bytes int64, err error) {
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		files++
		bytes += fi.Size()
		return nil
	})
	return files, bytes, err
}

func duBytes(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		total += st.Blocks * 512
		return nil
	})
	return total, err
}

// settle lets dirty pages drain so that one phase does not pay for the last.
func settle() {
	unix.Sync()
	time.Sleep(2 * time.Second)
}

// mountSet owns the FUSE daemons this run started.
type mountSet struct {
	mu    sync.Mutex // the signal handler may clean up while main runs
	procs map[string]*mounted
}

type mounted struct {
	cmd    *exec.Cmd
	dir    string
	exited chan struct{}
}

func (s *mountSet) start(label, dir, logPath, bin string, args ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.procs == nil {
		s.procs = map[string]*mounted{}
	}
	if isMountpoint(dir) {
		return fmt.Errorf("%s is already a mountpoint", dir)
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return err
	}
	m := &mounted{cmd: cmd, dir: dir, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		logFile.Close()
		close(m.exited)
	}()
	s.procs[label] = m
	deadline := time.Now().Add(30 * time.Second)
	for !isMountpoint(dir) {
		select {
		case <-m.exited:
			delete(s.procs, label)
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("%s exited before mounting:\n%s", label, log)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s not mounted after 30s", label, dir)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// stop unmounts and waits for the daemon (taskerfs flushes first).
func (s *mountSet) stop(label string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopLocked(label)
}

func (s *mountSet) stopLocked(label string) error {
	m := s.procs[label]
	if m == nil {
		return nil
	}
	delete(s.procs, label)
	var err error
	for i := 0; i < 50; i++ {
		var out []byte
		if out, err = exec.Command("fusermount3", "-u", m.dir).CombinedOutput(); err == nil {
			break
		}
		err = fmt.Errorf("fusermount3 -u %s: %v: %s", m.dir, err, out)
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		unix.Unmount(m.dir, unix.MNT_DETACH)
		m.cmd.Process.Kill()
	}
	select {
	case <-m.exited:
	case <-time.After(5 * time.Minute):
		m.cmd.Process.Kill()
		<-m.exited
		return fmt.Errorf("%s did not exit after unmount", label)
	}
	return err
}

func (s *mountSet) cleanup() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for label := range s.procs {
		if err := s.stopLocked(label); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
}

func isMountpoint(dir string) bool {
	var st, pst unix.Stat_t
	if unix.Stat(dir, &st) != nil || unix.Stat(filepath.Dir(dir), &pst) != nil {
		return false
	}
	return st.Dev != pst.Dev
}
