package fs

import (
	"context"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"

	"github.com/taskerfs/taskerfs/index"
)

func init() {
	for dir, field := range map[string]string{"by-tag": "tag", "by-topic": "topic", "by-status": "status", "by-date": "month"} {
		virtualEntries[dir] = func(r *Root) virtualDir { return r.facetDir(dir, field) }
	}
	virtualEntries["by-category"] = func(r *Root) virtualDir { return r.categoryDir() }
}

// valueDirs lists facet values as escaped directory names.
func valueDirs(values []string, mk func(value string) dynEntry) []dynEntry {
	out := make([]dynEntry, 0, len(values))
	for _, v := range values {
		out = append(out, mk(v))
	}
	return out
}

// lookupValue resolves an escaped name among the current values.
func lookupValue(name string, values func() ([]string, error), mk func(value string) dynEntry) (*dynEntry, error) {
	value, err := index.UnescapeName(name)
	if err != nil {
		return nil, nil
	}
	vs, err := values()
	if err != nil {
		return nil, err
	}
	for _, v := range vs {
		if v == value {
			e := mk(v)
			return &e, nil
		}
	}
	return nil, nil
}

func (r *Root) facetDir(dir, field string) *dynDir {
	values := func() ([]string, error) {
		if err := r.v.Fresh(); err != nil {
			return nil, err
		}
		return r.v.Index.FacetValues(field)
	}
	mk := func(value string) dynEntry {
		name := index.EscapeName(value)
		return dynEntry{name: name, mode: syscall.S_IFDIR, make: func() gofs.InodeEmbedder {
			return r.sessionsDir("/"+dir+"/"+name, 2, func() ([]string, error) { return r.v.Index.FacetSessions(field, value) })
		}}
	}
	return &dynDir{
		path:   "/" + dir,
		list:   func() ([]dynEntry, error) { vs, err := values(); return valueDirs(vs, mk), err },
		lookup: func(_ context.Context, name string) (*dynEntry, error) { return lookupValue(name, values, mk) },
	}
}

// categoryDir is by-category/<category>/ holding the category's sessions
// and a directory per subCategory.
func (r *Root) categoryDir() *dynDir {
	cats := func() ([]string, error) {
		if err := r.v.Fresh(); err != nil {
			return nil, err
		}
		return r.v.Index.FacetValues("category")
	}
	mkCat := func(cat string) dynEntry {
		name := index.EscapeName(cat)
		path := "/by-category/" + name
		return dynEntry{name: name, mode: syscall.S_IFDIR, make: func() gofs.InodeEmbedder {
			subs := func() ([]string, error) { return r.v.Index.SubCategories(cat) }
			mkSub := func(sub string) dynEntry {
				sname := index.EscapeName(sub)
				return dynEntry{name: sname, mode: syscall.S_IFDIR, make: func() gofs.InodeEmbedder {
					return r.sessionsDir(path+"/"+sname, 3, func() ([]string, error) { return r.v.Index.SubCategorySessions(cat, sub) })
				}}
			}
			sessions := r.sessionsDir(path, 2, func() ([]string, error) { return r.v.Index.FacetSessions("category", cat) })
			return &dynDir{
				path: path,
				list: func() ([]dynEntry, error) {
					if err := r.v.Fresh(); err != nil {
						return nil, err
					}
					ss, err := subs()
					if err != nil {
						return nil, err
					}
					links, err := sessions.list()
					return append(valueDirs(ss, mkSub), links...), err
				},
				lookup: func(ctx context.Context, name string) (*dynEntry, error) {
					if e, err := lookupValue(name, subs, mkSub); e != nil || err != nil {
						return e, err
					}
					return sessions.lookup(ctx, name)
				},
			}
		}}
	}
	return &dynDir{
		path:   "/by-category",
		list:   func() ([]dynEntry, error) { vs, err := cats(); return valueDirs(vs, mkCat), err },
		lookup: func(_ context.Context, name string) (*dynEntry, error) { return lookupValue(name, cats, mkCat) },
	}
}

// sessionsDir lists session links for ids, depth levels below the root.
func (r *Root) sessionsDir(path string, depth int, ids func() ([]string, error)) *dynDir {
	// The member list is reused while the store is unchanged, so that the
	// lookups of an `ls -l` (one per entry) do not each rescan the facet.
	var mu sync.Mutex
	var cachedVer uint64
	var cached []string
	fresh := func() ([]string, error) {
		if err := r.v.Fresh(); err != nil {
			return nil, err
		}
		ver := r.v.Meta.Version()
		mu.Lock()
		if cached != nil && cachedVer == ver && ver%2 == 0 {
			list := cached
			mu.Unlock()
			return list, nil
		}
		mu.Unlock()
		list, err := ids()
		if err == nil {
			mu.Lock()
			cached, cachedVer = list, ver
			mu.Unlock()
		}
		return list, err
	}
	return &dynDir{
		path: path,
		list: func() ([]dynEntry, error) {
			list, err := fresh()
			if err != nil {
				return nil, err
			}
			out := make([]dynEntry, 0, len(list))
			for _, id := range list {
				if validSessionID(id) {
					out = append(out, sessionLink(id, depth))
				}
			}
			return out, nil
		},
		lookup: func(_ context.Context, name string) (*dynEntry, error) {
			list, err := fresh()
			if err != nil {
				return nil, err
			}
			for _, id := range list {
				if id == name && validSessionID(id) {
					e := sessionLink(id, depth)
					return &e, nil
				}
			}
			return nil, nil
		},
	}
}
