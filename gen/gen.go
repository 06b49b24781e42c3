// Package gen writes realistic, deterministic session datasets for tests and
// benchmarks: the seed's chunked layout, the real app's enveloped layout, or
// the legacy monolithic one, with JPEG-like screenshots (a chosen share of
// them exact duplicates), MP3-like audio segments and AI-generated-looking
// text. It reports what it planted so tests can compute expected query
// results without reading the files back.
package gen

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Layout selects the on-disk shape of a dataset.
type Layout string

const (
	// LayoutSeed is the seed document's layout: camelCase side files, plain
	// JSON, chunks as bare arrays of 10 screenshots / 50 audio segments.
	LayoutSeed Layout = "seed"
	// LayoutApp is the real app's layout: kebab-case names, chunk objects of
	// 20 screenshots / 100 segments, every .json in the GZIP_V1 envelope.
	LayoutApp Layout = "app"
	// LayoutLegacy is Phase 3's: sessions/<id>.json with everything inline,
	// attachments/<id>.json carrying base64.
	LayoutLegacy Layout = "legacy"
)

// ParseLayout accepts "seed", "app" or "legacy".
func ParseLayout(s string) (Layout, error) {
	switch l := Layout(s); l {
	case LayoutSeed, LayoutApp, LayoutLegacy:
		return l, nil
	}
	return "", fmt.Errorf("gen: unknown layout %q (want seed, app or legacy)", s)
}

// Plant asks for Word to appear in one indexed text field of about Share of
// the sessions.
type Plant struct {
	Word  string
	Share float64
}

// Options controls a dataset. The zero value of a field means "none", not
// "default": start from DefaultOptions.
type Options struct {
	Sessions      int
	Screenshots   int     // per session
	AudioSegments int     // per session, 10 s each
	Dup           float64 // share of screenshots that are byte copies of earlier ones
	Seed          uint64
	JSONOnly      bool // write no attachment bytes (records then carry no hash)
	Layout        Layout
	Vocabulary    []string // words prose is drawn from; DefaultVocabulary if empty
	Plant         []Plant
	Workers       int // parallel session writers; GOMAXPROCS if 0
}

// DefaultOptions is a small realistic dataset.
func DefaultOptions() Options {
	return Options{Sessions: 100, Screenshots: 20, AudioSegments: 30, Dup: 0.4, Seed: 1, Layout: LayoutSeed}
}

// SessionInfo is what a test needs to know about one generated session.
type SessionInfo struct {
	ID            string
	Name          string
	Status        string
	Category      string
	SubCategory   string
	Tags          []string
	Topics        []string // aiAnalysis.detectedEntities.topics names, sorted
	Month         string   // YYYY-MM of StartTime in UTC
	StartTime     time.Time
	Words         []string // planted words present in this session
	Screenshots   int
	AudioSegments int
}

// Manifest describes a generated dataset.
type Manifest struct {
	Layout   Layout
	Seed     uint64
	Sessions []SessionInfo // in generation order

	Files     int64
	Bytes     int64 // everything written
	JSONBytes int64 // session JSON files (not legacy attachment files)

	Screenshots          int
	DuplicateScreenshots int
	AudioSegments        int
	// AttachmentBytes is the decoded size of all attachments, Unique... the
	// same after exact deduplication. Both are 0 with JSONOnly.
	AttachmentBytes       int64
	UniqueAttachmentBytes int64
}

// IDs returns the ids of the sessions for which keep is true, in
// generation order.
func (m *Manifest) IDs(keep func(SessionInfo) bool) []string {
	var ids []string
	for _, s := range m.Sessions {
		if keep(s) {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

type generator struct {
	opts  Options
	dst   string
	vocab []string
}

func (o *Options) validate() error {
	if o.Sessions < 0 || o.Screenshots < 0 || o.AudioSegments < 0 {
		return errors.New("gen: counts must not be negative")
	}
	if o.Dup < 0 || o.Dup > 1 {
		return fmt.Errorf("gen: dup share %v not in [0,1]", o.Dup)
	}
	if _, err := ParseLayout(string(o.Layout)); err != nil {
		return err
	}
	vocab := o.Vocabulary
	if len(vocab) == 0 {
		vocab = DefaultVocabulary
	}
	for _, w := range vocab {
		if t := tokens(w); len(t) != 1 || t[0] != w {
			return fmt.Errorf("gen: vocabulary word %q is not one lowercase token", w)
		}
	}
	reserved := reservedTokens(vocab)
	for _, p := range o.Plant {
		if t := tokens(p.Word); len(t) != 1 || t[0] != p.Word || len(p.Word) < 2 {
			return fmt.Errorf("gen: planted word %q is not one lowercase token of 2+ characters", p.Word)
		}
		if reserved[p.Word] {
			return fmt.Errorf("gen: planted word %q also occurs in generated text", p.Word)
		}
		if p.Share < 0 || p.Share > 1 {
			return fmt.Errorf("gen: share %v of %q not in [0,1]", p.Share, p.Word)
		}
	}
	return nil
}

// Generate writes a dataset under dst (created if missing) and returns its
// manifest. The same Options give byte-identical trees. Sessions are built
// and written one at a time per worker; memory does not grow with the
// dataset except for the manifest.
func Generate(dst string, opts Options) (Manifest, error) {
	if err := opts.validate(); err != nil {
		return Manifest{}, err
	}
	g := &generator{opts: opts, dst: dst, vocab: opts.Vocabulary}
	if len(g.vocab) == 0 {
		g.vocab = DefaultVocabulary
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return Manifest{}, err
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}

	m := Manifest{Layout: opts.Layout, Seed: opts.Seed, Sessions: make([]SessionInfo, opts.Sessions)}
	var (
		next     atomic.Int64
		failed   atomic.Bool
		firstErr error
		errOnce  sync.Once
		wg       sync.WaitGroup
		totals   = make([]stats, workers)
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			wr := newWriter(g)
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= opts.Sessions {
					break
				}
				r := rand.New(rand.NewPCG(g.key(streamSession, 0), uint64(i)))
				s := g.build(i, r)
				if err := wr.write(s); err != nil {
					errOnce.Do(func() { firstErr = err })
					failed.Store(true)
					return
				}
				m.Sessions[i] = s.info
			}
			totals[w] = wr.stats
		}(w)
	}
	wg.Wait()
	if firstErr != nil {
		return Manifest{}, firstErr
	}
	for _, t := range totals {
		m.Files += t.files
		m.Bytes += t.bytes
		m.JSONBytes += t.jsonBytes
		m.Screenshots += t.screenshots
		m.DuplicateScreenshots += t.dups
		m.AudioSegments += t.audio
		m.AttachmentBytes += t.attachmentBytes
		m.UniqueAttachmentBytes += t.uniqueBytes
	}
	return m, nil
}
