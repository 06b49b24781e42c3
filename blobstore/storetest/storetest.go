// Package storetest is the conformance suite every blobstore.Store backend
// must pass, plus deterministic test data shared by backend tests.
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/taskerfs/taskerfs/blobstore"
)

// Corrupter is implemented by a store (usually a test wrapper around a
// backend) that can damage a stored blob in place, keeping its key. The
// suite then checks that Get reports blobstore.ErrCorrupt.
type Corrupter interface {
	Corrupt(h blobstore.Hash) error
}

// Run runs the suite. open must return a new, empty store; the suite
// closes it when the subtest ends.
func Run(t *testing.T, open func(t *testing.T) blobstore.Store) {
	fresh := func(t *testing.T) blobstore.Store {
		t.Helper()
		s := open(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}
	tests := []struct {
		name string
		run  func(t *testing.T, s blobstore.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"IdempotentPut", testIdempotentPut},
		{"PutRejectsWrongHash", testPutRejectsWrongHash},
		{"CallerBuffersAreNotShared", testBuffersNotShared},
		{"NotFound", testNotFound},
		{"Delete", testDelete},
		{"List", testList},
		{"ListStopsOnError", testListStopsOnError},
		{"ListRejectsBadPrefix", testListRejectsBadPrefix},
		{"ConcurrentPutSame", testConcurrentPutSame},
		{"ConcurrentPutDifferent", testConcurrentPutDifferent},
		{"Corruption", testCorruption},
		{"SyncAnytime", testSyncAnytime},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, fresh(t)) })
	}
}

// put stores data and fails the test on error.
func put(t *testing.T, s blobstore.Store, data []byte) (blobstore.Hash, blobstore.Info) {
	t.Helper()
	h := blobstore.Sum(data)
	info, err := s.Put(h, data)
	if err != nil {
		t.Fatalf("Put(%d bytes): %v", len(data), err)
	}
	if info.Size != int64(len(data)) {
		t.Fatalf("Put(%d bytes): Info.Size = %d", len(data), info.Size)
	}
	return h, info
}

func mustGet(t *testing.T, s blobstore.Store, h blobstore.Hash, want []byte) {
	t.Helper()
	got, err := s.Get(h)
	if err != nil {
		t.Fatalf("Get(%v): %v", h, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%v): %d bytes differ from the %d put", h, len(got), len(want))
	}
}

func testRoundTrip(t *testing.T, s blobstore.Store) {
	cases := []struct {
		name string
		data []byte
	}{
		{"empty", []byte{}},
		{"one byte", []byte{'x'}},
		{"small text", []byte("hello, blobstore\n")},
		{"random 300KiB", Random(300<<10, 1)},
		{"json 200KiB", JSON(200<<10, 2)},
		{"jpeg magic", JPEG(100<<10, 3)},
		{"json 10MiB", JSON(10<<20, 4)[:10<<20]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, info := put(t, s, c.data)
			mustGet(t, s, h, c.data)
			st, err := s.Stat(h)
			if err != nil {
				t.Fatalf("Stat: %v", err)
			}
			if st != info {
				t.Errorf("Stat = %+v, Put returned %+v", st, info)
			}
			if ok, err := s.Has(h); err != nil || !ok {
				t.Errorf("Has = %v, %v; want true", ok, err)
			}
		})
	}
}

func testIdempotentPut(t *testing.T, s blobstore.Store) {
	data := JSON(50<<10, 5)
	h, first := put(t, s, data)
	for range 3 {
		_, again := put(t, s, data)
		if again != first {
			t.Fatalf("second Put = %+v, first %+v", again, first)
		}
	}
	mustGet(t, s, h, data)
	if n := count(t, s, ""); n != 1 {
		t.Errorf("List after repeated Puts: %d blobs, want 1", n)
	}
}

func testPutRejectsWrongHash(t *testing.T, s blobstore.Store) {
	h := blobstore.Sum([]byte("the real content"))
	if _, err := s.Put(h, []byte("something else")); err == nil {
		t.Fatal("Put with a hash of other bytes succeeded")
	}
	if ok, err := s.Has(h); err != nil || ok {
		t.Errorf("Has after rejected Put = %v, %v; want false", ok, err)
	}
}

func testBuffersNotShared(t *testing.T, s blobstore.Store) {
	for _, data := range [][]byte{Random(4<<10, 6), JSON(4<<10, 7)} {
		orig := slices.Clone(data)
		h, _ := put(t, s, data)
		clear(data) // the caller reuses its buffer
		got, err := s.Get(h)
		if err != nil || !bytes.Equal(got, orig) {
			t.Fatalf("Get after caller reused its buffer: err %v, equal %v", err, bytes.Equal(got, orig))
		}
		clear(got) // the caller scribbles on what Get returned
		mustGet(t, s, h, orig)
	}
}

func testNotFound(t *testing.T, s blobstore.Store) {
	h := blobstore.Sum([]byte("never stored"))
	if ok, err := s.Has(h); err != nil || ok {
		t.Errorf("Has = %v, %v; want false, nil", ok, err)
	}
	if _, err := s.Get(h); !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("Get: %v, want ErrNotFound", err)
	}
	if _, err := s.Stat(h); !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("Stat: %v, want ErrNotFound", err)
	}
	if err := s.Delete(h); !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("Delete: %v, want ErrNotFound", err)
	}
}

func testDelete(t *testing.T, s blobstore.Store) {
	keep, _ := put(t, s, []byte("keep me"))
	gone, _ := put(t, s, []byte("delete me"))
	if err := s.Delete(gone); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if ok, err := s.Has(gone); err != nil || ok {
		t.Errorf("Has after Delete = %v, %v", ok, err)
	}
	if _, err := s.Get(gone); !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("Get after Delete: %v, want ErrNotFound", err)
	}
	if err := s.Delete(gone); !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("second Delete: %v, want ErrNotFound", err)
	}
	mustGet(t, s, keep, []byte("keep me"))
	// A deleted blob can be stored again.
	put(t, s, []byte("delete me"))
	mustGet(t, s, gone, []byte("delete me"))
}

func list(t *testing.T, s blobstore.Store, prefix string) []string {
	t.Helper()
	var got []string
	if err := s.List(prefix, func(h blobstore.Hash) error {
		got = append(got, h.String())
		return nil
	}); err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return got
}

func count(t *testing.T, s blobstore.Store, prefix string) int {
	t.Helper()
	return len(list(t, s, prefix))
}

func testList(t *testing.T, s blobstore.Store) {
	if got := list(t, s, ""); len(got) != 0 {
		t.Fatalf("List of an empty store: %v", got)
	}
	var all []string
	for i := range 300 {
		h, _ := put(t, s, fmt.Appendf(nil, "blob %d", i))
		all = append(all, h.String())
	}
	slices.Sort(all)
	absent := blobstore.Sum([]byte("absent")).String()
	check := func(prefix string) {
		t.Helper()
		var want []string
		for _, h := range all {
			if strings.HasPrefix(h, prefix) {
				want = append(want, h)
			}
		}
		if got := list(t, s, prefix); !slices.Equal(got, want) {
			t.Errorf("List(%q) = %d hashes %v, want %d %v", prefix, len(got), got, len(want), want)
		}
	}
	prefixes := []string{"", all[0][:1], all[150][:1], "f", all[7][:2], all[299][:2], absent, absent[:5]}
	// Prefixes longer than a shard name must filter within the shard.
	for i := range len(all) - 1 {
		if all[i][:2] == all[i+1][:2] {
			prefixes = append(prefixes, all[i], all[i+1], all[i][:3], all[i+1][:3])
		}
	}
	for _, prefix := range prefixes {
		check(prefix)
	}
	// Delete every third blob; listings must drop exactly those.
	var kept []string
	for i, hs := range all {
		if i%3 != 0 {
			kept = append(kept, hs)
			continue
		}
		h, err := blobstore.ParseHash(hs)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(h); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	all = kept
	for _, prefix := range []string{"", all[0][:1], all[10][:2], all[20]} {
		check(prefix)
	}
}

func testListStopsOnError(t *testing.T, s blobstore.Store) {
	for i := range 10 {
		put(t, s, fmt.Appendf(nil, "stop %d", i))
	}
	stop := errors.New("stop")
	calls := 0
	err := s.List("", func(blobstore.Hash) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Errorf("List returned %v after %d calls; want the callback's error after 3", err, calls)
	}
}

func testListRejectsBadPrefix(t *testing.T, s blobstore.Store) {
	put(t, s, []byte("x"))
	for _, prefix := range []string{"g", "zz", "0x", "AB", strings.Repeat("0", 65)} {
		if err := s.List(prefix, func(blobstore.Hash) error { return nil }); err == nil {
			t.Errorf("List(%q) succeeded, want an error", prefix)
		}
	}
}

func testConcurrentPutSame(t *testing.T, s blobstore.Store) {
	data := JSON(1<<20, 8)
	h := blobstore.Sum(data)
	const putters = 8
	infos := make([]blobstore.Info, putters)
	errs := make([]error, putters)
	var wg sync.WaitGroup
	for i := range putters {
		wg.Go(func() { infos[i], errs[i] = s.Put(h, data) })
	}
	wg.Wait()
	for i := range putters {
		if errs[i] != nil {
			t.Fatalf("Put %d: %v", i, errs[i])
		}
		if infos[i] != infos[0] {
			t.Errorf("Put %d = %+v, Put 0 = %+v", i, infos[i], infos[0])
		}
	}
	mustGet(t, s, h, data)
	if n := count(t, s, ""); n != 1 {
		t.Errorf("List: %d blobs, want 1", n)
	}
}

func testConcurrentPutDifferent(t *testing.T, s blobstore.Store) {
	const workers, each = 4, 8
	blobs := make([][]byte, workers*each)
	for i := range blobs {
		if i%2 == 0 {
			blobs[i] = Random(20<<10+i, uint64(100+i))
		} else {
			blobs[i] = JSON(20<<10+i, uint64(100+i))
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(blobs))
	for w := range workers {
		wg.Go(func() {
			for _, data := range blobs[w*each : (w+1)*each] {
				if _, err := s.Put(blobstore.Sum(data), data); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Put: %v", err)
	}
	for _, data := range blobs {
		mustGet(t, s, blobstore.Sum(data), data)
	}
	if n := count(t, s, ""); n != len(blobs) {
		t.Errorf("List: %d blobs, want %d", n, len(blobs))
	}
}

func testCorruption(t *testing.T, s blobstore.Store) {
	c, ok := s.(Corrupter)
	if !ok {
		t.Skip("store cannot damage its own blobs")
	}
	for _, data := range [][]byte{Random(10<<10, 9), JSON(10<<10, 10), {'z'}} {
		h, _ := put(t, s, data)
		if err := c.Corrupt(h); err != nil {
			t.Fatalf("Corrupt: %v", err)
		}
		if _, err := s.Get(h); !errors.Is(err, blobstore.ErrCorrupt) {
			t.Errorf("Get of a damaged %d-byte blob: %v, want ErrCorrupt", len(data), err)
		}
		// Damage does not spread: a new Put of the same content replaces
		// the damaged copy instead of deduplicating onto it.
		put(t, s, data)
		mustGet(t, s, h, data)
	}
}

func testSyncAnytime(t *testing.T, s blobstore.Store) {
	if err := s.Sync(); err != nil {
		t.Fatalf("Sync of an empty store: %v", err)
	}
	h, _ := put(t, s, []byte("synced"))
	if err := s.Sync(); err != nil {
		t.Fatalf("Sync after Put: %v", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	wg.Go(func() {
		for i := range 20 {
			data := fmt.Appendf(nil, "during sync %d", i)
			if _, err := s.Put(blobstore.Sum(data), data); err != nil {
				errs <- err
			}
		}
	})
	wg.Go(func() {
		for range 20 {
			if err := s.Sync(); err != nil {
				errs <- err
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Put/Sync: %v", err)
	}
	if err := s.Delete(h); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := s.Sync(); err != nil {
		t.Fatalf("Sync after Delete: %v", err)
	}
}
