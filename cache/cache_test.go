package cache

import (
	"fmt"
	"sync"
	"testing"
)

func newCache[K string | uint64 | []byte, V any](t testing.TB, maxCost int64) *Cache[K, V] {
	t.Helper()
	c, err := New[K, V](maxCost)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestNewRejectsNonPositiveCost(t *testing.T) {
	for _, maxCost := range []int64{0, -1} {
		if _, err := New[string, int](maxCost); err == nil {
			t.Errorf("New(%d) succeeded", maxCost)
		}
	}
}

// TestOperations runs each script on a fresh cache; a step with want ""
// expects a miss.
func TestOperations(t *testing.T) {
	type step struct {
		op, key, val string // op: set, del, get
		want         string
	}
	cases := []struct {
		name  string
		steps []step
		hits  uint64
		miss  uint64
	}{
		{"get of absent key misses", []step{{op: "get", key: "a"}}, 0, 1},
		{"set then get hits", []step{{op: "set", key: "a", val: "1"}, {op: "get", key: "a", want: "1"}}, 1, 0},
		{"second set of a new key wins", []step{
			{op: "set", key: "a", val: "1"}, {op: "set", key: "a", val: "2"}, {op: "get", key: "a", want: "2"}}, 1, 0},
		{"update of a held key", []step{
			{op: "set", key: "a", val: "1"}, {op: "get", key: "a", want: "1"},
			{op: "set", key: "a", val: "2"}, {op: "get", key: "a", want: "2"}}, 2, 0},
		{"del after set removes", []step{
			{op: "set", key: "a", val: "1"}, {op: "del", key: "a"}, {op: "get", key: "a"}}, 0, 1},
		{"set after del is kept", []step{
			{op: "set", key: "a", val: "1"}, {op: "del", key: "a"},
			{op: "set", key: "a", val: "2"}, {op: "get", key: "a", want: "2"}}, 1, 0},
		{"del of absent key is harmless", []step{
			{op: "del", key: "a"}, {op: "set", key: "b", val: "1"}, {op: "get", key: "b", want: "1"}}, 1, 0},
		{"keys are independent", []step{
			{op: "set", key: "a", val: "1"}, {op: "set", key: "b", val: "2"}, {op: "del", key: "a"},
			{op: "get", key: "a"}, {op: "get", key: "b", want: "2"}}, 1, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCache[string, string](t, 1000)
			for i, s := range tc.steps {
				switch s.op {
				case "set":
					c.Set(s.key, s.val, 1)
				case "del":
					c.Del(s.key)
				case "get":
					got, ok := c.Get(s.key)
					if want := s.want != ""; ok != want || got != s.want {
						t.Fatalf("step %d: Get(%q) = %q, %v; want %q, %v", i, s.key, got, ok, s.want, want)
					}
				}
			}
			if st := c.Stats(); st.Hits != tc.hits || st.Misses != tc.miss {
				t.Errorf("Stats hits/misses = %d/%d, want %d/%d", st.Hits, st.Misses, tc.hits, tc.miss)
			}
		})
	}
}

// TestOrderingUnderChurn repeats the sequences that ristretto's buffered
// writes can reorder, on many fresh keys.
func TestOrderingUnderChurn(t *testing.T) {
	c := newCache[uint64, int](t, 1<<20)
	for k := range uint64(5000) {
		c.Set(k, 1, 1)
		c.Set(k, 2, 1)
		if v, ok := c.Get(k); !ok || v != 2 {
			t.Fatalf("key %d: Get after two Sets = %d, %v; want 2", k, v, ok)
		}
		c.Del(k)
		if _, ok := c.Get(k); ok {
			t.Fatalf("key %d: Get after Del hit", k)
		}
	}
	if st := c.Stats(); st.Cost != 0 {
		t.Errorf("Cost after deleting everything = %d", st.Cost)
	}
}

func TestCostBound(t *testing.T) {
	cases := []struct {
		name      string
		maxCost   int64
		n         int
		cost      int64
		wantCount int // exact number of items held at the end; -1: at most maxCost/cost
	}{
		{"fits", 100, 50, 2, 50},
		{"overflows", 100, 1000, 1, -1},
		{"item larger than the cache", 100, 1, 101, 0},
		{"zero cost counts as one", 10, 100, 0, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCache[[]byte, []byte](t, tc.maxCost)
			for i := range tc.n {
				k := fmt.Appendf(nil, "key-%d", i)
				c.Set(k, k, tc.cost)
			}
			held := 0
			for i := range tc.n {
				if _, ok := c.Get(fmt.Appendf(nil, "key-%d", i)); ok {
					held++
				}
			}
			st := c.Stats()
			if st.Cost > tc.maxCost || st.MaxCost != tc.maxCost {
				t.Errorf("Cost %d, MaxCost %d; want at most %d", st.Cost, st.MaxCost, tc.maxCost)
			}
			if limit := tc.maxCost / max(tc.cost, 1); tc.wantCount < 0 && (held > int(limit) || held == 0) {
				t.Errorf("%d items held, want 1..%d", held, limit)
			}
			if tc.wantCount >= 0 && held != tc.wantCount {
				t.Errorf("%d items held, want %d", held, tc.wantCount)
			}
			if tc.wantCount < 0 && st.Evictions == 0 && held == tc.n {
				t.Errorf("nothing evicted or refused: %+v", st)
			}
		})
	}
}

func TestEvictionsCounted(t *testing.T) {
	c := newCache[uint64, int](t, 10)
	// Make the first keys popular, then push newcomers until some win.
	for k := range uint64(10) {
		c.Set(k, 0, 1)
	}
	for k := uint64(100); k < 2000; k++ {
		for range 3 {
			c.Get(k)
		}
		c.Set(k, 0, 1)
	}
	if st := c.Stats(); st.Evictions == 0 {
		t.Errorf("no evictions counted: %+v", st)
	}
}

func TestClosedCacheIsInert(t *testing.T) {
	c, err := New[string, int](100)
	if err != nil {
		t.Fatal(err)
	}
	c.Set("a", 1, 1)
	c.Close()
	c.Close()
	c.Set("b", 2, 1)
	c.Del("a")
	if _, ok := c.Get("a"); ok {
		t.Error("Get after Close hit")
	}
	if st := c.Stats(); st.Cost != 0 || st.MaxCost != 0 {
		t.Errorf("Stats after Close: %+v", st)
	}
}

// TestCloseDuringUse must not panic (run with -race).
func TestCloseDuringUse(t *testing.T) {
	c, err := New[uint64, int](100)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range uint64(4) {
		wg.Go(func() {
			for k := range uint64(2000) {
				c.Set(w<<32|k, 1, 1)
				c.Get(w<<32 | k)
				c.Del(w<<32 | k)
			}
		})
	}
	c.Close()
	wg.Wait()
}

func BenchmarkGetHit(b *testing.B) {
	c := newCache[[]byte, []byte](b, 1<<30)
	key := []byte("0123456789abcdef0123456789abcdef")
	c.Set(key, make([]byte, 4096), 4096)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := c.Get(key); !ok {
				b.Fatal("miss")
			}
		}
	})
}

func BenchmarkSet(b *testing.B) {
	c := newCache[uint64, []byte](b, 1<<30)
	val := make([]byte, 4096)
	var k uint64
	for b.Loop() {
		k++
		c.Set(k, val, int64(len(val)))
	}
}
