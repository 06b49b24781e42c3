package migrate

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/taskerfs/taskerfs/blobstore"
)

// converted is one legacy session in the chunked layout, ready to write.
type converted struct {
	id      string
	src     *object              // the legacy session as read
	records map[string][]*object // chunked arrays by Session key, hashes filled in
	// files in write order: attachments, chunks, side files, metadata.json
	// last, so that a session with metadata.json is complete.
	files    []outFile
	missing  int // referenced attachments the source has no file for
	warnings []string
	srcBytes int64 // attachment bytes read from the source
}

// outFile is one file to write under the data dir.
type outFile struct {
	path       string
	data       []byte
	attachment bool
	hash       blobstore.Hash // of data, for attachments
	xattr      []byte         // the legacy record, for attachments
}

var errNoID = errors.New("session has no id")

// attachmentLookup finds and decodes an attachment of the source;
// errNoAttachment when there is none.
type attachmentLookup func(id, hash string) (*attachment, error)

// convert splits a legacy Session into the seed's chunked layout: derived
// metadata.json, side files, screenshot chunks of 10, audio chunks of 50,
// video chunks in one file, and each attachment decoded into
// attachments/<attachmentId>.<ext> with its hash on the records.
func convert(src *object, lookup attachmentLookup, now time.Time) (*converted, error) {
	id, ok := src.str("id")
	if !ok || id == "" {
		return nil, errNoID
	}
	if !validName(id) {
		return nil, fmt.Errorf("session id %q cannot be a directory name", id)
	}
	c := &converted{id: id, src: src, records: map[string][]*object{}}
	body := src.clone()
	for _, arr := range chunkedArrays {
		raw, ok := body.take(arr.key)
		if !ok {
			continue
		}
		recs, err := parseRecords(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", arr.key, err)
		}
		c.records[arr.key] = recs
	}
	if err := c.attach(body, lookup); err != nil {
		return nil, err
	}
	manifest, err := c.chunkFiles()
	if err != nil {
		return nil, err
	}
	has := map[string]bool{}
	for _, sf := range sideFiles {
		raw, ok := body.take(sf.key)
		if !ok {
			continue
		}
		if sf.key == "fullTranscription" {
			if s, isString := jsonStringValue(raw); isString && s == "" {
				continue
			}
		}
		data, err := prettyJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sf.key, err)
		}
		c.files = append(c.files, outFile{path: sessionPath(id, sf.file), data: data})
		has[sf.key] = true
	}
	md, err := c.metadata(body, manifest, has, now)
	if err != nil {
		return nil, err
	}
	c.files = append(c.files, outFile{path: sessionPath(id, metadataFile), data: md})
	return c, nil
}

func parseRecords(raw json.RawMessage) ([]*object, error) {
	elems, err := parseArray(raw)
	if err != nil {
		return nil, err
	}
	recs := make([]*object, len(elems))
	for i, e := range elems {
		if recs[i], err = parseValidObject(e); err != nil { // parseArray checked e
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
	}
	return recs, nil
}

func jsonStringValue(raw json.RawMessage) (string, bool) {
	var s string
	return s, json.Unmarshal(raw, &s) == nil
}

// attach decodes every attachment the session references (screenshots,
// audio segments, video chunks, the full audio) and sets hash on the
// screenshot and segment records, right after attachmentId.
func (c *converted) attach(body *object, lookup attachmentLookup) error {
	done := map[string]*outFile{}
	get := func(attID, hint string) (*outFile, error) {
		if f, seen := done[attID]; seen {
			return f, nil
		}
		done[attID] = nil
		if !validName(attID) {
			c.warnings = append(c.warnings, fmt.Sprintf("attachment id %q cannot be a file name; not imported", attID))
			return nil, nil
		}
		a, err := lookup(attID, hint)
		if errors.Is(err, errNoAttachment) {
			c.missing++
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		c.srcBytes += a.srcBytes
		var name string
		f := &outFile{data: a.data, attachment: true, hash: blobstore.Sum(a.data)}
		if a.record != nil {
			name, _ = a.record.str("name")
			if f.xattr, err = compactJSON(a.record.appendJSON(nil)); err != nil {
				return nil, err
			}
			f.xattr = f.xattr[:len(f.xattr)-1]
		}
		f.path = sessionPath(c.id, attachmentsDir, attID+"."+extensionFor(a.mimeType, name))
		done[attID] = f
		c.files = append(c.files, *f)
		return f, nil
	}
	for _, arr := range chunkedArrays {
		for i, rec := range c.records[arr.key] {
			attID, ok := rec.str("attachmentId")
			if !ok || attID == "" {
				continue
			}
			hint, _ := rec.str("hash")
			f, err := get(attID, hint)
			if err != nil {
				return fmt.Errorf("%s[%d]: %w", arr.key, i, err)
			}
			if f == nil || arr.key == videoArray.key {
				continue // SessionVideoChunk has no hash field
			}
			h := f.hash.String()
			if hint != "" && hint != h {
				c.warnings = append(c.warnings, fmt.Sprintf("%s[%d]: hash %s did not match its attachment; now %s", arr.key, i, hint, h))
			}
			rec.setAfter("attachmentId", "hash", rawString(h))
		}
	}
	if full, ok := body.str("fullAudioAttachmentId"); ok && full != "" {
		if _, err := get(full, ""); err != nil {
			return fmt.Errorf("fullAudioAttachmentId: %w", err)
		}
	}
	return nil
}

// chunkInfo is one entry of SessionMetadata.chunks.
type chunkInfo struct {
	Count      int `json:"count"`
	ChunkCount int `json:"chunkCount"`
	ChunkSize  int `json:"chunkSize"`
}

// chunkFiles adds the chunk files and returns the chunk manifest.
func (c *converted) chunkFiles() (map[string]chunkInfo, error) {
	manifest := map[string]chunkInfo{}
	for _, arr := range chunkedArrays {
		recs := c.records[arr.key]
		per := arr.perChunk
		if per == 0 {
			per = max(len(recs), 1)
		}
		info := chunkInfo{Count: len(recs), ChunkSize: per}
		for start := 0; start < len(recs); start += per {
			b := []byte{'['}
			for j, r := range recs[start:min(start+per, len(recs))] {
				if j > 0 {
					b = append(b, ',')
				}
				b = r.appendJSON(b)
			}
			data, err := compactJSON(append(b, ']'))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", arr.key, err)
			}
			c.files = append(c.files, outFile{path: sessionPath(c.id, arr.dir, chunkName(info.ChunkCount)), data: data})
			info.ChunkCount++
		}
		manifest[arr.key] = info
	}
	return manifest, nil
}

// metadata renders metadata.json: the session's own members in their
// order, then the derived ones as SessionMetadata has them.
func (c *converted) metadata(body *object, manifest map[string]chunkInfo, has map[string]bool, now time.Time) ([]byte, error) {
	video, hasVideo := body.take("video")
	for _, k := range derivedKeys {
		body.take(k)
	}
	tasks, notes, err := extractedIDs(body)
	if err != nil {
		return nil, err
	}
	chunks := rawChunks(manifest)
	full, _ := body.str("fullAudioAttachmentId")
	created, ok := body.get("startTime")
	if !ok {
		created = rawString(isoTime(now))
	}
	n := func(key string) int { return len(c.records[key]) }
	derived := []struct {
		key string
		val json.RawMessage
	}{
		{"extractedTaskIds", rawStrings(tasks)},
		{"extractedNoteIds", rawStrings(notes)},
		{"relationshipVersion", rawInt(1)},
		{"chunks", chunks},
		{"hasSummary", rawBool(has["summary"])},
		{"hasAudioInsights", rawBool(has["audioInsights"])},
		{"hasCanvasSpec", rawBool(has["canvasSpec"])},
		{"hasTranscription", rawBool(has["fullTranscription"])},
		{"hasVideo", rawBool(hasVideo)},
		{"hasFullAudio", rawBool(full != "")},
		{"video", video},
		{"storageVersion", rawInt(1)},
		{"createdAt", created},
		{"updatedAt", rawString(isoTime(now))},
		{"screenshotCount", rawInt(n(screenshotsArray.key))},
		{"audioSegmentCount", rawInt(n(segmentsArray.key))},
		{"videoChunkCount", rawInt(n(videoArray.key))},
		{"hasScreenshots", rawBool(n(screenshotsArray.key) > 0)},
		{"hasAudio", rawBool(n(segmentsArray.key) > 0)},
	}
	for _, d := range derived {
		if d.key == "video" && !hasVideo {
			continue
		}
		body.set(d.key, d.val)
	}
	return prettyJSON(body.appendJSON(nil))
}

func rawChunks(manifest map[string]chunkInfo) json.RawMessage {
	o := &object{}
	for _, arr := range chunkedArrays {
		info := manifest[arr.key]
		v := &object{}
		v.set("count", rawInt(info.Count))
		v.set("chunkCount", rawInt(info.ChunkCount))
		v.set("chunkSize", rawInt(info.ChunkSize))
		o.set(arr.key, v.appendJSON(nil))
	}
	return o.appendJSON(nil)
}

// extractedIDs are the targetIds of the relationships to tasks and notes.
func extractedIDs(body *object) (tasks, notes []string, err error) {
	raw, ok := body.get("relationships")
	if !ok {
		return nil, nil, nil
	}
	var rels []struct {
		TargetType string `json:"targetType"`
		TargetID   string `json:"targetId"`
	}
	if err := json.Unmarshal(raw, &rels); err != nil {
		return nil, nil, fmt.Errorf("relationships: %w", err)
	}
	for _, r := range rels {
		switch r.TargetType {
		case "task":
			tasks = append(tasks, r.TargetID)
		case "note":
			notes = append(notes, r.TargetID)
		}
	}
	return tasks, notes, nil
}

func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
