package tests

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestCopyTools copies a mixed tree onto the mount with cp -a and rsync,
// then checks it, byte for byte and attribute for attribute, after a
// remount.
func TestCopyTools(t *testing.T) {
	requireTool(t, "cp", "rsync", "sha256sum")
	src := filepath.Join(t.TempDir(), "src")
	makeMixedTree(t, src)
	sums := sha256Manifest(t, src)
	m := mountFS(t, newDataDir(t))
	all := treeCompare{mtime: time.Nanosecond, hardLinks: true, xattrs: true}

	run(t, "", "cp", "-a", src, m.Path("sessions", "cp"))
	// -a plus hard links (-H) and xattrs (-X), which -a alone leaves out.
	run(t, "", "rsync", "-aHX", src+"/", m.Path("sessions", "rsync")+"/")
	compareTrees(t, src, m.Path("sessions", "cp"), all)
	compareTrees(t, src, m.Path("sessions", "rsync"), all)

	m.Remount()
	for _, dir := range []string{"cp", "rsync"} {
		run(t, m.Path("sessions", dir), "sha256sum", "--quiet", "--strict", "-c", sums)
		compareTrees(t, src, m.Path("sessions", dir), all)
	}
	// A second rsync finds nothing to transfer: sizes and mtimes survived.
	out := run(t, "", "rsync", "-aHX", "--itemize-changes", src+"/", m.Path("sessions", "rsync")+"/")
	if strings.TrimSpace(out) != "" {
		t.Errorf("rsync after remount still sees differences:\n%s", out)
	}
	m.Unmount()
}

// TestTar round-trips a tree through tar in both directions.
func TestTar(t *testing.T) {
	requireTool(t, "tar", "cp")
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	makeMixedTree(t, src)
	m := mountFS(t, newDataDir(t))
	onMount := m.Path("sessions", "tree")
	run(t, "", "cp", "-a", src, onMount)
	// pax keeps nanosecond mtimes and xattrs.
	tarArgs := []string{"--format=posix", "--xattrs", "--xattrs-include=user.*"}

	t.Run("create on mount", func(t *testing.T) {
		archive := filepath.Join(tmp, "from-mount.tar")
		run(t, "", "tar", append(tarArgs, "-C", onMount, "-cf", archive, ".")...)
		out := mustMkdirAll(t, filepath.Join(tmp, "extracted"))
		run(t, "", "tar", append(tarArgs, "-C", out, "-xpf", archive)...)
		compareTrees(t, src, out, treeCompare{mtime: time.Microsecond, hardLinks: true, xattrs: true})
	})
	t.Run("extract onto mount", func(t *testing.T) {
		archive := filepath.Join(tmp, "from-src.tar")
		run(t, "", "tar", append(tarArgs, "-C", src, "-cf", archive, ".")...)
		out := mustMkdirAll(t, m.Path("sessions", "untarred"))
		run(t, "", "tar", append(tarArgs, "-C", out, "-xpf", archive)...)
		cmp := treeCompare{mtime: time.Microsecond, hardLinks: true, xattrs: true}
		compareTrees(t, src, out, cmp)
		m.Remount()
		compareTrees(t, src, out, cmp)
		// tar's own check: no differences between archive and mount.
		run(t, "", "tar", "-C", out, "--compare", "-f", archive)
	})
	m.Unmount()
}

// TestGit uses a git repository on the mount, including a repack.
func TestGit(t *testing.T) {
	requireTool(t, "git")
	m := mountFS(t, newDataDir(t))
	repo := m.Path("sessions", "repo")
	git := func(args ...string) string {
		t.Helper()
		base := []string{"-c", "user.name=taskerfs test", "-c", "user.email=test@taskerfs.local",
			"-c", "init.defaultBranch=main", "-c", "core.fsync=all"}
		return run(t, repo, "git", append(base, args...)...)
	}
	mustMkdirAll(t, repo)
	git("init", "-q")
	mustMkdirAll(t, filepath.Join(repo, "src"))
	mustWrite(t, filepath.Join(repo, "README.md"), []byte("# repo on taskerfs\n"))
	mustWrite(t, filepath.Join(repo, "src", "main.go"), []byte("package main\n\nfunc main() {}\n"))
	mustWrite(t, filepath.Join(repo, "src", "data.bin"), randomBytes(3, 200<<10))
	git("add", ".")
	git("commit", "-q", "-m", "first")
	mustWrite(t, filepath.Join(repo, "README.md"), []byte("# repo on taskerfs\n\nedited\n"))
	git("commit", "-q", "-am", "second")
	git("gc", "-q")

	check := func() {
		t.Helper()
		if log := strings.Fields(git("log", "--format=%s")); strings.Join(log, ",") != "second,first" {
			t.Errorf("git log subjects = %v, want [second first]", log)
		}
		if st := git("status", "--porcelain"); st != "" {
			t.Errorf("git status not clean:\n%s", st)
		}
		git("fsck", "--full", "--strict")
	}
	check()
	m.Remount()
	check()
	m.Unmount()
}

// TestSQLiteWAL builds a WAL-mode sqlite database on the mount (sqlite
// mmaps the -shm file and relies on kernel-local locks).
func TestSQLiteWAL(t *testing.T) {
	requireTool(t, "sqlite3")
	m := mountFS(t, newDataDir(t))
	dir := mustMkdirAll(t, m.Path("sessions", "db"))
	db := filepath.Join(dir, "test.db")

	mode := runStdin(t, dir, "PRAGMA journal_mode=WAL;\nCREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, b BLOB);\n", "sqlite3", db)
	if strings.TrimSpace(mode) != "wal" {
		t.Fatalf("journal_mode=WAL answered %q", mode)
	}
	// Two connections, five transactions of 100 rows each.
	for conn := 0; conn < 2; conn++ {
		var sql strings.Builder
		for tx := 0; tx < 5; tx++ {
			sql.WriteString("BEGIN;\n")
			for i := 0; i < 100; i++ {
				fmt.Fprintf(&sql, "INSERT INTO t(v, b) VALUES('row %d-%d-%d', randomblob(300));\n", conn, tx, i)
			}
			sql.WriteString("COMMIT;\n")
		}
		runStdin(t, dir, sql.String(), "sqlite3", db)
	}
	m.Remount()
	out := runStdin(t, dir, "PRAGMA integrity_check;\nSELECT count(*) FROM t;\nPRAGMA journal_mode;\n", "sqlite3", db)
	if got, want := strings.Fields(out), []string{"ok", "1000", "wal"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("after remount: integrity_check, count, journal_mode = %q, want %q", got, want)
	}
	m.Unmount()
}

// TestEditorSaves does the two ways editors replace a file.
func TestEditorSaves(t *testing.T) {
	m := mountFS(t, newDataDir(t))
	dir := mustMkdirAll(t, m.Path("sessions", "edit"))

	t.Run("temp fsync rename", func(t *testing.T) {
		doc := filepath.Join(dir, "doc.txt")
		mustWrite(t, doc, []byte("version 1\n"))
		tmp := filepath.Join(dir, ".doc.txt.tmp")
		f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString("version 2\n"); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatalf("fsync: %v", err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, doc); err != nil {
			t.Fatal(err)
		}
		syncDir(t, dir)
		expectFile(t, doc, "version 2\n")
		expectMissing(t, tmp)
	})
	t.Run("vim order", func(t *testing.T) {
		doc := filepath.Join(dir, "vim.txt")
		mustWrite(t, doc, []byte("old text\n"))
		backup := doc + "~"
		if err := os.Rename(doc, backup); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(doc, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("new text\n")
		if err := f.Sync(); err != nil {
			t.Fatalf("fsync: %v", err)
		}
		f.Close()
		if err := os.Remove(backup); err != nil {
			t.Fatal(err)
		}
		expectFile(t, doc, "new text\n")
		expectMissing(t, backup)
	})
	vimRan := false
	t.Run("real vim", func(t *testing.T) {
		requireTool(t, "vim")
		vimRan = true
		doc := filepath.Join(dir, "real-vim.txt")
		mustWrite(t, doc, []byte("alpha\nbeta\n"))
		// A swap file on the mount, an in-place rewrite with fsync, and
		// vim's copy of the ACL (setxattr system.posix_acl_access).
		run(t, dir, "vim", "-u", "NONE", "-N", "-es", "-c", "set fsync", "-c", "%s/beta/gamma/", "-c", "wq", doc)
		expectFile(t, doc, "alpha\ngamma\n")
		expectMode(t, doc, 0o644)
		expectMissing(t, filepath.Join(dir, ".real-vim.txt.swp"))
	})
	m.Remount()
	expectFile(t, filepath.Join(dir, "doc.txt"), "version 2\n")
	expectFile(t, filepath.Join(dir, "vim.txt"), "new text\n")
	if vimRan {
		expectFile(t, filepath.Join(dir, "real-vim.txt"), "alpha\ngamma\n")
	}
	m.Unmount()
}

// TestSedInPlace edits with sed -i, which writes a temp file and renames it.
func TestSedInPlace(t *testing.T) {
	requireTool(t, "sed")
	m := mountFS(t, newDataDir(t))
	f := m.Path("sessions", "notes.txt")
	mustWrite(t, f, []byte("foo one\nbar two\nfoo three\n"))
	if err := os.Chmod(f, 0o640); err != nil {
		t.Fatal(err)
	}
	run(t, "", "sed", "-i", "s/foo/baz/g", f)
	expectFile(t, f, "baz one\nbar two\nbaz three\n")
	expectMode(t, f, 0o640)
	m.Remount()
	expectFile(t, f, "baz one\nbar two\nbaz three\n")
	expectMode(t, f, 0o640)
	m.Unmount()
}

// TestLinks makes hard and symbolic links with ln.
func TestLinks(t *testing.T) {
	m := mountFS(t, newDataDir(t))
	dir := mustMkdirAll(t, m.Path("sessions", "links"))
	mustMkdirAll(t, filepath.Join(dir, "sub"))
	orig := filepath.Join(dir, "orig")
	mustWrite(t, orig, []byte("shared\n"))
	run(t, dir, "ln", "orig", "hard")
	run(t, dir, "ln", "-s", "orig", "soft")
	run(t, dir, "ln", "-s", "../orig", "sub/up")

	// Writing through one name shows through the other.
	f, err := os.OpenFile(filepath.Join(dir, "hard"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("appended\n")
	f.Close()

	check := func() (ino uint64) {
		t.Helper()
		so, sh := lstat(t, orig), lstat(t, filepath.Join(dir, "hard"))
		if so.Ino != sh.Ino || so.Nlink != 2 || sh.Nlink != 2 {
			t.Errorf("orig ino %d nlink %d, hard ino %d nlink %d: want one inode with nlink 2", so.Ino, so.Nlink, sh.Ino, sh.Nlink)
		}
		expectFile(t, orig, "shared\nappended\n")
		expectFile(t, filepath.Join(dir, "soft"), "shared\nappended\n")
		expectFile(t, filepath.Join(dir, "sub", "up"), "shared\nappended\n")
		if target := strings.TrimSpace(run(t, dir, "readlink", "soft")); target != "orig" {
			t.Errorf("readlink soft = %q, want orig", target)
		}
		if st := lstat(t, filepath.Join(dir, "soft")); st.Mode&unix.S_IFMT != unix.S_IFLNK || st.Size != int64(len("orig")) {
			t.Errorf("soft: mode %o size %d, want a symlink of size %d", st.Mode, st.Size, len("orig"))
		}
		return so.Ino
	}
	ino := check()
	m.Remount()
	if again := check(); again != ino {
		t.Errorf("inode number changed across remount: %d, then %d", ino, again)
	}

	if err := os.Remove(orig); err != nil {
		t.Fatal(err)
	}
	if st := lstat(t, filepath.Join(dir, "hard")); st.Nlink != 1 {
		t.Errorf("hard: nlink %d after removing orig, want 1", st.Nlink)
	}
	expectFile(t, filepath.Join(dir, "hard"), "shared\nappended\n")
	if _, err := os.ReadFile(filepath.Join(dir, "soft")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("reading dangling soft: %v, want ENOENT", err)
	}
	m.Unmount()
}

// TestMoveAcrossDirs moves files and a directory tree between directories.
func TestMoveAcrossDirs(t *testing.T) {
	m := mountFS(t, newDataDir(t))
	d1 := mustMkdirAll(t, m.Path("sessions", "d1"))
	d2 := mustMkdirAll(t, m.Path("sessions", "d2"))
	mustWrite(t, filepath.Join(d1, "f"), []byte("moved file"))
	mustWrite(t, filepath.Join(d1, "over"), []byte("new"))
	mustWrite(t, filepath.Join(d2, "over"), []byte("old, replaced"))
	mustMkdirAll(t, filepath.Join(d1, "sub", "deeper"))
	mustWrite(t, filepath.Join(d1, "sub", "deeper", "x"), []byte("x"))
	fIno := lstat(t, filepath.Join(d1, "f")).Ino

	run(t, "", "mv", filepath.Join(d1, "f"), d2+"/")
	run(t, "", "mv", filepath.Join(d1, "over"), filepath.Join(d2, "over"))
	run(t, "", "mv", filepath.Join(d1, "sub"), filepath.Join(d2, "sub2"))

	check := func() {
		t.Helper()
		if entries, err := os.ReadDir(d1); err != nil || len(entries) != 0 {
			t.Errorf("d1 after the moves: %v, %v; want empty", entries, err)
		}
		expectFile(t, filepath.Join(d2, "f"), "moved file")
		expectFile(t, filepath.Join(d2, "over"), "new")
		expectFile(t, filepath.Join(d2, "sub2", "deeper", "x"), "x")
		if ino := lstat(t, filepath.Join(d2, "f")).Ino; ino != fIno {
			t.Errorf("moved file has inode %d, want %d (rename keeps the inode)", ino, fIno)
		}
		// A directory's nlink is 2 plus its subdirectories, which ls,
		// find and rsync rely on.
		if n := lstat(t, d1).Nlink; n != 2 {
			t.Errorf("d1 nlink %d, want 2", n)
		}
		if n := lstat(t, d2).Nlink; n != 3 {
			t.Errorf("d2 nlink %d, want 3", n)
		}
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(d2, "sub2", ".."), &st); err != nil || st.Ino != lstat(t, d2).Ino {
			t.Errorf("sub2/.. is inode %d (%v), want d2's", st.Ino, err)
		}
	}
	check()
	m.Remount()
	check()
	m.Unmount()
}

// TestXattrTools sets, lists and removes user xattrs with setfattr and
// getfattr.
func TestXattrTools(t *testing.T) {
	requireTool(t, "setfattr", "getfattr")
	m := mountFS(t, newDataDir(t))
	dir := mustMkdirAll(t, m.Path("sessions", "xattr"))
	f := filepath.Join(dir, "file")
	mustWrite(t, f, []byte("content"))

	run(t, "", "setfattr", "-n", "user.color", "-v", "red", f)
	run(t, "", "setfattr", "-n", "user.bin", "-v", "0x00ff10", f)
	run(t, "", "setfattr", "-n", "user.empty", f)
	run(t, "", "setfattr", "-n", "user.gone", "-v", "soon", f)
	run(t, "", "setfattr", "-n", "user.ondir", "-v", "yes", dir)
	run(t, "", "setfattr", "-x", "user.gone", f)
	if out, err := runErr("", "setfattr", "-n", "user.taskerfs.sha256", "-v", "forged", f); err == nil {
		t.Errorf("setting the read-only user.taskerfs.sha256 succeeded:\n%s", out)
	}

	check := func() {
		t.Helper()
		if v := run(t, "", "getfattr", "--absolute-names", "--only-values", "-n", "user.color", f); v != "red" {
			t.Errorf("user.color = %q, want red", v)
		}
		if out := run(t, "", "getfattr", "--absolute-names", "-e", "hex", "-n", "user.bin", f); !strings.Contains(out, "user.bin=0x00ff10") {
			t.Errorf("user.bin:\n%s\nwant 0x00ff10", out)
		}
		if v := run(t, "", "getfattr", "--absolute-names", "--only-values", "-n", "user.ondir", dir); v != "yes" {
			t.Errorf("user.ondir = %q, want yes", v)
		}
		dump := run(t, "", "getfattr", "--absolute-names", "-d", f)
		for _, want := range []string{`user.color="red"`, "user.bin=0s", "user.empty"} {
			if !strings.Contains(dump, want) {
				t.Errorf("getfattr -d lacks %s:\n%s", want, dump)
			}
		}
		if strings.Contains(dump, "user.gone") {
			t.Errorf("removed user.gone is still listed:\n%s", dump)
		}
		if out, err := runErr("", "getfattr", "--absolute-names", "-n", "user.gone", f); err == nil || !strings.Contains(out, "No such attribute") {
			t.Errorf("getfattr of a removed attribute: %v\n%s", err, out)
		}
	}
	check()
	m.Remount()
	check()
	m.Unmount()
}

// TestMmapShared writes through a shared mapping and reads the bytes back
// after a remount.
func TestMmapShared(t *testing.T) {
	m := mountFS(t, newDataDir(t))
	path := m.Path("sessions", "mapped.bin")
	const size = 3 << 20 // spans several 1 MiB chunks
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		t.Fatalf("mmap MAP_SHARED: %v", err)
	}
	want := make([]byte, size)
	for _, off := range []int{0, 4095, 1 << 20, size - 10} {
		copy(want[off:], "mmap write "+strconv.Itoa(off))
		copy(mem[off:], "mmap write "+strconv.Itoa(off))
	}
	if err := unix.Msync(mem, unix.MS_SYNC); err != nil {
		t.Fatalf("msync: %v", err)
	}
	if err := syscall.Munmap(mem); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, path); !bytes.Equal(got, want) {
		t.Errorf("read after munmap differs from what was written through the mapping")
	}
	m.Remount()
	if got := mustRead(t, path); !bytes.Equal(got, want) {
		t.Errorf("after remount the file differs from what was written through the mapping (first difference at %d)", firstDiff(got, want))
	}
	m.Unmount()
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func lstat(t testing.TB, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	return st
}

func expectFile(t testing.TB, p, want string) {
	t.Helper()
	got, err := os.ReadFile(p)
	if err != nil {
		t.Errorf("read %s: %v", p, err)
		return
	}
	if string(got) != want {
		t.Errorf("%s = %q, want %q", p, got, want)
	}
}

func expectMissing(t testing.TB, p string) {
	t.Helper()
	if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: %v, want ENOENT", p, err)
	}
}

func expectMode(t testing.TB, p string, want os.FileMode) {
	t.Helper()
	if st := lstat(t, p); os.FileMode(st.Mode&0o7777) != want {
		t.Errorf("%s: mode %#o, want %#o", p, st.Mode&0o7777, want)
	}
}

// syncDir fsyncs a directory, as careful savers do after a rename.
func syncDir(t testing.TB, dir string) {
	t.Helper()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatalf("fsync dir %s: %v", dir, err)
	}
}
