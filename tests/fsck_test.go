package tests

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/index"
	"github.com/taskerfs/taskerfs/meta"
	"github.com/taskerfs/taskerfs/vfs"
)

// importedDataDir imports a small generated legacy dataset with the binary
// and returns the (unmounted) data dir.
func importedDataDir(t *testing.T) string {
	t.Helper()
	o := importOptions()
	o.Sessions, o.Screenshots, o.AudioSegments = 3, 6, 3
	legacy, _ := genDataset(t, "legacy", o)
	data := newDataDir(t)
	mustTaskerfs(t, 0, "import", legacy, "--data", data)
	return data
}

// blobFiles lists the hashes of the data dir's blob files, sorted.
func blobFiles(t *testing.T, data string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(data, "blobs", "??", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var hs []string
	for _, p := range paths {
		if len(filepath.Base(p)) == 64 {
			hs = append(hs, filepath.Base(p))
		}
	}
	sort.Strings(hs)
	if len(hs) < 3 {
		t.Fatalf("only %d blob files", len(hs))
	}
	return hs
}

func blobFilePath(data, h string) string { return filepath.Join(data, "blobs", h[:2], h) }

// damageInProcess opens the unmounted data dir and breaks it from inside:
// a refcount one too high on blob h (the record's value starts with the
// count as a uvarint, see meta/content.go), a stale index entry for one
// session's metadata.json, and a blob file nothing references.
func damageInProcess(t *testing.T, data, h string) {
	t.Helper()
	v, err := vfs.Open(data, vfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := v.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	hash, err := blobstore.ParseHash(h)
	if err != nil {
		t.Fatal(err)
	}
	key := append([]byte{'r'}, hash[:]...)
	err = v.InternalsForTests().Meta.Update(true, func(tx *meta.Tx) error {
		val, closer, err := tx.Batch().Get(key)
		if err != nil {
			return err
		}
		refs, n := binary.Uvarint(val)
		rest := append([]byte(nil), val[n:]...)
		closer.Close()
		return tx.Batch().Set(key, append(binary.AppendUvarint(nil, refs+1), rest...), nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := v.ReadDirAt("sessions")
	if err != nil || len(sessions) == 0 {
		t.Fatalf("sessions: %v %v", sessions, err)
	}
	md, err := v.Resolve("sessions/" + sessions[0].Name + "/metadata.json")
	if err != nil {
		t.Fatal(err)
	}
	err = v.InternalsForTests().Meta.Update(true, func(tx *meta.Tx) error {
		return v.InternalsForTests().Index.UpdateFile(tx.Batch(), md.Ino, sessions[0].Name, index.KindMetadata, []byte(`{"name": "an older name"}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	orphan := []byte(strings.Repeat("a blob a crash left behind ", 4000))
	if _, err := v.InternalsForTests().Blobs.Put(blobstore.Sum(orphan), orphan); err != nil {
		t.Fatal(err)
	}
}

// TestFsckFindsEachDamage inflicts every kind of damage on an unmounted
// data dir: a flipped byte in a blob file, a deleted blob file, a wrong
// refcount, a stale index entry and an unreferenced blob file. fsck
// reports each and exits 4; --repair fixes the refcount, the index and the
// unreferenced file; the damaged and missing content stays reported.
func TestFsckFindsEachDamage(t *testing.T) {
	requireBinary(t)
	data := importedDataDir(t)
	if out := mustTaskerfs(t, 0, "fsck", "--data", data); !strings.Contains(out, "fsck: clean") {
		t.Fatalf("fsck of a fresh import:\n%s", out)
	}
	hs := blobFiles(t, data)
	flipped, deleted, miscounted := hs[0], hs[1], hs[2]
	f, err := os.OpenFile(blobFilePath(data, flipped), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	f.ReadAt(b, 1000)
	b[0] ^= 0x10
	if _, err := f.WriteAt(b, 1000); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Remove(blobFilePath(data, deleted)); err != nil {
		t.Fatal(err)
	}
	damageInProcess(t, data, miscounted)

	out := mustTaskerfs(t, 4, "fsck", "--data", data)
	for _, want := range []string{
		"corrupt blob " + flipped, "missing blob " + deleted, "sessions/",
		"namespace: refcount: blob " + miscounted, "index: stale:", "unreferenced blob file:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("fsck output lacks %q:\n%s", want, out)
		}
	}

	out = mustTaskerfs(t, 4, "fsck", "--repair", "--data", data)
	for _, want := range []string{"repaired: refcounts: 1 rewritten", "repaired: 1 unreferenced blob files deleted", "repaired: index rebuilt"} {
		if !strings.Contains(out, want) {
			t.Errorf("fsck --repair output lacks %q:\n%s", want, out)
		}
	}

	out = mustTaskerfs(t, 4, "fsck", "--data", data)
	if !strings.Contains(out, "corrupt blob "+flipped) || !strings.Contains(out, "missing blob "+deleted) {
		t.Errorf("after repair the damaged content is no longer reported:\n%s", out)
	}
	for _, gone := range []string{"namespace:", "index:", "unreferenced blob file"} {
		if strings.Contains(out, gone) {
			t.Errorf("after repair fsck still reports %q:\n%s", gone, out)
		}
	}
}

// TestFsckRepairsRepairableDamage: with only repairable damage, --repair
// exits 1 (corrected) and the next fsck finds the data dir clean; reindex
// rebuilds an index that was cleared.
func TestFsckRepairsRepairableDamage(t *testing.T) {
	requireBinary(t)
	data := importedDataDir(t)
	damageInProcess(t, data, blobFiles(t, data)[0])
	mustTaskerfs(t, 4, "fsck", "--data", data)
	mustTaskerfs(t, 1, "fsck", "--repair", "--data", data)
	if out := mustTaskerfs(t, 0, "fsck", "--data", data); !strings.Contains(out, "fsck: clean") {
		t.Fatalf("after repair:\n%s", out)
	}

	v, err := vfs.Open(data, vfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = v.InternalsForTests().Meta.Update(true, func(tx *meta.Tx) error { return v.InternalsForTests().Index.Clear(tx.Batch()) })
	if cerr := v.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	mustTaskerfs(t, 4, "fsck", "--data", data)
	if out := mustTaskerfs(t, 0, "reindex", "--data", data); !strings.Contains(out, "reindex: 3 sessions") {
		t.Fatalf("reindex:\n%s", out)
	}
	mustTaskerfs(t, 0, "fsck", "--data", data)
}

// TestFsckRefusesMountedDataDir: fsck and reindex need the data dir
// unmounted.
func TestFsckRefusesMountedDataDir(t *testing.T) {
	requireMountable(t)
	m := mountFS(t, importedDataDir(t))
	for _, cmd := range []string{"fsck", "reindex"} {
		out, code := taskerfs(t, cmd, "--data", m.Data)
		if code == 0 || !strings.Contains(out, "unmount it first") {
			t.Errorf("%s on a mounted data dir: exit %d\n%s", cmd, code, out)
		}
	}
	m.Alive()
}
