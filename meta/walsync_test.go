package meta

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble"
)

// TestSyncWALSkipsWhenSynced: a SyncWAL with nothing written since the
// last one writes nothing to the WAL; one after a write writes its record.
func TestSyncWALSkipsWhenSynced(t *testing.T) {
	s, err := Open(t.TempDir(), Options{Blobs: testBlobs(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bytesIn := func() uint64 { return s.db.Metrics().WAL.BytesIn }
	steps := []struct {
		name  string
		write bool
		grows bool // SyncWAL writes its record
	}{
		{"after a write", true, true},
		{"again", false, false},
		{"and again", false, false},
		{"after another write", true, true},
		{"once more", false, false},
	}
	for i, st := range steps {
		if st.write {
			if err := s.db.Set([]byte(fmt.Sprint("k", i)), []byte("v"), pebble.NoSync); err != nil {
				t.Fatal(err)
			}
		}
		b0 := bytesIn()
		if err := s.SyncWAL(); err != nil {
			t.Fatal(err)
		}
		if grew := bytesIn() != b0; grew != st.grows {
			t.Errorf("%s: SyncWAL wrote to the WAL: %v, want %v", st.name, grew, st.grows)
		}
	}
}

// TestSyncWALPowerLoss: writers commit without a sync while others call
// SyncWAL, some of which skip; then the power goes. Every batch committed
// before a SyncWAL call that returned must be there.
func TestSyncWALPowerLoss(t *testing.T) {
	for seed := range 3 {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			mem, open := strictStore(t)
			s := open()
			var committed atomic.Int64 // keys k0..k(committed-1) are committed
			var durable atomic.Int64   // a SyncWAL that began after they were has returned
			var wg sync.WaitGroup
			const n = 3000
			start := make(chan struct{})
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				val := make([]byte, 100+seed*50)
				for i := range n {
					if err := s.db.Set([]byte(fmt.Sprintf("k%06d", i)), val, pebble.NoSync); err != nil {
						t.Error(err)
						return
					}
					committed.Store(int64(i + 1))
					runtime.Gosched()
				}
			}()
			for w := range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for committed.Load() < n {
						c := committed.Load()
						if err := s.SyncWAL(); err != nil {
							t.Error(err)
							return
						}
						for {
							d := durable.Load()
							if d >= c || durable.CompareAndSwap(d, c) {
								break
							}
						}
						if w == 0 {
							s.SyncWAL() // often nothing new: skips
						}
					}
				}()
			}
			close(start)
			wg.Wait()
			s = powerLoss(mem, s, open)
			defer s.Close()
			d := int(durable.Load())
			if d == 0 {
				t.Fatal("no SyncWAL saw a commit: the test proves nothing")
			}
			for i := range d {
				if _, ok, err := get(s.db, []byte(fmt.Sprintf("k%06d", i))); err != nil || !ok {
					t.Fatalf("k%06d lost: committed before a SyncWAL that returned (%d durable; err %v)", i, d, err)
				}
			}
		})
	}
}
