package gen

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
	"unicode/utf16"

	"github.com/klauspost/compress/gzip"
)

type stats struct {
	files, bytes, jsonBytes      int64
	attachmentBytes, uniqueBytes int64
	screenshots, dups, audio     int
}

// writer owns the reusable buffers of one worker.
type writer struct {
	g       *generator
	stats   stats
	pretty  bytes.Buffer
	compact bytes.Buffer
	prettyE *json.Encoder
	compE   *json.Encoder
	gzBuf   bytes.Buffer
	gz      *gzip.Writer
	media   []byte
	out     []byte
}

func newWriter(g *generator) *writer {
	w := &writer{g: g}
	w.prettyE = json.NewEncoder(&w.pretty)
	w.prettyE.SetIndent("", "  ")
	w.prettyE.SetEscapeHTML(false)
	w.compE = json.NewEncoder(&w.compact)
	w.compE.SetEscapeHTML(false)
	// The app uses level 9; level 6 is within 2% of its size at half the time.
	w.gz, _ = gzip.NewWriterLevel(&w.gzBuf, gzip.DefaultCompression)
	return w
}

func (w *writer) write(s *sessionData) error {
	w.stats.screenshots += len(s.screenshots)
	w.stats.audio += len(s.audio)
	for j := range s.screenshots {
		if w.g.isDup(w.g.shotIndex(s, j)) {
			w.stats.dups++
		}
	}
	switch w.g.opts.Layout {
	case LayoutLegacy:
		return w.writeLegacy(s)
	default:
		return w.writeChunked(s)
	}
}

func (g *generator) shotIndex(s *sessionData, j int) uint64 {
	return uint64(s.index)*uint64(g.opts.Screenshots) + uint64(j)
}

func (g *generator) audioIndex(s *sessionData, k int) uint64 {
	return uint64(s.index)*uint64(g.opts.AudioSegments) + uint64(k)
}

// chunked layouts: file names and chunk sizes.
type chunkedNames struct {
	insights, canvas, audioDir, videoDir string
	shotsPer, audioPer, videoPer         int
	envelope                             bool
}

var (
	seedNames = chunkedNames{"audioInsights.json", "canvasSpec.json", "audioSegments", "videoChunks", 10, 50, 0, false}
	appNames  = chunkedNames{"audio-insights.json", "canvas-spec.json", "audio-segments", "video-chunks", 20, 100, 100, true}
)

func chunkCount(n, per int) int {
	if n == 0 {
		return 0
	}
	return (n + per - 1) / per
}

func (w *writer) writeChunked(s *sessionData) error {
	names := seedNames
	if w.g.opts.Layout == LayoutApp {
		names = appNames
	}
	dir := filepath.Join(w.g.dst, "sessions", s.core.ID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if !w.g.opts.JSONOnly {
		if err := w.writeAttachments(s, filepath.Join(dir, "attachments")); err != nil {
			return err
		}
	}
	// The seed keeps all video chunks in one file.
	videoPer := names.videoPer
	if videoPer == 0 {
		videoPer = max(len(s.videoChunks), 1)
	}

	md := &sessionMetadata{
		sessionCore:         s.core,
		ExtractedTaskIDs:    orEmpty(s.taskIDs),
		ExtractedNoteIDs:    orEmpty(s.noteIDs),
		RelationshipVersion: 1,
		Chunks: chunkManifest{
			Screenshots:   chunkInfo{len(s.screenshots), chunkCount(len(s.screenshots), names.shotsPer), names.shotsPer},
			AudioSegments: chunkInfo{len(s.audio), chunkCount(len(s.audio), names.audioPer), names.audioPer},
			VideoChunks:   chunkInfo{len(s.videoChunks), chunkCount(len(s.videoChunks), videoPer), videoPer},
		},
		HasSummary: s.summary != nil, HasAudioInsights: s.insights != nil, HasCanvasSpec: s.canvas != nil,
		HasTranscription: s.transcription != "", HasVideo: s.video != nil,
		Video:           s.video,
		StorageVersion:  1,
		CreatedAt:       s.core.StartTime,
		UpdatedAt:       iso(s.end.Add(5 * time.Minute)),
		ScreenshotCount: len(s.screenshots), AudioSegmentCount: len(s.audio), VideoChunkCount: len(s.videoChunks),
		HasScreenshots: len(s.screenshots) > 0, HasAudio: len(s.audio) > 0,
	}
	file := func(name string, v any) error {
		return w.writeJSON(filepath.Join(dir, name), v, names.envelope, s)
	}
	if err := file("metadata.json", md); err != nil {
		return err
	}
	if s.summary != nil {
		if err := file("summary.json", s.summary); err != nil {
			return err
		}
	}
	if s.insights != nil {
		if err := file(names.insights, s.insights); err != nil {
			return err
		}
	}
	if s.canvas != nil {
		if err := file(names.canvas, s.canvas); err != nil {
			return err
		}
	}
	if s.transcription != "" {
		// The app stores the transcription as a bare JSON string.
		if err := file("transcription.json", s.transcription); err != nil {
			return err
		}
	}
	for c := 0; c*names.shotsPer < len(s.screenshots); c++ {
		part := s.screenshots[c*names.shotsPer : min((c+1)*names.shotsPer, len(s.screenshots))]
		var v any = part
		if names.envelope {
			v = screenshotChunk{s.core.ID, c, part}
		}
		if err := w.writeChunk(dir, "screenshots", c, v, names.envelope, s); err != nil {
			return err
		}
	}
	for c := 0; c*names.audioPer < len(s.audio); c++ {
		part := s.audio[c*names.audioPer : min((c+1)*names.audioPer, len(s.audio))]
		var v any = part
		if names.envelope {
			v = audioChunk{s.core.ID, c, part}
		}
		if err := w.writeChunk(dir, names.audioDir, c, v, names.envelope, s); err != nil {
			return err
		}
	}
	for c := 0; c*videoPer < len(s.videoChunks); c++ {
		part := s.videoChunks[c*videoPer : min((c+1)*videoPer, len(s.videoChunks))]
		var v any = part
		if names.envelope {
			v = videoChunkObject{s.core.ID, c, part}
		}
		if err := w.writeChunk(dir, names.videoDir, c, v, names.envelope, s); err != nil {
			return err
		}
	}
	return nil
}

func orEmpty(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

// writeChunk writes one chunk file. Plain chunks are compact JSON: they are
// most of the bytes, and nobody reads them by eye.
func (w *writer) writeChunk(dir, sub string, index int, v any, envelope bool, s *sessionData) error {
	d := filepath.Join(dir, sub)
	if index == 0 {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	path := filepath.Join(d, fmt.Sprintf("chunk-%03d.json", index))
	if envelope {
		return w.writeJSON(path, v, true, s)
	}
	w.compact.Reset()
	if err := w.compE.Encode(v); err != nil {
		return err
	}
	w.stats.jsonBytes += int64(w.compact.Len())
	return w.writeFile(path, w.compact.Bytes())
}

// writeAttachments writes the raw screenshot and audio bytes and fills in
// each record's SHA-256 hash, as the app's CAS does.
func (w *writer) writeAttachments(s *sessionData, dir string) error {
	if len(s.screenshots)+len(s.audio) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for j := range s.screenshots {
		shot := w.g.shotIndex(s, j)
		origin := w.g.imageOrigin(shot)
		w.media = w.g.image(w.media, origin)
		sum := sha256.Sum256(w.media)
		s.screenshots[j].Hash = hex.EncodeToString(sum[:])
		if err := w.writeFile(filepath.Join(dir, s.screenshots[j].AttachmentID+".jpg"), w.media); err != nil {
			return err
		}
		w.countAttachment(len(w.media), origin == shot)
	}
	for k := range s.audio {
		w.media = w.g.audio(w.media, w.g.audioIndex(s, k))
		sum := sha256.Sum256(w.media)
		s.audio[k].Hash = hex.EncodeToString(sum[:])
		if err := w.writeFile(filepath.Join(dir, s.audio[k].AttachmentID+".mp3"), w.media); err != nil {
			return err
		}
		w.countAttachment(len(w.media), true)
	}
	return nil
}

func (w *writer) countAttachment(n int, unique bool) {
	w.stats.attachmentBytes += int64(n)
	if unique {
		w.stats.uniqueBytes += int64(n)
	}
}

func (w *writer) writeFile(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	w.stats.files++
	w.stats.bytes += int64(len(data))
	return nil
}

// writeJSON writes v pretty-printed, or in the app's envelope.
func (w *writer) writeJSON(path string, v any, envelope bool, s *sessionData) error {
	var data []byte
	if envelope {
		var err error
		if data, err = w.envelope(v, s.end.Add(5*time.Minute)); err != nil {
			return err
		}
	} else {
		w.pretty.Reset()
		if err := w.prettyE.Encode(v); err != nil {
			return err
		}
		data = w.pretty.Bytes()
	}
	w.stats.jsonBytes += int64(len(data))
	return w.writeFile(path, data)
}

// envelope renders {version, checksum, timestamp, compressed, data} as the
// app's JSON.stringify(x, null, 2) does.
func (w *writer) envelope(v any, at time.Time) ([]byte, error) {
	w.compact.Reset()
	if err := w.compE.Encode(v); err != nil {
		return nil, err
	}
	js := bytes.TrimSuffix(w.compact.Bytes(), []byte("\n"))
	w.gzBuf.Reset()
	w.gz.Reset(&w.gzBuf)
	if _, err := w.gz.Write(js); err != nil {
		return nil, err
	}
	if err := w.gz.Close(); err != nil {
		return nil, err
	}
	out := w.out[:0]
	out = append(out, "{\n  \"version\": 1,\n  \"checksum\": \""...)
	out = append(out, Checksum(js)...)
	out = append(out, "\",\n  \"timestamp\": "...)
	out = strconv.AppendInt(out, at.UnixMilli(), 10)
	out = append(out, ",\n  \"compressed\": true,\n  \"data\": \"GZIP_V1:"...)
	out = base64.StdEncoding.AppendEncode(out, w.gzBuf.Bytes())
	out = append(out, "\"\n}"...)
	w.out = out
	return out, nil
}

// Checksum is the app's calculateChecksum: a 32-bit Java-style string hash
// (h = 31*h + c over UTF-16 code units, wrapping) in signed base 36.
func Checksum(js []byte) string {
	var h int32
	for _, r := range string(js) {
		if r < 0x10000 {
			h = 31*h + int32(r)
			continue
		}
		hi, lo := utf16.EncodeRune(r)
		h = 31*h + int32(hi)
		h = 31*h + int32(lo)
	}
	return strconv.FormatInt(int64(h), 36)
}

// writeLegacy writes sessions/<id>.json and, with bytes, attachments/<id>.json.
func (w *writer) writeLegacy(s *sessionData) error {
	sdir := filepath.Join(w.g.dst, "sessions")
	adir := filepath.Join(w.g.dst, "attachments")
	if err := os.MkdirAll(sdir, 0o755); err != nil {
		return err
	}
	if !w.g.opts.JSONOnly && len(s.screenshots)+len(s.audio) > 0 {
		if err := os.MkdirAll(adir, 0o755); err != nil {
			return err
		}
		for j, sh := range s.screenshots {
			shot := w.g.shotIndex(s, j)
			origin := w.g.imageOrigin(shot)
			w.media = w.g.image(w.media, origin)
			a := legacyAttachment{ID: sh.AttachmentID, Type: "screenshot", Name: "screenshot-" + sh.Timestamp + ".jpg",
				MimeType: "image/jpeg", Size: len(w.media), CreatedAt: sh.Timestamp}
			if err := w.writeLegacyAttachment(adir, a, shot%3 == 0); err != nil {
				return err
			}
			w.countAttachment(len(w.media), origin == shot)
		}
		for k, seg := range s.audio {
			segment := w.g.audioIndex(s, k)
			w.media = w.g.audio(w.media, segment)
			// The app saves audio as 'audio/mp3'.
			a := legacyAttachment{ID: seg.AttachmentID, Type: "audio", Name: "audio-" + seg.Timestamp + ".mp3",
				MimeType: "audio/mp3", Size: len(w.media), CreatedAt: seg.Timestamp}
			if err := w.writeLegacyAttachment(adir, a, segment%3 == 0); err != nil {
				return err
			}
			w.countAttachment(len(w.media), true)
		}
	}
	ls := legacySession{
		sessionCore: s.core, Screenshots: s.screenshots, AudioSegments: s.audio, VideoChunks: s.videoChunks,
		FullTranscription: s.transcription, AudioInsights: s.insights, Summary: s.summary, CanvasSpec: s.canvas,
		Video: s.video,
	}
	if ls.Screenshots == nil {
		ls.Screenshots = []screenshot{}
	}
	if ls.AudioSegments == nil {
		ls.AudioSegments = []audioSegment{}
	}
	return w.writeJSON(filepath.Join(sdir, s.core.ID+".json"), &ls, false, s)
}

// writeLegacyAttachment writes the attachment record with w.media as its
// base64 field, optionally as a data: URL.
func (w *writer) writeLegacyAttachment(dir string, a legacyAttachment, dataURL bool) error {
	head, err := json.Marshal(a)
	if err != nil {
		return err
	}
	out := append(w.out[:0], head[:len(head)-1]...)
	out = append(out, `,"base64":"`...)
	if dataURL {
		out = append(out, "data:"+a.MimeType+";base64,"...)
	}
	out = base64.StdEncoding.AppendEncode(out, w.media)
	out = append(out, "\"}"...)
	w.out = out
	return w.writeFile(filepath.Join(dir, a.ID+".json"), out)
}
