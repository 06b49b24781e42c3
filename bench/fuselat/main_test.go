package main

import (
	"bytes"
	"strings"
	"testing"
)

const sample = `
  100.000000: fuse:fuse_request_send: connection 40 req 10 opcode 1 (FUSE_LOOKUP) len 48
  100.000030: fuse:fuse_request_end: connection 40 req 10 len 144 error -2
  100.000040: fuse:fuse_request_send: connection 41 req 10 opcode 10 (FUSE_UNLINK) len 45
  100.000050: fuse:fuse_request_send: connection 40 req 12 opcode 10 (FUSE_UNLINK) len 45
  100.000090: fuse:fuse_request_end: connection 41 req 10 len 16 error 0
  100.000150: fuse:fuse_request_end: connection 40 req 12 len 16 error 0
  100.000200: fuse:fuse_request_send: connection 40 req 14 opcode 10 (FUSE_UNLINK) len 45
  100.000500: fuse:fuse_request_end: connection 40 req 14 len 16 error 0
  100.000600: fuse:fuse_request_send: connection 40 req 16 opcode 2 (FUSE_FORGET) len 48
  something else entirely
`

func TestParse(t *testing.T) {
	reqs, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	sum := summarize(reqs)
	tests := []struct {
		conn  uint64
		op    string
		n     int
		noEnd int
		p50   float64
		total float64 // microseconds
	}{
		{40, "FUSE_UNLINK", 2, 0, 300, 400},
		{40, "FUSE_LOOKUP", 1, 0, 30, 30},
		{40, "FUSE_FORGET", 0, 1, 0, 0},
		{41, "FUSE_UNLINK", 1, 0, 50, 50},
	}
	for _, tc := range tests {
		var got *stats
		for _, s := range sum[tc.conn] {
			if s.op == tc.op {
				got = s
			}
		}
		if got == nil {
			t.Errorf("connection %d: no %s", tc.conn, tc.op)
			continue
		}
		if len(got.lat) != tc.n || got.noEnd != tc.noEnd {
			t.Errorf("connection %d %s: %d answered, %d unanswered; want %d, %d", tc.conn, tc.op, len(got.lat), got.noEnd, tc.n, tc.noEnd)
		}
		if p := got.pct(0.5); !near(p, tc.p50) {
			t.Errorf("connection %d %s: p50 %.3f, want %.3f", tc.conn, tc.op, p, tc.p50)
		}
		if s := got.sum(); !near(s, tc.total) {
			t.Errorf("connection %d %s: total %.3f, want %.3f", tc.conn, tc.op, s, tc.total)
		}
	}
	// The busiest request type comes first.
	if sum[40][0].op != "FUSE_UNLINK" {
		t.Errorf("first row %s, want FUSE_UNLINK", sum[40][0].op)
	}
	var buf bytes.Buffer
	report(&buf, reqs, map[uint64]string{40: "/mnt/a"})
	for _, want := range []string{"connection 40 /mnt/a", "connection 41 (unmounted since)", "FUSE_UNLINK", "time in requests: 0.4 ms"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestParseRejectsDamage(t *testing.T) {
	for _, line := range []string{
		"abc: fuse:fuse_request_send: connection 40 req 1 opcode 1 (FUSE_LOOKUP) len 48",
		"1.0: fuse:fuse_request_send: connection x req 1 opcode 1 (FUSE_LOOKUP) len 48",
		"1.0: fuse:fuse_request_end: connection 40 len 16 error 0",
	} {
		if _, err := parse(strings.NewReader(line)); err == nil {
			t.Errorf("%q: no error", line)
		}
	}
}

func near(a, b float64) bool { return a-b < 1e-3 && b-a < 1e-3 }
