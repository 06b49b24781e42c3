package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// randomBytes returns n bytes from a generator seeded with seed, so a
// failing run can be reproduced.
func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)})
	r.Read(b)
	return b
}

// makeMixedTree fills root with what real trees hold: nested and empty
// dirs, text, binary, empty and multi-chunk files, odd modes, relative,
// absolute, directory and dangling symlinks, a hard link, a user xattr and
// nanosecond mtimes.
func makeMixedTree(t testing.TB, root string) {
	t.Helper()
	for _, d := range []string{"a/b/c", "empty", "private", "with space é"} {
		mustMkdirAll(t, filepath.Join(root, d))
	}
	files := []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{"top.txt", []byte("hello taskerfs\nsecond line\n"), 0o644},
		{"empty.txt", nil, 0o644},
		{"a/small.bin", randomBytes(1, 1000), 0o644},
		{"a/b/c/deep.bin", randomBytes(2, 300<<10), 0o640},
		{"a/b/zeros", make([]byte, 128<<10), 0o644},
		{"a/exec.sh", []byte("#!/bin/sh\necho hi\n"), 0o755},
		{"private/secret", []byte("s3cret"), 0o600},
		{"readonly.txt", []byte("do not touch"), 0o444},
		{"log.txt", bytes.Repeat([]byte("2024-01-01 INFO something happened, and then more\n"), 50_000), 0o644},
		{"with space é/file ü.txt", []byte("unicode names"), 0o664},
	}
	for _, f := range files {
		p := filepath.Join(root, f.path)
		mustWrite(t, p, f.data)
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"link-rel":  "a/b/c/deep.bin",
		"link-dir":  "a/b",
		"a/up":      "../top.txt",
		"dangling":  "does/not/exist",
		"link-abs":  "/etc/hostname",
		"a/b/c/dot": ".",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(root, "top.txt"), filepath.Join(root, "a/b/top-hard")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(filepath.Join(root, "a/small.bin"), "user.origin", []byte("mixed-tree"), 0); err != nil {
		t.Fatalf("setxattr on the source tree: %v", err)
	}
	if err := os.Chmod(filepath.Join(root, "private"), 0o700); err != nil {
		t.Fatal(err)
	}
	// Deepest first, so that setting a file's time does not move its
	// directory's afterwards.
	var paths []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	})
	sort.Sort(sort.Reverse(sort.StringSlice(paths)))
	for i, p := range paths {
		ts := time.Unix(1_600_000_000+int64(i)*3600, int64(i)*1_000_003+7)
		tv := []unix.Timespec{unix.NsecToTimespec(ts.UnixNano()), unix.NsecToTimespec(ts.UnixNano())}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, tv, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
	}
}

// treeCompare says which properties compareTrees checks beyond type,
// permission bits, size, content and symlink targets.
type treeCompare struct {
	mtime     time.Duration // mtime granularity to compare at; 0 skips mtimes
	hardLinks bool          // paths sharing an inode in want share one in got
	xattrs    bool          // user.* xattrs (except taskerfs's virtual ones)
}

type entryInfo struct {
	mode   uint32
	size   int64
	mtime  time.Time
	ino    uint64
	nlink  uint64
	sum    string
	target string
	xattrs map[string]string
}

// scanTree describes every entry under root by its relative path.
func scanTree(t testing.TB, root string) map[string]entryInfo {
	t.Helper()
	out := map[string]entryInfo{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		e := entryInfo{mode: st.Mode, size: st.Size, ino: st.Ino, nlink: uint64(st.Nlink),
			mtime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec)}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			if e.sum, err = fileSHA256(p); err != nil {
				return err
			}
		case unix.S_IFLNK:
			if e.target, err = os.Readlink(p); err != nil {
				return err
			}
		}
		if e.xattrs, err = userXattrs(p); err != nil {
			return fmt.Errorf("xattrs of %s: %w", p, err)
		}
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatalf("scan %s: %v", root, err)
	}
	return out
}

// userXattrs reads p's user.* xattrs without following a symlink, leaving
// out taskerfs's read-only virtual ones.
func userXattrs(p string) (map[string]string, error) {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if !strings.HasPrefix(name, "user.") || strings.HasPrefix(name, "user.taskerfs.") {
			continue
		}
		vn, err := unix.Lgetxattr(p, name, buf)
		if err != nil {
			return nil, fmt.Errorf("getxattr %s: %w", name, err)
		}
		out[name] = string(buf[:vn])
	}
	return out, nil
}

// compareTrees fails t for every difference between the trees at want and
// got.
func compareTrees(t testing.TB, want, got string, c treeCompare) {
	t.Helper()
	w, g := scanTree(t, want), scanTree(t, got)
	var rels []string
	for rel := range w {
		rels = append(rels, rel)
	}
	sort.Strings(rels)
	wantInodes := map[uint64]string{} // want ino -> first path
	gotInodeOf := map[string]uint64{}
	for _, rel := range rels {
		we := w[rel]
		ge, ok := g[rel]
		if !ok {
			t.Errorf("%s: missing in %s", rel, got)
			continue
		}
		if we.mode&unix.S_IFMT != ge.mode&unix.S_IFMT {
			t.Errorf("%s: type %o, want %o", rel, ge.mode&unix.S_IFMT, we.mode&unix.S_IFMT)
			continue
		}
		isLink := we.mode&unix.S_IFMT == unix.S_IFLNK
		// The root's mode comes from whoever made the destination.
		if rel != "." && !isLink && we.mode&0o7777 != ge.mode&0o7777 {
			t.Errorf("%s: mode %#o, want %#o", rel, ge.mode&0o7777, we.mode&0o7777)
		}
		if we.mode&unix.S_IFMT != unix.S_IFDIR && we.size != ge.size {
			t.Errorf("%s: size %d, want %d", rel, ge.size, we.size)
		}
		if we.sum != ge.sum {
			t.Errorf("%s: content sha256 %s, want %s", rel, ge.sum, we.sum)
		}
		if we.target != ge.target {
			t.Errorf("%s: symlink target %q, want %q", rel, ge.target, we.target)
		}
		if c.mtime > 0 && rel != "." && !we.mtime.Truncate(c.mtime).Equal(ge.mtime.Truncate(c.mtime)) {
			t.Errorf("%s: mtime %v, want %v", rel, ge.mtime, we.mtime)
		}
		if c.xattrs && fmt.Sprint(we.xattrs) != fmt.Sprint(ge.xattrs) {
			t.Errorf("%s: xattrs %v, want %v", rel, ge.xattrs, we.xattrs)
		}
		if c.hardLinks && we.mode&unix.S_IFMT == unix.S_IFREG {
			if ge.nlink != we.nlink {
				t.Errorf("%s: nlink %d, want %d", rel, ge.nlink, we.nlink)
			}
			gotInodeOf[rel] = ge.ino
			if first, ok := wantInodes[we.ino]; ok {
				if gotInodeOf[first] != ge.ino {
					t.Errorf("%s: not a hard link of %s (inode %d, want %d)", rel, first, ge.ino, gotInodeOf[first])
				}
			} else {
				wantInodes[we.ino] = rel
			}
		}
	}
	for rel := range g {
		if _, ok := w[rel]; !ok {
			t.Errorf("%s: in %s but not in %s", rel, got, want)
		}
	}
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// sha256Manifest writes a `sha256sum -c` manifest of the regular files
// under root to a file outside it and returns the manifest's path.
func sha256Manifest(t testing.TB, root string) string {
	t.Helper()
	var b strings.Builder
	for rel, e := range scanTree(t, root) {
		if e.mode&syscall.S_IFMT == syscall.S_IFREG {
			fmt.Fprintf(&b, "%s  ./%s\n", e.sum, rel)
		}
	}
	path := filepath.Join(t.TempDir(), "SHA256SUMS")
	mustWrite(t, path, []byte(b.String()))
	return path
}
