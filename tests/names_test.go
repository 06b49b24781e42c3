package tests

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"
)

// namesOf lists dir as c: entry names, sorted, and an error.
func namesOf(c cred, dir string) ([]string, error) {
	var names []string
	err := asUser(c, func() error {
		f, err := os.Open(dir)
		if err != nil {
			return err
		}
		defer f.Close()
		names, err = f.Readdirnames(-1)
		return err
	})
	sort.Strings(names)
	return names, err
}

// TestSavedQueriesAsUsers: under --allow-other, a normal user saves and
// forgets queries with plain mkdir and rmdir in saved/ (no root, no
// /proc), sees them in saved/ and search/, owns them, and no other user
// (root included) sees them, looks them up or removes them.
func TestSavedQueriesAsUsers(t *testing.T) {
	requireMountable(t)
	m := mountFS(t, newDataDir(t), "--allow-other")
	exposeToAll(t, m.Dir)
	mustMkdirAll(t, m.Path("sessions", "pub"))
	mustWrite(t, m.Path("sessions", "pub", "metadata.json"),
		[]byte(`{"name": "Public", "description": "zebra crossing", "tags": ["t"], "status": "done", "startTime": "2025-10-01T10:00:00Z"}`))

	private := "zebra -tag:layoff-plans"
	shared := "zebra"
	if err := asUser(alice, func() error {
		for _, q := range []string{private, shared} {
			if err := os.Mkdir(m.Path("saved", q), 0o755); err != nil {
				return fmt.Errorf("alice: mkdir saved/%s: %w", q, err)
			}
		}
		if err := os.Mkdir(m.Path("saved", shared), 0o755); !errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("alice: mkdir saved/%s again: %v, want EEXIST", shared, err)
		}
		if err := os.Mkdir(m.Path("saved", "*"), 0o755); !errors.Is(err, syscall.EINVAL) {
			return fmt.Errorf("alice: mkdir saved/*: %v, want EINVAL (no wildcards)", err)
		}
		st, err := os.Stat(m.Path("saved", private))
		if err != nil {
			return err
		}
		if s := st.Sys().(*syscall.Stat_t); s.Uid != alice.uid || !st.IsDir() {
			return fmt.Errorf("alice's saved query: uid %d, dir %v", s.Uid, st.IsDir())
		}
		links, err := linkNamesErr(m.Path("saved", private))
		if err != nil || !slices.Equal(links, []string{"pub"}) {
			return fmt.Errorf("alice: ls saved/%s = %q, %v", private, links, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	expect := func(who string, c cred, want ...string) {
		t.Helper()
		for _, dir := range []string{"saved", "search"} {
			got, err := namesOf(c, m.Path(dir))
			got = slices.DeleteFunc(got, func(n string) bool { return n == "README.md" })
			if err != nil || !slices.Equal(got, want) {
				t.Errorf("%s: ls %s/ = %q, %v; want %q", who, dir, got, err, want)
			}
		}
	}
	expect("alice", alice, shared, private)
	expect("bob", bob)
	expect("root", cred{})

	if err := asUser(bob, func() error {
		if _, err := os.Stat(m.Path("saved", private)); !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("bob: stat alice's saved/%s: %v, want ENOENT", private, err)
		}
		if err := os.Remove(m.Path("saved", private)); !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("bob: rmdir alice's saved/%s: %v, want ENOENT", private, err)
		}
		// The same name is bob's own.
		if err := os.Mkdir(m.Path("saved", shared), 0o755); err != nil {
			return fmt.Errorf("bob: mkdir saved/%s: %w", shared, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	expect("bob", bob, shared)
	if err := asUser(bob, func() error { return os.Remove(m.Path("saved", shared)) }); err != nil {
		t.Fatalf("bob: rmdir saved/%s: %v", shared, err)
	}
	expect("bob after rmdir", bob)
	expect("alice after bob's rmdir", alice, shared, private)

	m.Remount()
	expect("alice after remount", alice, shared, private)
	if err := asUser(alice, func() error { return os.Remove(m.Path("saved", private)) }); err != nil {
		t.Fatalf("alice: rmdir saved/%s: %v", private, err)
	}
	expect("alice after rmdir", alice, shared)
	m.Alive()
}

// TestViewNamesThroughMount: facet names escape control characters, bidi
// controls and bytes that are not UTF-8 (two such tags stay two); a
// subCategory named like a session never shares its name; '*' and '%'
// are not queries.
func TestViewNamesThroughMount(t *testing.T) {
	requireMountable(t)
	m := mountFS(t, newDataDir(t))
	write := func(id, tags, cat, sub string) {
		t.Helper()
		mustMkdirAll(t, m.Path("sessions", id))
		mustWrite(t, m.Path("sessions", id, "metadata.json"), []byte(`{"name": "n", "description": "names", "tags": [`+tags+
			`], "status": "done", "category": "`+cat+`", "subCategory": "`+sub+`", "startTime": "2025-10-01T10:00:00Z"}`))
	}
	write("s1", "\"a\\nb\", \"x\xffy\", \"evil\u202etxt\"", "eng", "backend")
	write("s2", "\"x\xfey\"", "eng", "")
	write("backend", "\"plain\"", "eng", "web")

	tags := readNames(t, m.Path("by-tag"))
	sort.Strings(tags)
	if want := []string{"a%0Ab", "evil%E2%80%AEtxt", "plain", "x%FEy", "x%FFy"}; !slices.Equal(tags, want) {
		t.Errorf("ls by-tag = %q, want %q", tags, want)
	}
	for _, name := range tags {
		if !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x202e }) {
			t.Errorf("by-tag lists the raw name %q", name)
		}
	}
	if got := linkNames(t, m.Path("by-tag", "x%FFy")); !slices.Equal(got, []string{"s1"}) {
		t.Errorf("by-tag/x%%FFy lists %q", got)
	}
	if got := linkNames(t, m.Path("search", "tag:a%0Ab")); !slices.Equal(got, []string{"s1"}) {
		t.Errorf("search/tag:a%%0Ab lists %q", got)
	}

	cat := readNames(t, m.Path("by-category", "eng"))
	sort.Strings(cat)
	if want := []string{"backend", "backend%", "s1", "s2", "web"}; !slices.Equal(cat, want) {
		t.Errorf("ls by-category/eng = %q, want %q (no name twice)", cat, want)
	}
	if fi, err := os.Lstat(m.Path("by-category", "eng", "backend")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("by-category/eng/backend is not the session's link: %v", err)
	}
	if got := linkNames(t, m.Path("by-category", "eng", "backend%")); !slices.Equal(got, []string{"s1"}) {
		t.Errorf("by-category/eng/backend%% lists %q", got)
	}
	if target, err := os.Readlink(m.Path("by-category", "eng", "backend%", "s1")); err != nil || target != "../../../sessions/s1" {
		t.Errorf("by-category/eng/backend%%/s1 -> %q, %v", target, err)
	}

	for _, q := range []string{"*", "%", "?"} {
		if _, err := os.Stat(filepath.Join(m.Path("search"), q)); !errors.Is(err, syscall.ENOENT) {
			t.Errorf("stat search/%s: %v, want ENOENT (no wildcards)", q, err)
		}
	}
	m.Alive()
}
