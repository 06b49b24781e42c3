package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestViewsHidePrivateSessions shares a mount with --allow-other and
// checks, as two unprivileged uids, that no view tells them about a
// session they cannot read: a private session (metadata.json 0600 in a
// 0755 dir) and a team session (0750, group teamGID). alice is in the
// team; bob has no access to any session.
func TestViewsHidePrivateSessions(t *testing.T) {
	requireMountable(t)
	m := mountFS(t, newDataDir(t), "--allow-other")
	exposeToAll(t, m.Dir)
	meta := func(name, tag string) string {
		return fmt.Sprintf(`{"name": %q, "description": "zebra crossing", "tags": [%q], "status": "done", "category": "c-%s", "startTime": "2025-10-01T10:00:00Z"}`, name, tag, tag)
	}
	priv, team := m.Path("sessions", "priv"), m.Path("sessions", "team")
	mustMkdirAll(t, filepath.Join(priv, "attachments"))
	mustMkdirAll(t, filepath.Join(team, "attachments"))
	secret := "the private attachment's bytes\n"
	files := []struct {
		path string
		data string
		mode uint32
		gid  int
	}{
		{filepath.Join(priv, "metadata.json"), meta("Secret plan", "secret"), 0o600, 0},
		{filepath.Join(priv, "attachments", "s.txt"), secret, 0o600, 0},
		{filepath.Join(team, "metadata.json"), meta("Team plan", "teamtag"), 0o640, teamGID},
		{filepath.Join(team, "attachments", "t.txt"), "team bytes\n", 0o640, teamGID},
	}
	for _, f := range files {
		mustWrite(t, f.path, []byte(f.data))
		if err := os.Chown(f.path, 0, f.gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(f.path, os.FileMode(f.mode)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(team, 0, teamGID); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(team, 0o750); err != nil {
		t.Fatal(err)
	}
	casDir := func(content string) string {
		h := sha256.Sum256([]byte(content))
		return m.Path("attachments-ca", hex.EncodeToString(h[:1]), hex.EncodeToString(h[:]))
	}

	// What each user may see; root sees all.
	sees := map[string]map[string]bool{
		"root":  {"priv": true, "team": true},
		"alice": {"team": true},
		"bob":   {},
	}
	creds := map[string]cred{"root": {}, "alice": alice, "bob": bob}
	// root goes first, so that the kernel and the daemon have every
	// private entry cached when the others look.
	for _, who := range []string{"root", "alice", "bob"} {
		visible, c := sees[who], creds[who]
		check := func(what string, leaks bool, detail string) {
			t.Helper()
			if leaks {
				t.Errorf("%s: %s %s", who, what, detail)
			}
		}
		err := asUser(c, func() error {
			for _, id := range []string{"priv", "team"} {
				want := visible[id]
				// search/ listing and lookups.
				ents, err := os.ReadDir(m.Path("search", "zebra"))
				if err != nil {
					return err
				}
				listed := false
				for _, e := range ents {
					listed = listed || e.Name() == id
				}
				check("ls search/zebra", listed != want, fmt.Sprintf("lists %s: %v, want %v", id, listed, want))
				_, err = os.Lstat(m.Path("search", "zebra", id))
				check("lstat search/zebra/"+id, (err == nil) != want, fmt.Sprint(err))
				// .results.json: names and snippets.
				res, err := os.ReadFile(m.Path("search", "zebra", ".results.json"))
				if err != nil {
					return err
				}
				name := map[string]string{"priv": "Secret plan", "team": "Team plan"}[id]
				check(".results.json", strings.Contains(string(res), name) != want, fmt.Sprintf("names %q: %v, want %v", name, !want, want))
				// Facets: values and members.
				tag := map[string]string{"priv": "secret", "team": "teamtag"}[id]
				for _, p := range []string{m.Path("by-tag", tag), m.Path("by-category", "c-"+tag), m.Path("by-status", "done", id), m.Path("by-date", "2025-10", id)} {
					_, err = os.Lstat(p)
					check("lstat "+strings.TrimPrefix(p, m.Dir), (err == nil) != want, fmt.Sprint(err))
				}
				tags, err := os.ReadDir(m.Path("by-tag"))
				if err != nil {
					return err
				}
				listed = false
				for _, e := range tags {
					listed = listed || e.Name() == tag
				}
				check("ls by-tag", listed != want, fmt.Sprintf("lists %s: %v", tag, listed))
			}
			// attachments-ca: the private blob and the private
			// metadata.json's bytes.
			for content, owner := range map[string]string{secret: "priv", meta("Secret plan", "secret"): "priv", "team bytes\n": "team"} {
				want := visible[owner]
				b, err := os.ReadFile(filepath.Join(casDir(content), "data.bin"))
				check("cat data.bin of "+owner+"'s blob", (err == nil) != want, fmt.Sprint(err))
				if err == nil && string(b) != content {
					t.Errorf("%s: data.bin = %q", who, b)
				}
				_, err = os.Stat(casDir(content))
				check("stat the blob dir of "+owner, (err == nil) != want, fmt.Sprint(err))
				shard := filepath.Dir(casDir(content))
				ents, _ := os.ReadDir(shard)
				listed := false
				for _, e := range ents {
					listed = listed || e.Name() == filepath.Base(casDir(content))
				}
				check("ls the shard of "+owner+"'s blob", listed != want, fmt.Sprint(listed))
				if want {
					md, err := os.ReadFile(filepath.Join(casDir(content), "metadata.json"))
					if err != nil || !strings.Contains(string(md), "sessions/"+owner+"/") {
						t.Errorf("%s: metadata.json of %s's blob: %s, %v", who, owner, md, err)
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Errorf("%s: %v", who, err)
		}
	}
	// bob, who may read nothing, sees empty views.
	err := asUser(bob, func() error {
		for _, p := range []string{"search/zebra", "by-tag", "by-category", "by-status", "by-date", "attachments-ca"} {
			ents, err := os.ReadDir(m.Path(p))
			if err != nil {
				return err
			}
			for _, e := range ents {
				if e.Name() != ".results.json" {
					t.Errorf("bob: ls %s lists %s", p, e.Name())
				}
			}
		}
		b, err := os.ReadFile(m.Path("search", "zebra", ".results.json"))
		if err == nil && strings.TrimSpace(string(b)) != "[]" {
			t.Errorf("bob: .results.json = %s", b)
		}
		_, err = os.ReadFile(m.Path(".taskerfs", "stats.json"))
		if !errors.Is(err, syscall.EACCES) {
			t.Errorf("bob reads .taskerfs/stats.json (it counts every session): %v", err)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	m.Alive()
	m.Unmount()
}

// TestModeZero: open(O_CREAT, 0000) makes a file whose mode is exactly
// 0000 (and mkdir 0000 a directory of 0000), and another user cannot read
// such a file or list such a directory.
func TestModeZero(t *testing.T) {
	requireMountable(t)
	m := mountFS(t, newDataDir(t), "--allow-other")
	exposeToAll(t, m.Dir)
	dir := m.Path("sessions", "z")
	mustMkdirAll(t, dir)
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	old := unix.Umask(0)
	defer unix.Umask(old)
	file, sub := filepath.Join(dir, "f"), filepath.Join(dir, "d")
	fd, err := unix.Open(file, unix.O_CREAT|unix.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Write(fd, []byte("root only\n"))
	unix.Close(fd)
	if err := unix.Mkdir(sub, 0); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	for _, p := range []string{file, sub} {
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&0o7777 != 0 {
			t.Errorf("%s: mode %o, want 0000", filepath.Base(p), st.Mode&0o7777)
		}
	}
	err = asUser(bob, func() error {
		if _, err := os.ReadFile(file); !errors.Is(err, syscall.EACCES) {
			t.Errorf("bob reads a 0000 file: %v, want EACCES", err)
		}
		if _, err := os.ReadDir(sub); !errors.Is(err, syscall.EACCES) {
			t.Errorf("bob lists a 0000 directory: %v, want EACCES", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	m.Remount()
	if err := unix.Lstat(file, &st); err != nil || st.Mode&0o7777 != 0 {
		t.Errorf("after remount: mode %o, %v", st.Mode&0o7777, err)
	}
	m.Unmount()
}
