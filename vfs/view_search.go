package vfs

import (
	"encoding/json"

	"github.com/taskerfs/taskerfs/index"
)

const resultsFile = ".results.json"

// searchView is search/: every name that parses is a query; the caller's
// saved queries (saved/) are listed. search/ itself is read-only: mkdir
// and rmdir belong to saved/.
func (v *FS) searchView() *vnode {
	d := newDir("/search")
	readme := newStaticFile("/search/README.md", 0o444, searchReadme)
	d.list = func(c *Ctx, after string, fn func(*vnode) bool) error {
		qs, err := v.meta.SavedQueries(c.Uid)
		if err != nil {
			return err
		}
		out := []*vnode{readme}
		for _, q := range qs {
			// README.md is the file; a query of that name is in saved/.
			if q.Query != readme.name() && listableQuery(q.Query) {
				out = append(out, v.savedQueryDir(d.path, q))
			}
		}
		listNodes(out, after, fn)
		return nil
	}
	d.lookup = func(c *Ctx, name string) (*vnode, error) {
		if name == readme.name() {
			return readme, nil
		}
		if !listableQuery(name) {
			return nil, nil // a name that could not be listed does not exist
		}
		if _, err := index.ParseQuery(name); err != nil {
			return nil, nil // a name that does not parse does not exist
		}
		if q, ok, err := v.meta.LookupQuery(c.Uid, name); err != nil {
			return nil, err
		} else if ok {
			return v.savedQueryDir(d.path, q), nil
		}
		return v.queryDir(d.path, name), nil
	}
	return d
}

// queryDir lists one query's matches that the caller may see, as
// symlinks in relevance order, and .results.json. It is dir/q.
func (v *FS) queryDir(dir, q string) *vnode {
	d := newDir(dir + "/" + q)
	results := newFile(d.path+"/"+resultsFile, 0o444, func(c *Ctx) ([]byte, error) { return v.resultsJSON(c, q) })
	// A listing comes a page at a time, each resuming after the last name
	// given: it starts at that hit's rank (the results are cached while
	// the store is unchanged), so a page costs its entries, not a pass
	// over every hit. Listing all hits on every page made `ls` of a
	// 10,000-hit dir quadratic (40 pages, each checking 10,000 sessions).
	d.list = func(c *Ctx, after string, fn func(*vnode) bool) error {
		res, err := v.queryResults(q)
		if err != nil {
			return err
		}
		i := 0
		switch after {
		case "":
			if !fn(results) {
				return nil
			}
		case resultsFile:
		default:
			if i = res.Rank(after); i < 0 {
				return nil // gone since the last page: the listing ends, as listNodes would
			}
			i++
		}
		for _, h := range res.Hits[i:] {
			// A session named .results.json is in the file, not linked.
			if h.SessionID != resultsFile && validSessionID(h.SessionID) && v.CanReadSession(c, h.SessionID) {
				if !fn(sessionLink(d.path, h.SessionID, 2)) {
					return nil
				}
			}
		}
		return nil
	}
	d.lookup = func(c *Ctx, name string) (*vnode, error) {
		if name == resultsFile {
			return results, nil
		}
		res, err := v.queryResults(q)
		if err != nil {
			return nil, err
		}
		if res.Rank(name) < 0 || !validSessionID(name) || !v.CanReadSession(c, name) {
			return nil, nil
		}
		return sessionLink(d.path, name, 2), nil
	}
	return d
}

// queryResults evaluates q; a saved query that no longer parses (the
// grammar got stricter) matches nothing, so that it can still be listed
// and removed.
func (v *FS) queryResults(q string) (*Results, error) {
	if _, err := index.ParseQuery(q); err != nil {
		return &Results{}, nil
	}
	return v.Query(q)
}

type resultRow struct {
	Rank      int     `json:"rank"`
	ID        string  `json:"id"`
	Name      string  `json:"name"`
	Score     float64 `json:"score"`
	StartTime string  `json:"startTime"`
	Snippet   string  `json:"snippet"`
}

// resultsJSON is .results.json: the hits the caller may see, ranked among
// themselves.
func (v *FS) resultsJSON(c *Ctx, q string) ([]byte, error) {
	var rows []resultRow
	if _, err := index.ParseQuery(q); err == nil {
		// The best ResultsLimit hits the caller may see: ask for more
		// while hidden ones kept the rows short.
		for limit := ResultsLimit; ; limit *= 4 {
			hits, err := v.TopSnippets(q, limit)
			if err != nil {
				return nil, err
			}
			rows = rows[:0]
			for _, h := range hits {
				if len(rows) == ResultsLimit {
					break
				}
				if !v.CanReadSession(c, h.SessionID) {
					continue
				}
				rows = append(rows, resultRow{Rank: len(rows) + 1, ID: h.SessionID, Name: h.Name, Score: h.Score, StartTime: h.StartTime, Snippet: h.Snippet})
			}
			if len(rows) == ResultsLimit || len(hits) < limit {
				break
			}
		}
	}
	if rows == nil {
		rows = []resultRow{}
	}
	b, err := json.MarshalIndent(rows, "", "  ")
	return append(b, '\n'), err
}

// validSessionID refuses ids that would make a link leave sessions/.
func validSessionID(id string) bool {
	if id == "" || id == "." || id == ".." || len(id) > 255 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] == '/' || id[i] == 0 {
			return false
		}
	}
	return true
}

const searchReadme = `# search/

Every directory name here is a query. Open one and it lists the matching
sessions as symlinks to ../../sessions/<id>, most relevant first (BM25 over
the sessions' text), plus a hidden .results.json with rank, id, name,
score, startTime and a snippet for each of the 100 best hits (taskerfs
search --json gives them all). Results are computed when you look, and
reflect every file whose close() has returned.

    ls search/oauth                      sessions mentioning "oauth"
    ls "search/oauth login"              words are ANDed
    ls "search/oauth OR saml"            either word
    ls "search/oauth -draft"             exclude a word (also: NOT draft)
    ls "search/tag:auth status:completed"
    ls "search/(oauth OR saml) tag:auth"      parentheses group
    ls "search/topic:kubernetes month:2025-10"
    ls "search/category:engineering sub:backend"
    ls "search/after:2025-10-01 before:2025-11-01"
    cat "search/tag:auth/.results.json"

Fields: tag, topic, status, category, sub (subCategory), month (YYYY-MM),
after: and before: (YYYY-MM-DD, on the session's startTime, UTC; after:
includes its day, before: does not). OR binds tighter than the implicit
AND: "a b OR c" means a AND (b OR c). Quote a value with spaces:
tag:"deep work".
Text is matched case-insensitively on words of two or more letters or
digits; the stop words "the a an and or but in on at to for" are ignored.
There are no wildcards: a word without any letter or digit ("*", "%",
"?") is not a query, so it does not exist (ENOENT) instead of matching
everything.

Saving: mkdir saved/<query> saves a query, rmdir saved/<query> forgets it.
Your saved queries are listed both in saved/ and here in search/; nobody
else sees them, root included (they belong to the uid that made them), and
they survive remounts. search/ itself is read-only (mkdir and rmdir here
fail). Looking up a query never writes anything. A name that does not
parse, or that holds a control character or bytes that are not UTF-8,
does not exist (ENOENT) and cannot be saved (EINVAL).

Every listing here, .results.json and the facet directories show only the
sessions you can read through sessions/ (see the README's security
section): ranks count only those, and a value none of them has does not
exist for you. Root and the user running the daemon see everything.

Searching a snapshot: the same query under .snapshots/<name>/search/
runs over the index as it was when the snapshot was taken, and its links
(../../sessions/<id>) lead into the snapshot's sessions/:

    ls ".snapshots/before-cleanup/search/tag:auth oauth"

(A path rather than a query field, so that the links resolve inside the
snapshot and every tool that follows them reads the old files.)

Facet directories list the same sessions by value: by-tag/<tag>/,
by-topic/<topic>/, by-status/<status>/, by-category/<category>/[<sub>/],
by-date/<YYYY-MM>/. A value that cannot be a plain file name is written
with %XX escapes (upper-case hex) of the bytes of '/', '%', a leading '.',
control characters, U+2028/U+2029, bidirectional controls and bytes that
are not UTF-8; the empty value is "%". "ci/cd" is "ci%2Fcd", a newline is
%0A. Each value has one name and each name one value, and a name works as
the value of a query: ls "search/tag:ci%2Fcd". In by-category/<category>/
a session keeps its id, and a subCategory named like a session listed
there gets a '%' appended (as often as needed).
`
