package vfs

import (
	"sync"

	"github.com/taskerfs/taskerfs/index"
)

// Results is one evaluation of a query with membership lookup.
type Results struct {
	Hits  []index.Hit
	byID  map[string]int
	query string
	ver   uint64
}

// Rank returns the 0-based rank of session id, or -1.
func (r *Results) Rank(id string) int {
	if i, ok := r.byID[id]; ok {
		return i
	}
	return -1
}

// queryCache keeps the last results per query while the store is
// unchanged, so `ls -l` on a result dir does not rerun the query per entry.
type queryCache struct {
	mu sync.Mutex
	m  map[string]*Results
}

// Snippets evaluates q with snippets (for .results.json and the CLI).
func (v *FS) Snippets(q string) ([]index.Hit, error) {
	if err := v.Fresh(); err != nil {
		return nil, err
	}
	return v.index.Search(q)
}

// Query evaluates q with read-your-writes, reusing results computed at the
// current store version.
func (v *FS) Query(q string) (*Results, error) {
	if err := v.Fresh(); err != nil {
		return nil, err
	}
	ver := v.meta.Version()
	v.qc.mu.Lock()
	if r := v.qc.m[q]; r != nil && r.ver == ver {
		v.qc.mu.Unlock()
		return r, nil
	}
	v.qc.mu.Unlock()
	// Listings need only the order; snippets are for .results.json.
	hits, err := v.index.SearchWith(q, index.SearchOptions{NoSnippets: true})
	if err != nil {
		return nil, err
	}
	r := &Results{Hits: hits, byID: make(map[string]int, len(hits)), query: q, ver: ver}
	for i, h := range hits {
		r.byID[h.SessionID] = i
	}
	v.qc.mu.Lock()
	if v.qc.m == nil || len(v.qc.m) > 256 {
		v.qc.m = map[string]*Results{}
	}
	v.qc.m[q] = r
	v.qc.mu.Unlock()
	return r, nil
}
