package migrate

import (
	"fmt"
	"path"
	"strings"
)

// The seed's chunked layout, which import writes.
const (
	ScreenshotsPerChunk = 10 // screenshots/chunk-NNN.json
	SegmentsPerChunk    = 50 // audioSegments/chunk-NNN.json
	// Video chunks all go in videoChunks/chunk-000.json.

	sessionsDir    = "sessions"
	metadataFile   = "metadata.json"
	attachmentsDir = "attachments"
)

// AttachmentXattr holds an imported attachment's legacy record (its id,
// type, name, mimeType, size, createdAt and whatever else it had, without
// the bytes), so that a legacy export can give the record back.
const AttachmentXattr = "user.taskerino.attachment"

// chunkedArray is one chunked array of a session: its key on Session, its
// directory in the seed's and the real app's layout, and the member that
// holds it in the app's chunk objects.
type chunkedArray struct {
	key, dir, appDir, member string
	perChunk                 int // 0: all in one chunk
}

var (
	screenshotsArray = chunkedArray{"screenshots", "screenshots", "screenshots", "screenshots", ScreenshotsPerChunk}
	segmentsArray    = chunkedArray{"audioSegments", "audioSegments", "audio-segments", "segments", SegmentsPerChunk}
	videoArray       = chunkedArray{"videoChunks", "videoChunks", "video-chunks", "chunks", 0}
	chunkedArrays    = []chunkedArray{screenshotsArray, segmentsArray, videoArray}
)

// sideFile is a Session member kept in its own file.
type sideFile struct {
	key, file, appFile string
}

var sideFiles = []sideFile{
	{"summary", "summary.json", "summary.json"},
	{"audioInsights", "audioInsights.json", "audio-insights.json"},
	{"canvasSpec", "canvasSpec.json", "canvas-spec.json"},
	{"fullTranscription", "transcription.json", "transcription.json"},
	{"contextItems", "contextItems.json", "context-items.json"},
}

// Session members that metadata.json derives on write; export drops them.
// Their order is the order import writes them in, after the copied members.
var derivedKeys = []string{
	"extractedTaskIds", "extractedNoteIds", "relationshipVersion", "chunks",
	"hasSummary", "hasAudioInsights", "hasCanvasSpec", "hasTranscription", "hasVideo", "hasFullAudio",
	"video", // copied, but placed among the derived members as SessionMetadata has it
	"storageVersion", "createdAt", "updatedAt",
	"screenshotCount", "audioSegmentCount", "videoChunkCount", "hasScreenshots", "hasAudio",
}

func chunkName(i int) string { return fmt.Sprintf("chunk-%03d.json", i) }

func sessionPath(id string, elem ...string) string {
	return path.Join(append([]string{sessionsDir, id}, elem...)...)
}

// extensions maps attachment MIME types to file name extensions.
var extensions = map[string]string{
	"image/jpeg": "jpg", "image/jpg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp",
	"image/heic": "heic", "image/avif": "avif", "image/bmp": "bmp", "image/svg+xml": "svg", "image/tiff": "tiff",
	"audio/mp3": "mp3", "audio/mpeg": "mp3", "audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav",
	"audio/webm": "webm", "audio/ogg": "ogg", "audio/mp4": "m4a", "audio/m4a": "m4a", "audio/x-m4a": "m4a",
	"audio/aac": "aac", "audio/flac": "flac",
	"video/mp4": "mp4", "video/webm": "webm", "video/quicktime": "mov", "video/ogg": "ogv",
	"application/pdf": "pdf", "application/json": "json", "application/zip": "zip",
	"text/plain": "txt", "text/markdown": "md", "text/html": "html", "text/csv": "csv",
}

// mimeTypes is the reverse of extensions for export, preferring the
// names the app uses.
var mimeTypes = map[string]string{
	"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp",
	"heic": "image/heic", "avif": "image/avif", "bmp": "image/bmp", "svg": "image/svg+xml", "tiff": "image/tiff",
	"mp3": "audio/mp3", "wav": "audio/wav", "ogg": "audio/ogg", "m4a": "audio/mp4",
	"aac": "audio/aac", "flac": "audio/flac",
	"mp4": "video/mp4", "webm": "video/webm", "mov": "video/quicktime", "ogv": "video/ogg",
	"pdf": "application/pdf", "json": "application/json", "zip": "application/zip",
	"txt": "text/plain", "md": "text/markdown", "html": "text/html", "csv": "text/csv",
}

// extensionFor picks the file extension of an attachment: from its MIME
// type, else from its name, else "bin".
func extensionFor(mimeType, name string) string {
	mt, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(mimeType)), ";")
	if ext, ok := extensions[strings.TrimSpace(mt)]; ok {
		return ext
	}
	if ext := strings.ToLower(strings.TrimPrefix(path.Ext(name), ".")); ext != "" && len(ext) <= 5 && isAlnum(ext) {
		return ext
	}
	return "bin"
}

func isAlnum(s string) bool {
	for _, c := range s {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
