package meta

import (
	"syscall"

	"github.com/cockroachdb/pebble"
)

// Saved queries are the directories a user made under search/.

func queryKey(q string) []byte { return append([]byte{pfxQuery}, q...) }

// SaveQuery remembers q (EEXIST if it is saved already).
func (s *Store) SaveQuery(q string) error {
	return s.Update(false, func(tx *Tx) error {
		if _, ok, err := get(tx.b, queryKey(q)); err != nil {
			return err
		} else if ok {
			return errno(syscall.EEXIST)
		}
		return tx.b.Set(queryKey(q), nil, nil)
	})
}

// ForgetQuery drops a saved query (ENOENT if it was not saved).
func (s *Store) ForgetQuery(q string) error {
	return s.Update(false, func(tx *Tx) error {
		if _, ok, err := get(tx.b, queryKey(q)); err != nil {
			return err
		} else if !ok {
			return errno(syscall.ENOENT)
		}
		return tx.b.Delete(queryKey(q), nil)
	})
}

// IsSavedQuery reports whether q was saved.
func (s *Store) IsSavedQuery(q string) (bool, error) {
	_, ok, err := get(s.db, queryKey(q))
	return ok, err
}

// SavedQueries lists saved queries in order.
func (s *Store) SavedQueries() ([]string, error) {
	p := []byte{pfxQuery}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var qs []string
	for ok := it.First(); ok; ok = it.Next() {
		qs = append(qs, string(it.Key()[1:]))
	}
	return qs, it.Error()
}
