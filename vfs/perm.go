package vfs

import (
	"strings"
	"sync"

	"github.com/taskerfs/taskerfs/blobstore"
	"github.com/taskerfs/taskerfs/index"
	"github.com/taskerfs/taskerfs/meta"
)

// Who sees what in the views (search/, by-*/, attachments-ca/):
//
//   - root (uid 0) and the user running the daemon see everything;
//   - anyone else sees a session only if they could read it through
//     sessions/: search (x) permission on / and sessions/, read and search
//     (r, x) on sessions/<id>, and for every indexed file in it
//     (metadata.json, the side files, chunk files) x on its directory and r
//     on the file. A session is all or nothing: its name, snippets, scores
//     and facet values come from those files.
//   - a blob under attachments-ca/ is seen only by a caller who could read
//     at least one file referencing it (x on every ancestor directory, r on
//     the file), and its metadata.json lists only such files.
//
// Answers are cached per caller (uid and groups) while the store does not
// change (meta's version counter), so a listing of N entries costs N
// permission walks once, not once per lookup.

// Access bits, as in access(2).
const (
	mayRead  = 4
	mayWrite = 2
	mayExec  = 1
)

// privileged callers see every view whole.
func (v *FS) privileged(c *Ctx) bool { return c.Uid == 0 || c.Uid == v.owner }

// allowed applies the POSIX permission bits of a to the caller.
func allowed(c *Ctx, a *meta.Attr, mask uint32) bool {
	if c.Uid == 0 {
		return mask&mayExec == 0 || a.IsDir() || a.Mode&0o111 != 0
	}
	var bits uint32
	switch {
	case c.Uid == a.Uid:
		bits = a.Mode >> 6 & 7
	case c.inGroup(a.Gid):
		bits = a.Mode >> 3 & 7
	default:
		bits = a.Mode & 7
	}
	return bits&mask == mask
}

// callerPerms are one caller's cached answers at one store version.
type callerPerms struct {
	mu       sync.Mutex
	sessions map[string]bool
	paths    map[string]bool
	blobs    map[blobstore.Hash]bool
}

type permCache struct {
	mu  sync.Mutex
	ver uint64
	m   map[string]*callerPerms
}

// perms returns the caller's answer cache for the store as it is now; a
// store in the middle of a change gets a cache of its own, used once.
func (v *FS) perms(c *Ctx) *callerPerms {
	fresh := func() *callerPerms {
		return &callerPerms{sessions: map[string]bool{}, paths: map[string]bool{}, blobs: map[blobstore.Hash]bool{}}
	}
	ver := v.meta.Version()
	if ver%2 != 0 {
		return fresh()
	}
	key := c.key()
	pc := &v.permc
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.m == nil || pc.ver != ver || len(pc.m) > 1024 {
		pc.m, pc.ver = map[string]*callerPerms{}, ver
	}
	p := pc.m[key]
	if p == nil {
		p = fresh()
		pc.m[key] = p
	}
	return p
}

// CanReadSession reports whether the caller may see session id in views.
func (v *FS) CanReadSession(c *Ctx, id string) bool {
	if v.privileged(c) {
		return true
	}
	p := v.perms(c)
	p.mu.Lock()
	ok, known := p.sessions[id]
	p.mu.Unlock()
	if known {
		return ok
	}
	ok = v.sessionReadable(c, id)
	p.mu.Lock()
	p.sessions[id] = ok
	p.mu.Unlock()
	return ok
}

func (v *FS) sessionReadable(c *Ctx, id string) bool {
	root, err := v.meta.GetAttr(meta.RootIno)
	if err != nil || !allowed(c, &root, mayExec) {
		return false
	}
	sessions, err := v.meta.Lookup(meta.RootIno, SessionsDir)
	if err != nil || !sessions.IsDir() || !allowed(c, &sessions, mayExec) {
		return false
	}
	sess, err := v.meta.Lookup(sessions.Ino, id)
	if err != nil || !sess.IsDir() || !allowed(c, &sess, mayRead|mayExec) {
		return false
	}
	dirs := map[uint64]meta.Attr{sess.Ino: sess}
	prefix := SessionsDir + "/" + id + "/"
	ok := true
	err = v.meta.WalkFiles(sess.Ino, func(f meta.Attr) error {
		dir, known := dirs[f.Parent]
		if !known {
			d, err := v.meta.GetAttr(f.Parent)
			if err != nil {
				return err
			}
			dirs[f.Parent], dir = d, d
		}
		p := prefix + f.Name
		if dir.Ino != sess.Ino {
			if dir.Parent != sess.Ino {
				return nil // deeper than anything indexed
			}
			p = prefix + dir.Name + "/" + f.Name
		}
		if _, _, indexed := index.Classify(p); !indexed {
			return nil
		}
		if !allowed(c, &dir, mayExec) || !allowed(c, &f, mayRead) || dir.Ino != sess.Ino && !allowed(c, &sess, mayExec) {
			ok = false
			return errStop
		}
		return nil
	})
	return ok && (err == nil || err == errStop)
}

type stopError struct{}

func (stopError) Error() string { return "stop" }

var errStop error = stopError{}

// canReadPath reports whether the caller could open the file at p (a
// slash-separated path from the root) for reading.
func (v *FS) canReadPath(c *Ctx, p string) bool {
	if v.privileged(c) {
		return true
	}
	if p == "" {
		return false
	}
	perms := v.perms(c)
	perms.mu.Lock()
	ok, known := perms.paths[p]
	perms.mu.Unlock()
	if known {
		return ok
	}
	ok = v.pathReadable(c, p)
	perms.mu.Lock()
	perms.paths[p] = ok
	perms.mu.Unlock()
	return ok
}

func (v *FS) pathReadable(c *Ctx, p string) bool {
	a, err := v.meta.GetAttr(meta.RootIno)
	if err != nil {
		return false
	}
	for _, name := range strings.Split(strings.Trim(p, "/"), "/") {
		if !a.IsDir() || !allowed(c, &a, mayExec) {
			return false
		}
		if a, err = v.meta.Lookup(a.Ino, name); err != nil {
			return false
		}
	}
	return a.IsRegular() && allowed(c, &a, mayRead)
}

// blobVisible reports whether the caller could read a file using blob h.
func (v *FS) blobVisible(c *Ctx, h blobstore.Hash) (bool, error) {
	if v.privileged(c) {
		_, ok, err := v.meta.BlobInfo(h)
		return ok, err
	}
	p := v.perms(c)
	p.mu.Lock()
	ok, known := p.blobs[h]
	p.mu.Unlock()
	if known {
		return ok, nil
	}
	_, uses, found, err := v.meta.BlobUses(h)
	if err != nil {
		return false, err
	}
	ok = false
	for _, u := range uses {
		if found && v.canReadPath(c, u.Path) {
			ok = true
			break
		}
	}
	p.mu.Lock()
	p.blobs[h] = ok
	p.mu.Unlock()
	return ok, nil
}

// visibleSessions keeps the ids the caller may see, in order.
func (v *FS) visibleSessions(c *Ctx, ids []string) []string {
	if v.privileged(c) {
		return ids
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if v.CanReadSession(c, id) {
			out = append(out, id)
		}
	}
	return out
}

// anyVisible reports whether the caller may see one of ids.
func (v *FS) anyVisible(c *Ctx, ids []string) bool {
	for _, id := range ids {
		if v.CanReadSession(c, id) {
			return true
		}
	}
	return false
}
