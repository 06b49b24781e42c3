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
//
// The JSON is walked in place, without reflection: unwrap has validated it,
// so envelope.EachMember and EachElement only need to find where each value
// ends. The rules are encoding/json's, which the index was built with
// (TestExtractMatchesOracle and FuzzExtractOracle hold this extraction to the
// oracle's, which decodes with encoding/json):
//   - a field matches a key case-insensitively (strings.EqualFold, which is
//     encoding/json's folding);
//   - members apply in document order, so of duplicate keys the last wins,
//     and a repeated object fills in the fields the earlier one left;
//   - a text field whose value is not a string is "", an object field whose
//     value is not an object keeps what it had, and a record that is not an
//     object contributes nothing;
//   - the record lists under an object's key match that key exactly (the
//     old code read the object as a map).
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
		var achievements, blockers, insights []string
		t := fields(payload, []string{"narrative", "summary"}, func(k string, v []byte) {
			switch {
			case is(k, "achievements"):
				achievements = decodeList(v, "")
			case is(k, "blockers"):
				blockers = decodeList(v, "")
			case is(k, "keyInsights"):
				insights = decodeList(v, "insight")
			}
		})
		e.addTexts(t) // narrative, then the legacy plain-text summary
		e.addTexts(achievements)
		e.addTexts(blockers)
		e.addTexts(insights)
	case KindAudioInsights:
		e.addText(memberText(payload, "narrative"))
	case KindCanvasSpec:
		var explanation string
		members(payload, func(k string, v []byte) {
			if is(k, "theme") {
				members(v, func(k string, v []byte) {
					if is(k, "explanation") {
						explanation = text(v)
					}
				})
			}
		})
		e.addText(explanation)
	case KindTranscription:
		extractTranscription(e, payload)
	case KindContextItems:
		forRecords(payload, []string{"contextItems", "items"}, func(rec []byte) {
			if s, ok := jsonString(rec); ok {
				e.addText(s)
				return
			}
			e.addText(memberText(rec, "content"))
		}, e.full)
	case KindScreenshots:
		forRecords(payload, []string{"screenshots"}, func(rec []byte) {
			analysis := make([]string, 3) // summary, detectedActivity, extractedText
			var topics, seedTopics []string
			seed := fields(rec, []string{"activity"}, func(k string, v []byte) {
				switch {
				case is(k, "aiAnalysis"): // a repeated one merges into the earlier
					mergeFields(v, analysis, []string{"summary", "detectedActivity", "extractedText"}, func(k string, v []byte) {
						if is(k, "detectedEntities") {
							members(v, func(k string, v []byte) {
								if is(k, "topics") {
									topics = decodeList(v, "name")
								}
							})
						}
					})
				case is(k, "topics"): // seed layout
					seedTopics = decodeList(v, "")
				}
			})
			e.addTexts(analysis)
			e.addTexts(seed) // the seed layout's activity
			for _, t := range topics {
				e.topics = addFacet(e.topics, t)
			}
			for _, t := range seedTopics {
				e.topics = addFacet(e.topics, t)
			}
		}, e.full)
	case KindAudioSegments:
		forRecords(payload, []string{"segments", "audioSegments"}, func(rec []byte) {
			var phrases []string
			t := fields(rec, []string{"transcription"}, func(k string, v []byte) {
				if is(k, "keyPhrases") {
					phrases = decodeList(v, "")
				}
			})
			e.addTexts(t)
			e.addTexts(phrases)
		}, e.full)
	case KindVideoChunks:
		forRecords(payload, []string{"chunks", "videoChunks"}, func(rec []byte) {
			e.addTexts(fields(rec, []string{"topic", "description", "transcriptExcerpt"}, nil))
		}, e.full)
	}
	return e
}

func extractMetadata(e *extraction, payload []byte) {
	var tags []string
	var start []byte
	t := fields(payload, []string{"name", "description", "status", "category", "subCategory"}, func(k string, v []byte) {
		switch {
		case is(k, "tags"):
			if s, ok := jsonString(v); ok {
				tags = strings.Split(s, ",")
			} else {
				tags = decodeList(v, "")
			}
		case is(k, "startTime"):
			start = v
		}
	})
	e.name = textUTF8(t[0])
	e.addText(t[0])
	e.addText(t[1])
	for _, tag := range tags {
		e.tags = addFacet(e.tags, tag)
	}
	e.status, _ = normFacet(t[2])
	e.category, _ = normFacet(t[3])
	e.sub, _ = normFacet(t[4])
	e.start, e.date = parseStartTime(start)
}

// extractTranscription accepts a bare JSON string (the real app), an object
// with a text field, or an array of strings or such objects.
func extractTranscription(e *extraction, payload []byte) {
	one := func(v []byte) {
		if s, ok := jsonString(v); ok {
			e.addText(s)
			return
		}
		e.addTexts(fields(v, []string{"text", "transcription", "fullTranscription", "transcript"}, nil))
	}
	if appenvelope.FirstByte(payload) == '[' {
		eachElement(payload, func(el []byte) bool { one(el); return !e.full() })
		return
	}
	one(payload)
}

// fields reads the text fields names of obj: for each, the value of its
// last member ("" when absent or not a string). Every other member goes to
// other, when set, in document order.
func fields(obj []byte, names []string, other func(key string, val []byte)) []string {
	out := make([]string, len(names))
	mergeFields(obj, out, names, other)
	return out
}

// mergeFields is fields into out, which keeps what obj does not set (a
// repeated object merges into the earlier one, as encoding/json decodes it).
func mergeFields(obj []byte, out []string, names []string, other func(key string, val []byte)) {
	members(obj, func(k string, v []byte) {
		for i, name := range names {
			if is(k, name) {
				out[i] = text(v)
				return
			}
		}
		if other != nil {
			other(k, v)
		}
	})
}

// members calls fn for each member of obj (validated JSON) in document
// order; nothing when obj is not an object. A key is valid only while fn
// runs (the extraction only compares keys).
func members(obj []byte, fn func(key string, val []byte)) { appenvelope.EachMemberTransient(obj, fn) }

// is reports whether a JSON key selects the field name, as encoding/json
// matches struct fields.
func is(key, name string) bool { return strings.EqualFold(key, name) }

// text is a text field's value: the string, or "" for any other JSON value.
func text(v []byte) string {
	s, _ := jsonString(v)
	return s
}

// memberText is the text of obj's (last) member name.
func memberText(obj []byte, name string) string { return fields(obj, []string{name}, nil)[0] }

// forRecords calls fn for each record of a chunk: the payload is either a bare
// array (seed layout) or an object holding the array under one of keys (the
// real app's {sessionId, chunkIndex, screenshots|segments|chunks}); the first
// of keys present wins, and of duplicates of it the last.
func forRecords(payload []byte, keys []string, fn func(rec []byte), stop func() bool) {
	arr := payload
	if appenvelope.FirstByte(payload) == '{' {
		found := make([][]byte, len(keys))
		members(payload, func(k string, v []byte) {
			for i, want := range keys {
				if k == want {
					found[i] = v
				}
			}
		})
		arr = nil
		for _, v := range found {
			if v != nil {
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

// eachElement calls fn with the elements of a validated JSON array (at most
// maxListItems) until fn returns false. Anything else is ignored.
func eachElement(arr []byte, fn func(elem []byte) bool) {
	n, done := 0, false
	appenvelope.EachElement(arr, func(el []byte) {
		if done {
			return
		}
		if n >= maxListItems || !fn(el) {
			done = true
			return
		}
		n++
	})
}

// jsonString decodes a JSON string value; false for any other value.
func jsonString(b []byte) (string, bool) {
	if appenvelope.FirstByte(b) != '"' {
		return "", false
	}
	b = bytes.TrimSpace(b)
	if len(b) >= 2 && b[len(b)-1] == '"' && plainString(b[1:len(b)-1]) {
		return string(b[1 : len(b)-1]), true // nothing to unescape
	}
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

// plainString reports whether the inside of a JSON string literal is its
// own value: valid UTF-8 with no escape, quote or control byte.
func plainString(in []byte) bool {
	ascii := true
	for _, c := range in {
		if c < 0x20 || c == '"' || c == '\\' {
			return false
		}
		if c >= 0x80 {
			ascii = false
		}
	}
	return ascii || utf8.Valid(in)
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
func parseStartTime(raw []byte) (display, day string) {
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

// decodeList reads a string or an array of strings; object elements
// contribute their member field when field is set.
func decodeList(b []byte, field string) []string {
	if s, ok := jsonString(b); ok {
		return []string{s}
	}
	var out []string
	eachElement(b, func(el []byte) bool {
		if s, ok := jsonString(el); ok {
			out = append(out, s)
		} else if field != "" && appenvelope.FirstByte(el) == '{' {
			if s := memberText(el, field); s != "" {
				out = append(out, s)
			}
		}
		return true
	})
	return out
}
