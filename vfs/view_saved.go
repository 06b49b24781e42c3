package vfs

import (
	"os"
	"syscall"

	"github.com/taskerfs/taskerfs/index"
	"github.com/taskerfs/taskerfs/meta"
)

// savedDirName is the root directory of saved queries.
const savedDirName = "saved"

// savedView is saved/: each user's saved queries, made with mkdir and
// dropped with rmdir. The directory is world-writable and sticky (1777,
// like /tmp), so that every user may save, and each entry belongs to the
// user who saved it. A caller sees only the queries saved under their own
// uid, root included: a query's text may hold a private word, and one
// user's names never collide with another's. The same queries are listed
// in search/ for their owner.
func (v *FS) savedView() *vnode {
	d := newDir("/" + savedDirName)
	d.mode = syscall.S_IFDIR | syscall.S_ISVTX | 0o777
	d.list = func(c *Ctx, after string, fn func(*vnode) bool) error {
		qs, err := v.meta.SavedQueries(c.Uid)
		if err != nil {
			return err
		}
		out := make([]*vnode, 0, len(qs))
		for _, q := range qs {
			if listableQuery(q.Query) {
				out = append(out, v.savedQueryDir(d.path, q))
			}
		}
		listNodes(out, after, fn)
		return nil
	}
	d.lookup = func(c *Ctx, name string) (*vnode, error) {
		if !listableQuery(name) {
			return nil, nil
		}
		q, ok, err := v.meta.LookupQuery(c.Uid, name)
		if err != nil || !ok {
			return nil, err
		}
		return v.savedQueryDir(d.path, q), nil
	}
	d.mkdir = func(c *Ctx, name string) error {
		if !listableQuery(name) {
			return syscall.EINVAL
		}
		if _, err := index.ParseQuery(name); err != nil {
			return syscall.EINVAL
		}
		return v.meta.SaveQuery(c.Uid, c.Gid, name)
	}
	d.rmdir = func(c *Ctx, name string) error { return v.meta.ForgetQuery(c.Uid, name) }
	return d
}

// savedQueryDir is a saved query's directory under dir, owned by whoever
// saved it.
func (v *FS) savedQueryDir(dir string, q meta.SavedQuery) *vnode {
	n := v.queryDir(dir, q.Query)
	n.owned, n.uid, n.gid = true, q.Uid, q.Gid
	return n
}

// listableQuery reports whether a query's text can be a listed name: valid
// UTF-8 without control, separator or bidi characters (index.CleanName),
// at most 255 bytes. Such characters in a facet value are written as %XX
// in the query (tag:a%0Ab), so every query has a listable spelling.
func listableQuery(q string) bool {
	return q != "" && len(q) <= 255 && validSessionID(q) && index.CleanName(q)
}

// adoptLegacyQueries gives queries saved before they had owners to the
// data dir's owner, the user who runs its daemon, rather than to whoever
// opens the store now (an operator's fsck as root).
func (v *FS) adoptLegacyQueries() error {
	uid, gid := v.owner, v.ownerGid
	if fi, err := os.Stat(v.Dir); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = st.Uid, st.Gid
		}
	}
	return v.meta.AdoptLegacyQueries(uid, gid)
}
