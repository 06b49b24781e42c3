package tests

import (
	"crypto/rand"
	"fmt"
	"os"
	"testing"
	"time"
)

// Blobs whose last reference goes are deleted by the daemon itself once
// their grace period is over, with no `taskerfs gc`; blobs still in use
// stay. (Short interval and grace here; the defaults are 20 s and 30 s.)
func TestBackgroundGC(t *testing.T) {
	requireMountable(t)
	data := newDataDir(t)
	m := mountFS(t, data, "--gc-interval", "100ms", "--gc-grace", "300ms")
	keep := make([]byte, 300<<10)
	rand.Read(keep)
	mustWrite(t, m.Path("keep"), keep)
	for i := range 20 {
		b := make([]byte, 200<<10)
		rand.Read(b)
		mustWrite(t, m.Path(fmt.Sprint("gone", i)), b)
	}
	run(t, "", taskerfsBin, "sync", "--data", data)
	if files, _ := blobUsage(t, data); files != 21 {
		t.Fatalf("%d blob files after writing 21 distinct files, want 21", files)
	}
	for i := range 20 {
		if err := os.Remove(m.Path(fmt.Sprint("gone", i))); err != nil {
			t.Fatal(err)
		}
	}
	run(t, "", taskerfsBin, "sync", "--data", data)
	// Not a timing assertion: wait as long as it takes, up to a bound far
	// beyond interval + grace, for the unused blobs to go.
	deadline := time.Now().Add(60 * time.Second)
	files, _ := blobUsage(t, data)
	for files != 1 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		files, _ = blobUsage(t, data)
	}
	if files != 1 {
		t.Fatalf("%d blob files after removing 20 of 21 files; want the background gc to leave 1", files)
	}
	if got := mustRead(t, m.Path("keep")); string(got) != string(keep) {
		t.Fatal("background gc damaged a live file")
	}
	m.Unmount()
}
