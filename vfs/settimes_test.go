package vfs

import (
	"syscall"
	"testing"
)

// TestSetTimesWithContent: a setattr of times alone on an open file with
// dirty content (tar and cp -p set them before close) goes to disk with
// the content's commit, shows at once, and never undoes a later change.
func TestSetTimesWithContent(t *testing.T) {
	t1, t2 := int64(1_600_000_000_000_000_000), int64(1_500_000_000_000_000_000)
	type want struct{ atime, mtime int64 } // 0: "now-ish", later than t1
	cases := []struct {
		name string
		run  func(f *tfs, h *Handle, n Node)
		want want
	}{
		{"times before close are committed with the content", func(f *tfs, h *Handle, n Node) {
			setTimes(f, n, &t2, &t1)
		}, want{t2, t1}},
		{"mtime alone keeps the atime", func(f *tfs, h *Handle, n Node) {
			setTimes(f, n, nil, &t1)
		}, want{-1, t1}},
		{"a write after the times moves the mtime on", func(f *tfs, h *Handle, n Node) {
			setTimes(f, n, &t2, &t1)
			if _, err := f.o.Write(rootCtx(), h, []byte("more"), 4); err != nil {
				f.t.Fatal(err)
			}
		}, want{t2, 0}},
		{"a chmod after the times keeps them", func(f *tfs, h *Handle, n Node) {
			setTimes(f, n, &t2, &t1)
			mode := uint32(0o600)
			var in SetAttrIn
			in.Mode = &mode
			if _, err := f.o.Setattr(rootCtx(), n, in); err != nil {
				f.t.Fatal(err)
			}
		}, want{t2, t1}},
		{"times with a chmod in one request", func(f *tfs, h *Handle, n Node) {
			mode := uint32(0o600)
			var in SetAttrIn
			in.Mode, in.Atime, in.Mtime = &mode, &t2, &t1
			if _, err := f.o.Setattr(rootCtx(), n, in); err != nil {
				f.t.Fatal(err)
			}
		}, want{t2, t1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			v, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			f := &tfs{t: t, v: v, o: v.Ops()}
			c := rootCtx()
			e, h, err := f.o.Create(c, f.o.Root(), "f", syscall.O_WRONLY, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			before := e.Attr.Atime
			if _, err := f.o.Write(c, h, []byte("data"), 0); err != nil {
				t.Fatal(err)
			}
			tc.run(f, h, e.Node)
			check := func(when string, a Attr) {
				t.Helper()
				wantA, wantM := tc.want.atime, tc.want.mtime
				if wantA == -1 {
					wantA = before
				}
				if wantA != 0 && a.Atime != wantA || wantA == 0 && a.Atime <= t1 {
					t.Errorf("%s: atime %d, want %d", when, a.Atime, wantA)
				}
				if wantM != 0 && a.Mtime != wantM || wantM == 0 && a.Mtime <= t1 {
					t.Errorf("%s: mtime %d, want %d", when, a.Mtime, wantM)
				}
				if a.Ctime < before {
					t.Errorf("%s: ctime %d went back", when, a.Ctime)
				}
			}
			a, err := f.o.Getattr(c, e.Node, nil)
			if err != nil {
				t.Fatal(err)
			}
			check("open", a)
			if err := f.o.Release(c, h); err != nil {
				t.Fatal(err)
			}
			a, _ = f.o.Getattr(c, e.Node, nil)
			check("closed", a)
			if err := v.Close(); err != nil {
				t.Fatal(err)
			}
			v, err = Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			f = &tfs{t: t, v: v, o: v.Ops()}
			check("reopened", f.mustWalk(c, "f").Attr)
		})
	}
}

func setTimes(f *tfs, n Node, atime, mtime *int64) {
	f.t.Helper()
	var in SetAttrIn
	in.Atime, in.Mtime = atime, mtime
	a, err := f.o.Setattr(rootCtx(), n, in)
	if err != nil {
		f.t.Fatal(err)
	}
	if atime != nil && a.Atime != *atime || mtime != nil && a.Mtime != *mtime {
		f.t.Fatalf("setattr answered atime %d mtime %d", a.Atime, a.Mtime)
	}
}
