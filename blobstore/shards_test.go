package blobstore

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func shardBlob(i int) ([]byte, Hash) {
	data := []byte(fmt.Sprintf("blob %d of the shard test %0*d", i, 64+i%50, i))
	return data, Sum(data)
}

// dirsIn lists the directories in the store's root.
func dirsIn(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names
}

// TestShardsLazyAndPruned: a new store has no shard directories; a Put
// makes its shard; PruneShards removes the empty ones and keeps the rest;
// a Put into a pruned shard makes it again.
func TestShardsLazyAndPruned(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenLocal(dir, LocalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := dirsIn(t, dir); len(got) != 1 || got[0] != tmpDirName {
		t.Fatalf("a new store holds directories %v, want only %s", got, tmpDirName)
	}
	a, ha := shardBlob(1)
	var b []byte
	var hb Hash
	for i := 2; ; i++ { // a blob in another shard
		if b, hb = shardBlob(i); hb.String()[:2] != ha.String()[:2] {
			break
		}
	}
	for _, d := range [][]byte{a, b} {
		if _, err := l.Put(Sum(d), d); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(dirsIn(t, dir)); got != 3 {
		t.Fatalf("after two Puts in two shards: %d directories, want 3", got)
	}
	if err := l.Delete(hb); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		removed int
		dirs    int
	}{
		{"one shard emptied", 1, 2},
		{"nothing left to prune", 0, 2},
	}
	for _, st := range steps {
		n, freed, err := l.PruneShards()
		if err != nil || n != st.removed {
			t.Errorf("%s: PruneShards = %d, %v; want %d", st.name, n, err, st.removed)
		}
		if (n > 0) != (freed > 0) {
			t.Errorf("%s: %d directories removed, %d bytes freed", st.name, n, freed)
		}
		if got := len(dirsIn(t, dir)); got != st.dirs {
			t.Errorf("%s: %d directories, want %d", st.name, got, st.dirs)
		}
	}
	if got, err := l.Get(ha); err != nil || string(got) != string(a) {
		t.Fatalf("the blob of the shard kept: %q, %v", got, err)
	}
	if _, err := l.Put(hb, b); err != nil {
		t.Fatalf("Put into a pruned shard: %v", err)
	}
	if got, err := l.Get(hb); err != nil || string(got) != string(b) {
		t.Fatalf("Get after a Put into a pruned shard: %q, %v", got, err)
	}
}

// TestPruneRacesPut: PruneShards running all the time beside Puts into
// few shards never makes a Put fail or a stored blob go.
func TestPruneRacesPut(t *testing.T) {
	l, err := OpenLocal(t.TempDir(), LocalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	stop := make(chan struct{})
	var pruned sync.WaitGroup
	pruned.Add(1)
	go func() {
		defer pruned.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, _, err := l.PruneShards(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var wg sync.WaitGroup
	var hs [4][]Hash
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 2000; i += 4 {
				d, h := shardBlob(i)
				if _, err := l.Put(h, d); err != nil {
					t.Errorf("Put %d: %v", i, err)
					return
				}
				hs[w] = append(hs[w], h)
				if i%3 == 0 { // keep shards emptying
					if err := l.Delete(h); err != nil {
						t.Error(err)
						return
					}
					hs[w] = hs[w][:len(hs[w])-1]
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	pruned.Wait()
	for _, w := range hs {
		for _, h := range w {
			if ok, err := l.Has(h); err != nil || !ok {
				t.Fatalf("blob %v gone after the race (%v)", h, err)
			}
		}
	}
}

// TestNewShardPowerLoss: a blob made durable by SyncBlobs in a shard the
// Put had to make (a new store, or one pruned) survives a power loss: the
// shard's entry in the root is durable too.
func TestNewShardPowerLoss(t *testing.T) {
	mem, open := strictLocal(t)
	powerLoss := func(l *Local) *Local {
		mem.SetIgnoreSyncs(true)
		l.Close()
		mem.ResetToSyncedState()
		mem.SetIgnoreSyncs(false)
		return open()
	}
	l := open()
	a, ha := shardBlob(1)
	if _, err := l.Put(ha, a); err != nil {
		t.Fatal(err)
	}
	if err := l.SyncBlobs([]Hash{ha}); err != nil {
		t.Fatal(err)
	}
	l = powerLoss(l)
	if got, err := l.Get(ha); err != nil || string(got) != string(a) {
		t.Fatalf("new shard: after power loss Get = %q, %v", got, err)
	}
	// Emptied, pruned durably, and made again by the next Put.
	if err := l.Delete(ha); err != nil {
		t.Fatal(err)
	}
	if n, _, err := l.PruneShards(); err != nil || n != 1 {
		t.Fatalf("PruneShards = %d, %v; want 1", n, err)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := mem.Stat(filepath.Join("/data/blobs", ha.String()[:2])); err == nil {
		t.Fatal("the pruned shard is still there")
	}
	if _, err := l.Put(ha, a); err != nil {
		t.Fatal(err)
	}
	if err := l.SyncBlobs([]Hash{ha}); err != nil {
		t.Fatal(err)
	}
	l = powerLoss(l)
	defer l.Close()
	if got, err := l.Get(ha); err != nil || string(got) != string(a) {
		t.Fatalf("shard made again: after power loss Get = %q, %v", got, err)
	}
}

// TestAdoptMakesShard: a blob file moved in from another store (the S3
// store's staging into its cache) lands in a shard that does not exist yet.
func TestAdoptMakesShard(t *testing.T) {
	from, err := OpenLocal(t.TempDir(), LocalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer from.Close()
	to, err := OpenLocal(t.TempDir(), LocalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer to.Close()
	d, h := shardBlob(7)
	if _, err := from.Put(h, d); err != nil {
		t.Fatal(err)
	}
	if err := to.Adopt(h, from.Path(h)); err != nil {
		t.Fatalf("Adopt into a store without h's shard: %v", err)
	}
	if got, err := to.Get(h); err != nil || string(got) != string(d) {
		t.Fatalf("Get after Adopt = %q, %v", got, err)
	}
	if ok, _ := from.Has(h); ok {
		t.Error("the adopted file is still in the store it came from")
	}
}
