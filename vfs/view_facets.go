package vfs

import (
	"sync"

	"github.com/taskerfs/taskerfs/index"
)

// Facet directories (by-tag/, by-topic/, by-status/, by-date/,
// by-category/) list sessions by value. A value shows only when one of its
// sessions is visible to the caller, and its directory lists only those.

// facetValues lists field's values that the caller may see sessions of.
func (v *FS) facetValues(c *Ctx, values func() ([]string, error), members func(value string) ([]string, error)) ([]string, error) {
	if err := v.Fresh(); err != nil {
		return nil, err
	}
	vs, err := values()
	if err != nil || v.privileged(c) {
		return vs, err
	}
	out := vs[:0:0]
	for _, val := range vs {
		ids, err := members(val)
		if err != nil {
			return nil, err
		}
		if v.anyVisible(c, ids) {
			out = append(out, val)
		}
	}
	return out, nil
}

// valueDir is a directory of facet values, each made by mk.
func (v *FS) valueDir(p string, values func(c *Ctx) ([]string, error), mk func(dir, value string) *vnode) *vnode {
	d := newDir(p)
	d.list = func(c *Ctx, after string, fn func(*vnode) bool) error {
		vs, err := values(c)
		if err != nil {
			return err
		}
		out := make([]*vnode, 0, len(vs))
		for _, val := range vs {
			out = append(out, mk(p, val))
		}
		listNodes(out, after, fn)
		return nil
	}
	d.lookup = func(c *Ctx, name string) (*vnode, error) {
		value, err := index.UnescapeName(name)
		if err != nil {
			return nil, nil
		}
		vs, err := values(c)
		if err != nil {
			return nil, err
		}
		for _, val := range vs {
			if val == value {
				return mk(p, val), nil
			}
		}
		return nil, nil
	}
	return d
}

// facetView is by-<field>/<value>/<session links>.
func (v *FS) facetView(dir, field string) *vnode {
	members := func(value string) ([]string, error) { return v.index.FacetSessions(field, value) }
	values := func(c *Ctx) ([]string, error) {
		return v.facetValues(c, func() ([]string, error) { return v.index.FacetValues(field) }, members)
	}
	return v.valueDir("/"+dir, values, func(p, value string) *vnode {
		return v.sessionsDir(p+"/"+index.EscapeName(value), 2, func() ([]string, error) { return members(value) })
	})
}

// categoryView is by-category/<category>/ holding the category's sessions
// and a directory per subCategory.
func (v *FS) categoryView() *vnode {
	members := func(cat string) ([]string, error) { return v.index.FacetSessions("category", cat) }
	cats := func(c *Ctx) ([]string, error) {
		return v.facetValues(c, func() ([]string, error) { return v.index.FacetValues("category") }, members)
	}
	return v.valueDir("/by-category", cats, func(p, cat string) *vnode {
		path := p + "/" + index.EscapeName(cat)
		subMembers := func(sub string) ([]string, error) { return v.index.SubCategorySessions(cat, sub) }
		subs := func(c *Ctx) ([]string, error) {
			return v.facetValues(c, func() ([]string, error) { return v.index.SubCategories(cat) }, subMembers)
		}
		subDir := v.valueDir(path, subs, func(p, sub string) *vnode {
			return v.sessionsDir(p+"/"+index.EscapeName(sub), 3, func() ([]string, error) { return subMembers(sub) })
		})
		sessions := v.sessionsDir(path, 2, func() ([]string, error) { return members(cat) })
		d := newDir(path)
		d.list = func(c *Ctx, after string, fn func(*vnode) bool) error {
			var out []*vnode
			collect := func(n *vnode) bool { out = append(out, n); return true }
			if err := subDir.list(c, "", collect); err != nil {
				return err
			}
			if err := sessions.list(c, "", collect); err != nil {
				return err
			}
			listNodes(out, after, fn)
			return nil
		}
		d.lookup = func(c *Ctx, name string) (*vnode, error) {
			if n, err := subDir.lookup(c, name); n != nil || err != nil {
				return n, err
			}
			return sessions.lookup(c, name)
		}
		return d
	})
}

// sessionsDir lists the session links of ids that the caller may see,
// depth levels below the root.
func (v *FS) sessionsDir(p string, depth int, ids func() ([]string, error)) *vnode {
	// The member list is reused while the store is unchanged, so that the
	// lookups of an `ls -l` (one per entry) do not each rescan the facet.
	var mu sync.Mutex
	var cachedVer uint64
	var cached []string
	fresh := func(c *Ctx) ([]string, error) {
		if err := v.Fresh(); err != nil {
			return nil, err
		}
		ver := v.meta.Version()
		mu.Lock()
		list := cached
		hit := list != nil && cachedVer == ver && ver%2 == 0
		mu.Unlock()
		if !hit {
			var err error
			if list, err = ids(); err != nil {
				return nil, err
			}
			mu.Lock()
			cached, cachedVer = list, ver
			mu.Unlock()
		}
		return v.visibleSessions(c, list), nil
	}
	d := newDir(p)
	d.list = func(c *Ctx, after string, fn func(*vnode) bool) error {
		list, err := fresh(c)
		if err != nil {
			return err
		}
		out := make([]*vnode, 0, len(list))
		for _, id := range list {
			if validSessionID(id) {
				out = append(out, sessionLink(p, id, depth))
			}
		}
		listNodes(out, after, fn)
		return nil
	}
	d.lookup = func(c *Ctx, name string) (*vnode, error) {
		list, err := fresh(c)
		if err != nil {
			return nil, err
		}
		for _, id := range list {
			if id == name && validSessionID(id) {
				return sessionLink(p, id, depth), nil
			}
		}
		return nil, nil
	}
	return d
}
