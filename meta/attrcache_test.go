package meta

import (
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// TestAttrCacheProtocol checks the fill rules step by step on a bare cache.
func TestAttrCacheProtocol(t *testing.T) {
	rec := func(ino uint64, mode uint32) Attr { return Attr{Ino: ino, Mode: syscall.S_IFREG | mode} }
	cases := []struct {
		name string
		run  func(c *attrCache, v *atomic.Uint64) (Attr, bool)
		want *Attr
	}{
		{"fill at the current version", func(c *attrCache, v *atomic.Uint64) (Attr, bool) {
			c.fill(rec(1, 0o600), v.Load(), v)
			return c.peek(1)
		}, &Attr{Ino: 1, Mode: syscall.S_IFREG | 0o600}},
		{"fill read while a commit was in flight", func(c *attrCache, v *atomic.Uint64) (Attr, bool) {
			c.begin(v)
			v0 := v.Load()
			c.fill(rec(1, 0o600), v0, v)
			return c.peek(1)
		}, nil},
		{"fill read before a commit that began", func(c *attrCache, v *atomic.Uint64) (Attr, bool) {
			v0 := v.Load()
			c.begin(v)
			c.fill(rec(1, 0o600), v0, v)
			return c.peek(1)
		}, nil},
		{"fill read before a commit that ended", func(c *attrCache, v *atomic.Uint64) (Attr, bool) {
			v0 := v.Load()
			c.begin(v)
			tx := &Tx{}
			tx.remember(1, &Attr{Ino: 1, Mode: syscall.S_IFREG | 0o644})
			tx.touched = []uint64{1}
			c.end(v, tx, true)
			c.fill(rec(1, 0o600), v0, v) // the stale read must not win
			return c.peek(1)
		}, &Attr{Ino: 1, Mode: syscall.S_IFREG | 0o644}},
		{"a failed commit forgets what it touched", func(c *attrCache, v *atomic.Uint64) (Attr, bool) {
			c.fill(rec(1, 0o600), v.Load(), v)
			c.begin(v)
			tx := &Tx{}
			tx.remember(1, &Attr{Ino: 1, Mode: syscall.S_IFREG | 0o644})
			tx.touched = []uint64{1}
			c.end(v, tx, false)
			return c.peek(1)
		}, nil},
		{"a freed inode leaves the cache", func(c *attrCache, v *atomic.Uint64) (Attr, bool) {
			c.fill(rec(1, 0o600), v.Load(), v)
			c.begin(v)
			tx := &Tx{}
			tx.remember(1, nil)
			tx.touched = []uint64{1}
			c.end(v, tx, true)
			return c.peek(1)
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var v atomic.Uint64
			c := newAttrCache(8)
			got, ok := tc.run(c, &v)
			if tc.want == nil {
				if ok {
					t.Fatalf("cached %+v, want nothing", got)
				}
				return
			}
			if !ok || got != *tc.want {
				t.Fatalf("got %+v (%v), want %+v", got, ok, *tc.want)
			}
			if v.Load()%2 != 0 {
				t.Fatalf("version %d left odd", v.Load())
			}
		})
	}
}

// TestAttrCacheExactUnderLoad races readers that fill the cache against
// writers that change the same inodes, then checks that every cached
// record is the one in pebble: a stale fill would survive here.
func TestAttrCacheExactUnderLoad(t *testing.T) {
	e := newEnv(t)
	// Room for two of the eight records: readers miss and fill all along.
	e.s.attrs = newAttrCache(2)
	var inos []uint64
	for i := range 8 {
		a, err := e.s.Create(RootIno, fmt.Sprintf("f%d", i), NewNode{Mode: syscall.S_IFREG | 0o644})
		if err != nil {
			t.Fatal(err)
		}
		inos = append(inos, a.Ino)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := r; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := e.s.GetAttr(inos[i%len(inos)]); err != nil {
					t.Error(err)
					return
				}
				if i%7 == 0 {
					if err := e.s.PeekAttrs(inos, func(Attr) {}); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	for i := range 3000 {
		mode := uint32(0o600 + i%64)
		if _, err := e.s.SetAttr(inos[i%len(inos)], SetAttrIn{Mode: &mode}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	for _, ino := range inos {
		want, err := getAttr(e.s.db, ino)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := e.s.attrs.peek(ino); ok && got != want {
			t.Errorf("inode %d: cached %+v, stored %+v", ino, got, want)
		}
	}
}

// TestTxReadsThroughAttrCache checks that a transaction sees a record the
// cache holds, and that what a commit writes is what the cache then holds.
func TestTxReadsThroughAttrCache(t *testing.T) {
	e := newEnv(t)
	a, err := e.s.Create(RootIno, "f", NewNode{Mode: syscall.S_IFREG | 0o644})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := e.s.attrs.peek(a.Ino); !ok || got != a {
		t.Fatalf("after create: cached %+v (%v), want %+v", got, ok, a)
	}
	mode := uint32(0o640)
	b, err := e.s.SetAttr(a.Ino, SetAttrIn{Mode: &mode})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := e.s.attrs.peek(a.Ino); !ok || got != b || got.Mode&0o777 != 0o640 {
		t.Fatalf("after setattr: cached %+v (%v), want %+v", got, ok, b)
	}
	if err := e.s.Unlink(RootIno, "f"); err != nil {
		t.Fatal(err)
	}
	if got, ok := e.s.attrs.peek(a.Ino); ok {
		t.Fatalf("after unlink: still cached %+v", got)
	}
	if _, err := e.s.GetAttr(a.Ino); err == nil {
		t.Fatal("GetAttr of a freed inode succeeded")
	}
}
