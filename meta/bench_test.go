package meta

import (
	"syscall"
	"testing"
)

func BenchmarkLookup(b *testing.B) {
	e := newEnv(b)
	names := fillDir(b, e.s, RootIno, 10_000)
	for i := 0; b.Loop(); i++ {
		if _, err := e.s.Lookup(RootIno, names[i*7919%len(names)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreate is one transaction per create, as a FUSE create is.
func BenchmarkCreate(b *testing.B) {
	e := newEnv(b)
	node := NewNode{Mode: syscall.S_IFREG | 0o644}
	for i := 0; b.Loop(); i++ {
		if _, err := e.s.Create(RootIno, "f"+fmtU(uint64(i)), node); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadDir10k(b *testing.B) {
	e := newEnv(b)
	d := e.mkdir("d")
	fillDir(b, e.s, d.Ino, 10_000)
	for b.Loop() {
		n := 0
		if err := e.s.ReadDir(d.Ino, "", func(DirEntry) bool { n++; return true }); err != nil {
			b.Fatal(err)
		}
		if n != 10_000 {
			b.Fatalf("read %d entries", n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10_000, "ns/entry")
}
