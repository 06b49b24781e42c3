package tests

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// casMetadata is attachments-ca/<ab>/<hash>/metadata.json.
type casMetadata struct {
	Hash        string         `json:"hash"`
	MimeType    string         `json:"mimeType"`
	Size        int64          `json:"size"`
	StoredSize  int64          `json:"storedSize"`
	Compression string         `json:"compression"`
	Inline      bool           `json:"inline"`
	RefCount    uint64         `json:"refCount"`
	References  []casReference `json:"references"`
}

type casReference struct {
	SessionID    string `json:"sessionId,omitempty"`
	AttachmentID string `json:"attachmentId,omitempty"`
	Path         string `json:"path,omitempty"`
}

// screenshot returns a ~200 KB JPEG-like blob: a JFIF header, then
// incompressible bytes, as a real screenshot's entropy-coded data is.
func screenshot(t testing.TB) []byte {
	t.Helper()
	data := make([]byte, 200<<10)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	copy(data, []byte("\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"))
	return data
}

func hexSum(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// casDir is the view's directory of the blob with hash h.
func casDir(m *Mount, h string) string { return m.Path("attachments-ca", h[:2], h) }

func readCASMetadata(t *testing.T, m *Mount, h string) casMetadata {
	t.Helper()
	var md casMetadata
	raw := mustRead(t, filepath.Join(casDir(m, h), "metadata.json"))
	if err := json.Unmarshal(raw, &md); err != nil {
		t.Fatalf("metadata.json is not JSON: %v\n%s", err, raw)
	}
	return md
}

func sortedRefs(refs []casReference) []casReference {
	out := slices.Clone(refs)
	slices.SortFunc(out, func(a, b casReference) int { return strings.Compare(a.Path, b.Path) })
	return out
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestCASReferences follows one screenshot shared by three sessions and
// an unrelated file through the view, down to gc removing it.
func TestCASReferences(t *testing.T) {
	m := mountFS(t, newDataDir(t))
	shot := screenshot(t)
	h := hexSum(shot)
	users := []struct {
		path string
		ref  casReference
	}{
		{"sessions/s-1/attachments/att-1.jpg", casReference{SessionID: "s-1", AttachmentID: "att-1"}},
		{"sessions/s-2/attachments/att-2.jpg", casReference{SessionID: "s-2", AttachmentID: "att-2"}},
		{"sessions/s-3/attachments/att-3.jpg", casReference{SessionID: "s-3", AttachmentID: "att-3"}},
		{"notes/copy-of-screenshot.jpg", casReference{}},
	}
	for i := range users {
		users[i].ref.Path = users[i].path
		p := m.Path(users[i].path)
		mustMkdirAll(t, filepath.Dir(p))
		mustWrite(t, p, shot)
	}
	wantRefs := func(from int) []casReference {
		var refs []casReference
		for _, u := range users[from:] {
			refs = append(refs, u.ref)
		}
		return sortedRefs(refs)
	}

	md := readCASMetadata(t, m, h)
	if md.Hash != h || md.Size != int64(len(shot)) || md.RefCount != 4 || md.MimeType != "image/jpeg" {
		t.Errorf("metadata.json: hash %s size %d refCount %d mimeType %q; want %s %d 4 image/jpeg",
			md.Hash, md.Size, md.RefCount, md.MimeType, h, len(shot))
	}
	if md.Inline || md.Compression != "raw" || md.StoredSize < md.Size {
		t.Errorf("a 200 KB incompressible blob is stored as inline=%v compression=%q storedSize=%d; want a raw blob file of at least %d bytes",
			md.Inline, md.Compression, md.StoredSize, md.Size)
	}
	if got := sortedRefs(md.References); !slices.Equal(got, wantRefs(0)) {
		t.Errorf("references = %+v\nwant %+v", got, wantRefs(0))
	}

	data := filepath.Join(casDir(m, h), "data.bin")
	if got := hexSum(mustRead(t, data)); got != h {
		t.Errorf("data.bin hashes to %s, want %s", got, h)
	}
	if fi, err := os.Stat(data); err != nil {
		t.Error(err)
	} else if fi.Size() != int64(len(shot)) {
		t.Errorf("data.bin has size %d, want %d", fi.Size(), len(shot))
	}
	if !slices.Contains(dirNames(t, m.Path("attachments-ca")), h[:2]) {
		t.Errorf("attachments-ca/ does not list shard %s", h[:2])
	}
	if !slices.Contains(dirNames(t, m.Path("attachments-ca", h[:2])), h) {
		t.Errorf("attachments-ca/%s/ does not list %s", h[:2], h)
	}
	if got := dirNames(t, casDir(m, h)); !slices.Equal(got, []string{"data.bin", "metadata.json"}) {
		t.Errorf("blob directory lists %v", got)
	}

	// The sha256 xattr of every user names the blob's directory.
	for _, u := range users {
		buf := make([]byte, 128)
		n, err := unix.Getxattr(m.Path(u.path), "user.taskerfs.sha256", buf)
		if err != nil || string(buf[:n]) != h {
			t.Errorf("getxattr %s: %q, %v; want %s", u.path, buf[:max(n, 0)], err, h)
		}
	}
	if _, err := os.Stat(m.Path("attachments-ca", h[:2], h)); err != nil {
		t.Fatalf("the directory named by the xattr: %v", err)
	}

	for _, u := range users[:2] {
		if err := os.Remove(m.Path(u.path)); err != nil {
			t.Fatal(err)
		}
	}
	// An unlinked file lives on as an orphan (a reference without a path)
	// until the kernel forgets its inode, which the kernel queues during
	// unlink() and the daemon handles a moment later (see vfs/held.go):
	// wait for that, then the answer must be exact.
	untilForgotten(t, func() error {
		md = readCASMetadata(t, m, h)
		if md.RefCount != 2 {
			return fmt.Errorf("after deleting two users refCount = %d, want 2", md.RefCount)
		}
		if got := sortedRefs(md.References); !slices.Equal(got, wantRefs(2)) {
			return fmt.Errorf("references = %+v\nwant %+v", got, wantRefs(2))
		}
		return nil
	})

	for _, u := range users[2:] {
		if err := os.Remove(m.Path(u.path)); err != nil {
			t.Fatal(err)
		}
	}
	untilForgotten(t, func() error {
		if _, err := os.Stat(casDir(m, h)); !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("stat of an unreferenced blob's directory: %v, want ENOENT", err)
		}
		if slices.Contains(dirNames(t, m.Path("attachments-ca")), h[:2]) {
			return fmt.Errorf("attachments-ca/ still lists shard %s with no blob in it", h[:2])
		}
		return nil
	})
	out := run(t, "", taskerfsBin, "gc", "--data", m.Data)
	if files, _ := blobUsage(t, m.Data); files != 0 {
		t.Errorf("%d blob files left after gc (%s)", files, strings.TrimSpace(out))
	}
	if _, err := os.Stat(casDir(m, h)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat after gc: %v, want ENOENT", err)
	}
	m.Unmount()
}

// TestCASGetfattr checks the xattr with the getfattr tool itself.
func TestCASGetfattr(t *testing.T) {
	requireTool(t, "getfattr")
	m := mountFS(t, newDataDir(t))
	shot := screenshot(t)
	mustMkdirAll(t, m.Path("sessions", "s", "attachments"))
	mustWrite(t, m.Path("sessions", "s", "attachments", "a.jpg"), shot)
	got := strings.TrimSpace(run(t, m.Dir, "getfattr", "--only-values", "-n", "user.taskerfs.sha256", "sessions/s/attachments/a.jpg"))
	if _, err := os.Stat(m.Path("attachments-ca", got[:min(2, len(got))], got)); err != nil || got != hexSum(shot) {
		t.Errorf("getfattr says %q (content hash %s); its attachments-ca directory: %v", got, hexSum(shot), err)
	}
	m.Unmount()
}

// TestCASReadOnly tries every kind of change under attachments-ca/.
func TestCASReadOnly(t *testing.T) {
	m := mountFS(t, newDataDir(t))
	shot := screenshot(t)
	mustMkdirAll(t, m.Path("sessions", "s", "attachments"))
	src := m.Path("sessions", "s", "attachments", "a.jpg")
	mustWrite(t, src, shot)
	h := hexSum(shot)
	root := m.Path("attachments-ca")
	shard := m.Path("attachments-ca", h[:2])
	blob := casDir(m, h)
	data := filepath.Join(blob, "data.bin")
	metadata := filepath.Join(blob, "metadata.json")
	if _, err := os.Stat(data); err != nil {
		t.Fatal(err)
	}

	openErr := func(p string, flags int) func() error {
		return func() error {
			fd, err := unix.Open(p, flags|unix.O_CLOEXEC, 0o644)
			if err == nil {
				unix.Close(fd)
			}
			return err
		}
	}
	ops := []struct {
		name string
		do   func() error
	}{
		{"create in attachments-ca", openErr(filepath.Join(root, "new"), unix.O_CREAT|unix.O_WRONLY)},
		{"create in a shard", openErr(filepath.Join(shard, "new"), unix.O_CREAT|unix.O_WRONLY)},
		{"create in a blob dir", openErr(filepath.Join(blob, "new"), unix.O_CREAT|unix.O_WRONLY)},
		{"open data.bin for writing", openErr(data, unix.O_WRONLY)},
		{"open data.bin read-write", openErr(data, unix.O_RDWR)},
		{"open data.bin with O_TRUNC", openErr(data, unix.O_WRONLY|unix.O_TRUNC)},
		{"open metadata.json for writing", openErr(metadata, unix.O_WRONLY|unix.O_APPEND)},
		{"mkdir in attachments-ca", func() error { return unix.Mkdir(filepath.Join(root, "ff00"), 0o755) }},
		{"mkdir in a shard", func() error { return unix.Mkdir(filepath.Join(shard, "d"), 0o755) }},
		{"mkdir in a blob dir", func() error { return unix.Mkdir(filepath.Join(blob, "d"), 0o755) }},
		{"mknod a fifo", func() error { return unix.Mknod(filepath.Join(blob, "fifo"), unix.S_IFIFO|0o644, 0) }},
		{"unlink data.bin", func() error { return unix.Unlink(data) }},
		{"unlink metadata.json", func() error { return unix.Unlink(metadata) }},
		{"rmdir a blob dir", func() error { return unix.Rmdir(blob) }},
		{"rmdir a shard", func() error { return unix.Rmdir(shard) }},
		{"rename within the view", func() error { return unix.Rename(data, filepath.Join(blob, "renamed")) }},
		{"rename out of the view", func() error { return unix.Rename(data, m.Path("sessions", "stolen")) }},
		{"rename into the view", func() error { return unix.Rename(src, filepath.Join(blob, "moved.jpg")) }},
		{"hard link into the view", func() error { return unix.Link(src, filepath.Join(blob, "link")) }},
		{"symlink in the view", func() error { return unix.Symlink("data.bin", filepath.Join(blob, "sym")) }},
		{"chmod data.bin", func() error { return unix.Chmod(data, 0o666) }},
		{"chmod a blob dir", func() error { return unix.Chmod(blob, 0o777) }},
		{"chown data.bin", func() error { return unix.Chown(data, 1, 1) }},
		{"utimes data.bin", func() error { return unix.UtimesNano(data, make([]unix.Timespec, 2)) }},
		{"truncate data.bin", func() error { return unix.Truncate(data, 0) }},
		{"truncate metadata.json", func() error { return unix.Truncate(metadata, 0) }},
		{"setxattr data.bin", func() error { return unix.Setxattr(data, "user.x", []byte("1"), 0) }},
		{"setxattr a shard", func() error { return unix.Setxattr(shard, "user.x", []byte("1"), 0) }},
		{"removexattr data.bin", func() error { return unix.Removexattr(data, "user.taskerfs.sha256") }},
	}
	for _, op := range ops {
		if err := op.do(); !errors.Is(err, unix.EROFS) {
			t.Errorf("%s: %v, want EROFS", op.name, err)
		}
	}
	if got := hexSum(mustRead(t, data)); got != h {
		t.Errorf("data.bin changed: hashes to %s", got)
	}
	if !bytes.Equal(mustRead(t, src), shot) {
		t.Errorf("the source file changed")
	}
	m.Alive()
	m.Unmount()
}

// TestCASNames checks that only present blobs, spelled in lowercase hex
// under their own shard, resolve.
func TestCASNames(t *testing.T) {
	m := mountFS(t, newDataDir(t))
	shot := screenshot(t)
	mustMkdirAll(t, m.Path("sessions", "s", "attachments"))
	mustWrite(t, m.Path("sessions", "s", "attachments", "a.jpg"), shot)
	h := hexSum(shot)
	absent := hexSum([]byte("never written"))
	otherShard := "00"
	if h[:2] == otherShard {
		otherShard = "01"
	}
	for _, p := range []string{
		h[:2] + "/" + h + "/data.bin", // the one that exists
		"AB",
		"zz",
		h[:1],
		h[:2] + "/" + strings.ToUpper(h),
		h[:2] + "/" + h[:63],
		h[:2] + "/" + h + "0",
		otherShard + "/" + h,
		absent[:2] + "/" + absent,
		h[:2] + "/" + h + "/other.txt",
	} {
		_, err := os.Stat(m.Path("attachments-ca", p))
		if p == h[:2]+"/"+h+"/data.bin" {
			if err != nil {
				t.Errorf("stat %s: %v", p, err)
			}
			continue
		}
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stat attachments-ca/%s: %v, want ENOENT", p, err)
		}
	}
	m.Unmount()
}

// untilForgotten retries check for up to 5 s, while the kernel's FORGET of
// just-unlinked inodes reaches the daemon, and fails the test with
// check's last error if it never passes.
func untilForgotten(t *testing.T, check func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Error(err)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
