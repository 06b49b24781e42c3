package fs

import (
	"encoding/json"
)

const taskerfsReadme = `# .taskerfs

Live figures of this mount, computed when a file is opened.

- stats.json  sessions, files, logical/unique/stored bytes, dedup and
              compression ratios, cache hit rate, write-back queue figures
              (depth per priority, oldest item age, dirty bytes, commits,
              items per batch, coalesced writes, retries, failures).
- metrics     the same in the Prometheus text format.

Everything here is read-only.
`

func init() {
	virtualEntries[".taskerfs"] = func(r *Root) virtualDir {
		return newStaticDir(".taskerfs", map[string]func() ([]byte, error){
			"README.md": func() ([]byte, error) { return []byte(taskerfsReadme), nil },
			"stats.json": func() ([]byte, error) {
				s, err := r.v.Stats()
				if err != nil {
					return nil, err
				}
				b, err := json.MarshalIndent(s, "", "  ")
				return append(b, '\n'), err
			},
			"metrics": r.v.MetricsText,
		})
	}
}
