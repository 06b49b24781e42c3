package migrate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	appenvelope "github.com/taskerfs/taskerfs/envelope"
)

// Source is a legacy (Phase 3) data dir, read-only: sessions as
// sessions/<id>.json or one sessions.json array (either may be in the
// app's envelope), attachments as attachments/<id>.json, or
// attachments/<id>.dat + <id>.meta.json, or attachments/<hh>/<hash>.dat
// + <hash>.meta.json, carrying base64. The app's own AppData layout, with
// all of this under db/, is accepted too.
type Source struct {
	root   string
	files  []string // sessions/<id>.json, sorted
	array  string   // sessions.json, or ""
	att    string   // attachments dir
	bytes  int64    // size of every session file and attachment file
	hashed bool     // attachments has <hh>/ subdirectories
}

// OpenSource finds the sessions and attachments under dir.
func OpenSource(dir string) (*Source, error) {
	root := dir
	if !exists(filepath.Join(dir, "sessions")) && !exists(filepath.Join(dir, "sessions.json")) &&
		exists(filepath.Join(dir, "db")) {
		root = filepath.Join(dir, "db")
	}
	s := &Source{root: root, att: filepath.Join(root, "attachments")}
	entries, err := os.ReadDir(filepath.Join(root, "sessions"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !isSessionFile(e.Name()) {
			continue
		}
		s.files = append(s.files, filepath.Join(root, "sessions", e.Name()))
		if fi, err := e.Info(); err == nil {
			s.bytes += fi.Size()
		}
	}
	slices.Sort(s.files)
	if fi, err := os.Stat(filepath.Join(root, "sessions.json")); err == nil && fi.Mode().IsRegular() {
		s.array = filepath.Join(root, "sessions.json")
		s.bytes += fi.Size()
	}
	if s.array == "" && len(s.files) == 0 {
		return nil, fmt.Errorf("%s holds no legacy sessions (neither sessions/<id>.json nor sessions.json)", dir)
	}
	err = filepath.WalkDir(s.att, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() && p != s.att {
			s.hashed = true
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				s.bytes += fi.Size()
			}
		}
		return nil
	})
	return s, err
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// isSessionFile accepts <id>.json but not the app's temp and backup copies
// (K.tmp.json, K.<epochms>.backup.json) nor the documented migration
// backups (<id>.backup-<ISO>.json).
func isSessionFile(name string) bool {
	stem, ok := strings.CutSuffix(name, ".json")
	return ok && stem != "" && !strings.HasPrefix(stem, ".") &&
		!strings.HasSuffix(stem, ".tmp") && !strings.HasSuffix(stem, ".backup") && !strings.Contains(stem, ".backup-")
}

// Bytes is the size of everything the import reads: session files and
// attachment files.
func (s *Source) Bytes() int64 { return s.bytes }

// sourceItem is one session as found: where it came from and its JSON
// (maybe in the app's envelope).
type sourceItem struct {
	origin string // file name, or sessions.json[i]
	data   []byte
	err    error // the item could not be read
}

// each calls fn for every session in order, stopping at fn's error.
func (s *Source) each(fn func(sourceItem) error) error {
	for _, f := range s.files {
		data, err := readSourceFile(f)
		if err := fn(sourceItem{origin: filepath.Base(f), data: data, err: err}); err != nil {
			return err
		}
	}
	if s.array == "" {
		return nil
	}
	return s.eachInArray(fn)
}

// eachInArray streams the elements of sessions.json; an enveloped array
// is decoded whole first.
func (s *Source) eachInArray(fn func(sourceItem) error) error {
	f, err := os.Open(s.array)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	if appenvelope.FirstByte(head[:n]) == '{' {
		all, err := readCapped(io.MultiReader(bytes.NewReader(head[:n]), f), "sessions.json")
		if err != nil {
			return err
		}
		if all, err = unwrapLimit(all, maxSourceFile); err != nil {
			return fn(sourceItem{origin: "sessions.json", err: err})
		}
		r = bytes.NewReader(all)
	} else {
		r = io.MultiReader(bytes.NewReader(head[:n]), f)
	}
	dec := json.NewDecoder(r)
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return fn(sourceItem{origin: "sessions.json", err: fmt.Errorf("sessions.json is not a JSON array")})
	}
	for i := 0; dec.More(); i++ {
		var raw json.RawMessage
		origin := fmt.Sprintf("sessions.json[%d]", i)
		if err := dec.Decode(&raw); err != nil {
			// The rest of the array cannot be framed any more.
			return fn(sourceItem{origin: origin, err: fmt.Errorf("%w (sessions.json cannot be read past this point)", err)})
		}
		if err := fn(sourceItem{origin: origin, data: raw}); err != nil {
			return err
		}
	}
	return nil
}

// attachment is one legacy attachment, decoded.
type attachment struct {
	id       string
	record   *object // the attachment's metadata, base64 removed
	data     []byte
	mimeType string
	srcBytes int64 // bytes read from the source
}

// errNoAttachment means the source has no file for an attachment id.
var errNoAttachment = errors.New("attachment not in source")

// hasAttachment reports, without reading it, whether the source holds
// attachment id (or, in the hashed layout, hash).
func (s *Source) hasAttachment(id, hash string) bool {
	for _, p := range s.attachmentPaths(id, hash) {
		if exists(p[0]) {
			return true
		}
	}
	return false
}

// attachmentPaths lists candidate (data file, metadata file) pairs; an
// empty metadata path means the data file holds the record.
func (s *Source) attachmentPaths(id, hash string) [][2]string {
	var out [][2]string
	if validName(id) {
		out = append(out,
			[2]string{filepath.Join(s.att, id+".json"), ""},
			[2]string{filepath.Join(s.att, id+".dat"), filepath.Join(s.att, id+".meta.json")})
	}
	if s.hashed && len(hash) == 64 && validName(hash) {
		out = append(out, [2]string{filepath.Join(s.att, hash[:2], hash+".dat"), filepath.Join(s.att, hash[:2], hash+".meta.json")})
	}
	return out
}

// attachment reads and decodes attachment id; errNoAttachment when the
// source has none.
func (s *Source) attachment(id, hash string) (*attachment, error) {
	for _, p := range s.attachmentPaths(id, hash) {
		raw, err := readSourceFile(p[0])
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		a := &attachment{id: id, srcBytes: int64(len(raw))}
		var encoded string
		if p[1] == "" {
			encoded, err = a.parseRecord(raw, true)
		} else {
			encoded = strings.TrimSpace(string(raw))
			if meta, merr := readSourceFile(p[1]); merr == nil {
				a.srcBytes += int64(len(meta))
				_, err = a.parseRecord(meta, false)
			} else if !errors.Is(merr, fs.ErrNotExist) {
				err = merr
			}
		}
		if err != nil {
			return nil, fmt.Errorf("attachment %s: %w", id, err)
		}
		data, urlMime, err := decodeDataURL(encoded)
		if err != nil {
			return nil, fmt.Errorf("attachment %s: %w", id, err)
		}
		a.data = data
		if a.record != nil {
			a.mimeType, _ = a.record.str("mimeType")
		}
		if a.mimeType == "" {
			a.mimeType = urlMime
		}
		return a, nil
	}
	return nil, errNoAttachment
}

// parseRecord reads an attachment record and returns its base64 field,
// which it removes from the record.
func (a *attachment) parseRecord(raw []byte, wantData bool) (string, error) {
	rec, err := parseDocument(raw, maxSourceFile)
	if err != nil {
		return "", err
	}
	v, ok := rec.take("base64")
	a.record = rec
	if !wantData {
		return "", nil
	}
	if !ok || appenvelope.FirstByte(v) != '"' {
		return "", errors.New("record has no base64 string")
	}
	return unquote(bytes.TrimSpace(v))
}

// validName accepts a string usable as one path element.
func validName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00") && len(s) <= 200
}
