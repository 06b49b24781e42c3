package fs

import (
	"context"
	"encoding/json"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"

	"github.com/taskerfs/taskerfs/index"
	"github.com/taskerfs/taskerfs/vfs"
)

const resultsFile = ".results.json"

func init() {
	virtualEntries["search"] = func(r *Root) virtualDir { return r.searchDir() }
}

func (r *Root) searchDir() *dynDir {
	d := &dynDir{path: "/search"}
	readme := fileEntry("README.md", "/search/README.md", func() ([]byte, error) { return []byte(searchReadme), nil })
	d.list = func() ([]dynEntry, error) {
		qs, err := r.v.Meta.SavedQueries()
		if err != nil {
			return nil, err
		}
		out := []dynEntry{readme}
		for _, q := range qs {
			out = append(out, r.queryEntry(q))
		}
		return out, nil
	}
	d.lookup = func(ctx context.Context, name string) (*dynEntry, error) {
		if name == "README.md" {
			return &readme, nil
		}
		if _, err := index.ParseQuery(name); err != nil {
			return nil, nil // a name that does not parse does not exist
		}
		if callerInMkdir(ctx) {
			// The kernel answers mkdir(2) on a name that looks up with
			// EEXIST before asking us; let it through to Mkdir, which saves.
			if saved, err := r.v.Meta.IsSavedQuery(name); err != nil || !saved {
				return nil, err
			}
		}
		e := r.queryEntry(name)
		return &e, nil
	}
	d.mkdir = func(name string) syscall.Errno {
		if name == "README.md" {
			return syscall.EEXIST
		}
		if _, err := index.ParseQuery(name); err != nil {
			return syscall.EINVAL
		}
		return toErrno("save query", r.v.Meta.SaveQuery(name))
	}
	d.rmdir = func(name string) syscall.Errno {
		return toErrno("forget query", r.v.Meta.ForgetQuery(name))
	}
	return d
}

func (r *Root) queryEntry(q string) dynEntry {
	return dynEntry{name: q, mode: syscall.S_IFDIR, make: func() gofs.InodeEmbedder { return r.queryDir(q) }}
}

// queryDir lists one query's matches as symlinks in relevance order.
func (r *Root) queryDir(q string) *dynDir {
	path := "/search/" + q
	results := fileEntry(resultsFile, path+"/"+resultsFile, func() ([]byte, error) { return r.resultsJSON(q) })
	return &dynDir{
		path: path,
		list: func() ([]dynEntry, error) {
			res, err := r.v.Query(q)
			if err != nil {
				return nil, err
			}
			out := make([]dynEntry, 0, len(res.Hits)+1)
			out = append(out, results)
			for _, h := range res.Hits {
				if validSessionID(h.SessionID) {
					out = append(out, sessionLink(h.SessionID, 2))
				}
			}
			return out, nil
		},
		lookup: func(ctx context.Context, name string) (*dynEntry, error) {
			if name == resultsFile {
				return &results, nil
			}
			res, err := r.v.Query(q)
			if err != nil {
				return nil, err
			}
			if res.Rank(name) < 0 || !validSessionID(name) {
				return nil, nil
			}
			e := sessionLink(name, 2)
			return &e, nil
		},
	}
}

type resultRow struct {
	Rank      int     `json:"rank"`
	ID        string  `json:"id"`
	Name      string  `json:"name"`
	Score     float64 `json:"score"`
	StartTime string  `json:"startTime"`
	Snippet   string  `json:"snippet"`
}

func (r *Root) resultsJSON(q string) ([]byte, error) {
	hits, err := r.v.TopSnippets(q, vfs.ResultsLimit)
	if err != nil {
		return nil, err
	}
	rows := make([]resultRow, 0, len(hits))
	for i, h := range hits {
		rows = append(rows, resultRow{Rank: i + 1, ID: h.SessionID, Name: h.Name, Score: h.Score, StartTime: h.StartTime, Snippet: h.Snippet})
	}
	b, err := json.MarshalIndent(rows, "", "  ")
	return append(b, '\n'), err
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

mkdir search/<query> saves a query so that it shows up in ls search/;
rmdir forgets it. Looking up a query never writes anything. A name that
does not parse does not exist (ENOENT).

Facet directories list the same sessions by value: by-tag/<tag>/,
by-topic/<topic>/, by-status/<status>/, by-category/<category>/[<sub>/],
by-date/<YYYY-MM>/. A value that cannot be a file name as is (it holds
'/', '%', a NUL, bytes that are not UTF-8, starts with '.', or is empty) is
written with %XX escapes of its bytes (upper-case hex): "ci/cd" is "ci%2Fcd".
`
