package meta

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
)

// vanishingFS answers "no such file" for every table file opened for
// reading once vanish is set, while listing them still: what pebble sees
// when the data dir is removed from under a running store.
type vanishingFS struct {
	vfs.FS
	vanish atomic.Bool
}

func (f *vanishingFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	if f.vanish.Load() && strings.HasSuffix(name, ".sst") {
		return nil, &os.PathError{Op: "open", Path: name, Err: os.ErrNotExist}
	}
	return f.FS.Open(name, opts...)
}

// TestOnFatal: pebble's fatal report (here a table file gone) reaches
// Options.OnFatal as a *FatalError naming the table. Before, it was only
// a panic, which go-fuse recovers in a handler, leaving the table half
// loaded in pebble's cache and every later reader of it waiting forever.
func TestOnFatal(t *testing.T) {
	mem := vfs.NewMem()
	s, err := Open("/db", Options{Blobs: testBlobs(t), FS: mem})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DB().Set([]byte("zz-fatal-test"), []byte("v"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := s.DB().Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	fs := &vanishingFS{FS: mem}
	fs.vanish.Store(true)
	fatal := make(chan error, 8)
	onFatal := func(err error) {
		fatal <- err
		runtime.Goexit() // as the daemon's exit would: this goroutine goes no further
	}
	// Whoever opens the table first (the open's own reads, pebble's table
	// statistics, the read below) gets the report; the store is left open
	// on purpose: its state is undefined after it.
	go func() {
		s, err := Open("/db", Options{Blobs: testBlobs(t), FS: fs, OnFatal: onFatal})
		if err != nil {
			fatal <- err
			return
		}
		s.DB().Get([]byte("zz-fatal-test"))
	}()
	select {
	case err := <-fatal:
		var fe *FatalError
		if !errors.As(err, &fe) || !strings.Contains(fe.Msg, ".sst") {
			t.Fatalf("OnFatal got %v, want a *FatalError naming the table file", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a missing table file never reached OnFatal")
	}
}
