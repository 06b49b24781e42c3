package index

import (
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/taskerfs/taskerfs/index/internal/oracle"
)

// extractionCases hold the corners of encoding/json's rules that the
// reflection-free extraction must keep: folded keys (also the Kelvin sign
// and the long s), duplicate keys, repeated objects that merge, values of
// the wrong type, null, escapes, bytes that are not UTF-8, envelopes.
var extractionCases = []struct {
	kind    Kind
	content string
}{
	{KindMetadata, `{"name":"A","NAME":"B","tags":"x, y,z","startTime":"2024-03-01T10:00:00Z"}`},
	{KindMetadata, `{"Name":"n","description":{"a":1},"status":"Active","category":"Dev","subCategory":"Go","tags":["a",1,null,"b"]}`},
	{KindMetadata, `{"name":"\u00e9t\u00e9 \"quoted\"","startTime":1730000000000,"startTime":null}`},
	{KindMetadata, "{\"name\":\"bad \xff byte\",\"tags\":\"t\xfe,u\",\"status\":\"x\xff\"}"},
	{KindMetadata, `{"\u017Fubcategory":"long s","\u212Aeep":"kelvin","category":"c"}`},
	{KindMetadata, `["not","an","object"]`},
	{KindMetadata, `"just a string"`},
	{KindMetadata, `{"version":1,"checksum":"x","data":{"name":"wrapped"}}`},
	{KindSummary, `{"narrative":"n","summary":"s","achievements":"one","blockers":["b1",{"x":1},"b2"],"keyInsights":[{"insight":"i1"},"i2",{"INSIGHT":"i3","insight":"i4"},{"other":"x"}]}`},
	{KindSummary, `{"narrative":5,"Narrative":"late","achievements":null,"keyInsights":{"insight":"not a list"}}`},
	{KindAudioInsights, `{"narrative":"first","narrative":"second"}`},
	{KindAudioInsights, `{"narrative":["x"]}`},
	{KindCanvasSpec, `{"theme":{"explanation":"e1"},"theme":{"other":1}}`},
	{KindCanvasSpec, `{"theme":{"explanation":"e1"},"theme":"flat","THEME":{"Explanation":"e2"}}`},
	{KindCanvasSpec, `{"theme":null}`},
	{KindTranscription, `"a bare transcript"`},
	{KindTranscription, `{"text":"t","transcription":"tr","fullTranscription":"f","transcript":"tt","TEXT":"T2"}`},
	{KindTranscription, `["one",{"text":"two"},3,null,["nested"],{"transcript":"four"}]`},
	{KindContextItems, `{"items":[{"content":"c1"},"c2"],"contextItems":[{"content":"c3"},{"Content":7}]}`},
	{KindContextItems, `{"items":[{"content":"only items"}],"Items":[{"content":"case differs: map keys are exact"}]}`},
	{KindContextItems, `[{"content":"bare"},{"content":"dup","content":"dup2"}]`},
	{KindScreenshots, `[{"aiAnalysis":{"summary":"s","detectedActivity":"a","extractedText":"x","detectedEntities":{"topics":[{"name":"T1"},"t2",{"nom":"no"}]}},"activity":"seed","topics":["p","q"]}]`},
	{KindScreenshots, `[{"aiAnalysis":{"summary":"s1","detectedEntities":{"topics":[{"name":"A"}]}},"aiAnalysis":{"extractedText":"merged","detectedEntities":{"other":1}}}]`},
	{KindScreenshots, `[{"aiAnalysis":"wrong type","activity":{"x":1},"topics":"single"},7,null,"str",[1]]`},
	{KindScreenshots, `{"sessionId":"s","screenshots":[{"activity":"first list"}],"screenshots":[{"activity":"last list"}]}`},
	{KindScreenshots, `{"Screenshots":[{"activity":"keys of the list object are exact"}]}`},
	{KindAudioSegments, `{"segments":[{"transcription":"a","keyPhrases":["k1","k2"]}],"audioSegments":[{"transcription":"ignored"}]}`},
	{KindAudioSegments, `{"audioSegments":[{"Transcription":"b","KEYPHRASES":"one phrase"}],"segments":null}`},
	{KindVideoChunks, `{"chunks":[{"topic":"t","description":"d","transcriptExcerpt":"x","topic":"t2"}]}`},
	{KindVideoChunks, `[{"topic":"\ud83d\ude00 emoji \u0000 nul","description":"tab\there"}]`},
	{KindVideoChunks, `not json at all`},
	{KindVideoChunks, `[{"topic":"unterminated"}`},
}

func checkAgainstOracle(t *testing.T, kind Kind, content []byte) {
	t.Helper()
	e := extract(kind, content)
	got := oracle.Extracted{
		Texts: e.texts, Tags: e.tags, Topics: e.topics,
		Status: e.status, Category: e.category, Sub: e.sub, Name: e.name,
		Start: e.start, Date: e.date,
	}
	want := oracle.Extract(oracle.Kind(kind), content)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("extract(%v, %q):\n got %#v\nwant %#v", kind, content, got, want)
	}
}

// TestExtractMatchesOracle holds extract to the encoding/json extraction
// the index was built with, on the corner cases and on generated sessions.
func TestExtractMatchesOracle(t *testing.T) {
	for _, c := range extractionCases {
		checkAgainstOracle(t, c.kind, []byte(c.content))
	}
	for _, f := range benchFiles(t, rand.New(rand.NewPCG(7, 7)), 20) {
		checkAgainstOracle(t, f.kind, f.content)
	}
}

// FuzzExtractOracle looks for JSON on which the two extractions differ. Its
// seed corpus holds FuzzExtract's too.
func FuzzExtractOracle(f *testing.F) {
	for _, c := range extractionCases {
		f.Add(byte(c.kind), []byte(c.content))
	}
	f.Fuzz(func(t *testing.T, kindByte byte, content []byte) {
		checkAgainstOracle(t, Kind(kindByte%9+1), content)
	})
}

// BenchmarkExtract times the extraction of generated session files against
// the oracle's encoding/json extraction (the one before it), alternating.
func BenchmarkExtract(b *testing.B) {
	files := benchFiles(b, rand.New(rand.NewPCG(1, 1)), 50)
	for range 2 {
		b.Run("walk", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				f := files[i%len(files)]
				extract(f.kind, f.content)
			}
		})
		b.Run("encoding-json", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				f := files[i%len(files)]
				oracle.Extract(oracle.Kind(f.kind), f.content)
			}
		})
	}
}
