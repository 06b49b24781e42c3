package vfs

import (
	"slices"
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
			if len(index.EscapeName(val)) <= maxNameLen {
				out = append(out, mk(p, val))
			}
		}
		listNodes(out, after, fn)
		return nil
	}
	d.lookup = func(c *Ctx, name string) (*vnode, error) {
		value, err := index.UnescapeName(name)
		if err != nil || len(name) > maxNameLen {
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
//
// Sessions and subCategories share that directory, so their names could
// meet (a session "backend" in a category with the subCategory "backend").
// Two entries never share a name: a session keeps its id (the link names
// what sessions/ names), and a subCategory whose name is taken by a
// session the caller sees gets a '%' appended, as often as needed. No
// escaped name ends in '%' (a '%' always starts %XX, but for the lone "%"
// of the empty value), so such a name is never another subCategory's.
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
		sessions, visible := v.sessionsDirVisible(path, 2, func() ([]string, error) { return members(cat) })
		subNode := func(name, sub string) *vnode {
			return v.sessionsDir(path+"/"+name, 3, func() ([]string, error) { return subMembers(sub) })
		}
		// subNames names the caller's subCategories, clear of their sessions.
		subNames := func(c *Ctx) (names, values []string, err error) {
			ids, err := visible(c)
			if err != nil {
				return nil, nil, err
			}
			vs, err := subs(c)
			if err != nil {
				return nil, nil, err
			}
			taken := make(map[string]bool, len(ids))
			for _, id := range ids {
				taken[id] = true
			}
			for _, sub := range vs {
				if name := subDirName(sub, taken); name != "" {
					names, values = append(names, name), append(values, sub)
				}
			}
			return names, values, nil
		}
		d := newDir(path)
		d.list = func(c *Ctx, after string, fn func(*vnode) bool) error {
			names, values, err := subNames(c)
			if err != nil {
				return err
			}
			var out []*vnode
			for i, name := range names {
				out = append(out, subNode(name, values[i]))
			}
			if err := sessions.list(c, "", func(n *vnode) bool { out = append(out, n); return true }); err != nil {
				return err
			}
			listNodes(out, after, fn)
			return nil
		}
		d.lookup = func(c *Ctx, name string) (*vnode, error) {
			if n, err := sessions.lookup(c, name); n != nil || err != nil {
				return n, err
			}
			names, values, err := subNames(c)
			if err != nil {
				return nil, err
			}
			for i, n := range names {
				if n == name {
					return subNode(name, values[i]), nil
				}
			}
			return nil, nil
		}
		return d
	})
}

// subDirName is a subCategory's directory name: its escaped value, with
// '%' appended while a session of the same directory has that name. ""
// when the name would not fit in a path component.
func subDirName(sub string, taken map[string]bool) string {
	name := index.EscapeName(sub)
	for taken[name] {
		name += "%"
	}
	if len(name) > maxNameLen {
		return ""
	}
	return name
}

// maxNameLen is the longest name of a path component.
const maxNameLen = 255

// sessionsDir lists the session links of ids that the caller may see,
// depth levels below the root.
func (v *FS) sessionsDir(p string, depth int, ids func() ([]string, error)) *vnode {
	d, _ := v.sessionsDirVisible(p, depth, ids)
	return d
}

// sessionsDirVisible is sessionsDir, and the ids it lists to a caller.
func (v *FS) sessionsDirVisible(p string, depth int, ids func() ([]string, error)) (*vnode, func(c *Ctx) ([]string, error)) {
	// The member list is reused while the store is unchanged, so that the
	// lookups of an `ls -l` (one per entry) do not each rescan the facet.
	var mu sync.Mutex
	var cachedVer uint64
	var cached []string
	members := func() ([]string, error) {
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
		return list, nil
	}
	shown := func(c *Ctx, id string) bool { return validSessionID(id) && v.CanReadSession(c, id) }
	fresh := func(c *Ctx) ([]string, error) {
		list, err := members()
		if err != nil {
			return nil, err
		}
		var out []string
		for _, id := range list {
			if shown(c, id) {
				out = append(out, id)
			}
		}
		return out, nil
	}
	d := newDir(p)
	// A page resumes after the last name it gave: only the members from
	// there on are checked and linked, so a listing costs its entries, not
	// a permission check of every member on every page.
	d.list = func(c *Ctx, after string, fn func(*vnode) bool) error {
		list, err := members()
		if err != nil {
			return err
		}
		i := 0
		if after != "" {
			i = slices.Index(list, after)
			if i < 0 {
				return nil // gone since the last page: the listing ends, as listNodes would
			}
			i++
		}
		for _, id := range list[i:] {
			if shown(c, id) && !fn(sessionLink(p, id, depth)) {
				return nil
			}
		}
		return nil
	}
	d.lookup = func(c *Ctx, name string) (*vnode, error) {
		list, err := members()
		if err != nil {
			return nil, err
		}
		if slices.Contains(list, name) && shown(c, name) {
			return sessionLink(p, name, depth), nil
		}
		return nil, nil
	}
	return d, fresh
}
