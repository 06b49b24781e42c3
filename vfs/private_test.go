package vfs

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Open makes a data dir private whatever its modes, and refuses to start,
// saying why, when it cannot.
func TestOpenMakesDataDirPrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "data")
	for _, d := range []string{dir, filepath.Join(dir, "meta"), filepath.Join(dir, "blobs"), filepath.Join(dir, "blobs", "ab")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "taskerfs.log"), []byte("log\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.WriteFile("sessions/s/f", []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		info, _ := d.Info()
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", p, info.Mode().Perm(), want)
		}
		return nil
	})

	// A file whose mode cannot be changed (immutable): Open refuses.
	log := filepath.Join(dir, "taskerfs.log")
	os.Chmod(log, 0o644)
	if out, err := exec.Command("chattr", "+i", log).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chattr +i: %v %s", err, out)
		}
		t.Skipf("chattr +i: %v %s", err, out)
	}
	defer exec.Command("chattr", "-i", log).Run()
	if v, err := Open(dir, Options{}); err == nil {
		v.Close()
		t.Fatal("Open succeeded with a 0644 file it cannot make private")
	} else if !strings.Contains(err.Error(), "must be private") || !strings.Contains(err.Error(), "taskerfs.log") {
		t.Fatalf("Open error does not say what is wrong: %v", err)
	}
}
