package vfs

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Ctx is the caller of one operation: who asks (uid, gid, supplementary
// groups, pid) and a context that ends when the request is interrupted.
// Views decide what to show from it.
type Ctx struct {
	context.Context
	Uid, Gid, Pid uint32

	groupsOnce sync.Once
	groups     []uint32
	// groupsOf reads supplementary groups; nil means /proc.
	groupsOf func(pid uint32) []uint32
}

// NewCtx is the caller of a request; supplementary groups are read from
// /proc/<pid>/status when a decision needs them.
func NewCtx(ctx context.Context, uid, gid, pid uint32) *Ctx {
	if ctx == nil {
		ctx = context.Background()
	}
	return &Ctx{Context: ctx, Uid: uid, Gid: gid, Pid: pid}
}

// NewCtxGroups is a caller with a known group list (tests, tools).
func NewCtxGroups(uid, gid uint32, groups ...uint32) *Ctx {
	c := NewCtx(context.Background(), uid, gid, 0)
	c.groupsOf = func(uint32) []uint32 { return groups }
	return c
}

// Gids returns the primary group and the supplementary ones, sorted.
func (c *Ctx) Gids() []uint32 {
	c.groupsOnce.Do(func() {
		var sup []uint32
		if c.groupsOf != nil {
			sup = c.groupsOf(c.Pid)
		} else {
			sup = procGroups.get(c.Pid, c.Uid)
		}
		g := append([]uint32{c.Gid}, sup...)
		slices.Sort(g)
		c.groups = slices.Compact(g)
	})
	return c.groups
}

// inGroup reports whether gid is one of the caller's groups.
func (c *Ctx) inGroup(gid uint32) bool {
	_, ok := slices.BinarySearch(c.Gids(), gid)
	return ok
}

// key identifies the caller's rights (uid and groups) for caches.
func (c *Ctx) key() string {
	b := strconv.AppendUint(nil, uint64(c.Uid), 10)
	for _, g := range c.Gids() {
		b = append(b, ',')
		b = strconv.AppendUint(b, uint64(g), 10)
	}
	return string(b)
}

// groupCache remembers /proc/<pid>/status Groups: lines for a moment, so
// that a burst of requests from one process reads /proc once.
type groupCache struct {
	mu sync.Mutex
	m  map[uint32]groupEntry
}

type groupEntry struct {
	uid    uint32
	groups []uint32
	at     time.Time
}

var procGroups = &groupCache{m: map[uint32]groupEntry{}}

const groupTTL = 2 * time.Second

func (gc *groupCache) get(pid, uid uint32) []uint32 {
	if pid == 0 {
		return nil
	}
	gc.mu.Lock()
	e, ok := gc.m[pid]
	gc.mu.Unlock()
	if ok && e.uid == uid && time.Since(e.at) < groupTTL {
		return e.groups
	}
	groups := readProcGroups(pid)
	gc.mu.Lock()
	if len(gc.m) > 4096 {
		gc.m = map[uint32]groupEntry{}
	}
	gc.m[pid] = groupEntry{uid: uid, groups: groups, at: time.Now()}
	gc.mu.Unlock()
	return groups
}

// readProcGroups parses the Groups: line of /proc/<pid>/status; a process
// that is gone has no supplementary groups (the safe answer: fewer rights).
func readProcGroups(pid uint32) []uint32 {
	f, err := os.Open("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/status")
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, ok := bytes.CutPrefix(sc.Bytes(), []byte("Groups:"))
		if !ok {
			continue
		}
		var out []uint32
		for _, f := range bytes.Fields(line) {
			if g, err := strconv.ParseUint(string(f), 10, 32); err == nil {
				out = append(out, uint32(g))
			}
		}
		return out
	}
	return nil
}
