package index

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble"
)

func binaryNum(v []byte) uint32 { return binary.BigEndian.Uint32(v) }

// TestDeadMarksDifferential removes files, moves them between sessions and
// brings inode numbers back (into the session they left, where their dead
// mark is still unpurged, and elsewhere), with the marks purged at every
// pace: never before a sweep, at once, and by a background sweeper. After
// every round the queries must give what the oracle gives, Check must find
// nothing, and a removal must cost its file a few keys, not one per term.
func TestDeadMarksDifferential(t *testing.T) {
	for _, tc := range []struct {
		name       string
		purgeMin   uint64
		sweepMin   uint64
		background bool
	}{
		{"lingering", 1 << 40, 1 << 40, false},
		{"at once", 1, testSweepMin, false},
		{"with sweeps", defaultPurgeMin, testSweepMin, false},
		{"background", 64, testSweepMin, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(5, 6))
			ds := &dataset{rng: r, files: map[string]genFile{}}
			const nSess = 12
			for i := range nSess {
				ds.session(t, fmt.Sprintf("s%02d", i))
			}
			d := newDifferential(t, true)
			d.f.x.purgeMin, d.f.x.sweepMin = tc.purgeMin, tc.sweepMin
			d.f.x.SetBackgroundSweep(tc.background)
			if tc.background {
				d.f.x.perFile = 1 // sweeps due often, also while removals go on
			}
			d.apply(ds.files, nil)
			queries := append(append([]string(nil), fixedQueries...), oracleQueries...)
			for range 60 {
				queries = append(queries, randomQuery(r, 0))
			}
			// Fold what the ingest wrote, so that removals hit base blocks.
			if err := d.f.x.Compact(); err != nil {
				t.Fatal(err)
			}
			d.compare(queries)

			// A file's path decides its session; fids freed by a removal
			// come back, at their old path (their session's number, while
			// the session lives) or at another.
			var freed, freedNow []struct {
				fid  uint64
				path string
			}
			revived, marked, foldedBesideDead := 0, 0, 0
			for round := range 40 {
				freed = append(freed, freedNow...)
				freedNow = freedNow[:0]
				puts := map[string]genFile{}
				var removes []uint64
				paths := sortedKeys(ds.files)
				for range 1 + r.IntN(4) {
					p := pick(r, paths)
					f, ok := ds.files[p]
					if !ok || puts[p].fid != 0 || slices.Contains(removes, f.fid) {
						continue
					}
					switch op := r.IntN(4); {
					case op == 0: // remove
						removes = append(removes, f.fid)
						delete(ds.files, p)
						freedNow = append(freedNow, struct {
							fid  uint64
							path string
						}{f.fid, p}) // (free from the next round: d.apply puts before it removes)
					case op == 1 && len(freed) > 0: // an inode number comes back
						i := r.IntN(len(freed))
						back := freed[i]
						freed = slices.Delete(freed, i, i+1)
						dst := back.path
						if r.IntN(2) == 0 {
							dst = p // at another file's path: that file goes
							removes = append(removes, f.fid)
							delete(ds.files, p)
						}
						if _, taken := ds.files[dst]; taken || puts[dst].fid != 0 {
							continue
						}
						content := ds.files[p].content
						if content == nil {
							content = f.content
						}
						if r.IntN(2) == 0 {
							content = meta("back "+ds.words(3), ds.words(20))
							if _, kind, _ := Classify(dst); kind != KindMetadata {
								content = f.content
							}
						}
						puts[dst] = genFile{fid: back.fid, content: content}
						ds.files[dst] = puts[dst]
					default: // a move to another session, same file name
						sid := fmt.Sprintf("s%02d", r.IntN(nSess))
						dst := "sessions/" + sid + p[len("sessions/s00"):]
						if _, taken := ds.files[dst]; taken || dst == p {
							continue
						}
						delete(ds.files, p)
						ds.files[dst] = f
						puts[dst] = f
					}
				}
				for dst, f := range puts {
					sid, _, _ := Classify(dst)
					if v, ok, _ := get(d.f.db, sessionKey(sid)); ok {
						if _, ok, _ := get(d.f.db, deadKey(binaryNum(v), f.fid)); ok {
							revived++
						}
					}
				}
				before, _ := countKeys(d.f.db, tableKey(tblDead))
				d.apply(puts, removes)
				after, _ := countKeys(d.f.db, tableKey(tblDead))
				if after > before {
					marked++
				}
				g, err := loadGlobal(d.f.db)
				if err != nil {
					t.Fatal(err)
				}
				if int(g.dead) != after {
					t.Fatalf("round %d: global stats count %d dead marks, the table holds %d", round, g.dead, after)
				}
				if tc.background && r.IntN(3) == 0 {
					// As the sweeper does on its ticks: the first look notes
					// the dead files, the next ones find removals paused.
					var due bool
					for range quietLooks + 1 {
						if due, err = d.f.x.SweepDue(); err != nil {
							t.Fatal(err)
						}
					}
					if g.dead > 0 && !due {
						t.Fatalf("round %d: %d dead files and removals paused, but no purge is due", round, g.dead)
					}
					if due {
						sweepUntilDone(t, d.f)
					}
					if n, _ := countKeys(d.f.db, tableKey(tblDead)); n != 0 {
						t.Fatalf("round %d: %d dead marks left after the sweeper's purge", round, n)
					}
				} else if tc.background && g.dead > 0 {
					// Removals under way (the dead count changed since the
					// sweeper's last look): a sweep due or under way folds
					// beside the dead files' marks and leaves the purge for
					// the pause.
					due, err := d.f.x.SweepDue()
					if err != nil {
						t.Fatal(err)
					}
					if due {
						sweepUntilDone(t, d.f)
					}
					folded := due
					if n, _ := countKeys(d.f.db, tableKey(tblDead)); n != after {
						t.Fatalf("round %d: a sweep while removals go on purged: %d dead marks, %d before", round, n, after)
					}
					if folded {
						foldedBesideDead++
					}
				}
				d.compare(queries)
				if problems, err := d.f.x.Check(allFiles(ds.files)); err != nil || len(problems) != 0 {
					t.Fatalf("round %d: check: %v %v", round, problems, err)
				}
				if t.Failed() {
					t.Fatalf("round %d differs from the oracle", round)
				}
			}
			if marked == 0 || revived == 0 && !tc.background && tc.purgeMin > 1 || tc.background && foldedBesideDead == 0 {
				t.Fatalf("%d rounds wrote dead marks, %d files took one over, %d sweeps folded beside dead marks: the test misses a path",
					marked, revived, foldedBesideDead)
			}
			// Compact purges what is left; the results stay.
			if err := d.f.x.Compact(); err != nil {
				t.Fatal(err)
			}
			if n, _ := countKeys(d.f.db, tableKey(tblDead)); n != 0 {
				t.Fatalf("%d dead marks after Compact", n)
			}
			d.compare(queries)
			if problems, err := d.f.x.Check(allFiles(ds.files)); err != nil || len(problems) != 0 {
				t.Fatalf("check after compact: %v %v", problems, err)
			}
		})
	}
}

// sweepUntilDone runs sweep steps of 50 postings, each in a batch of its
// own, until the sweep says it is done, as the background sweeper does.
func sweepUntilDone(t *testing.T, f *fixture) {
	t.Helper()
	for more := true; more; {
		b := f.db.NewIndexedBatch()
		var err error
		if more, err = f.x.Sweep(b, 50); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
}
