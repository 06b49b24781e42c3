package migrate

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/taskerfs/taskerfs/blobstore"
	appenvelope "github.com/taskerfs/taskerfs/envelope"
)

// ExportOptions tune Export.
type ExportOptions struct {
	// Monolithic writes the legacy layout (sessions/<id>.json with
	// everything inline, attachments/<id>.json with base64) instead of a
	// copy of the chunked tree.
	Monolithic bool
	// Progress is called after each session with the number done.
	Progress func(sessions int)
}

// ExportReport sums up an export.
type ExportReport struct {
	Sessions    int
	Files       int   // files written
	Attachments int   // attachments written (legacy layout)
	Bytes       int64 // bytes written
	Warnings    []string
}

// Export writes the sessions of src under dst, which must not hold a
// sessions/ (or, for the legacy layout, attachments/) directory already.
func Export(src Tree, dst string, opts ExportOptions) (*ExportReport, error) {
	for _, d := range []string{sessionsDir, attachmentsDir} {
		if entries, err := os.ReadDir(filepath.Join(dst, d)); err == nil && len(entries) > 0 && (opts.Monolithic || d == sessionsDir) {
			return nil, fmt.Errorf("%s already holds %s/: export into an empty directory", dst, d)
		}
	}
	sessions, err := src.ReadDir(sessionsDir)
	if errors.Is(err, fs.ErrNotExist) {
		sessions, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	rep := &ExportReport{}
	ex := &exporter{src: src, dst: dst, rep: rep, attachments: map[string]exportedAttachment{}}
	for _, s := range sessions {
		if !s.Mode.IsDir() {
			if !opts.Monolithic {
				if err := ex.copyEntry(path.Join(sessionsDir, s.Name), s); err != nil {
					return rep, err
				}
			}
			continue
		}
		if opts.Monolithic {
			err = ex.legacySession(s.Name)
		} else {
			err = ex.copyEntry(path.Join(sessionsDir, s.Name), s)
			rep.Sessions++
		}
		if err != nil {
			return rep, fmt.Errorf("session %s: %w", s.Name, err)
		}
		if opts.Progress != nil {
			opts.Progress(rep.Sessions)
		}
	}
	return rep, nil
}

type exportedAttachment struct {
	session string
	hash    blobstore.Hash
}

type exporter struct {
	src Tree
	dst string
	rep *ExportReport
	// attachments written in the legacy layout, by attachment id
	attachments map[string]exportedAttachment
	xattrWarned bool
}

// copyEntry copies p (a file, symlink or directory tree) with its mode and
// modification time, and an attachment's legacy record xattr.
func (ex *exporter) copyEntry(p string, e Entry) error {
	out := filepath.Join(ex.dst, filepath.FromSlash(p))
	switch {
	case e.Mode.IsDir():
		if err := os.MkdirAll(out, 0o755); err != nil {
			return err
		}
		children, err := ex.src.ReadDir(p)
		if err != nil {
			return err
		}
		for _, c := range children {
			if err := ex.copyEntry(path.Join(p, c.Name), c); err != nil {
				return err
			}
		}
		if err := os.Chmod(out, e.Mode.Perm()); err != nil {
			return err
		}
	case e.Mode&fs.ModeSymlink != 0:
		target, err := ex.src.Readlink(p)
		if err != nil {
			return err
		}
		return os.Symlink(target, out)
	case e.Mode.IsRegular():
		if err := ex.copyFile(p, out, e); err != nil {
			return err
		}
	default:
		ex.rep.Warnings = append(ex.rep.Warnings, fmt.Sprintf("%s: not a regular file, directory or symlink; left out", p))
		return nil
	}
	return os.Chtimes(out, e.Mtime, e.Mtime)
}

func (ex *exporter) copyFile(p, out string, e Entry) error {
	r, err := ex.src.Open(p)
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, e.Mode.Perm())
	if err != nil {
		return err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	ex.rep.Files++
	ex.rep.Bytes += n
	if rec, err := ex.src.GetXattr(p, AttachmentXattr); err == nil {
		if err := unix.Lsetxattr(out, AttachmentXattr, rec, 0); err != nil && !ex.xattrWarned {
			ex.xattrWarned = true
			ex.rep.Warnings = append(ex.rep.Warnings, fmt.Sprintf("%s: attachment records (xattr %s) not kept: %v", ex.dst, AttachmentXattr, err))
		}
	}
	return nil
}

// readJSON reads a session file, unwrapping the app's envelope.
func (ex *exporter) readJSON(p string) ([]byte, bool, error) {
	data, err := ex.src.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	data, err = unwrap(data)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", p, err)
	}
	return data, true, nil
}

// Members of the legacy Session after the copied ones, in the order the
// legacy app wrote them.
var legacyTail = []string{"fullTranscription", "audioInsights", "summary", "canvasSpec", "contextItems"}

// legacySession rebuilds one monolithic Session and its attachments from a
// chunked session directory, in either the seed's or the app's layout.
func (ex *exporter) legacySession(id string) error {
	raw, ok, err := ex.readJSON(sessionPath(id, metadataFile))
	if err != nil {
		return err
	}
	if !ok {
		ex.rep.Warnings = append(ex.rep.Warnings, fmt.Sprintf("sessions/%s has no metadata.json; not a session, left out", id))
		return nil
	}
	md, err := parseObject(raw)
	if err != nil {
		return fmt.Errorf("metadata.json: %w", err)
	}
	var manifest map[string]*chunkInfo
	if rawChunks, ok := md.get("chunks"); ok {
		if err := json.Unmarshal(rawChunks, &manifest); err != nil {
			return fmt.Errorf("metadata.json chunks: %w", err)
		}
	}
	session := md.clone()
	video, hasVideo := session.take("video")
	for _, k := range derivedKeys {
		session.take(k)
	}
	kinds := map[string]string{} // attachment id -> Attachment.type
	for _, arr := range chunkedArrays {
		recs, err := ex.readArray(id, arr, manifest[arr.key])
		if err != nil {
			return err
		}
		if len(recs) == 0 && arr.key == videoArray.key {
			continue
		}
		b := []byte{'['}
		for i, r := range recs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, r...)
			if attID, ok := attachmentIDOf(r); ok {
				kinds[attID] = map[string]string{"screenshots": "screenshot", "audioSegments": "audio", "videoChunks": "video"}[arr.key]
			}
		}
		session.set(arr.key, append(b, ']'))
	}
	if full, ok := session.str("fullAudioAttachmentId"); ok {
		kinds[full] = "audio"
	}
	for _, key := range legacyTail {
		for _, sf := range sideFiles {
			if sf.key != key {
				continue
			}
			for _, name := range []string{sf.file, sf.appFile} {
				if v, ok, err := ex.readJSON(sessionPath(id, name)); err != nil {
					return err
				} else if ok {
					session.set(key, v)
					break
				}
			}
		}
	}
	if hasVideo {
		session.set("video", video)
	}
	data, err := prettyJSON(session.appendJSON(nil))
	if err != nil {
		return err
	}
	if err := ex.write(filepath.Join(sessionsDir, id+".json"), data); err != nil {
		return err
	}
	ex.rep.Sessions++
	return ex.legacyAttachments(id, kinds)
}

// readArray reads the chunks of one array: as many as the manifest lists,
// or, without a manifest, every chunk-N.json in numeric order.
func (ex *exporter) readArray(id string, arr chunkedArray, info *chunkInfo) ([]json.RawMessage, error) {
	dir := sessionPath(id, arr.dir)
	if _, err := ex.src.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		dir = sessionPath(id, arr.appDir)
	}
	var names []string
	if info != nil {
		for i := range info.ChunkCount {
			names = append(names, chunkName(i))
		}
	} else {
		entries, err := ex.src.ReadDir(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		for _, e := range entries {
			if _, ok := chunkNumber(e.Name); ok && e.Mode.IsRegular() {
				names = append(names, e.Name)
			}
		}
		sort.Slice(names, func(i, j int) bool {
			a, _ := chunkNumber(names[i])
			b, _ := chunkNumber(names[j])
			return a < b
		})
	}
	var recs []json.RawMessage
	for _, name := range names {
		raw, ok, err := ex.readJSON(path.Join(dir, name))
		if err != nil {
			return nil, err
		}
		if !ok {
			ex.rep.Warnings = append(ex.rep.Warnings, fmt.Sprintf("session %s: %s/%s is listed in metadata.json but missing", id, path.Base(dir), name))
			continue
		}
		if appenvelope.FirstByte(raw) == '{' { // the app's {sessionId, chunkIndex, <member>}
			o, err := parseObject(raw)
			if err != nil {
				return nil, fmt.Errorf("%s/%s: %w", dir, name, err)
			}
			raw, _ = o.get(arr.member)
		}
		elems, err := parseArray(raw)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", dir, name, err)
		}
		recs = append(recs, elems...)
	}
	if info != nil && info.Count != len(recs) {
		ex.rep.Warnings = append(ex.rep.Warnings, fmt.Sprintf("session %s: metadata.json counts %d %s, the chunks hold %d", id, info.Count, arr.key, len(recs)))
	}
	return recs, nil
}

func chunkNumber(name string) (int, bool) {
	digits, ok := strings.CutPrefix(name, "chunk-")
	if !ok {
		return 0, false
	}
	if digits, ok = strings.CutSuffix(digits, ".json"); !ok {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	return n, err == nil && n >= 0
}

func attachmentIDOf(rec json.RawMessage) (string, bool) {
	var r struct {
		AttachmentID string `json:"attachmentId"`
	}
	if json.Unmarshal(rec, &r) != nil || r.AttachmentID == "" {
		return "", false
	}
	return r.AttachmentID, true
}

// legacyAttachments writes attachments/<id>.json for every file of the
// session's attachments/ directory: its legacy record (kept at import as
// an xattr, or rebuilt from the file and the records that use it) with
// the bytes as base64.
func (ex *exporter) legacyAttachments(sessionID string, kinds map[string]string) error {
	dir := sessionPath(sessionID, attachmentsDir)
	entries, err := ex.src.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Mode.IsRegular() {
			continue
		}
		p := path.Join(dir, e.Name)
		ext := path.Ext(e.Name)
		attID := strings.TrimSuffix(e.Name, ext)
		data, err := ex.src.ReadFile(p)
		if err != nil {
			return err
		}
		out := filepath.Join(attachmentsDir, attID+".json")
		h := blobstore.Sum(data)
		if first, dup := ex.attachments[attID]; dup {
			if first.hash != h {
				ex.rep.Warnings = append(ex.rep.Warnings, fmt.Sprintf("attachment %s of session %s differs from the one of session %s; kept the first", attID, sessionID, first.session))
			}
			continue
		}
		rec := &object{}
		if raw, err := ex.src.GetXattr(p, AttachmentXattr); err == nil {
			if rec, err = parseObject(raw); err != nil {
				return fmt.Errorf("%s: xattr %s: %w", p, AttachmentXattr, err)
			}
		} else if !errors.Is(err, syscall.ENODATA) && !errors.Is(err, syscall.ENOTSUP) {
			return err
		} else {
			rec = rebuiltRecord(attID, e, kinds[attID], len(data))
		}
		rec.set("base64", rawString(base64.StdEncoding.EncodeToString(data)))
		if err := ex.write(out, rec.appendJSON(nil)); err != nil {
			return err
		}
		ex.attachments[attID] = exportedAttachment{sessionID, h}
		ex.rep.Attachments++
	}
	return nil
}

// rebuiltRecord makes a legacy Attachment record for a file imported
// without one.
func rebuiltRecord(id string, e Entry, kind string, size int) *object {
	ext := strings.TrimPrefix(path.Ext(e.Name), ".")
	mt, ok := mimeTypes[ext]
	if !ok {
		mt = "application/octet-stream"
	}
	if kind == "" {
		kind = "file"
	}
	rec := &object{}
	rec.set("id", rawString(id))
	rec.set("type", rawString(kind))
	rec.set("name", rawString(e.Name))
	rec.set("mimeType", rawString(mt))
	rec.set("size", rawInt(size))
	rec.set("createdAt", rawString(isoTime(e.Mtime)))
	return rec
}

// write creates dst/rel with data.
func (ex *exporter) write(rel string, data []byte) error {
	out := filepath.Join(ex.dst, rel)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(out, data, 0o644); err != nil {
		return err
	}
	ex.rep.Files++
	ex.rep.Bytes += int64(len(data))
	return nil
}
