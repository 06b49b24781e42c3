// Package migrate moves sessions between the legacy monolithic layout of
// the Phase 3 app and the chunked layout of a taskerfs data dir: Import
// converts and verifies, Export gives the data back as a plain chunked tree
// or in the legacy layout. It works on a Tree: an unmounted data dir
// through the core, or a directory such as a running mount. The source of
// an import is never modified.
package migrate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/taskerfs/taskerfs/blobstore"
	appenvelope "github.com/taskerfs/taskerfs/envelope"
)

// ImportOptions tune Import.
type ImportOptions struct {
	DryRun  bool // convert and count, write nothing
	Workers int  // sessions converted at once; GOMAXPROCS if 0
	// Now stamps metadata.json's updatedAt (time.Now if nil).
	Now func() time.Time
	// Progress is called after each session, never concurrently.
	Progress func(Progress)
	// CheckpointEvery is how many sessions are written between two
	// durable points when the destination makes them (an unmounted data
	// dir: one sync for many sessions instead of one per metadata.json);
	// DefaultCheckpointEvery if 0. The import ends with one.
	CheckpointEvery int
}

// DefaultCheckpointEvery bounds what a crash during an import can undo (a
// rerun writes those sessions again) to a few seconds of work.
const DefaultCheckpointEvery = 500

// Progress is how far an import is.
type Progress struct {
	Sessions   int   // sessions handled (imported, skipped or failed)
	Bytes      int64 // source bytes handled
	TotalBytes int64 // source bytes in all
}

// Failure is a session that was not imported.
type Failure struct {
	Origin string // source file, or sessions.json[i]
	ID     string // session id, if it got that far
	Err    error
}

func (f Failure) String() string {
	if f.ID != "" {
		return fmt.Sprintf("%s (session %s): %v", f.Origin, f.ID, f.Err)
	}
	return fmt.Sprintf("%s: %v", f.Origin, f.Err)
}

// Report sums up an import.
type Report struct {
	DryRun   bool
	Sessions int // imported (or, dry, that would be)
	Skipped  int // already imported by an earlier run
	// SameSessions are sessions found a second time with the same
	// content (in sessions/ and in sessions.json): imported once.
	SameSessions int
	Failed       []Failure
	Warnings     []string

	Attachments     int   // attachment files written
	AttachmentBytes int64 // their decoded bytes
	// Duplicates are attachments whose content the store already held (or
	// an earlier attachment of this run had): stored once, their bytes
	// saved.
	Duplicates         int
	SavedBytes         int64
	MissingAttachments int // referenced, but not in the source

	SessionBytes int64 // JSON written for sessions (chunks, side files, metadata)
	SourceBytes  int64 // bytes read from the source
	Elapsed      time.Duration
}

// Import converts every legacy session of src into dst (nil: an empty data
// dir that a dry run must not create). Sessions already complete in dst
// are skipped; a session that fails is reported in the Report and the
// others go on. The error is for failures of the source as a whole.
func Import(src *Source, dst Tree, opts ImportOptions) (*Report, error) {
	start := time.Now()
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	im := &importer{src: src, dst: dst, opts: opts, now: now, rep: &Report{DryRun: opts.DryRun},
		seen: map[blobstore.Hash]bool{}, ids: map[string]claimed{}, total: src.Bytes()}
	if bt, ok := dst.(bulkTree); ok && dst != nil && !opts.DryRun {
		im.bulk = bt
		if im.opts.CheckpointEvery <= 0 {
			im.opts.CheckpointEvery = DefaultCheckpointEvery
		}
		bt.SetBulk(true)
		defer bt.SetBulk(false)
	}
	items := make(chan sourceItem, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range items {
				im.one(it)
			}
		}()
	}
	err := src.each(func(it sourceItem) error {
		items <- it
		return nil
	})
	close(items)
	wg.Wait()
	if im.bulk != nil {
		// What the report counts as imported is on disk.
		if cerr := im.bulk.Checkpoint(); cerr != nil && im.ckErr == nil {
			im.ckErr = cerr
		}
	}
	if err == nil && im.ckErr != nil {
		err = fmt.Errorf("import: making the imported sessions durable: %w", im.ckErr)
	}
	im.rep.Elapsed = time.Since(start)
	return im.rep, err
}

type importer struct {
	src  *Source
	dst  Tree
	opts ImportOptions
	now  func() time.Time

	mu    sync.Mutex // guards everything below
	rep   *Report
	seen  map[blobstore.Hash]bool // attachment contents of this run
	ids   map[string]claimed      // by session id
	done  int
	bytes int64
	total int64

	bulk      bulkTree // set when dst makes durable points itself
	sinceCk   int      // sessions written since the last checkpoint
	ckErr     error    // the first checkpoint failure
	ckRunning sync.Mutex
}

// one imports one session and accounts for it.
func (im *importer) one(it sourceItem) {
	if im.account1(it) {
		im.checkpoint()
	}
}

// checkpoint makes what was written so far durable (bulk mode); other
// workers go on writing meanwhile.
func (im *importer) checkpoint() {
	im.ckRunning.Lock()
	defer im.ckRunning.Unlock()
	err := im.bulk.Checkpoint()
	im.mu.Lock()
	defer im.mu.Unlock()
	if err != nil && im.ckErr == nil {
		im.ckErr = err
	}
}

// account1 imports one session and accounts for it; it reports whether a
// checkpoint is due.
func (im *importer) account1(it sourceItem) (checkpoint bool) {
	id, skipped, c, err := im.convertOne(it)
	im.mu.Lock()
	defer im.mu.Unlock()
	if im.bulk != nil && err == nil && !skipped {
		im.sinceCk++
		if im.sinceCk >= im.opts.CheckpointEvery {
			im.sinceCk, checkpoint = 0, true
		}
	}
	im.done++
	im.bytes += int64(len(it.data))
	switch {
	case errors.Is(err, errSameSession):
		im.rep.SameSessions++
	case err != nil:
		im.rep.Failed = append(im.rep.Failed, Failure{Origin: it.origin, ID: id, Err: err})
	case skipped:
		im.rep.Skipped++
	default:
		im.rep.Sessions++
		im.rep.MissingAttachments += c.missing
		for _, w := range c.warnings {
			im.rep.Warnings = append(im.rep.Warnings, fmt.Sprintf("session %s: %s", id, w))
		}
	}
	if c != nil {
		im.bytes += c.srcBytes
		im.rep.SourceBytes += c.srcBytes
	}
	im.rep.SourceBytes += int64(len(it.data))
	if im.opts.Progress != nil {
		im.opts.Progress(Progress{Sessions: im.done, Bytes: im.bytes, TotalBytes: im.total})
	}
	return checkpoint
}

// convertOne parses, converts, writes and verifies one session.
func (im *importer) convertOne(it sourceItem) (id string, skipped bool, c *converted, err error) {
	if it.err != nil {
		return "", false, nil, it.err
	}
	src, err := parseDocument(it.data, appenvelope.MaxDecodedBytes)
	if err != nil {
		return "", false, nil, fmt.Errorf("invalid session JSON: %w", err)
	}
	if id, err = im.claim(src, it.origin); err != nil {
		return id, false, nil, err
	}
	if im.dst != nil {
		done, err := im.complete(id, src)
		if err != nil || done {
			return id, done, nil, err
		}
	}
	c, err = convert(src, im.src.attachment, im.now())
	if err != nil {
		return id, false, c, err
	}
	im.account(c)
	if im.opts.DryRun {
		return id, false, c, nil
	}
	if err := im.write(c); err != nil {
		return id, false, c, err
	}
	if err := verify(im.dst, c); err != nil {
		// Without metadata.json the session counts as not imported, so a
		// rerun writes it again.
		if rerr := im.dst.Remove(sessionPath(id, metadataFile)); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = fmt.Errorf("%w (and removing its metadata.json: %v)", err, rerr)
		}
		return id, false, c, err
	}
	return id, false, c, nil
}

// claimed is where a session id was first seen, and its content.
type claimed struct {
	origin string
	sum    blobstore.Hash // of the session's compact JSON
}

// errSameSession marks a session found twice with the same content (in
// sessions/ and in sessions.json, say): it is imported once.
var errSameSession = errors.New("the same session again")

// claim records that session src comes from origin. A second session with
// the same id is refused, or skipped when its content is the same.
func (im *importer) claim(src *object, origin string) (string, error) {
	id, _ := src.str("id")
	if id == "" {
		return "", errNoID
	}
	compact, err := compactJSON(src.appendJSON(nil))
	if err != nil {
		return id, err
	}
	sum := blobstore.Sum(compact)
	im.mu.Lock()
	defer im.mu.Unlock()
	if first, dup := im.ids[id]; dup {
		if first.sum == sum {
			return id, errSameSession
		}
		return id, fmt.Errorf("duplicate session id with different content (first in %s)", first.origin)
	}
	im.ids[id] = claimed{origin, sum}
	return id, nil
}

// account counts c's attachments and which of them are duplicates.
func (im *importer) account(c *converted) {
	im.mu.Lock()
	defer im.mu.Unlock()
	for _, f := range c.files {
		if !f.attachment {
			im.rep.SessionBytes += int64(len(f.data))
			continue
		}
		im.rep.Attachments++
		im.rep.AttachmentBytes += int64(len(f.data))
		dup := im.seen[f.hash]
		if !dup && im.dst != nil {
			if has, err := im.dst.HasBlob(f.hash); err == nil && has {
				dup = true
			}
		}
		if dup {
			im.rep.Duplicates++
			im.rep.SavedBytes += int64(len(f.data))
		}
		im.seen[f.hash] = true
	}
}

// write writes c's files in order, metadata.json last, with each
// attachment's legacy record as an xattr.
func (im *importer) write(c *converted) error {
	xattrOK := true
	for _, f := range c.files {
		if err := im.dst.WriteFile(f.path, f.data); err != nil {
			return fmt.Errorf("write %s: %w", f.path, err)
		}
		if f.xattr == nil || !xattrOK {
			continue
		}
		if err := im.dst.SetXattr(f.path, AttachmentXattr, f.xattr); err != nil {
			// The bytes are what matters; the record only helps a later
			// legacy export, which can rebuild most of it.
			c.warnings = append(c.warnings, fmt.Sprintf("%s: attachment record not kept as %s: %v", f.path, AttachmentXattr, err))
			xattrOK = false
		}
	}
	return nil
}

// complete reports whether an earlier run imported the session whole:
// metadata.json (written last) is there with storageVersion 1, and so is
// every chunk and side file it lists and every attachment the source has
// for it, none empty (a file whose content a crash lost is empty). A
// complete session is never written again, so changes made to it since
// the import are kept.
func (im *importer) complete(id string, src *object) (bool, error) {
	raw, err := im.dst.ReadFile(sessionPath(id, metadataFile))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	md, err := parseObject(raw)
	if err != nil {
		return false, nil
	}
	if v, _ := md.get("storageVersion"); string(v) != "1" {
		return false, nil
	}
	var manifest map[string]chunkInfo
	if rawChunks, ok := md.get("chunks"); !ok || json.Unmarshal(rawChunks, &manifest) != nil {
		return false, nil
	}
	var want []string
	for _, arr := range chunkedArrays {
		for i := range manifest[arr.key].ChunkCount {
			want = append(want, sessionPath(id, arr.dir, chunkName(i)))
		}
	}
	flags := map[string]string{"summary": "hasSummary", "audioInsights": "hasAudioInsights",
		"canvasSpec": "hasCanvasSpec", "fullTranscription": "hasTranscription"}
	for _, sf := range sideFiles {
		listed := false
		if flag, ok := flags[sf.key]; ok {
			v, _ := md.get(flag)
			listed = string(v) == "true"
		} else {
			_, listed = src.get(sf.key) // no flag says so
		}
		if listed {
			want = append(want, sessionPath(id, sf.file))
		}
	}
	for _, p := range want {
		if e, err := im.dst.Stat(p); err != nil || e.Size == 0 {
			return false, nil
		}
	}
	return im.attachmentsComplete(id, src)
}

// attachmentsComplete checks that every attachment the source holds for
// the session has a non-empty file.
func (im *importer) attachmentsComplete(id string, src *object) (bool, error) {
	have := map[string]bool{}
	entries, err := im.dst.ReadDir(sessionPath(id, attachmentsDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	for _, e := range entries {
		if e.Size > 0 {
			have[strings.TrimSuffix(e.Name, path.Ext(e.Name))] = true
		}
	}
	for _, ref := range attachmentRefs(src) {
		if !have[ref[0]] && validName(ref[0]) && im.src.hasAttachment(ref[0], ref[1]) {
			return false, nil
		}
	}
	return true, nil
}

// attachmentRefs lists the (attachment id, hash) pairs a session refers to.
func attachmentRefs(src *object) [][2]string {
	var out [][2]string
	for _, arr := range chunkedArrays {
		raw, ok := src.get(arr.key)
		if !ok {
			continue
		}
		recs, err := parseRecords(raw)
		if err != nil {
			continue
		}
		for _, r := range recs {
			if id, _ := r.str("attachmentId"); id != "" {
				h, _ := r.str("hash")
				out = append(out, [2]string{id, h})
			}
		}
	}
	if full, _ := src.str("fullAudioAttachmentId"); full != "" {
		out = append(out, [2]string{full, ""})
	}
	return out
}
