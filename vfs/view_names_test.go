package vfs

import (
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/taskerfs/taskerfs/index"
	"github.com/taskerfs/taskerfs/meta"
)

// metaJSON is a metadata.json; tag goes in raw (it may hold bytes that are
// not UTF-8) and may be an escape sequence of JSON.
func metaJSON(tag, cat, sub string) string {
	return `{"name": "n", "description": "names test", "tags": ["` + tag + `"], "status": "done", "category": "` + cat +
		`", "subCategory": "` + sub + `", "startTime": "2025-10-01T10:00:00Z"}`
}

// TestFacetNamesEscaped: facet directory names escape control characters,
// bidi controls and bytes that are not UTF-8 as %XX (never raw, never
// U+FFFD), and every listed name maps back to its value: the directory
// looks up, lists its session, and the name as a query value finds it.
func TestFacetNamesEscaped(t *testing.T) {
	f := newTFS(t)
	tags := map[string]struct{ json, name string }{
		"nl":    {`a\nb`, "a%0Ab"},
		"esc":   {`\u001b[31mred`, "%1B[31mred"},
		"bidi":  {"evil\u202Etxt.exe", "evil%E2%80%AEtxt.exe"},
		"ff":    {"x\xffy", "x%FFy"},
		"fe":    {"x\xfey", "x%FEy"}, // not the same tag as x\xffy
		"c1":    {"c1\u0085x", "c1%C2%85x"},
		"slash": {"ci/cd", "ci%2Fcd"},
		"dot":   {".net", "%2Enet"},
		"pct":   {"100%", "100%25"},
		"plain": {"ünïcode tag", "ünïcode tag"},
	}
	for id, tag := range tags {
		f.mkdir("sessions/"+id, 0o755, 0, 0)
		f.write("sessions/"+id+"/metadata.json", metaJSON(tag.json, "c", "s"), 0o644, 0, 0)
	}
	c := rootCtx()
	listed := f.names(c, "by-tag")
	var want []string
	for _, tag := range tags {
		want = append(want, tag.name)
	}
	slices.Sort(want)
	slices.Sort(listed)
	if !slices.Equal(listed, want) {
		t.Errorf("by-tag lists %q, want %q", listed, want)
	}
	for id, tag := range tags {
		if !index.CleanName(tag.name) {
			t.Fatalf("test bug: %q", tag.name)
		}
		if got := f.names(c, "by-tag/"+tag.name); !slices.Equal(got, []string{id}) {
			t.Errorf("by-tag/%s lists %q, want [%s]", tag.name, got, id)
		}
		// name -> value -> name: the name is the query's value too.
		q := "tag:" + tag.name
		if strings.ContainsAny(tag.name, " ") {
			q = `tag:"` + tag.name + `"`
		}
		got := slices.DeleteFunc(f.names(c, "search/"+q), func(s string) bool { return s == resultsFile })
		if !slices.Equal(got, []string{id}) {
			t.Errorf("search/%s lists %q, want [%s]", q, got, id)
		}
		if pq, err := index.ParseQuery(q); err != nil || pq.String() != q && pq.String() != "tag:"+tag.name {
			t.Errorf("%s does not parse back to itself: %v, %v", q, pq, err)
		}
	}
	// Raw or U+FFFD spellings are not names of anything.
	for _, name := range []string{"a\nb", "evil\u202Etxt.exe", "x\uFFFDy", "x\xffy", "ci/cd", ".net", "100%"} {
		if _, err := f.walk(c, "by-tag/"+name); !errors.Is(err, syscall.ENOENT) {
			t.Errorf("by-tag/%q looks up: %v, want ENOENT", name, err)
		}
	}
}

// TestNamesNeverCollide: a session named like a subCategory, a session
// named .results.json and a saved query named README.md: each directory
// still has one entry per name, and every entry looks up.
func TestNamesNeverCollide(t *testing.T) {
	f := newTFS(t)
	f.v.owner = ownerUID
	// Session "backend" is in category eng without a subCategory; "web"
	// and "b2" are in eng/backend. "backend%" is a session too.
	f.mkdir("sessions/backend", 0o755, 0, 0)
	f.write("sessions/backend/metadata.json", metaJSON("t", "eng", ""), 0o644, 0, 0)
	f.mkdir("sessions/web", 0o755, 0, 0)
	f.write("sessions/web/metadata.json", metaJSON("t", "eng", "backend"), 0o644, 0, 0)
	f.mkdir("sessions/backend%", 0o700, aliceUID, aliceUID)
	f.write("sessions/backend%/metadata.json", metaJSON("t", "eng", "web"), 0o600, aliceUID, aliceUID)
	f.mkdir("sessions/.results.json", 0o755, 0, 0)
	f.write("sessions/.results.json/metadata.json", metaJSON("t", "eng", "backend"), 0o644, 0, 0)

	alice, bob := NewCtxGroups(aliceUID, aliceUID), NewCtxGroups(bobUID, bobUID)
	tests := []struct {
		who  string
		c    *Ctx
		want []string
		subs map[string]string // sub dir name -> a session it lists
	}{
		// root sees session backend%, so sub web stays "web", sub backend
		// becomes backend%% (backend and backend% are sessions).
		{"root", rootCtx(), []string{".results.json", "backend", "backend%", "backend%%", "web", "web%"},
			map[string]string{"backend%%": "web", "web%": "backend%"}},
		{"alice", alice, []string{".results.json", "backend", "backend%", "backend%%", "web", "web%"},
			map[string]string{"backend%%": "web", "web%": "backend%"}},
		// bob does not see backend% (alice's): sub backend is "backend%".
		{"bob", bob, []string{".results.json", "backend", "backend%", "web"},
			map[string]string{"backend%": "web"}},
	}
	for _, tt := range tests {
		got := f.names(tt.c, "by-category/eng")
		sorted := slices.Clone(got)
		slices.Sort(sorted)
		if !slices.Equal(sorted, tt.want) {
			t.Errorf("%s: by-category/eng lists %q, want %q", tt.who, sorted, tt.want)
		}
		if len(slices.Compact(sorted)) != len(got) {
			t.Errorf("%s: by-category/eng lists a name twice: %q", tt.who, got)
		}
		for _, name := range got {
			e, err := f.walk(tt.c, "by-category/eng/"+name)
			if err != nil {
				t.Errorf("%s: by-category/eng/%s does not look up: %v", tt.who, name, err)
				continue
			}
			_, isSub := tt.subs[name]
			if isDir := e.Attr.Mode&syscall.S_IFMT == syscall.S_IFDIR; isDir != isSub {
				t.Errorf("%s: by-category/eng/%s is a directory: %v, want %v", tt.who, name, isDir, isSub)
			}
		}
		for sub, member := range tt.subs {
			if names := f.names(tt.c, "by-category/eng/"+sub); !slices.Contains(names, member) {
				t.Errorf("%s: by-category/eng/%s lists %q, want %s in it", tt.who, sub, names, member)
			}
		}
	}

	// A query dir: .results.json is the file, never also a link.
	got := f.names(rootCtx(), "search/names")
	if n := len(slices.DeleteFunc(slices.Clone(got), func(s string) bool { return s != resultsFile })); n != 1 {
		t.Errorf("search/names lists %d entries named %s: %q", n, resultsFile, got)
	}
	if e := f.mustWalk(rootCtx(), "search/names/"+resultsFile); e.Attr.Mode&syscall.S_IFMT != syscall.S_IFREG {
		t.Errorf("search/names/%s is not the results file", resultsFile)
	}

	// A saved query named README.md is in saved/, and search/ has one README.md.
	if _, err := f.o.Mkdir(rootCtx(), f.mustWalk(rootCtx(), "saved").Node, "README.md", 0o755); err != nil {
		t.Fatal(err)
	}
	if got := f.names(rootCtx(), "search"); !slices.Equal(got, []string{"README.md"}) {
		t.Errorf("search/ lists %q", got)
	}
	if got := f.names(rootCtx(), "saved"); !slices.Equal(got, []string{"README.md"}) {
		t.Errorf("saved/ lists %q", got)
	}
}

// TestRootEntryShadowsView: a real entry at the root named like a view
// (made before that view existed) is listed once, as itself, stays
// reachable and removable, and the view appears once it is gone.
func TestRootEntryShadowsView(t *testing.T) {
	f := newTFS(t)
	if _, err := f.v.meta.Create(meta.RootIno, "saved", meta.NewNode{Mode: syscall.S_IFDIR | 0o755}); err != nil {
		t.Fatal(err)
	}
	f.write("saved/notes.txt", "mine", 0o644, 0, 0)
	c := rootCtx()
	names := f.names(c, "")
	if n := len(slices.DeleteFunc(slices.Clone(names), func(s string) bool { return s != "saved" })); n != 1 {
		t.Fatalf("root lists %d entries named saved: %q", n, names)
	}
	if b, err := f.read(c, "saved/notes.txt"); err != nil || string(b) != "mine" {
		t.Fatalf("the real saved/notes.txt: %q, %v", b, err)
	}
	root := f.o.Root()
	if err := f.o.Rename(c, root, "saved", root, "old-saved", 0); err != nil {
		t.Fatalf("rename the real saved away: %v", err)
	}
	if e := f.mustWalk(c, "saved"); e.Attr.Mode&syscall.S_ISVTX == 0 {
		t.Errorf("saved/ is not the view after the rename: %#o", e.Attr.Mode)
	}
	if _, err := f.o.Mkdir(c, root, "saved", 0o755); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("mkdir of the view's name: %v, want EEXIST", err)
	}
}

// TestNoWildcards: '%' and '*' are not queries that match everything.
func TestNoWildcards(t *testing.T) {
	f := viewFixture(t)
	c := rootCtx()
	for _, name := range []string{"%", "*", "?", "...", "oauth *", "tag:%"} {
		if ents, err := f.list(c, "search/"+name); !errors.Is(err, syscall.ENOENT) {
			t.Errorf("search/%s: %d entries, %v; want ENOENT", name, len(ents), err)
		}
		if _, err := f.o.Mkdir(c, f.mustWalk(c, "saved").Node, name, 0o755); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("mkdir saved/%s: %v, want EINVAL", name, err)
		}
	}
	// A literal tag value of "*" is only that tag.
	if got := slices.DeleteFunc(f.names(c, "search/tag:*"), func(s string) bool { return s == resultsFile }); len(got) != 0 {
		t.Errorf("search/tag:* lists %q", got)
	}
}

// TestSavedPerUser: mkdir/rmdir in saved/ are plain ops for any user; each
// user sees only their own saved queries (in saved/ and search/), root too;
// an entry belongs to whoever saved it; saved queries survive a reopen.
func TestSavedPerUser(t *testing.T) {
	f := viewFixture(t)
	alice, bob, root := NewCtxGroups(aliceUID, aliceUID), NewCtxGroups(bobUID, bobUID), rootCtx()
	saved := f.mustWalk(root, "saved")
	if saved.Attr.Mode&0o7777 != syscall.S_ISVTX|0o777 {
		t.Errorf("saved/ mode %#o, want 01777", saved.Attr.Mode&0o7777)
	}
	mkdir := func(c *Ctx, name string) error {
		_, err := f.o.Mkdir(c, f.mustWalk(c, "saved").Node, name, 0o755)
		return err
	}
	rmdir := func(c *Ctx, name string) error { return f.o.Rmdir(c, f.mustWalk(c, "saved").Node, name) }
	lists := func(c *Ctx, dir string) []string {
		return slices.DeleteFunc(f.names(c, dir), func(s string) bool { return s == "README.md" })
	}
	private := "oauth -tag:layoff-plans"
	if err := mkdir(alice, private); err != nil {
		t.Fatalf("alice saves: %v", err)
	}
	if err := mkdir(alice, "work"); err != nil {
		t.Fatal(err)
	}
	if err := mkdir(bob, "work"); err != nil {
		t.Fatalf("bob saves a name alice saved too: %v", err)
	}
	for _, tt := range []struct {
		who  string
		c    *Ctx
		want []string
	}{{"alice", alice, []string{private, "work"}}, {"bob", bob, []string{"work"}}, {"root", root, nil}} {
		for _, dir := range []string{"saved", "search"} {
			if got := lists(tt.c, dir); !slices.Equal(got, tt.want) {
				t.Errorf("%s lists %s/ %q, want %q", tt.who, dir, got, tt.want)
			}
		}
	}
	if _, err := f.walk(bob, "saved/"+private); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("bob looks up alice's saved/%s: %v", private, err)
	}
	e := f.mustWalk(alice, "saved/"+private)
	if e.Attr.Uid != aliceUID || e.Attr.Gid != aliceUID {
		t.Errorf("alice's saved query is owned by %d:%d", e.Attr.Uid, e.Attr.Gid)
	}
	if got := f.names(alice, "saved/"+private); !slices.Contains(got, "alice") || !slices.Contains(got, resultsFile) {
		t.Errorf("alice's saved query lists %q", got)
	}
	if err := rmdir(bob, private); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("bob removes alice's query: %v, want ENOENT", err)
	}
	if err := rmdir(bob, "work"); err != nil {
		t.Fatal(err)
	}
	if got := lists(alice, "saved"); !slices.Equal(got, []string{private, "work"}) {
		t.Errorf("bob's rmdir changed alice's saved/: %q", got)
	}
	if err := mkdir(alice, "work"); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("alice saves work again: %v, want EEXIST", err)
	}

	// Survives a reopen.
	dir := f.v.Dir
	if err := f.v.Close(); err != nil {
		t.Fatal(err)
	}
	v, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.v, f.o = v, v.Ops()
	t.Cleanup(func() { v.Close() })
	if got := lists(alice, "saved"); !slices.Equal(got, []string{private, "work"}) {
		t.Errorf("after reopen alice lists %q", got)
	}
	if got := lists(bob, "saved"); len(got) != 0 {
		t.Errorf("after reopen bob lists %q", got)
	}
}

// FuzzSubDirName: a subCategory's name never is a session's, never
// another subCategory's, and is always listable.
func FuzzSubDirName(f *testing.F) {
	f.Add("backend", "web", "backend", "backend%")
	f.Add("", "%", "%", "%%")
	f.Fuzz(func(t *testing.T, sub1, sub2, id1, id2 string) {
		if sub1 == sub2 {
			return
		}
		taken := map[string]bool{id1: true, id2: true}
		n1, n2 := subDirName(sub1, taken), subDirName(sub2, taken)
		for _, n := range []string{n1, n2} {
			if n == "" {
				continue
			}
			if taken[n] || !index.CleanName(n) || strings.Contains(n, "/") {
				t.Fatalf("name %q (sessions %q, %q)", n, id1, id2)
			}
		}
		if n1 != "" && n1 == n2 {
			t.Fatalf("subCategories %q and %q share the name %q", sub1, sub2, n1)
		}
	})
}
