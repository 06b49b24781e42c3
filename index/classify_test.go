package index

import "testing"

func TestClassify(t *testing.T) {
	tests := []struct {
		path string
		sid  string
		kind Kind
		ok   bool
	}{
		{"sessions/abc/metadata.json", "abc", KindMetadata, true},
		{"/sessions/abc/metadata.json", "abc", KindMetadata, true},
		{"sessions/abc/summary.json", "abc", KindSummary, true},
		{"sessions/abc/audioInsights.json", "abc", KindAudioInsights, true},
		{"sessions/abc/audio-insights.json", "abc", KindAudioInsights, true},
		{"sessions/abc/canvasSpec.json", "abc", KindCanvasSpec, true},
		{"sessions/abc/canvas-spec.json", "abc", KindCanvasSpec, true},
		{"sessions/abc/transcription.json", "abc", KindTranscription, true},
		{"sessions/abc/contextItems.json", "abc", KindContextItems, true},
		{"sessions/abc/context-items.json", "abc", KindContextItems, true},
		{"sessions/abc/screenshots/chunk-000.json", "abc", KindScreenshots, true},
		{"sessions/abc/screenshots/chunk-1234.json", "abc", KindScreenshots, true},
		{"sessions/abc/audioSegments/chunk-001.json", "abc", KindAudioSegments, true},
		{"sessions/abc/audio-segments/chunk-001.json", "abc", KindAudioSegments, true},
		{"sessions/abc/videoChunks/chunk-000.json", "abc", KindVideoChunks, true},
		{"sessions/abc/video-chunks/chunk-000.json", "abc", KindVideoChunks, true},
		{"sessions/session 1 (copy)/metadata.json", "session 1 (copy)", KindMetadata, true},
		// Not indexed.
		{"sessions/abc/attachments/x.jpg", "", 0, false},
		{"sessions/abc/metadata.tmp.json", "", 0, false},
		{"sessions/abc/metadata.1730000000.backup.json", "", 0, false},
		{"sessions/abc/screenshots/chunk-000.1730.backup.json", "", 0, false},
		{"sessions/abc/screenshots/chunk-.json", "", 0, false},
		{"sessions/abc/screenshots/chunk-00a.json", "", 0, false},
		{"sessions/abc/screenshots/chunk-000.json/x", "", 0, false},
		{"sessions/abc/notes/chunk-000.json", "", 0, false},
		{"sessions/abc/screenshots", "", 0, false},
		{"sessions/abc", "", 0, false},
		{"sessions//metadata.json", "", 0, false},
		{"sessions/./metadata.json", "", 0, false},
		{"sessions/../metadata.json", "", 0, false},
		{"other/abc/metadata.json", "", 0, false},
		{"metadata.json", "", 0, false},
		{"", "", 0, false},
		{"sessions/abc/Metadata.json", "", 0, false},
	}
	for _, tc := range tests {
		sid, kind, ok := Classify(tc.path)
		if sid != tc.sid || kind != tc.kind || ok != tc.ok {
			t.Errorf("Classify(%q) = %q, %v, %v; want %q, %v, %v", tc.path, sid, kind, ok, tc.sid, tc.kind, tc.ok)
		}
	}
}
