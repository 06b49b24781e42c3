package vfs

import (
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/taskerfs/taskerfs/meta"
)

func newUndoTFS(t *testing.T) *tfs {
	t.Helper()
	v, err := Open(t.TempDir(), Options{Trash: &meta.TrashOptions{Retention: time.Hour, Interval: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := v.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return &tfs{t: t, v: v, o: v.Ops()}
}

// trashPath finds p (an original path) in the single hour dir of .trash.
func (f *tfs) trashPath(p string) string {
	f.t.Helper()
	hours := f.names(rootCtx(), TrashName)
	if len(hours) != 1 {
		f.t.Fatalf(".trash holds %v, want one hour dir", hours)
	}
	return TrashName + "/" + hours[0] + "/" + p
}

func (f *tfs) unlink(c *Ctx, p string) error {
	i := strings.LastIndex(p, "/")
	parent, err := f.walk(c, p[:i])
	if err != nil {
		return err
	}
	return f.o.Unlink(c, parent.Node, p[i+1:])
}

func TestTrashView(t *testing.T) {
	f := newUndoTFS(t)
	owner, other := NewCtxGroups(1001, 1001), NewCtxGroups(1002, 1002)
	f.mkdir("sessions/s1", 0o755, 1001, 1001)
	f.write("sessions/s1/private.txt", "private v1", 0o600, 1001, 1001)
	f.write("sessions/s1/public.txt", "public v1", 0o644, 1001, 1001)
	f.write("sessions/s1/public.txt", "public v2", 0o644, 1001, 1001) // O_TRUNC
	for _, p := range []string{"sessions/s1/private.txt"} {
		if err := f.unlink(rootCtx(), p); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.v.wb.SyncAll(); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(f.names(rootCtx(), ""), TrashName) {
		t.Fatalf("root lists %v", f.names(rootCtx(), ""))
	}
	dir := strings.TrimSuffix(f.trashPath("sessions/s1/x"), "/x")
	tests := []struct {
		who       string
		c         *Ctx
		names     []string
		privateOK bool
	}{
		{"root", rootCtx(), []string{"private.txt", "public.txt"}, true},
		{"owner", owner, []string{"private.txt", "public.txt"}, true},
		{"other", other, []string{"public.txt"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.who, func(t *testing.T) {
			if got := f.names(tc.c, dir); !slices.Equal(got, tc.names) {
				t.Errorf("lists %v, want %v", got, tc.names)
			}
			got, err := f.read(tc.c, dir+"/private.txt")
			if tc.privateOK && (err != nil || string(got) != "private v1") {
				t.Errorf("private: %q %v", got, err)
			}
			if !tc.privateOK && !errors.Is(err, syscall.ENOENT) {
				t.Errorf("private seen by another uid: %q %v", got, err)
			}
			if got, err := f.read(tc.c, dir+"/public.txt"); err != nil || string(got) != "public v1" {
				t.Errorf("replaced version: %q %v", got, err)
			}
		})
	}

	// Read-only, but a restore (rename out) works.
	c := rootCtx()
	d := f.mustWalk(c, dir)
	if _, _, err := f.o.Create(c, d.Node, "new", syscall.O_WRONLY, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("create in the trash: %v", err)
	}
	if _, err := f.o.Mkdir(c, d.Node, "new", 0o755); !errors.Is(err, syscall.EROFS) {
		t.Errorf("mkdir in the trash: %v", err)
	}
	pub := f.mustWalk(c, dir+"/public.txt")
	if _, err := f.o.Open(c, pub.Node, syscall.O_WRONLY); !errors.Is(err, syscall.EROFS) {
		t.Errorf("open for writing in the trash: %v", err)
	}
	mode := uint32(0o666)
	if _, err := f.o.Setattr(c, pub.Node, SetAttrIn{SetAttrIn: meta.SetAttrIn{Mode: &mode}}); !errors.Is(err, syscall.EROFS) {
		t.Errorf("chmod in the trash: %v", err)
	}
	live := f.mustWalk(c, "sessions/s1")
	if err := f.o.Rename(c, live.Node, "public.txt", d.Node, "in", 0); !errors.Is(err, syscall.EROFS) {
		t.Errorf("rename into the trash: %v", err)
	}
	if err := f.o.Rename(c, d.Node, "public.txt", live.Node, "public.txt", unix.RENAME_EXCHANGE); !errors.Is(err, syscall.EROFS) {
		t.Errorf("an exchange that moves a live file into the trash: %v", err)
	}
	if _, err := f.o.Mkdir(c, f.o.Root(), TrashName, 0o755); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("mkdir /.trash: %v", err)
	}
	if err := f.o.Rename(c, d.Node, "private.txt", live.Node, "private.txt", 0); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got, err := f.read(owner, "sessions/s1/private.txt"); err != nil || string(got) != "private v1" {
		t.Errorf("restored: %q %v", got, err)
	}
	// Writable again once out of the trash.
	e := f.mustWalk(c, "sessions/s1/private.txt")
	h, err := f.o.Open(c, e.Node, syscall.O_WRONLY)
	if err != nil {
		t.Fatalf("open restored file for writing: %v", err)
	}
	f.o.Release(c, h)
}

func TestSnapshotView(t *testing.T) {
	f := newUndoTFS(t)
	other := NewCtxGroups(1002, 1002)
	f.mkdir("sessions/s1", 0o755, 1001, 1001)
	f.write("sessions/s1/metadata.json", `{"name": "zebra session", "tags": ["zoo"]}`, 0o644, 1001, 1001)
	f.write("sessions/s1/private.txt", "private", 0o600, 1001, 1001)
	big := strings.Repeat("0123456789abcdef", 200<<10) // > 1 chunk
	f.write("sessions/s1/big.bin", big, 0o644, 1001, 1001)

	snaps := f.mustWalk(rootCtx(), snapshotsDirName)
	if _, err := f.o.Mkdir(other, snaps.Node, "nope", 0o755); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("mkdir as another uid: %v", err)
	}
	if _, err := f.o.Mkdir(rootCtx(), snaps.Node, "before", 0o755); err != nil {
		t.Fatal(err)
	}
	// Everything goes.
	for _, n := range []string{"metadata.json", "private.txt", "big.bin"} {
		if err := f.unlink(rootCtx(), "sessions/s1/"+n); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.names(rootCtx(), snapshotsDirName); !slices.Equal(got, []string{"before"}) {
		t.Fatalf(".snapshots lists %v", got)
	}
	if got := f.names(rootCtx(), ".snapshots/before"); !slices.Equal(got, []string{"search", "sessions"}) {
		t.Fatalf(".snapshots/before lists %v", got)
	}
	got, err := f.read(rootCtx(), ".snapshots/before/sessions/s1/big.bin")
	if err != nil || string(got) != big {
		t.Fatalf("big.bin from the snapshot: %d bytes, %v", len(got), err)
	}
	e := f.mustWalk(rootCtx(), ".snapshots/before/sessions/s1/private.txt")
	if e.Attr.Uid != 1001 || e.Attr.Mode&0o777 != 0o600 || e.Attr.Size != 7 {
		t.Errorf("attributes as they were: %+v", e.Attr)
	}
	if got := f.names(other, ".snapshots/before/sessions/s1"); !slices.Equal(got, []string{"big.bin", "metadata.json"}) {
		t.Errorf("another uid lists %v", got)
	}
	if _, err := f.read(other, ".snapshots/before/sessions/s1/private.txt"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("another uid reads a 0600 file: %v", err)
	}
	// Search over the snapshot; the live index has forgotten the session.
	if got := f.names(rootCtx(), ".snapshots/before/search/zebra tag:zoo"); !slices.Equal(got, []string{"s1"}) {
		t.Errorf("snapshot search: %v", got)
	}
	if got := f.names(rootCtx(), "search/zebra"); len(got) != 1 { // .results.json only
		t.Errorf("live search: %v", got)
	}
	l := f.mustWalk(rootCtx(), ".snapshots/before/search/zebra/s1")
	if l.Attr.Mode&syscall.S_IFMT != syscall.S_IFLNK {
		t.Errorf("result is not a link: %o", l.Attr.Mode)
	}
	if tgt, err := f.o.Readlink(rootCtx(), l.Node); err != nil || tgt != "../../sessions/s1" {
		t.Errorf("link %q %v", tgt, err)
	}
	if err := f.o.Rmdir(other, snaps.Node, "before"); !errors.Is(err, syscall.EACCES) {
		t.Errorf("rmdir as another uid: %v", err)
	}
	if err := f.o.Rmdir(rootCtx(), snaps.Node, "before"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.walk(rootCtx(), ".snapshots/before"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("deleted snapshot: %v", err)
	}
}
