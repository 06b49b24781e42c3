package vfs

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/taskerfs/taskerfs/blobstore"
)

const (
	aliceUID = 1000
	bobUID   = 1001
	ownerUID = 4242 // the daemon's user in these tests
)

// viewFixture has three sessions: pub (everyone may read it), priv (root's,
// metadata.json 0600 in a 0755 dir) and alice's (a 0700 dir). A blob is
// shared by pub and priv; another is in priv only.
func viewFixture(t *testing.T) *tfs {
	f := newTFS(t)
	f.v.owner = ownerUID
	meta := func(name, tag, cat, sub string) string {
		return fmt.Sprintf(`{"name": %q, "description": "oauth login flow", "tags": [%q], "status": "done", "category": %q, "subCategory": %q, "startTime": "2025-10-01T10:00:00Z"}`, name, tag, cat, sub)
	}
	f.mkdir("sessions/pub", 0o755, 0, 0)
	f.write("sessions/pub/metadata.json", meta("Public work", "shared", "eng", "backend"), 0o644, 0, 0)
	f.mkdir("sessions/pub/attachments", 0o755, 0, 0)
	f.write("sessions/pub/attachments/a.txt", "shared blob", 0o644, 0, 0)
	f.mkdir("sessions/priv", 0o755, 0, 0)
	f.write("sessions/priv/metadata.json", meta("Secret work", "secret", "hr", "payroll"), 0o600, 0, 0)
	f.mkdir("sessions/priv/attachments", 0o755, 0, 0)
	f.write("sessions/priv/attachments/a.txt", "shared blob", 0o600, 0, 0)
	f.write("sessions/priv/attachments/b.txt", "private blob", 0o600, 0, 0)
	f.mkdir("sessions/alice", 0o700, aliceUID, aliceUID)
	f.write("sessions/alice/metadata.json", meta("Alice work", "alicetag", "eng", "frontend"), 0o600, aliceUID, aliceUID)
	return f
}

func casPath(content string) string {
	h := blobstore.Sum([]byte(content))
	return fmt.Sprintf("attachments-ca/%02x/%s", h[0], h)
}

// TestViewsPerCaller: every view answers as the caller's rights allow.
func TestViewsPerCaller(t *testing.T) {
	f := viewFixture(t)
	callers := map[string]*Ctx{
		"root":  rootCtx(),
		"owner": NewCtxGroups(ownerUID, ownerUID),
		"alice": NewCtxGroups(aliceUID, aliceUID),
		"bob":   NewCtxGroups(bobUID, bobUID),
	}
	all := []string{"alice", "priv", "pub"}
	tests := []struct {
		view string // a directory to list
		want map[string][]string
	}{
		{"search/oauth", map[string][]string{"root": all, "owner": all, "alice": {"alice", "pub"}, "bob": {"pub"}}},
		{"by-tag", map[string][]string{"root": {"alicetag", "secret", "shared"}, "owner": {"alicetag", "secret", "shared"}, "alice": {"alicetag", "shared"}, "bob": {"shared"}}},
		{"by-tag/shared", map[string][]string{"root": {"pub"}, "owner": {"pub"}, "alice": {"pub"}, "bob": {"pub"}}},
		{"by-status/done", map[string][]string{"root": all, "owner": all, "alice": {"alice", "pub"}, "bob": {"pub"}}},
		{"by-date/2025-10", map[string][]string{"root": all, "owner": all, "alice": {"alice", "pub"}, "bob": {"pub"}}},
		{"by-category", map[string][]string{"root": {"eng", "hr"}, "owner": {"eng", "hr"}, "alice": {"eng"}, "bob": {"eng"}}},
		{"by-category/eng", map[string][]string{"root": {"alice", "backend", "frontend", "pub"}, "alice": {"alice", "backend", "frontend", "pub"}, "bob": {"backend", "pub"}}},
	}
	for _, tt := range tests {
		for who, want := range tt.want {
			t.Run(tt.view+"/"+who, func(t *testing.T) {
				got := f.names(callers[who], tt.view)
				got = slices.DeleteFunc(got, func(s string) bool { return s == resultsFile })
				slices.Sort(got)
				if !slices.Equal(got, want) {
					t.Errorf("%s lists %v for %s, want %v", tt.view, got, who, want)
				}
			})
		}
	}

	// Names that are hidden do not look up either.
	bob := callers["bob"]
	for _, p := range []string{"search/oauth/priv", "search/oauth/alice", "by-tag/secret", "by-tag/secret/priv", "by-category/hr",
		"by-category/eng/frontend", "by-status/done/priv", casPath("private blob"), casPath("private blob") + "/data.bin"} {
		if _, err := f.walk(bob, p); !errors.Is(err, syscall.ENOENT) {
			t.Errorf("bob looks up %s: %v, want ENOENT", p, err)
		}
		if _, err := f.walk(callers["owner"], p); p != "by-category/eng/frontend" && err != nil && !strings.Contains(p, "alice") {
			t.Errorf("owner looks up %s: %v", p, err)
		}
	}

	// .results.json has only what the caller may see, ranked among it.
	type row struct {
		Rank int
		ID   string
		Name string
	}
	results := func(c *Ctx) []row {
		b, err := f.read(c, "search/oauth/"+resultsFile)
		if err != nil {
			t.Fatal(err)
		}
		var rows []row
		if err := json.Unmarshal(b, &rows); err != nil {
			t.Fatal(err)
		}
		return rows
	}
	if rows := results(bob); len(rows) != 1 || rows[0].ID != "pub" || rows[0].Rank != 1 {
		t.Errorf("bob's .results.json: %+v", rows)
	}
	if rows := results(callers["owner"]); len(rows) != 3 {
		t.Errorf("the owner's .results.json: %+v", rows)
	}
	raw, _ := f.read(bob, "search/oauth/"+resultsFile)
	if strings.Contains(string(raw), "Secret") || strings.Contains(string(raw), "Alice") {
		t.Errorf("bob's .results.json names a session he may not read: %s", raw)
	}
	// A stat right before the open must not hand bob the owner's bytes.
	if _, err := f.o.Getattr(callers["owner"], f.mustWalk(callers["owner"], "search/oauth/"+resultsFile).Node, nil); err != nil {
		t.Fatal(err)
	}
	if rows := results(bob); len(rows) != 1 {
		t.Errorf("bob's .results.json right after the owner's stat: %+v", rows)
	}

	// attachments-ca: the shared blob shows bob only pub's reference.
	type md struct {
		RefCount   uint64
		References []struct{ Path string }
	}
	meta := func(c *Ctx, content string) (md, error) {
		var m md
		b, err := f.read(c, casPath(content)+"/metadata.json")
		if err == nil {
			err = json.Unmarshal(b, &m)
		}
		return m, err
	}
	if m, err := meta(bob, "shared blob"); err != nil || m.RefCount != 1 || len(m.References) != 1 || m.References[0].Path != "sessions/pub/attachments/a.txt" {
		t.Errorf("bob's metadata.json of the shared blob: %+v, %v", m, err)
	}
	if m, err := meta(callers["owner"], "shared blob"); err != nil || m.RefCount != 2 || len(m.References) != 2 {
		t.Errorf("the owner's metadata.json of the shared blob: %+v, %v", m, err)
	}
	if b, err := f.read(bob, casPath("shared blob")+"/data.bin"); err != nil || string(b) != "shared blob" {
		t.Errorf("bob reads the shared data.bin: %q, %v", b, err)
	}
	if b, err := f.read(callers["root"], casPath("private blob")+"/data.bin"); err != nil || string(b) != "private blob" {
		t.Errorf("root reads the private data.bin: %q, %v", b, err)
	}
	priv := blobstore.Sum([]byte("private blob"))
	shard := fmt.Sprintf("attachments-ca/%02x", priv[0])
	if ents, err := f.list(bob, shard); err == nil {
		for _, e := range ents {
			if e.Name == priv.String() {
				t.Errorf("bob lists the private blob in %s", shard)
			}
		}
	}
	if !slices.Contains(f.names(callers["owner"], shard), priv.String()) {
		t.Errorf("the owner does not list the private blob in %s", shard)
	}
}

// TestViewsNoAccess: a user who may read nothing learns nothing, and
// granting access shows up at once (the permission cache follows changes).
func TestViewsNoAccess(t *testing.T) {
	f := viewFixture(t)
	f.chown("sessions", 0o700, 0, 0)
	nobody := NewCtxGroups(65534, 65534)
	for _, p := range []string{"search/oauth", "search/work", "by-tag", "by-status", "by-date", "by-topic", "by-category", "attachments-ca"} {
		got := slices.DeleteFunc(f.names(nobody, p), func(s string) bool { return s == resultsFile })
		if len(got) != 0 {
			t.Errorf("nobody lists %s: %v", p, got)
		}
	}
	if b, err := f.read(nobody, "search/oauth/"+resultsFile); err != nil || strings.TrimSpace(string(b)) != "[]" {
		t.Errorf("nobody's .results.json: %q, %v", b, err)
	}
	for _, content := range []string{"shared blob", "private blob"} {
		if _, err := f.walk(nobody, casPath(content)); !errors.Is(err, syscall.ENOENT) {
			t.Errorf("nobody looks up %s: %v", casPath(content), err)
		}
	}
	f.chown("sessions", 0o755, 0, 0)
	if got := f.names(nobody, "by-tag"); !slices.Equal(got, []string{"shared"}) {
		t.Errorf("after chmod 755 sessions, nobody lists by-tag %v", got)
	}
}

// TestTaskerfsViewOwnerOnly: the mount's figures describe every user's
// files, so only root and the owner may open them; anyone reads the README.
func TestTaskerfsViewOwnerOnly(t *testing.T) {
	f := viewFixture(t)
	bob := NewCtxGroups(bobUID, bobUID)
	for _, name := range []string{"stats.json", "metrics"} {
		if _, err := f.read(bob, ".taskerfs/"+name); !errors.Is(err, syscall.EACCES) {
			t.Errorf("bob reads .taskerfs/%s: %v, want EACCES", name, err)
		}
		if b, err := f.read(NewCtxGroups(ownerUID, ownerUID), ".taskerfs/"+name); err != nil || len(b) == 0 {
			t.Errorf("the owner reads .taskerfs/%s: %d bytes, %v", name, len(b), err)
		}
	}
	if _, err := f.read(bob, ".taskerfs/README.md"); err != nil {
		t.Errorf("bob reads the README: %v", err)
	}
	m, _ := f.read(rootCtx(), ".taskerfs/metrics")
	if !strings.Contains(string(m), `taskerfs_fuse_ops_total{op="lookup",result="ok"}`) || !strings.Contains(string(m), `taskerfs_fuse_op_seconds_bucket{op="read"`) {
		t.Errorf("metrics have no per-op figures:\n%s", m)
	}
}

// TestReadmeTimesStable: the views' READMEs never change, so their size
// and times do not either (tar -c of the whole drive said "file changed
// as we read it" for each); the live files keep the time of the stat.
func TestReadmeTimesStable(t *testing.T) {
	f := newTFS(t)
	root := rootCtx()
	for _, p := range []string{"search/README.md", ".taskerfs/README.md"} {
		a := f.mustWalk(root, p).Attr
		time.Sleep(5 * time.Millisecond)
		b := f.mustWalk(root, p).Attr
		if a.Mtime != b.Mtime || a.Ctime != b.Ctime || a.Size != b.Size {
			t.Errorf("%s: %d/%d/%d then %d/%d/%d (mtime/ctime/size)", p, a.Mtime, a.Ctime, a.Size, b.Mtime, b.Ctime, b.Size)
		}
		data, err := f.read(root, p)
		if err != nil || uint64(len(data)) != a.Size || !strings.HasPrefix(string(data), "# ") {
			t.Errorf("%s: %d bytes (size %d), %v", p, len(data), a.Size, err)
		}
	}
	a := f.mustWalk(root, ".taskerfs/stats.json").Attr
	time.Sleep(5 * time.Millisecond)
	if b := f.mustWalk(root, ".taskerfs/stats.json").Attr; b.Mtime == a.Mtime {
		t.Error("stats.json kept its time: it is generated at each open")
	}
}

// TestLongListingsResume: a query dir and a facet dir of more hits than
// one readdir page (dirPage) list every visible session once, in order,
// when each page resumes after the last name; a caller who may read only
// some of them gets exactly those, across the page boundaries too.
func TestLongListingsResume(t *testing.T) {
	f := newTFS(t)
	const n = 2*dirPage + 37
	var all, alices []string
	for i := range n {
		id := fmt.Sprintf("s%04d", i)
		uid, mode := uint32(0), uint32(0o755)
		if i%3 == 0 { // every third session is root's alone
			mode = 0o700
		} else {
			alices = append(alices, id)
		}
		all = append(all, id)
		f.mkdir("sessions/"+id, mode, uid, uid)
		f.write("sessions/"+id+"/metadata.json", fmt.Sprintf(`{"name": "pangolin %d", "tags": ["longlist"]}`, i), 0o644, uid, uid)
	}
	alice := NewCtxGroups(aliceUID, aliceUID)
	for _, tc := range []struct {
		c    *Ctx
		want []string
	}{{rootCtx(), all}, {alice, alices}} {
		got := f.names(tc.c, "search/pangolin")
		if len(got) == 0 || got[0] != resultsFile {
			t.Fatalf("search/pangolin does not start with %s: %v", resultsFile, got[:min(3, len(got))])
		}
		hits := got[1:]
		res, err := f.v.Query("pangolin")
		if err != nil {
			t.Fatal(err)
		}
		var ranked []string
		for _, h := range res.Hits {
			if slices.Contains(tc.want, h.SessionID) {
				ranked = append(ranked, h.SessionID)
			}
		}
		if !slices.Equal(hits, ranked) {
			t.Errorf("search/pangolin lists %d hits, want the %d visible ones in rank order", len(hits), len(ranked))
		}
		facet := f.names(tc.c, "by-tag/longlist")
		sorted := slices.Sorted(slices.Values(facet))
		if !slices.Equal(sorted, tc.want) || len(slices.Compact(sorted)) != len(facet) {
			t.Errorf("by-tag/longlist lists %d sessions, want the %d visible ones once each", len(facet), len(tc.want))
		}
	}
}

// TestListingSkipsGeneratedAttrs: READDIRPLUS of a query dir does not
// compute .results.json (a top 100 with snippets) to give its size: its
// entry goes without attributes, while the session links carry theirs; a
// lookup of .results.json still gives its exact size.
func TestListingSkipsGeneratedAttrs(t *testing.T) {
	f := viewFixture(t)
	root := rootCtx()
	e := f.mustWalk(root, "search/oauth")
	h, err := f.o.Opendir(root, e.Node)
	if err != nil {
		t.Fatal(err)
	}
	defer f.o.Releasedir(root, h)
	seen := map[string]error{}
	for {
		d, err := f.o.Readdir(root, h)
		if err != nil {
			t.Fatal(err)
		}
		if d == nil {
			break
		}
		if d.Name == "." || d.Name == ".." {
			continue
		}
		_, seen[d.Name] = f.o.LookupListed(root, h, d.Name)
	}
	if !errors.Is(seen[resultsFile], ErrNoListedEntry) {
		t.Errorf("%s in a listing: %v, want ErrNoListedEntry", resultsFile, seen[resultsFile])
	}
	for _, id := range []string{"pub", "priv", "alice"} {
		if err, ok := seen[id]; !ok || err != nil {
			t.Errorf("session link %s in the listing: seen %v, %v", id, ok, err)
		}
	}
	data, err := f.read(root, "search/oauth/"+resultsFile)
	if a := f.mustWalk(root, "search/oauth/"+resultsFile).Attr; err != nil || a.Size != uint64(len(data)) || len(data) < 10 {
		t.Errorf("%s by lookup: size %d, content %d bytes, %v", resultsFile, a.Size, len(data), err)
	}
}
