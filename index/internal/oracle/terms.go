package oracle

import (
	"encoding/binary"
	"slices"

	"github.com/cockroachdb/pebble"
)

// A common word has a long posting list (one key per file holding it). To
// keep "rare common" fast, a term's list is read up to a budget only; when
// the rest of an AND has already narrowed the candidates, the long list is
// probed with one seek per candidate instead of being read, and the term's
// document frequency (for BM25) is estimated.
const (
	defaultScanBudget = 8192 // posting keys read before a term counts as long
	defaultProbeLimit = 1024 // candidates few enough to probe one by one
)

// termPostings is what a search knows about one term.
type termPostings struct {
	full   bool     // ids/tf hold every session with the term
	ids    []uint32 // session numbers, sorted
	tf     []uint64
	probed map[uint32]uint64 // long lists: tf of probed sessions (0: absent)
	df     float64           // long lists: estimated sessions holding the term; 0 until estimated

	// Where the budgeted scan of a long list stopped.
	scannedKeys     int
	scannedSessions int
	stopKey         []byte
}

// term returns the postings of t, reading at most the scan budget.
func (ev *evaluator) term(t string) (*termPostings, error) {
	if tp, ok := ev.terms[t]; ok {
		return tp, nil
	}
	tp, err := ev.scanTerm(t, ev.budget)
	if err != nil {
		return nil, err
	}
	ev.terms[t] = tp
	return tp, nil
}

// fullTerm returns every posting of t.
func (ev *evaluator) fullTerm(t string) (*termPostings, error) {
	tp, err := ev.term(t)
	if err != nil || tp.full {
		return tp, err
	}
	if tp, err = ev.scanTerm(t, 0); err != nil {
		return nil, err
	}
	ev.terms[t] = tp
	return tp, nil
}

// scanTerm reads the posting list of t, stopping after budget keys (0: no limit).
func (ev *evaluator) scanTerm(t string, budget int) (*termPostings, error) {
	prefix := termPrefix(t)
	it, err := prefixIter(ev.r, prefix)
	if err != nil {
		return nil, err
	}
	tp := &termPostings{full: true}
	keys := 0
	for ok := it.First(); ok; ok = it.Next() {
		if budget > 0 && keys == budget {
			tp.full = false
			tp.scannedKeys, tp.scannedSessions = keys, len(tp.ids)
			tp.stopKey = append([]byte(nil), it.Key()...)
			tp.ids, tp.tf = nil, nil
			tp.probed = map[uint32]uint64{}
			break
		}
		keys++
		k := it.Key()
		if len(k) != len(prefix)+tailLen {
			_ = it.Close()
			return nil, errCorrupt
		}
		num := binary.BigEndian.Uint32(k[len(prefix):])
		if n := len(tp.ids); n == 0 || tp.ids[n-1] != num {
			tp.ids = append(tp.ids, num)
			tp.tf = append(tp.tf, 0)
		}
		v, _ := binary.Uvarint(it.Value())
		tp.tf[len(tp.tf)-1] += v
	}
	return tp, it.Close()
}

// filter returns the ids (sorted) that hold term t, probing a long list.
func (ev *evaluator) filter(t string, ids []uint32) ([]uint32, error) {
	tp, err := ev.term(t)
	if err != nil {
		return nil, err
	}
	if tp.full {
		return intersect(ids, tp.ids), nil
	}
	var out []uint32
	err = ev.probe(t, tp, ids, func(num uint32, tf uint64) {
		if tf > 0 {
			out = append(out, num)
		}
	})
	return out, err
}

// probe looks up the frequency of t in each of ids (sorted), remembering it.
func (ev *evaluator) probe(t string, tp *termPostings, ids []uint32, fn func(num uint32, tf uint64)) error {
	prefix := termPrefix(t)
	var it *pebble.Iterator
	key := append([]byte(nil), prefix...)
	for _, num := range ids {
		tf, ok := tp.probed[num]
		if !ok {
			if it == nil {
				var err error
				if it, err = prefixIter(ev.r, prefix); err != nil {
					return err
				}
				defer it.Close()
			}
			// Ascending seeks let pebble step forward instead of searching.
			key = appendNum(key[:len(prefix)], num)
			for valid := it.SeekGE(key); valid && len(it.Key()) == len(key)+8 && string(it.Key()[:len(key)]) == string(key); valid = it.Next() {
				n, _ := binary.Uvarint(it.Value())
				tf += n
			}
			if err := it.Error(); err != nil {
				return err
			}
			tp.probed[num] = tf
		}
		fn(num, tf)
	}
	return nil
}

// tfOf returns the frequency of t in session num.
func (ev *evaluator) tfOf(t string, tp *termPostings, num uint32) (uint64, error) {
	if tp.full {
		if j, ok := slices.BinarySearch(tp.ids, num); ok {
			return tp.tf[j], nil
		}
		return 0, nil
	}
	var tf uint64
	err := ev.probe(t, tp, []uint32{num}, func(_ uint32, n uint64) { tf = n })
	return tf, err
}

// docFreq returns the number of sessions holding t: exact for a list read in
// full; for a long one, the scanned part scaled by the share of the term's
// key range it covers on disk (pebble's estimate), or an exact read when no
// estimate is possible (everything still in memtables).
func (ev *evaluator) docFreq(t string, sessions uint64) (float64, error) {
	tp, err := ev.term(t)
	if err != nil {
		return 0, err
	}
	if tp.full {
		return float64(len(tp.ids)), nil
	}
	if tp.df > 0 {
		return tp.df, nil
	}
	prefix := termPrefix(t)
	total, err1 := ev.estimate(prefix, prefixEnd(prefix))
	head, err2 := ev.estimate(prefix, tp.stopKey)
	if err1 != nil || err2 != nil || head == 0 || total < head {
		if tp, err = ev.fullTerm(t); err != nil {
			return 0, err
		}
		return float64(len(tp.ids)), nil
	}
	keys := float64(tp.scannedKeys) * float64(total) / float64(head)
	df := keys * float64(tp.scannedSessions) / float64(tp.scannedKeys)
	tp.df = min(max(df, float64(tp.scannedSessions)), max(float64(sessions), float64(tp.scannedSessions)))
	return tp.df, nil
}
