package index

import "slices"

// termPostings is what a search knows about one term: every session holding
// it, with the term's frequency summed over the session's files.
type termPostings struct {
	ids []uint32 // session numbers, sorted
	tf  []uint64
	raw []posting // per file, sorted by (num, fid): which files of a hit post the term (snippets)
}

// term returns the postings of t, both layers merged (blocks.go). A long list
// costs about 3 bytes per posting to read, so every list is read in full: the
// document frequency is exact and an AND intersects sorted arrays.
func (ev *evaluator) term(t string) (*termPostings, error) {
	if tp, ok := ev.terms[t]; ok {
		return tp, nil
	}
	dead, err := ev.deadSet()
	if err != nil {
		return nil, err
	}
	ps, err := readPostings(ev.r, dead, t)
	if err != nil {
		return nil, err
	}
	tp := &termPostings{raw: ps}
	for _, p := range ps {
		if n := len(tp.ids); n == 0 || tp.ids[n-1] != p.num {
			tp.ids = append(tp.ids, p.num)
			tp.tf = append(tp.tf, 0)
		}
		tp.tf[len(tp.tf)-1] += p.tf
	}
	ev.terms[t] = tp
	return tp, nil
}

// tfCursor reads the frequencies of one term for ascending session numbers.
type tfCursor struct {
	tp *termPostings
	i  int
}

// tf returns the frequency of the term in session num; calls must come in
// ascending num order.
func (c *tfCursor) tf(num uint32) uint64 {
	ids := c.tp.ids
	for c.i < len(ids) && ids[c.i] < num {
		c.i++
	}
	if c.i < len(ids) && ids[c.i] == num {
		return c.tp.tf[c.i]
	}
	return 0
}

// files returns the first max files of session num that post the term.
func (tp *termPostings) files(num uint32, max int) []uint64 {
	i, _ := slices.BinarySearchFunc(tp.raw, num, func(p posting, num uint32) int { return cmpNum(p.num, num) })
	var fids []uint64
	for ; i < len(tp.raw) && tp.raw[i].num == num && len(fids) < max; i++ {
		fids = append(fids, tp.raw[i].fid)
	}
	return fids
}

// deadSet returns the dead marks the evaluator's reader sees (read once).
func (ev *evaluator) deadSet() (*deadSet, error) {
	if ev.dead == nil {
		d, err := loadDead(ev.r)
		if err != nil {
			return nil, err
		}
		ev.dead = d
	}
	return ev.dead, nil
}
