package tests

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// inTrash returns the one trashed version of orig (a path below the mount
// root) under MOUNT/.trash/<hour>/.
func inTrash(t testing.TB, m *Mount, orig string) string {
	t.Helper()
	found, err := filepath.Glob(filepath.Join(m.Dir, ".trash", "*", orig))
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 {
		t.Fatalf("%s in .trash: %v, want one version", orig, found)
	}
	return found[0]
}

func trashedFiles(t testing.TB, m *Mount) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(m.Path(".trash"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// blobSet lists the blob files of a data dir by hash.
func blobSet(t testing.TB, dataDir string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	err := filepath.WalkDir(filepath.Join(dataDir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && len(d.Name()) == 64 {
			out[d.Name()] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// TestUndoTrash: a file deleted, renamed over, truncated and rewritten
// with O_TRUNC each comes back from .trash/ byte for byte; the trash is
// read-only, restores with `taskerfs restore`, mv and cp, counts in
// stats, and `gc --empty-trash` empties it.
func TestUndoTrash(t *testing.T) {
	data := newDataDir(t)
	m := mountFS(t, data, "--trash-days", "1")
	dir := mustMkdirAll(t, m.Path("sessions", "s1"))
	versions := map[string][]byte{}
	write := func(name string, b []byte) {
		versions[name] = b
		mustWrite(t, filepath.Join(dir, name), b)
	}
	write("deleted.bin", randBytes(t, 300<<10))
	write("renamed.bin", randBytes(t, 200<<10))
	write("truncated.bin", randBytes(t, 1<<20+5000)) // two chunks
	write("otrunc.json", []byte(`{"name": "a session file saved with O_TRUNC", "n": 1}`))

	if err := os.Remove(filepath.Join(dir, "deleted.bin")); err != nil {
		t.Fatal(err)
	}
	newer := randBytes(t, 100<<10)
	mustWrite(t, filepath.Join(dir, "renamed.tmp"), newer)
	if err := os.Rename(filepath.Join(dir, "renamed.tmp"), filepath.Join(dir, "renamed.bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, "truncated.bin"), 100); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "otrunc.json"), []byte(`{"n": 2}`), 0o644); err != nil {
		t.Fatal(err)
	}

	for name, want := range versions {
		got := mustRead(t, inTrash(t, m, "sessions/s1/"+name))
		if !bytes.Equal(got, want) {
			t.Errorf("%s from .trash: %d bytes, want the %d bytes it had", name, len(got), len(want))
		}
	}
	if got := mustRead(t, filepath.Join(dir, "renamed.bin")); !bytes.Equal(got, newer) {
		t.Error("renamed.bin lost its new content")
	}
	if got := mustRead(t, filepath.Join(dir, "truncated.bin")); !bytes.Equal(got, versions["truncated.bin"][:100]) {
		t.Error("truncated.bin is not its first 100 bytes")
	}
	if _, err := os.Stat(filepath.Join(dir, "deleted.bin")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("deleted.bin still there: %v", err)
	}

	// An app saving every moment (write a temp file, rename it over) leaves
	// one version per interval: the last one it replaced.
	for i := 0; i <= 4; i++ {
		mustWrite(t, filepath.Join(dir, "flood.tmp"), []byte(fmt.Sprintf("save %d", i)))
		if err := os.Rename(filepath.Join(dir, "flood.tmp"), filepath.Join(dir, "flood.json")); err != nil {
			t.Fatal(err)
		}
	}
	if got := string(mustRead(t, inTrash(t, m, "sessions/s1/flood.json"))); got != "save 3" {
		t.Errorf("trash after five saves holds %q, want the last replaced version", got)
	}
	if err := os.Remove(filepath.Join(dir, "flood.json")); err != nil { // the loss itself is kept
		t.Fatal(err)
	}
	if got := string(mustRead(t, inTrash(t, m, "sessions/s1/flood.json"))); got != "save 4" {
		t.Errorf("trash after deleting the saved file holds %q, want its last version", got)
	}

	// Read-only.
	trashed := inTrash(t, m, "sessions/s1/deleted.bin")
	if err := os.WriteFile(trashed, []byte("x"), 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("write into a trashed file: %v, want EROFS", err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(trashed), "new"), []byte("x"), 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("create in the trash: %v, want EROFS", err)
	}
	if err := os.Mkdir(m.Path(".trash"), 0o755); !errors.Is(err, fs.ErrExist) {
		t.Errorf("mkdir .trash: %v, want EEXIST", err)
	}

	// Restore three ways.
	out := run(t, "", taskerfsBin, "restore", filepath.Join(dir, "deleted.bin"))
	if got := mustRead(t, filepath.Join(dir, "deleted.bin")); !bytes.Equal(got, versions["deleted.bin"]) {
		t.Errorf("taskerfs restore (%s): content differs", strings.TrimSpace(out))
	}
	if err := os.Rename(inTrash(t, m, "sessions/s1/renamed.bin"), filepath.Join(dir, "renamed.old")); err != nil {
		t.Fatalf("mv out of .trash: %v", err)
	}
	if got := mustRead(t, filepath.Join(dir, "renamed.old")); !bytes.Equal(got, versions["renamed.bin"]) {
		t.Error("mv out of .trash: content differs")
	}
	run(t, "", "cp", inTrash(t, m, "sessions/s1/truncated.bin"), filepath.Join(dir, "truncated.orig"))
	if got := mustRead(t, filepath.Join(dir, "truncated.orig")); !bytes.Equal(got, versions["truncated.bin"]) {
		t.Error("cp out of .trash: content differs")
	}

	// Left in the trash: truncated.bin (copied, not moved), otrunc.json, flood.json.
	var st struct {
		TrashFiles int64 `json:"trashFiles"`
		TrashBytes int64 `json:"trashBytes"`
	}
	if err := json.Unmarshal([]byte(run(t, "", taskerfsBin, "stats", "--json", "--data", data)), &st); err != nil {
		t.Fatal(err)
	}
	wantBytes := int64(len(versions["truncated.bin"]) + len(versions["otrunc.json"]) + len("save 4"))
	if st.TrashFiles != 3 || st.TrashBytes != wantBytes {
		t.Errorf("stats: trash %d files, %d bytes; want 3, %d", st.TrashFiles, st.TrashBytes, wantBytes)
	}
	run(t, "", taskerfsBin, "gc", "--data", data)
	if got := trashedFiles(t, m); len(got) != 3 {
		t.Errorf("gc without --empty-trash removed young trash: %v", got)
	}
	out = run(t, "", taskerfsBin, "gc", "--empty-trash", "--data", data)
	if got := trashedFiles(t, m); len(got) != 0 {
		t.Errorf("after gc --empty-trash (%s): %v", strings.TrimSpace(out), got)
	}
	if !strings.Contains(out, "trash: 3 files") {
		t.Errorf("gc --empty-trash said: %s", out)
	}
	m.Unmount()
}

// TestUndoTrashExpiry remounts with a retention of about 1.7 s: once it has
// passed, gc expires the trashed version and frees its blob.
func TestUndoTrashExpiry(t *testing.T) {
	data := newDataDir(t)
	m := mountFS(t, data, "--trash-days", "1")
	dir := mustMkdirAll(t, m.Path("sessions", "s1"))
	mustWrite(t, filepath.Join(dir, "old.bin"), randBytes(t, 300<<10))
	if err := os.Remove(filepath.Join(dir, "old.bin")); err != nil {
		t.Fatal(err)
	}
	inTrash(t, m, "sessions/s1/old.bin")
	m.Unmount()
	if files, _ := blobUsage(t, data); files != 1 {
		t.Fatalf("%d blob files held by the trash, want 1", files)
	}

	m.Args = []string{"--trash-days", "0.00002"}
	m.Start()
	time.Sleep(3 * time.Second) // older than the retention now
	out := run(t, "", taskerfsBin, "gc", "--data", data)
	if got := trashedFiles(t, m); len(got) != 0 {
		t.Errorf("trash after its retention and gc (%s): %v", strings.TrimSpace(out), got)
	}
	if files, _ := blobUsage(t, data); files != 0 {
		t.Errorf("%d blob files left after expiry and gc (%s)", files, strings.TrimSpace(out))
	}
	m.Unmount()
}

// TestUndoSnapshot takes snapshots (CLI and mkdir), removes every session,
// and reads every byte back from the snapshots, after a remount and after a
// kill -9; search runs over a snapshot; deleting the snapshots and running
// gc frees exactly the blobs only they held.
func TestUndoSnapshot(t *testing.T) {
	data := newDataDir(t)
	m := mountFS(t, data) // trash off: only the snapshots keep what is removed
	if out := run(t, "", taskerfsBin, "snapshot", "--help"); !strings.Contains(out, "create") || !strings.Contains(out, ".snapshots") {
		t.Errorf("snapshot --help: %s", out)
	}
	files := map[string][]byte{}
	shared := randBytes(t, 200<<10)
	var onlySnap []string // blobs that only the snapshots will hold
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("s%d", i)
		mustMkdirAll(t, m.Path("sessions", id, "attachments"))
		big := randBytes(t, 300<<10)
		onlySnap = append(onlySnap, sha(big))
		files["sessions/"+id+"/metadata.json"] = []byte(fmt.Sprintf(`{"id": %q, "name": "zebra crossing %d", "tags": ["zoo"]}`, id, i))
		files["sessions/"+id+"/attachments/big.bin"] = big
		files["sessions/"+id+"/notes.txt"] = []byte("small inline note " + id)
	}
	files["sessions/s1/attachments/shared.bin"] = shared
	for p, b := range files {
		mustWrite(t, m.Path(p), b)
	}
	mustWrite(t, m.Path("kept.bin"), shared) // stays live: its blob must survive

	out := run(t, "", taskerfsBin, "snapshot", "create", "before", "--data", data)
	t.Logf("%s", strings.TrimSpace(out))
	if err := os.Mkdir(m.Path(".snapshots", "viamkdir"), 0o755); err != nil {
		t.Fatalf("mkdir .snapshots/viamkdir: %v", err)
	}
	ents, err := os.ReadDir(m.Path("sessions"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		run(t, "", "rm", "-rf", m.Path("sessions", e.Name()))
	}
	if left, _ := os.ReadDir(m.Path("sessions")); len(left) != 0 {
		t.Fatalf("sessions/ after rm -rf: %v", left)
	}

	check := func(when string) {
		t.Helper()
		for _, snap := range []string{"before", "viamkdir"} {
			for p, want := range files {
				got, err := os.ReadFile(m.Path(".snapshots", snap, p))
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s: .snapshots/%s/%s: %d bytes, %v", when, snap, p, len(got), err)
				}
			}
		}
		ents, err := os.ReadDir(m.Path(".snapshots", "before", "search", "zebra tag:zoo"))
		var ids []string
		for _, e := range ents {
			ids = append(ids, e.Name())
		}
		if err != nil || !slices.Equal(ids, []string{"s1", "s2", "s3"}) && len(ids) != 3 {
			t.Errorf("%s: snapshot search: %v %v", when, ids, err)
		}
		if got, err := os.ReadFile(m.Path(".snapshots", "before", "search", "zebra", "s2", "notes.txt")); err != nil || string(got) != "small inline note s2" {
			t.Errorf("%s: through a snapshot search link: %q %v", when, got, err)
		}
	}
	check("after rm -rf")
	if ents, err := os.ReadDir(m.Path("search", "zebra")); err != nil || len(ents) != 1 || ents[0].Name() != ".results.json" {
		t.Errorf("live search after rm -rf: %v %v", ents, err)
	}
	blobsBefore := blobSet(t, data)
	if out := run(t, "", taskerfsBin, "gc", "--data", data); !strings.Contains(out, "removed 0") {
		t.Errorf("gc collected blobs a snapshot holds: %s", out)
	}
	m.Remount()
	check("after remount")
	m.Kill()
	m.Start()
	check("after kill -9")
	list := run(t, "", taskerfsBin, "snapshot", "list", "--data", data)
	if !strings.Contains(list, "before") || !strings.Contains(list, "viamkdir") {
		t.Errorf("snapshot list: %s", list)
	}

	// fsck checks the snapshots' references: clean, then a blob only the
	// snapshots hold goes missing.
	m.Unmount()
	if out, err := runErr("", taskerfsBin, "fsck", "--data", data); err != nil || !strings.Contains(out, "fsck: clean") {
		t.Errorf("fsck with snapshots: %v\n%s", err, out)
	}
	victim := filepath.Join(data, "blobs", onlySnap[0][:2], onlySnap[0])
	saved, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(victim); err != nil {
		t.Fatal(err)
	}
	if out, err := runErr("", taskerfsBin, "fsck", "--data", data); err == nil || !strings.Contains(out, "snapshot before") || !strings.Contains(out, onlySnap[0]) {
		t.Errorf("fsck with a snapshot's blob missing: %v\n%s", err, out)
	}
	if err := os.WriteFile(victim, saved, 0o600); err != nil {
		t.Fatal(err)
	}
	m.Start()

	if err := os.Remove(m.Path(".snapshots", "viamkdir")); err != nil {
		t.Fatalf("rmdir .snapshots/viamkdir: %v", err)
	}
	run(t, "", taskerfsBin, "snapshot", "delete", "before", "--data", data)
	if ents, _ := os.ReadDir(m.Path(".snapshots")); len(ents) != 0 {
		t.Errorf(".snapshots after deleting both: %v", ents)
	}
	run(t, "", taskerfsBin, "gc", "--data", data)
	after := blobSet(t, data)
	var freed []string
	for h := range blobsBefore {
		if !after[h] {
			freed = append(freed, h)
		}
	}
	slices.Sort(freed)
	slices.Sort(onlySnap)
	if !slices.Equal(freed, onlySnap) {
		t.Errorf("gc freed %v, want exactly the blobs only the snapshots held %v", freed, onlySnap)
	}
	if got := mustRead(t, m.Path("kept.bin")); !bytes.Equal(got, shared) {
		t.Error("a live file lost its content")
	}
	m.Unmount()
}

// TestUndoPermissions: with --allow-other, bob sees neither alice's 0600
// file nor its name in .trash/ or .snapshots/; alice and root do.
func TestUndoPermissions(t *testing.T) {
	requireMountable(t)
	m := mountFS(t, newDataDir(t), "--allow-other", "--trash-days", "1")
	exposeToAll(t, m.Dir)
	dir := mustMkdirAll(t, m.Path("sessions", "a"))
	if err := os.Chown(dir, int(alice.uid), int(alice.gid)); err != nil {
		t.Fatal(err)
	}
	if err := createAs(alice, filepath.Join(dir, "secret.txt"), 0o600, "alice's secret"); err != nil {
		t.Fatal(err)
	}
	if err := createAs(alice, filepath.Join(dir, "open.txt"), 0o644, "open"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(m.Path(".snapshots", "snap"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := asUser(bob, func() error { return os.Mkdir(m.Path(".snapshots", "bobs"), 0o755) }); err == nil {
		t.Error("bob made a snapshot")
	}
	err := asUser(alice, func() error {
		for _, n := range []string{"secret.txt", "open.txt"} {
			if err := os.Remove(filepath.Join(dir, n)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	views := map[string]string{
		"trash":    filepath.Dir(inTrash(t, m, "sessions/a/secret.txt")),
		"snapshot": m.Path(".snapshots", "snap", "sessions", "a"),
	}
	for view, vdir := range views {
		for who, c := range map[string]*cred{"root": nil, "alice": &alice, "bob": &bob} {
			mayRead := who != "bob"
			look := func() error {
				ents, err := os.ReadDir(vdir)
				if err != nil {
					return fmt.Errorf("readdir: %w", err)
				}
				var names []string
				for _, e := range ents {
					names = append(names, e.Name())
				}
				want := []string{"open.txt"}
				if mayRead {
					want = []string{"open.txt", "secret.txt"}
				}
				if !slices.Equal(names, want) {
					return fmt.Errorf("lists %v, want %v", names, want)
				}
				got, err := os.ReadFile(filepath.Join(vdir, "secret.txt"))
				if mayRead && (err != nil || string(got) != "alice's secret") {
					return fmt.Errorf("secret.txt: %q %v", got, err)
				}
				if !mayRead && err == nil {
					return fmt.Errorf("read alice's 0600 file: %q", got)
				}
				if !mayRead {
					if _, err := os.Lstat(filepath.Join(vdir, "secret.txt")); !errors.Is(err, fs.ErrNotExist) {
						return fmt.Errorf("stat of alice's 0600 file: %v, want ENOENT", err)
					}
				}
				if got, err := os.ReadFile(filepath.Join(vdir, "open.txt")); err != nil || string(got) != "open" {
					return fmt.Errorf("open.txt: %q %v", got, err)
				}
				return nil
			}
			var err error
			if c == nil {
				err = look()
			} else {
				err = asUser(*c, look)
			}
			if err != nil {
				t.Errorf("%s in the %s view: %v", who, view, err)
			}
		}
	}
	m.Unmount()
}
