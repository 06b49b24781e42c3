package gen

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func small(layout Layout) Options {
	return Options{Sessions: 12, Screenshots: 23, AudioSegments: 7, Dup: 0.4, Seed: 7, Layout: layout,
		Plant: []Plant{{"zanzibar", 0.3}, {"quokka", 0.5}}}
}

func generate(t *testing.T, o Options) (string, Manifest) {
	t.Helper()
	dir := t.TempDir()
	m, err := Generate(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return dir, m
}

// treeHashes maps every file's path under root to the SHA-256 of its bytes.
func treeHashes(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		sum := sha256.Sum256(data)
		out[rel] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDeterministicBySeed(t *testing.T) {
	for _, layout := range []Layout{LayoutSeed, LayoutApp, LayoutLegacy} {
		t.Run(string(layout), func(t *testing.T) {
			o := small(layout)
			o.Sessions, o.Screenshots = 4, 5
			a, ma := generate(t, o)
			o.Workers = 1 // a different schedule must not change a byte
			b, mb := generate(t, o)
			ha, hb := treeHashes(t, a), treeHashes(t, b)
			if !reflect.DeepEqual(ha, hb) {
				t.Fatalf("same seed, different trees: %d vs %d files", len(ha), len(hb))
			}
			if !reflect.DeepEqual(ma, mb) {
				t.Fatal("same seed, different manifests")
			}
			if int64(len(ha)) != ma.Files {
				t.Fatalf("manifest says %d files, tree has %d", ma.Files, len(ha))
			}
			o.Seed++
			c, _ := generate(t, o)
			old := map[string]bool{}
			for _, h := range ha {
				old[h] = true
			}
			for p, h := range treeHashes(t, c) {
				if old[h] {
					t.Fatalf("another seed reproduced %s", p)
				}
			}
		})
	}
}

func TestDuplicateShare(t *testing.T) {
	tests := []struct {
		dup      float64
		min, max float64
	}{
		{0, 0, 0},
		{0.4, 0.3, 0.5},
		{0.8, 0.7, 0.9},
	}
	for _, tc := range tests {
		o := Options{Sessions: 10, Screenshots: 40, Dup: tc.dup, Seed: 3, Layout: LayoutSeed}
		dir, m := generate(t, o)
		paths, _ := filepath.Glob(filepath.Join(dir, "sessions", "*", "attachments", "*.jpg"))
		if len(paths) != 400 || m.Screenshots != 400 {
			t.Fatalf("dup %v: %d screenshot files, manifest %d, want 400", tc.dup, len(paths), m.Screenshots)
		}
		distinct := map[[32]byte]bool{}
		var unique int64
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			checkJPEG(t, p, data)
			sum := sha256.Sum256(data)
			if !distinct[sum] {
				unique += int64(len(data))
			}
			distinct[sum] = true
		}
		dups := len(paths) - len(distinct)
		if dups != m.DuplicateScreenshots {
			t.Errorf("dup %v: %d byte-identical copies, manifest says %d", tc.dup, dups, m.DuplicateScreenshots)
		}
		if share := float64(dups) / float64(len(paths)); share < tc.min || share > tc.max {
			t.Errorf("dup %v: share %.3f not in [%v,%v]", tc.dup, share, tc.min, tc.max)
		}
		if unique != m.UniqueAttachmentBytes {
			t.Errorf("dup %v: unique bytes %d, manifest %d", tc.dup, unique, m.UniqueAttachmentBytes)
		}
	}
}

func checkJPEG(t *testing.T, name string, b []byte) {
	t.Helper()
	if len(b) < minImage || len(b) > maxImage {
		t.Errorf("%s: %d bytes, want 100-300 KiB", name, len(b))
	}
	if !bytes.HasPrefix(b, []byte{0xFF, 0xD8, 0xFF, 0xE0}) || !bytes.HasSuffix(b, []byte{0xFF, 0xD9}) {
		t.Errorf("%s: no JPEG SOI/EOI markers", name)
	}
}

func TestAttachmentsAreIncompressible(t *testing.T) {
	g := &generator{opts: Options{Seed: 1, Screenshots: 1}}
	for name, data := range map[string][]byte{"image": g.image(nil, 5), "audio": g.audio(nil, 5)} {
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(data)
		zw.Close()
		if gz.Len() < len(data)*99/100 {
			t.Errorf("%s compresses to %d of %d bytes", name, gz.Len(), len(data))
		}
	}
}

func checkMP3(t *testing.T, name string, b []byte) {
	t.Helper()
	if len(b) < 110_000 || len(b) > 130_000 {
		t.Errorf("%s: %d bytes, want about 120 KB", name, len(b))
	}
	if !bytes.HasPrefix(b, []byte("ID3")) || !bytes.Equal(b[10:12], []byte{0xFF, 0xFB}) {
		t.Errorf("%s: no ID3 header followed by an MPEG frame", name)
	}
}

// session is the layout-independent content of one session, read back.
type session struct {
	meta        map[string]any
	summary     map[string]any
	screenshots []map[string]any
	audio       []map[string]any
	transcript  string
}

// decodeEnvelope checks an app file's envelope and returns its JSON.
func decodeEnvelope(t *testing.T, name string, raw []byte) []byte {
	t.Helper()
	var env struct {
		Version    int    `json:"version"`
		Checksum   string `json:"checksum"`
		Timestamp  int64  `json:"timestamp"`
		Compressed bool   `json:"compressed"`
		Data       string `json:"data"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	b64, ok := strings.CutPrefix(env.Data, "GZIP_V1:")
	if env.Version != 1 || !env.Compressed || !ok || env.Timestamp == 0 {
		t.Fatalf("%s: bad envelope header %+v", name, env)
	}
	gz, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	js, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if got := Checksum(js); got != env.Checksum {
		t.Fatalf("%s: checksum %s, envelope says %s", name, got, env.Checksum)
	}
	return js
}

func readJSON(t *testing.T, path string, envelope bool, v any) bool {
	t.Helper()
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	if envelope {
		raw = decodeEnvelope(t, path, raw)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return true
}

// readChunked reads one session of the seed or app layout, checking chunk
// shapes and sizes against metadata.json's manifest.
func readChunked(t *testing.T, dir string, layout Layout, id string) session {
	t.Helper()
	app := layout == LayoutApp
	per, audioDir := 10, "audioSegments"
	if app {
		per, audioDir = 20, "audio-segments"
	}
	sd := filepath.Join(dir, "sessions", id)
	var s session
	if !readJSON(t, filepath.Join(sd, "metadata.json"), app, &s.meta) {
		t.Fatalf("%s: no metadata.json", id)
	}
	readJSON(t, filepath.Join(sd, "summary.json"), app, &s.summary)
	if s.meta["hasSummary"] != (s.summary != nil) {
		t.Errorf("%s: hasSummary %v but summary.json present=%v", id, s.meta["hasSummary"], s.summary != nil)
	}
	readJSON(t, filepath.Join(sd, "transcription.json"), app, &s.transcript)
	chunks := s.meta["chunks"].(map[string]any)
	for _, kind := range []struct {
		dir, key, arrayKey string
		per                int
		into               *[]map[string]any
	}{
		{"screenshots", "screenshots", "screenshots", per, &s.screenshots},
		{audioDir, "audioSegments", "segments", per * 5, &s.audio},
	} {
		info := chunks[kind.key].(map[string]any)
		n := int(info["chunkCount"].(float64))
		if int(info["chunkSize"].(float64)) != kind.per {
			t.Errorf("%s: %s chunkSize %v, want %d", id, kind.key, info["chunkSize"], kind.per)
		}
		files, _ := filepath.Glob(filepath.Join(sd, kind.dir, "chunk-*.json"))
		if len(files) != n {
			t.Fatalf("%s: %d %s chunk files, manifest says %d", id, len(files), kind.dir, n)
		}
		for c, f := range files {
			var recs []map[string]any
			if app {
				var obj map[string]any
				readJSON(t, f, true, &obj)
				if obj["sessionId"] != id || int(obj["chunkIndex"].(float64)) != c {
					t.Fatalf("%s: chunk object header %v/%v", f, obj["sessionId"], obj["chunkIndex"])
				}
				for _, r := range obj[kind.arrayKey].([]any) {
					recs = append(recs, r.(map[string]any))
				}
			} else {
				readJSON(t, f, false, &recs)
			}
			if len(recs) > kind.per || (c < n-1 && len(recs) != kind.per) {
				t.Errorf("%s: %d records in a chunk of %d", f, len(recs), kind.per)
			}
			*kind.into = append(*kind.into, recs...)
		}
		if len(*kind.into) != int(info["count"].(float64)) {
			t.Errorf("%s: %d %s, manifest says %v", id, len(*kind.into), kind.key, info["count"])
		}
	}
	return s
}

// readLegacy reads one monolithic session and checks its attachments.
func readLegacy(t *testing.T, dir, id string, withBytes bool) session {
	t.Helper()
	var full map[string]any
	if !readJSON(t, filepath.Join(dir, "sessions", id+".json"), false, &full) {
		t.Fatalf("%s: no session file", id)
	}
	s := session{meta: full}
	if v, ok := full["summary"].(map[string]any); ok {
		s.summary = v
	}
	s.transcript, _ = full["fullTranscription"].(string)
	for key, into := range map[string]*[]map[string]any{"screenshots": &s.screenshots, "audioSegments": &s.audio} {
		for _, r := range full[key].([]any) {
			rec := r.(map[string]any)
			*into = append(*into, rec)
			if !withBytes {
				continue
			}
			var att struct {
				ID, Type, MimeType, Base64 string
				Size                       int
			}
			if !readJSON(t, filepath.Join(dir, "attachments", rec["attachmentId"].(string)+".json"), false, &att) {
				t.Fatalf("%s: attachment %s missing", id, rec["attachmentId"])
			}
			b64 := att.Base64
			if strings.HasPrefix(b64, "data:") {
				_, b64, _ = strings.Cut(b64, ",")
			}
			data, err := base64.StdEncoding.DecodeString(b64)
			if err != nil || len(data) != att.Size {
				t.Fatalf("attachment %s: %d bytes, size %d, %v", att.ID, len(data), att.Size, err)
			}
			if key == "screenshots" {
				checkJPEG(t, att.ID, data)
			} else {
				checkMP3(t, att.ID, data)
			}
			// Chunked layouts carry the hash the importer must compute.
			rec["hash"] = hex.EncodeToString(func() []byte { h := sha256.Sum256(data); return h[:] }())
		}
	}
	return s
}

func readAll(t *testing.T, dir string, o Options, m Manifest) map[string]session {
	out := map[string]session{}
	for _, info := range m.Sessions {
		if o.Layout == LayoutLegacy {
			out[info.ID] = readLegacy(t, dir, info.ID, !o.JSONOnly)
		} else {
			out[info.ID] = readChunked(t, dir, o.Layout, info.ID)
		}
	}
	return out
}

// TestLayoutsHoldTheSameSessions reads every layout back and checks that
// they carry the same records, and that records point at real attachments.
func TestLayoutsHoldTheSameSessions(t *testing.T) {
	var ref map[string]session
	var refManifest Manifest
	for _, layout := range []Layout{LayoutSeed, LayoutApp, LayoutLegacy} {
		o := small(layout)
		dir, m := generate(t, o)
		got := readAll(t, dir, o, m)
		if layout != LayoutLegacy {
			for id, s := range got {
				for _, rec := range append(slices.Clone(s.screenshots), s.audio...) {
					ext := ".jpg"
					if _, ok := rec["duration"]; ok {
						ext = ".mp3"
					}
					data, err := os.ReadFile(filepath.Join(dir, "sessions", id, "attachments", rec["attachmentId"].(string)+ext))
					if err != nil {
						t.Fatal(err)
					}
					if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != rec["hash"] {
						t.Fatalf("%s: record hash does not match its attachment", rec["id"])
					}
					if ext == ".mp3" {
						checkMP3(t, rec["id"].(string), data)
					}
				}
			}
		}
		if ref == nil {
			ref, refManifest = got, m
			continue
		}
		if !reflect.DeepEqual(m.Sessions, refManifest.Sessions) {
			t.Errorf("%s: manifest differs from the seed layout's", layout)
		}
		for id, s := range got {
			r := ref[id]
			if !reflect.DeepEqual(s.screenshots, r.screenshots) || !reflect.DeepEqual(s.audio, r.audio) ||
				!reflect.DeepEqual(s.summary, r.summary) || s.transcript != r.transcript {
				t.Errorf("%s: session %s differs from the seed layout's", layout, id)
			}
			for _, k := range []string{"id", "name", "description", "status", "startTime", "tags", "category", "subCategory"} {
				if !reflect.DeepEqual(s.meta[k], r.meta[k]) {
					t.Errorf("%s: %s.%s = %v, seed layout has %v", layout, id, k, s.meta[k], r.meta[k])
				}
			}
		}
	}
}

func TestJSONOnlyWritesNoAttachments(t *testing.T) {
	for _, layout := range []Layout{LayoutSeed, LayoutApp, LayoutLegacy} {
		o := small(layout)
		o.JSONOnly = true
		dir, m := generate(t, o)
		if m.AttachmentBytes != 0 || m.JSONBytes != m.Bytes {
			t.Errorf("%s: %d attachment bytes, %d JSON of %d", layout, m.AttachmentBytes, m.JSONBytes, m.Bytes)
		}
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Name() == "attachments" {
				t.Errorf("%s: %s exists", layout, p)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		for id, s := range readAll(t, dir, o, m) {
			for _, rec := range s.screenshots {
				if _, ok := rec["hash"]; ok {
					t.Fatalf("%s: %s: hash without bytes", layout, id)
				}
			}
		}
	}
}

// TestManifestMatchesFiles checks every fact the manifest reports against
// the files, including where planted words are and are not.
func TestManifestMatchesFiles(t *testing.T) {
	o := small(LayoutSeed)
	o.JSONOnly = true
	o.Sessions = 40
	dir, m := generate(t, o)
	planted := map[string]int{}
	for _, info := range m.Sessions {
		s := readChunked(t, dir, LayoutSeed, info.ID)
		var tags []string
		for _, tag := range s.meta["tags"].([]any) {
			tags = append(tags, tag.(string))
		}
		if !slices.Equal(tags, info.Tags) || s.meta["status"] != info.Status || s.meta["category"] != info.Category ||
			s.meta["subCategory"] != info.SubCategory || !strings.HasPrefix(s.meta["startTime"].(string), info.Month+"-") {
			t.Errorf("%s: manifest %+v disagrees with metadata", info.ID, info)
		}
		var topics []string
		for _, sh := range s.screenshots {
			ai, ok := sh["aiAnalysis"].(map[string]any)
			if !ok {
				continue
			}
			for _, tp := range ai["detectedEntities"].(map[string]any)["topics"].([]any) {
				if name := tp.(map[string]any)["name"].(string); !slices.Contains(topics, name) {
					topics = append(topics, name)
				}
			}
		}
		slices.Sort(topics)
		if !slices.Equal(topics, info.Topics) {
			t.Errorf("%s: topics %v, manifest %v", info.ID, topics, info.Topics)
		}
		var all bytes.Buffer
		files, _ := filepath.Glob(filepath.Join(dir, "sessions", info.ID, "*", "*.json"))
		top, _ := filepath.Glob(filepath.Join(dir, "sessions", info.ID, "*.json"))
		for _, f := range append(files, top...) {
			b, _ := os.ReadFile(f)
			all.Write(b)
		}
		for _, p := range o.Plant {
			has := bytes.Contains(all.Bytes(), []byte(p.Word))
			if has != slices.Contains(info.Words, p.Word) {
				t.Errorf("%s: %q in files=%v, manifest words %v", info.ID, p.Word, has, info.Words)
			}
			if has {
				planted[p.Word]++
			}
		}
	}
	for _, p := range o.Plant {
		if n := planted[p.Word]; n == 0 || n == len(m.Sessions) {
			t.Errorf("%q planted in %d of %d sessions at share %v", p.Word, n, len(m.Sessions), p.Share)
		}
	}
	if got := len(m.IDs(func(s SessionInfo) bool { return slices.Contains(s.Words, "quokka") })); got != planted["quokka"] {
		t.Errorf("IDs found %d quokka sessions, files have %d", got, planted["quokka"])
	}
}

func TestChecksum(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "0"},
		{"a", "2p"},
		{"hello", "1n1e4y"},
		{"polygenelubricants", "-zik0zk"}, // hashes to math.MinInt32
		{`{"a":"é😀"}`, "-r6l9rd"},         // a surrogate pair counts as two units
	}
	for _, tc := range tests {
		if got := Checksum([]byte(tc.in)); got != tc.want {
			t.Errorf("Checksum(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestOptionsRejected(t *testing.T) {
	base := small(LayoutSeed)
	tests := []struct {
		name   string
		change func(*Options)
	}{
		{"negative sessions", func(o *Options) { o.Sessions = -1 }},
		{"dup above 1", func(o *Options) { o.Dup = 1.5 }},
		{"unknown layout", func(o *Options) { o.Layout = "flat" }},
		{"planted word from the vocabulary", func(o *Options) { o.Plant = []Plant{{"deploy", 0.1}} }},
		{"planted topic", func(o *Options) { o.Plant = []Plant{{"payments", 0.1}} }},
		{"planted word not a token", func(o *Options) { o.Plant = []Plant{{"two words", 0.1}} }},
		{"uppercase planted word", func(o *Options) { o.Plant = []Plant{{"Zanzibar", 0.1}} }},
		{"share above 1", func(o *Options) { o.Plant = []Plant{{"zanzibar", 2}} }},
		{"vocabulary entry not a token", func(o *Options) { o.Vocabulary = []string{"ok", "not-one"} }},
	}
	for _, tc := range tests {
		o := base
		tc.change(&o)
		if _, err := Generate(t.TempDir(), o); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

func TestCustomVocabulary(t *testing.T) {
	o := small(LayoutSeed)
	o.JSONOnly = true
	o.Vocabulary = []string{"alpha", "beta", "gamma"}
	o.Plant = []Plant{{"delta", 1}}
	dir, m := generate(t, o)
	raw, err := os.ReadFile(filepath.Join(dir, "sessions", m.Sessions[0].ID, "screenshots", "chunk-000.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte("Gamma")) && !bytes.Contains(raw, []byte("gamma")) {
		t.Error("custom vocabulary not used")
	}
	if bytes.Contains(raw, []byte("deploy")) {
		t.Error("default vocabulary used despite a custom one")
	}
	if len(m.IDs(func(s SessionInfo) bool { return slices.Contains(s.Words, "delta") })) != len(m.Sessions) {
		t.Error("share 1 did not plant in every session")
	}
}

func BenchmarkGenerateJSONOnly(b *testing.B) {
	o := DefaultOptions()
	o.Sessions = 200
	o.JSONOnly = true
	benchGenerate(b, o)
}

func BenchmarkGenerateAppLayout(b *testing.B) {
	o := DefaultOptions()
	o.Sessions = 200
	o.JSONOnly = true
	o.Layout = LayoutApp
	benchGenerate(b, o)
}

func BenchmarkGenerateWithAttachments(b *testing.B) {
	o := DefaultOptions()
	o.Sessions = 10
	benchGenerate(b, o)
}

func benchGenerate(b *testing.B, o Options) {
	dir := b.TempDir()
	var bytesOut int64
	for i := 0; b.Loop(); i++ {
		m, err := Generate(filepath.Join(dir, "run", string(rune('a'+i%26))), o)
		if err != nil {
			b.Fatal(err)
		}
		bytesOut = m.Bytes
		b.StopTimer()
		os.RemoveAll(filepath.Join(dir, "run"))
		b.StartTimer()
	}
	b.SetBytes(bytesOut)
	b.ReportMetric(float64(o.Sessions)*float64(b.N)/b.Elapsed().Seconds(), "sessions/s")
}
