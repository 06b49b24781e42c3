package meta

import (
	"encoding/binary"
	"syscall"

	"github.com/cockroachdb/pebble"
)

// Saved queries are the directories users made under saved/. Each belongs
// to the uid that made it: Q<uid><query> -> <gid>. Stores made before
// queries had owners hold q<query> keys; AdoptLegacyQueries gives those to
// one user.

// SavedQuery is one saved search and who saved it.
type SavedQuery struct {
	Query    string
	Uid, Gid uint32
}

func userQueryPrefix(uid uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{pfxUserQuery}, uid)
}

func userQueryKey(uid uint32, q string) []byte { return append(userQueryPrefix(uid), q...) }

// SaveQuery remembers q for uid (EEXIST if uid saved it already).
func (s *Store) SaveQuery(uid, gid uint32, q string) error {
	return s.Update(false, func(tx *Tx) error {
		k := userQueryKey(uid, q)
		if _, ok, err := get(tx.b, k); err != nil {
			return err
		} else if ok {
			return errno(syscall.EEXIST)
		}
		return tx.b.Set(k, binary.BigEndian.AppendUint32(nil, gid), nil)
	})
}

// ForgetQuery drops uid's saved query q (ENOENT if uid did not save it).
func (s *Store) ForgetQuery(uid uint32, q string) error {
	return s.Update(false, func(tx *Tx) error {
		k := userQueryKey(uid, q)
		if _, ok, err := get(tx.b, k); err != nil {
			return err
		} else if !ok {
			return errno(syscall.ENOENT)
		}
		return tx.b.Delete(k, nil)
	})
}

// LookupQuery returns uid's saved query q, if uid saved it.
func (s *Store) LookupQuery(uid uint32, q string) (SavedQuery, bool, error) {
	v, ok, err := get(s.db, userQueryKey(uid, q))
	if err != nil || !ok {
		return SavedQuery{}, false, err
	}
	return SavedQuery{Query: q, Uid: uid, Gid: queryGid(v)}, true, nil
}

// SavedQueries lists uid's saved queries in order.
func (s *Store) SavedQueries(uid uint32) ([]SavedQuery, error) {
	p := userQueryPrefix(uid)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var qs []SavedQuery
	for ok := it.First(); ok; ok = it.Next() {
		qs = append(qs, SavedQuery{Query: string(it.Key()[len(p):]), Uid: uid, Gid: queryGid(it.Value())})
	}
	return qs, it.Error()
}

func queryGid(v []byte) uint32 {
	if len(v) != 4 {
		return 0
	}
	return binary.BigEndian.Uint32(v)
}

// AdoptLegacyQueries gives the queries saved before queries had owners to
// uid (the user running the daemon), in one durable batch. It does nothing
// when there are none.
func (s *Store) AdoptLegacyQueries(uid, gid uint32) error {
	p := []byte{pfxQuery}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return err
	}
	var legacy []string
	for ok := it.First(); ok; ok = it.Next() {
		legacy = append(legacy, string(it.Key()[1:]))
	}
	if err := firstError(it.Error(), it.Close()); err != nil || len(legacy) == 0 {
		return err
	}
	return s.Update(true, func(tx *Tx) error {
		for _, q := range legacy {
			if err := tx.b.Set(userQueryKey(uid, q), binary.BigEndian.AppendUint32(nil, gid), nil); err != nil {
				return err
			}
			if err := tx.b.Delete(append([]byte{pfxQuery}, q...), nil); err != nil {
				return err
			}
		}
		return nil
	})
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
