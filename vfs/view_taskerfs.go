package vfs

import (
	"encoding/json"
	"syscall"
)

const taskerfsReadme = `# .taskerfs

Live figures of this mount, computed when a file is opened.

- stats.json  sessions, files, logical/unique/stored bytes, dedup and
              compression ratios, cache hit rate, write-back queue figures
              (depth per priority, oldest item age, dirty bytes, commits,
              items per batch, coalesced writes, retries, failures).
- metrics     the same in the Prometheus text format, plus a counter and a
              latency histogram per filesystem operation.
- accesslog   one line per operation as it happens (time, uid, gid, pid,
              operation, arguments, result, duration) while someone reads
              it: cat .taskerfs/accesslog. Costs nothing when nobody does.
              Not listed (open it by name): a read of it waits for the next
              operation, and grep -r or an indexer would wait forever.

Everything here is read-only. stats.json, metrics and accesslog describe
every user's files, so only root and the user running the daemon may read
them.
`

// taskerfsView is .taskerfs/: the mount's own figures.
func (v *FS) taskerfsView() *vnode {
	ownerOnly := func(c *Ctx) error {
		if !v.privileged(c) {
			return syscall.EACCES
		}
		return nil
	}
	stats := newFile("/.taskerfs/stats.json", 0o400, func(c *Ctx) ([]byte, error) {
		s, err := v.Stats()
		if err != nil {
			return nil, err
		}
		b, err := json.MarshalIndent(s, "", "  ")
		return append(b, '\n'), err
	})
	stats.mayOpen = ownerOnly
	metrics := newFile("/.taskerfs/metrics", 0o400, func(*Ctx) ([]byte, error) { return v.MetricsText() })
	metrics.mayOpen = ownerOnly
	alog := newFile("/.taskerfs/accesslog", 0o400, nil)
	alog.stream, alog.mayOpen, alog.size = v.obs.log, ownerOnly, 0
	readme := newStaticFile("/.taskerfs/README.md", 0o444, taskerfsReadme)
	// The access log is opened by name and not listed: a read of it waits
	// for the next operation, so a tree walker that reads every file
	// (grep -r, a desktop indexer, a backup tool) would wait on it forever.
	d := staticDir("/.taskerfs", readme, stats, metrics)
	listed := d.lookup
	d.lookup = func(c *Ctx, name string) (*vnode, error) {
		if name == alog.name() {
			return alog, nil
		}
		return listed(c, name)
	}
	return d
}
