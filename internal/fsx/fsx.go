// Package fsx is a file exerciser modelled on xfstests' fsx: it applies a
// seeded random mix of reads, writes, truncates (up and down), mapped reads
// and writes (mmap MAP_SHARED + msync), fallocate (punch hole, zero range,
// preallocate), fsync and close/reopen to one file, keeps a shadow copy of
// what the file must hold, and checks every read and the file size against
// it. The first difference ends the run with a *MismatchError that carries
// the log of the last operations.
package fsx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Op is one kind of operation.
type Op int

// The operations, in the order of the mix.
const (
	OpRead Op = iota
	OpWrite
	OpMapRead
	OpMapWrite
	OpTruncate
	OpFallocate // mode 0 or KEEP_SIZE: preallocation
	OpPunchHole // PUNCH_HOLE | KEEP_SIZE
	OpZeroRange // ZERO_RANGE, with or without KEEP_SIZE
	OpFsync
	OpCloseOpen
	numOps
)

var opNames = [numOps]string{"read", "write", "mapread", "mapwrite", "truncate", "fallocate", "punch_hole", "zero_range", "fsync", "close_open"}

func (o Op) String() string {
	if o < 0 || o >= numOps {
		return fmt.Sprintf("op(%d)", int(o))
	}
	return opNames[o]
}

// Config is one run's parameters. Zero values take the defaults.
type Config struct {
	Path        string // the file; created (or truncated) by New
	MaxSize     int64  // largest file size (default 256 KiB)
	MaxOpLen    int64  // largest read/write/fallocate length (default 64 KiB)
	Seed        uint64 // random seed: the same seed gives the same operations
	NoMmap      bool   // no mapped reads/writes (they become plain ones)
	NoFallocate bool   // no fallocate of any mode
	CloseProb   int    // close and reopen after an op with probability 1/CloseProb (default 500; <0 never)
	FsyncProb   int    // fsync after an op with probability 1/FsyncProb (default 1000; <0 never)
	NoSizeCheck bool   // skip the fstat size check after every op
	MsyncSync   bool   // msync(MS_SYNC) after a mapped write; default MS_ASYNC, as fsx's msync(p, len, 0)
	LogOps      int    // operations kept for a mismatch report (default 64)
}

func (c *Config) defaults() {
	if c.MaxSize <= 0 {
		c.MaxSize = 256 << 10
	}
	if c.MaxOpLen <= 0 {
		c.MaxOpLen = 64 << 10
	}
	c.MaxOpLen = min(c.MaxOpLen, c.MaxSize)
	if c.CloseProb == 0 {
		c.CloseProb = 500
	}
	if c.FsyncProb == 0 {
		c.FsyncProb = 1000
	}
	if c.LogOps <= 0 {
		c.LogOps = 64
	}
}

// LogEntry is one applied operation.
type LogEntry struct {
	N       int    // 1-based operation number
	Op      Op     //
	Off     int64  // offset (new size for truncate)
	Len     int64  // length
	Mode    string // fallocate mode, "" otherwise
	OldSize int64  // file size before
	NewSize int64  // file size after (per the shadow)
}

func (e LogEntry) String() string {
	s := fmt.Sprintf("%7d %-10s", e.N, e.Op)
	switch e.Op {
	case OpTruncate:
		s += fmt.Sprintf(" %#x -> %#x", e.OldSize, e.Off)
	case OpFsync, OpCloseOpen:
	default:
		s += fmt.Sprintf(" %#x..%#x (%#x bytes)", e.Off, e.Off+e.Len, e.Len)
		if e.Mode != "" {
			s += " " + e.Mode
		}
		if e.NewSize != e.OldSize {
			s += fmt.Sprintf(" size %#x -> %#x", e.OldSize, e.NewSize)
		}
	}
	return s
}

// MismatchError is the first difference between the file and the shadow.
type MismatchError struct {
	Seed     uint64
	Step     int    // the operation that found it
	What     string // "read", "mapread", "size", "verify"
	Off      int64  // first differing offset (for data)
	Good     []byte // expected bytes from Off (up to 16)
	Bad      []byte // bytes read from Off (up to 16)
	Diffs    int    // differing bytes in the checked range
	Writer   int    // operation that last wrote Good's first byte (0: none, it should be a zero from a hole or truncate)
	GoodSize int64  // for "size"
	BadSize  int64
	Log      []LogEntry // the last operations, oldest first
}

func (e *MismatchError) Error() string {
	var b strings.Builder
	if e.What == "size" {
		fmt.Fprintf(&b, "fsx: seed %d, op %d: file size %#x, expected %#x", e.Seed, e.Step, e.BadSize, e.GoodSize)
	} else {
		fmt.Fprintf(&b, "fsx: seed %d, op %d (%s): %d bytes differ, first at %#x: expected % x, got % x; expected byte last written by op %d",
			e.Seed, e.Step, e.What, e.Diffs, e.Off, e.Good, e.Bad, e.Writer)
		if e.Writer == 0 {
			b.WriteString(" (none: should be zero)")
		}
	}
	fmt.Fprintf(&b, "\nlast %d operations:\n", len(e.Log))
	for _, l := range e.Log {
		b.WriteString(l.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// Result sums up a run.
type Result struct {
	Ops         int
	Elapsed     time.Duration
	Counts      map[string]int
	Unsupported []string // operations the filesystem refused with EOPNOTSUPP (then left out)
}

// OpsPerSec is Ops over Elapsed.
func (r *Result) OpsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Elapsed.Seconds()
}

// Exerciser runs operations against one file.
type Exerciser struct {
	cfg      Config
	rng      *rand.Rand
	f        *os.File
	shadow   []byte // len(shadow) is the file size
	writer   []int32
	orig     []byte // random bytes the write pattern mixes in
	buf      []byte
	step     int
	log      []LogEntry // ring
	counts   [numOps]int
	disabled [numOps]bool
	unsup    []string
	elapsed  time.Duration
	page     int64
}

// New creates (or empties) cfg.Path and returns an exerciser for it.
func New(cfg Config) (*Exerciser, error) {
	cfg.defaults()
	f, err := os.OpenFile(cfg.Path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	x := &Exerciser{
		cfg:    cfg,
		rng:    rand.New(rand.NewPCG(cfg.Seed, 0x6673785f6f707321)),
		f:      f,
		shadow: make([]byte, 0, cfg.MaxSize),
		writer: make([]int32, cfg.MaxSize),
		orig:   make([]byte, cfg.MaxSize),
		buf:    make([]byte, cfg.MaxSize),
		log:    make([]LogEntry, 0, cfg.LogOps),
		page:   int64(os.Getpagesize()),
	}
	for i := range x.orig {
		x.orig[i] = byte(x.rng.Uint32())
	}
	if cfg.NoMmap {
		x.disabled[OpMapRead], x.disabled[OpMapWrite] = true, true
	}
	if cfg.NoFallocate {
		x.disabled[OpFallocate], x.disabled[OpPunchHole], x.disabled[OpZeroRange] = true, true, true
	}
	return x, nil
}

// Close closes the file.
func (x *Exerciser) Close() error {
	if x.f == nil {
		return nil
	}
	err := x.f.Close()
	x.f = nil
	return err
}

// Shadow is what the file must hold now (not a copy: do not modify).
func (x *Exerciser) Shadow() []byte { return x.shadow }

// Result sums up the operations run so far.
func (x *Exerciser) Result() *Result {
	r := &Result{Ops: x.step, Elapsed: x.elapsed, Counts: map[string]int{}, Unsupported: x.unsup}
	for o, n := range x.counts {
		if n > 0 {
			r.Counts[Op(o).String()] = n
		}
	}
	return r
}

// Run applies n more operations; it stops at the first mismatch
// (*MismatchError) or failed system call.
func (x *Exerciser) Run(n int) error {
	start := time.Now()
	defer func() { x.elapsed += time.Since(start) }()
	for i := 0; i < n; i++ {
		if err := x.one(); err != nil {
			return err
		}
	}
	return nil
}

// Run creates cfg.Path, applies n operations, checks the whole file against
// the shadow and closes it.
func Run(cfg Config, n int) (*Result, error) {
	x, err := New(cfg)
	if err != nil {
		return nil, err
	}
	err = x.Run(n)
	if err == nil {
		err = x.Verify(x.f)
	}
	if cerr := x.Close(); err == nil {
		err = cerr
	}
	return x.Result(), err
}

func (x *Exerciser) pick() Op {
	for {
		o := Op(x.rng.IntN(int(OpFsync))) // fsync and close/reopen come on top
		if x.disabled[o] {
			switch o {
			case OpMapRead:
				o = OpRead
			case OpMapWrite:
				o = OpWrite
			default:
				continue
			}
		}
		return o
	}
}

func (x *Exerciser) one() error {
	x.step++
	op := x.pick()
	size := int64(len(x.shadow))
	e := LogEntry{N: x.step, Op: op, OldSize: size}
	var err error
	switch op {
	case OpRead, OpMapRead:
		if size == 0 {
			x.record(e)
			break
		}
		e.Off = x.rng.Int64N(size)
		e.Len = min(x.rng.Int64N(x.cfg.MaxOpLen+1), size-e.Off)
		x.record(e)
		return x.check(op, e.Off, e.Len)
	case OpWrite, OpMapWrite:
		e.Off = x.rng.Int64N(x.cfg.MaxSize)
		e.Len = min(x.rng.Int64N(x.cfg.MaxOpLen+1), x.cfg.MaxSize-e.Off)
		x.record(e)
		err = x.write(op, e.Off, e.Len)
	case OpTruncate:
		e.Off = x.rng.Int64N(x.cfg.MaxSize + 1)
		x.record(e)
		err = x.f.Truncate(e.Off)
		if err == nil {
			x.resize(e.Off)
		}
	case OpFallocate, OpPunchHole, OpZeroRange:
		e.Off = x.rng.Int64N(x.cfg.MaxSize)
		e.Len = 1 + x.rng.Int64N(min(x.cfg.MaxOpLen, x.cfg.MaxSize-e.Off))
		keep := x.rng.IntN(2) == 0
		var mode uint32
		switch op {
		case OpFallocate:
			if keep {
				mode = unix.FALLOC_FL_KEEP_SIZE
			}
		case OpPunchHole:
			mode, keep = unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, true
		case OpZeroRange:
			mode = unix.FALLOC_FL_ZERO_RANGE
			if keep {
				mode |= unix.FALLOC_FL_KEEP_SIZE
			}
		}
		e.Mode = fallocMode(mode)
		x.record(e)
		err = unix.Fallocate(int(x.f.Fd()), mode, e.Off, e.Len)
		if errors.Is(err, unix.EOPNOTSUPP) {
			x.disabled[op] = true
			x.unsup = append(x.unsup, op.String()+" "+e.Mode)
			x.counts[op]-- // not applied
			err = nil
			break
		}
		if err == nil {
			if op != OpFallocate {
				x.zero(e.Off, min(e.Off+e.Len, size))
			}
			if !keep && e.Off+e.Len > size {
				x.resize(e.Off + e.Len)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("fsx: seed %d, op %d %s: %w\n%s", x.cfg.Seed, x.step, op, err, x.logText())
	}
	x.fixLastLog()
	if x.cfg.FsyncProb > 0 && x.rng.IntN(x.cfg.FsyncProb) == 0 {
		x.record(LogEntry{N: x.step, Op: OpFsync, OldSize: int64(len(x.shadow)), NewSize: int64(len(x.shadow))})
		if err := x.f.Sync(); err != nil {
			return fmt.Errorf("fsx: seed %d, op %d fsync: %w\n%s", x.cfg.Seed, x.step, err, x.logText())
		}
	}
	if x.cfg.CloseProb > 0 && x.rng.IntN(x.cfg.CloseProb) == 0 {
		x.record(LogEntry{N: x.step, Op: OpCloseOpen, OldSize: int64(len(x.shadow)), NewSize: int64(len(x.shadow))})
		if err := x.f.Close(); err != nil {
			x.f = nil
			return fmt.Errorf("fsx: seed %d, op %d close: %w\n%s", x.cfg.Seed, x.step, err, x.logText())
		}
		f, err := os.OpenFile(x.cfg.Path, os.O_RDWR, 0)
		if err != nil {
			x.f = nil
			return fmt.Errorf("fsx: seed %d, op %d reopen: %w\n%s", x.cfg.Seed, x.step, err, x.logText())
		}
		x.f = f
	}
	if !x.cfg.NoSizeCheck {
		var st unix.Stat_t
		if err := unix.Fstat(int(x.f.Fd()), &st); err != nil {
			return fmt.Errorf("fsx: seed %d, op %d fstat: %w", x.cfg.Seed, x.step, err)
		}
		if st.Size != int64(len(x.shadow)) {
			return &MismatchError{Seed: x.cfg.Seed, Step: x.step, What: "size", GoodSize: int64(len(x.shadow)), BadSize: st.Size, Log: x.logCopy()}
		}
	}
	return nil
}

func fallocMode(m uint32) string {
	var parts []string
	for _, f := range []struct {
		bit  uint32
		name string
	}{{unix.FALLOC_FL_PUNCH_HOLE, "PUNCH_HOLE"}, {unix.FALLOC_FL_ZERO_RANGE, "ZERO_RANGE"}, {unix.FALLOC_FL_KEEP_SIZE, "KEEP_SIZE"}} {
		if m&f.bit != 0 {
			parts = append(parts, f.name)
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, "|")
}

// record appends e to the log ring and counts it.
func (x *Exerciser) record(e LogEntry) {
	x.counts[e.Op]++
	if e.NewSize == 0 {
		e.NewSize = int64(len(x.shadow))
	}
	if len(x.log) < cap(x.log) {
		x.log = append(x.log, e)
		return
	}
	copy(x.log, x.log[1:])
	x.log[len(x.log)-1] = e
}

// fixLastLog sets the last entry's NewSize after the op was applied.
func (x *Exerciser) fixLastLog() {
	if n := len(x.log); n > 0 && x.log[n-1].N == x.step {
		x.log[n-1].NewSize = int64(len(x.shadow))
	}
}

func (x *Exerciser) logCopy() []LogEntry { return append([]LogEntry(nil), x.log...) }

func (x *Exerciser) logText() string {
	var b strings.Builder
	for _, l := range x.log {
		b.WriteString(l.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// resize sets the shadow's size; bytes past the old end read as zeros.
func (x *Exerciser) resize(n int64) {
	old := int64(len(x.shadow))
	x.shadow = x.shadow[:n]
	if n > old {
		clear(x.shadow[old:n])
		clear(x.writer[old:n])
	}
}

func (x *Exerciser) zero(off, end int64) {
	if off < end {
		clear(x.shadow[off:end])
		clear(x.writer[off:end])
	}
}

// write writes [off, off+n) with the op's pattern, through write(2) or a
// shared mapping, and applies it to the shadow.
func (x *Exerciser) write(op Op, off, n int64) error {
	if n == 0 {
		return nil
	}
	data := x.buf[:n]
	v := byte(x.step)
	for i := range data {
		p := off + int64(i)
		data[i] = v
		if p%2 == 1 {
			data[i] += x.orig[p]
		}
	}
	size := int64(len(x.shadow))
	if op == OpWrite {
		if _, err := x.f.WriteAt(data, off); err != nil {
			return err
		}
	} else {
		if off+n > size {
			if err := x.f.Truncate(off + n); err != nil {
				return fmt.Errorf("truncate up before mapwrite: %w", err)
			}
		}
		pg := off &^ (x.page - 1)
		m, err := unix.Mmap(int(x.f.Fd()), pg, int(off+n-pg), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			return fmt.Errorf("mmap: %w", err)
		}
		copy(m[off-pg:], data)
		flags := unix.MS_ASYNC
		if x.cfg.MsyncSync {
			flags = unix.MS_SYNC
		}
		err = unix.Msync(m, flags)
		if uerr := unix.Munmap(m); err == nil {
			err = uerr
		}
		if err != nil {
			return fmt.Errorf("msync/munmap: %w", err)
		}
	}
	if off+n > size {
		x.resize(off + n)
	}
	copy(x.shadow[off:], data)
	for i := off; i < off+n; i++ {
		x.writer[i] = int32(x.step)
	}
	return nil
}

// check reads [off, off+n) with read(2) or a mapping and compares it to the
// shadow.
func (x *Exerciser) check(op Op, off, n int64) error {
	if n == 0 {
		return nil
	}
	got := x.buf[:n]
	if op == OpRead {
		k, err := x.f.ReadAt(got, off)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("fsx: seed %d, op %d read: %w\n%s", x.cfg.Seed, x.step, err, x.logText())
		}
		got = got[:k] // a short read is a mismatch
	} else {
		pg := off &^ (x.page - 1)
		m, err := unix.Mmap(int(x.f.Fd()), pg, int(off+n-pg), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			return fmt.Errorf("fsx: seed %d, op %d mmap: %w\n%s", x.cfg.Seed, x.step, err, x.logText())
		}
		copy(got, m[off-pg:])
		if err := unix.Munmap(m); err != nil {
			return fmt.Errorf("fsx: seed %d, op %d munmap: %w", x.cfg.Seed, x.step, err)
		}
	}
	return x.compare(op.String(), off, got, x.shadow[off:off+n])
}

// compare reports the first difference between got and good (at off).
func (x *Exerciser) compare(what string, off int64, got, good []byte) error {
	if bytes.Equal(got, good) {
		return nil
	}
	e := &MismatchError{Seed: x.cfg.Seed, Step: x.step, What: what, Log: x.logCopy()}
	first := -1
	for i := range good {
		if i >= len(got) || got[i] != good[i] {
			if first < 0 {
				first = i
			}
			e.Diffs++
		}
	}
	if first < 0 { // got is longer than good
		first = len(good)
		e.Diffs = len(got) - len(good)
	}
	e.Off = off + int64(first)
	e.Good = append([]byte(nil), good[first:min(len(good), first+16)]...)
	e.Bad = append([]byte(nil), got[min(len(got), first):min(len(got), first+16)]...)
	if p := off + int64(first); p < int64(len(x.writer)) {
		e.Writer = int(x.writer[p])
	}
	return e
}

// Verify reads the whole of f (from offset 0 to EOF) and compares it, and
// its size, with the shadow.
func (x *Exerciser) Verify(f *os.File) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	if st.Size != int64(len(x.shadow)) {
		return &MismatchError{Seed: x.cfg.Seed, Step: x.step, What: "size", GoodSize: int64(len(x.shadow)), BadSize: st.Size, Log: x.logCopy()}
	}
	got := make([]byte, len(x.shadow)+1)
	n, err := f.ReadAt(got, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return x.compare("verify", 0, got[:n], x.shadow)
}

// VerifyPath opens path and verifies it against the shadow.
func (x *Exerciser) VerifyPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return x.Verify(f)
}
