package oracle

import "strings"

// Kind says which session document a file is, and so which fields are extracted from it.
type Kind int

// The indexable kinds of session file.
const (
	KindMetadata Kind = iota + 1
	KindSummary
	KindAudioInsights
	KindCanvasSpec
	KindTranscription
	KindContextItems
	KindScreenshots
	KindAudioSegments
	KindVideoChunks
)

var kindNames = map[Kind]string{
	KindMetadata:      "metadata",
	KindSummary:       "summary",
	KindAudioInsights: "audio-insights",
	KindCanvasSpec:    "canvas-spec",
	KindTranscription: "transcription",
	KindContextItems:  "context-items",
	KindScreenshots:   "screenshots",
	KindAudioSegments: "audio-segments",
	KindVideoChunks:   "video-chunks",
}

func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return "unknown"
}

// sideFiles maps the name of a file directly inside a session directory to its
// kind; both the seed's camelCase and the real app's kebab-case names.
var sideFiles = map[string]Kind{
	"metadata.json":       KindMetadata,
	"summary.json":        KindSummary,
	"audioInsights.json":  KindAudioInsights,
	"audio-insights.json": KindAudioInsights,
	"canvasSpec.json":     KindCanvasSpec,
	"canvas-spec.json":    KindCanvasSpec,
	"transcription.json":  KindTranscription,
	"contextItems.json":   KindContextItems,
	"context-items.json":  KindContextItems,
}

// chunkDirs maps a chunk directory inside a session directory to its kind.
var chunkDirs = map[string]Kind{
	"screenshots":    KindScreenshots,
	"audioSegments":  KindAudioSegments,
	"audio-segments": KindAudioSegments,
	"videoChunks":    KindVideoChunks,
	"video-chunks":   KindVideoChunks,
}

// Classify maps a mount-relative path with forward slashes to the session it
// belongs to and its kind: "sessions/<id>/<side file>" or
// "sessions/<id>/<chunk dir>/chunk-<digits>.json". Anything else (attachments,
// backups, temp files, other files) is not indexed and gives ok=false.
func Classify(path string) (sessionID string, kind Kind, ok bool) {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(parts) < 3 || len(parts) > 4 || parts[0] != "sessions" {
		return "", 0, false
	}
	sessionID = parts[1]
	if sessionID == "" || sessionID == "." || sessionID == ".." {
		return "", 0, false
	}
	if len(parts) == 3 {
		if kind, ok = sideFiles[parts[2]]; !ok {
			return "", 0, false
		}
		return sessionID, kind, true
	}
	kind, ok = chunkDirs[parts[2]]
	if !ok || !isChunkName(parts[3]) {
		return "", 0, false
	}
	return sessionID, kind, true
}

// isChunkName accepts "chunk-<digits>.json".
func isChunkName(name string) bool {
	digits, ok := strings.CutPrefix(name, "chunk-")
	if !ok {
		return false
	}
	digits, ok = strings.CutSuffix(digits, ".json")
	if !ok || digits == "" {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
