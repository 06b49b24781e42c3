package meta

import (
	"errors"
	"slices"
	"syscall"
	"testing"
)

// TestSavedQueriesPerUser: each uid has its own saved queries; old
// ownerless ones are adopted by one uid.
func TestSavedQueriesPerUser(t *testing.T) {
	e := newEnv(t)
	s := e.s
	queries := func(uid uint32) []string {
		t.Helper()
		qs, err := e.s.SavedQueries(uid)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, q := range qs {
			if q.Uid != uid {
				t.Errorf("query %q of uid %d says uid %d", q.Query, uid, q.Uid)
			}
			out = append(out, q.Query)
		}
		return out
	}
	for _, tt := range []struct {
		uid, gid uint32
		q        string
	}{{1000, 100, "oauth"}, {1000, 100, "tag:private"}, {1001, 101, "oauth"}, {0, 0, "zeta"}} {
		if err := s.SaveQuery(tt.uid, tt.gid, tt.q); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveQuery(1000, 100, "oauth"); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("saving twice: %v, want EEXIST", err)
	}
	if got := queries(1000); !slices.Equal(got, []string{"oauth", "tag:private"}) {
		t.Errorf("uid 1000 has %q", got)
	}
	if got := queries(1001); !slices.Equal(got, []string{"oauth"}) {
		t.Errorf("uid 1001 has %q", got)
	}
	if q, ok, err := s.LookupQuery(1001, "tag:private"); ok || err != nil {
		t.Errorf("uid 1001 finds uid 1000's query: %+v, %v", q, err)
	}
	if q, ok, err := s.LookupQuery(1000, "tag:private"); !ok || err != nil || q.Gid != 100 {
		t.Errorf("uid 1000's own query: %+v, %v, %v", q, ok, err)
	}
	if err := s.ForgetQuery(1001, "tag:private"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("uid 1001 forgets uid 1000's query: %v, want ENOENT", err)
	}
	if err := s.ForgetQuery(1001, "oauth"); err != nil {
		t.Fatal(err)
	}
	if got := queries(1000); !slices.Equal(got, []string{"oauth", "tag:private"}) {
		t.Errorf("uid 1001's rmdir changed uid 1000's queries: %q", got)
	}

	// A store from before owners: q<query> keys.
	for _, q := range []string{"legacy one", "tag:old"} {
		if err := s.db.Set(append([]byte{pfxQuery}, q...), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AdoptLegacyQueries(4242, 42); err != nil {
		t.Fatal(err)
	}
	if got := queries(4242); !slices.Equal(got, []string{"legacy one", "tag:old"}) {
		t.Errorf("adopted %q", got)
	}
	if err := s.AdoptLegacyQueries(7, 7); err != nil {
		t.Fatal(err)
	}
	if got := queries(7); len(got) != 0 {
		t.Errorf("legacy queries adopted twice: %q", got)
	}
	e.reopen()
	if got := queries(4242); !slices.Equal(got, []string{"legacy one", "tag:old"}) {
		t.Errorf("after reopen: %q", got)
	}
}
