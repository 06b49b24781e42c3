package index

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	appenvelope "github.com/taskerfs/taskerfs/envelope"
)

// Work caps, so that a hostile or huge file costs bounded memory and time.
// Text beyond the caps is simply not indexed.
const (
	maxTextBytes   = 8 << 20 // text tokenized per file
	maxListItems   = 100000  // elements read from any one JSON array
	maxFacetValues = 1024    // tags or topics taken from one file
)

// extraction is what one session file contributes, before tokenizing.
type extraction struct {
	texts     []string // full-text fields in document order
	textBytes int
	tags      []string // normalized facet values
	topics    []string
	status    string
	category  string
	sub       string
	name      string // metadata only
	start     string // startTime as shown in results
	date      string // YYYY-MM-DD of startTime in UTC
}

func (e *extraction) full() bool { return e.textBytes >= maxTextBytes }

func (e *extraction) addText(s string) {
	s = strings.TrimSpace(textUTF8(s))
	if s == "" || e.full() {
		return
	}
	if room := maxTextBytes - e.textBytes; len(s) > room {
		s = cutUTF8(s, room)
	}
	e.textBytes += len(s)
	e.texts = append(e.texts, s)
}

func (e *extraction) addTexts(ss []string) {
	for _, s := range ss {
		e.addText(s)
	}
}

func addFacet(list []string, raw string) []string {
	if v, ok := normFacet(raw); ok && len(list) < maxFacetValues {
		return append(list, v)
	}
	return list
}

// normFacet lowercases and trims a facet value. Values that are empty, or whose
// escaped name would not fit in one path component, are not indexed.
func normFacet(s string) (string, bool) {
	v := lowerBytes(strings.TrimSpace(s))
	if v == "" || len(EscapeName(v)) > 255 {
		return "", false
	}
	return v, true
}

// textUTF8 makes each byte of s that is not UTF-8 a U+FFFD, as
// encoding/json does: jsonString keeps such bytes for the facet values,
// while the text, snippets and names stay valid UTF-8 as they always were.
func textUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// cutUTF8 returns at most n bytes of s without splitting a rune.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// extract reads the fields that kind contributes from content. It never fails:
// content that is not JSON, or of the wrong shape, contributes what it can.
func extract(kind Kind, content []byte) *extraction {
	e := &extraction{}
	payload, ok := unwrap(content)
	if !ok {
		return e
	}
	switch kind {
	case KindMetadata:
		extractMetadata(e, payload)
	case KindSummary:
		var d struct {
			Narrative    jsonText    `json:"narrative"`
			Summary      jsonText    `json:"summary"` // legacy plain-text summary
			Achievements jsonTexts   `json:"achievements"`
			Blockers     jsonTexts   `json:"blockers"`
			KeyInsights  insightList `json:"keyInsights"`
		}
		_ = json.Unmarshal(payload, &d) // type errors leave the other fields filled
		e.addText(string(d.Narrative))
		e.addText(string(d.Summary))
		e.addTexts(d.Achievements)
		e.addTexts(d.Blockers)
		e.addTexts(d.KeyInsights)
	case KindAudioInsights:
		var d struct {
			Narrative jsonText `json:"narrative"`
		}
		_ = json.Unmarshal(payload, &d)
		e.addText(string(d.Narrative))
	case KindCanvasSpec:
		var d struct {
			Theme struct {
				Explanation jsonText `json:"explanation"`
			} `json:"theme"`
		}
		_ = json.Unmarshal(payload, &d)
		e.addText(string(d.Theme.Explanation))
	case KindTranscription:
		extractTranscription(e, payload)
	case KindContextItems:
		forRecords(payload, []string{"contextItems", "items"}, func(rec []byte) {
			if s, ok := jsonString(rec); ok {
				e.addText(s)
				return
			}
			var d struct {
				Content jsonText `json:"content"`
			}
			_ = json.Unmarshal(rec, &d)
			e.addText(string(d.Content))
		}, e.full)
	case KindScreenshots:
		forRecords(payload, []string{"screenshots"}, func(rec []byte) {
			var d struct {
				AIAnalysis struct {
					Summary          jsonText `json:"summary"`
					DetectedActivity jsonText `json:"detectedActivity"`
					ExtractedText    jsonText `json:"extractedText"`
					DetectedEntities struct {
						Topics namedList `json:"topics"`
					} `json:"detectedEntities"`
				} `json:"aiAnalysis"`
				Activity jsonText  `json:"activity"` // seed layout
				Topics   jsonTexts `json:"topics"`   // seed layout
			}
			_ = json.Unmarshal(rec, &d)
			a := d.AIAnalysis
			e.addText(string(a.Summary))
			e.addText(string(a.DetectedActivity))
			e.addText(string(a.ExtractedText))
			e.addText(string(d.Activity))
			for _, t := range a.DetectedEntities.Topics {
				e.topics = addFacet(e.topics, t)
			}
			for _, t := range d.Topics {
				e.topics = addFacet(e.topics, t)
			}
		}, e.full)
	case KindAudioSegments:
		forRecords(payload, []string{"segments", "audioSegments"}, func(rec []byte) {
			var d struct {
				Transcription jsonText  `json:"transcription"`
				KeyPhrases    jsonTexts `json:"keyPhrases"`
			}
			_ = json.Unmarshal(rec, &d)
			e.addText(string(d.Transcription))
			e.addTexts(d.KeyPhrases)
		}, e.full)
	case KindVideoChunks:
		forRecords(payload, []string{"chunks", "videoChunks"}, func(rec []byte) {
			var d struct {
				Topic             jsonText `json:"topic"`
				Description       jsonText `json:"description"`
				TranscriptExcerpt jsonText `json:"transcriptExcerpt"`
			}
			_ = json.Unmarshal(rec, &d)
			e.addText(string(d.Topic))
			e.addText(string(d.Description))
			e.addText(string(d.TranscriptExcerpt))
		}, e.full)
	}
	return e
}

func extractMetadata(e *extraction, payload []byte) {
	var d struct {
		Name        jsonText        `json:"name"`
		Description jsonText        `json:"description"`
		Status      jsonText        `json:"status"`
		Category    jsonText        `json:"category"`
		SubCategory jsonText        `json:"subCategory"`
		Tags        tagList         `json:"tags"`
		StartTime   json.RawMessage `json:"startTime"`
	}
	_ = json.Unmarshal(payload, &d)
	e.name = textUTF8(string(d.Name))
	e.addText(string(d.Name))
	e.addText(string(d.Description))
	for _, t := range d.Tags {
		e.tags = addFacet(e.tags, t)
	}
	e.status, _ = normFacet(string(d.Status))
	e.category, _ = normFacet(string(d.Category))
	e.sub, _ = normFacet(string(d.SubCategory))
	e.start, e.date = parseStartTime(d.StartTime)
}

// transcriptionFields are the text fields of a transcription stored as an object.
type transcriptionFields struct {
	Text              jsonText `json:"text"`
	Transcription     jsonText `json:"transcription"`
	FullTranscription jsonText `json:"fullTranscription"`
	Transcript        jsonText `json:"transcript"`
}

// extractTranscription accepts a bare JSON string (the real app), an object
// with a text field, or an array of strings or such objects.
func extractTranscription(e *extraction, payload []byte) {
	one := func(v []byte) {
		if s, ok := jsonString(v); ok {
			e.addText(s)
			return
		}
		var d transcriptionFields
		_ = json.Unmarshal(v, &d)
		e.addText(string(d.Text))
		e.addText(string(d.Transcription))
		e.addText(string(d.FullTranscription))
		e.addText(string(d.Transcript))
	}
	if appenvelope.FirstByte(payload) == '[' {
		eachElement(payload, func(el []byte) bool { one(el); return !e.full() })
		return
	}
	one(payload)
}

// forRecords calls fn for each record of a chunk: the payload is either a bare
// array (seed layout) or an object holding the array under one of keys (the
// real app's {sessionId, chunkIndex, screenshots|segments|chunks}).
func forRecords(payload []byte, keys []string, fn func(rec []byte), stop func() bool) {
	arr := payload
	if appenvelope.FirstByte(payload) == '{' {
		var obj map[string]json.RawMessage
		if json.Unmarshal(payload, &obj) != nil {
			return
		}
		arr = nil
		for _, k := range keys {
			if v, ok := obj[k]; ok {
				arr = v
				break
			}
		}
	}
	eachElement(arr, func(rec []byte) bool {
		fn(rec)
		return !stop()
	})
}

// eachElement streams the elements of a JSON array (one at a time, at most
// maxListItems) to fn until fn returns false. Anything else is ignored.
func eachElement(arr []byte, fn func(elem []byte) bool) {
	if appenvelope.FirstByte(arr) != '[' {
		return
	}
	dec := json.NewDecoder(bytes.NewReader(arr))
	if _, err := dec.Token(); err != nil {
		return
	}
	for n := 0; n < maxListItems && dec.More(); n++ {
		var el json.RawMessage
		if dec.Decode(&el) != nil || !fn(el) {
			return
		}
	}
}

func jsonString(b []byte) (string, bool) {
	if appenvelope.FirstByte(b) != '"' {
		return "", false
	}
	b = bytes.TrimSpace(b)
	if utf8.Valid(b) {
		var s string
		if json.Unmarshal(b, &s) != nil {
			return "", false
		}
		return s, true
	}
	// encoding/json would make each byte that is not UTF-8 a U+FFFD, and
	// two different tags one. Keep those bytes (facet names show them as
	// %XX). They are never inside an escape sequence, which is ASCII, so
	// the valid runs between them decode on their own.
	if len(b) < 2 || b[len(b)-1] != '"' {
		return "", false
	}
	in := b[1 : len(b)-1]
	var out strings.Builder
	for len(in) > 0 {
		n := 0
		for n < len(in) {
			r, size := utf8.DecodeRune(in[n:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			n += size
		}
		if n == 0 {
			out.WriteByte(in[0])
			in = in[1:]
			continue
		}
		var s string
		if json.Unmarshal(append(append([]byte{'"'}, in[:n]...), '"'), &s) != nil {
			return "", false
		}
		out.WriteString(s)
		in = in[n:]
	}
	return out.String(), true
}

// unwrap removes the real app's envelope (see package envelope); plain
// JSON passes through. ok=false if the content is not valid JSON or a
// GZIP_V1 payload does not decode within the cap.
func unwrap(content []byte) ([]byte, bool) {
	out, err := appenvelope.Unwrap(content)
	return out, err == nil
}

// startLayouts are the string forms of startTime accepted; without a zone, UTC.
var startLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
}

// parseStartTime returns startTime for display and its UTC day. A string is
// ISO 8601; a number is milliseconds since the epoch (the seed's format).
func parseStartTime(raw json.RawMessage) (display, day string) {
	if s, ok := jsonString(raw); ok {
		display = s
		for _, layout := range startLayouts {
			if t, err := time.Parse(layout, strings.TrimSpace(s)); err == nil {
				return display, formatDay(t)
			}
		}
		return display, ""
	}
	var ms float64
	if appenvelope.FirstByte(raw) == '-' || (appenvelope.FirstByte(raw) >= '0' && appenvelope.FirstByte(raw) <= '9') {
		if json.Unmarshal(raw, &ms) != nil || math.Abs(ms) > 1e15 {
			return "", ""
		}
		t := time.UnixMilli(int64(ms)).UTC()
		return t.Format("2006-01-02T15:04:05.000Z07:00"), formatDay(t)
	}
	return "", ""
}

// formatDay gives YYYY-MM-DD in UTC, or "" outside years 0000-9999 (so that
// every day sorts as a fixed-width key).
func formatDay(t time.Time) string {
	t = t.UTC()
	if t.Year() < 0 || t.Year() > 9999 {
		return ""
	}
	return t.Format("2006-01-02")
}

// jsonText is a JSON string; any other JSON type decodes to "".
type jsonText string

func (t *jsonText) UnmarshalJSON(b []byte) error {
	*t = ""
	if s, ok := jsonString(b); ok {
		*t = jsonText(s)
	}
	return nil
}

// jsonTexts is a string or an array whose string elements are kept.
type jsonTexts []string

func (t *jsonTexts) UnmarshalJSON(b []byte) error {
	*t = decodeList(b, nil)
	return nil
}

// tagList is like jsonTexts, but a single string is a comma-separated list.
type tagList []string

func (t *tagList) UnmarshalJSON(b []byte) error {
	if s, ok := jsonString(b); ok {
		*t = strings.Split(s, ",")
		return nil
	}
	*t = decodeList(b, nil)
	return nil
}

// namedList is a list of {name} objects (detected topics); bare strings count too.
type namedList []string

func (t *namedList) UnmarshalJSON(b []byte) error {
	*t = decodeList(b, func(el []byte) string {
		var d struct {
			Name jsonText `json:"name"`
		}
		_ = json.Unmarshal(el, &d)
		return string(d.Name)
	})
	return nil
}

// insightList is a list of {insight} objects (summary keyInsights); bare strings count too.
type insightList []string

func (t *insightList) UnmarshalJSON(b []byte) error {
	*t = decodeList(b, func(el []byte) string {
		var d struct {
			Insight jsonText `json:"insight"`
		}
		_ = json.Unmarshal(el, &d)
		return string(d.Insight)
	})
	return nil
}

// decodeList reads a string or an array of strings; object elements go
// through fromObject when it is set.
func decodeList(b []byte, fromObject func([]byte) string) []string {
	if s, ok := jsonString(b); ok {
		return []string{s}
	}
	var out []string
	eachElement(b, func(el []byte) bool {
		if s, ok := jsonString(el); ok {
			out = append(out, s)
		} else if fromObject != nil && appenvelope.FirstByte(el) == '{' {
			if s := fromObject(el); s != "" {
				out = append(out, s)
			}
		}
		return true
	})
	return out
}
