package migrate

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"testing"

	appenvelope "github.com/taskerfs/taskerfs/envelope"
)

func TestParseObject(t *testing.T) {
	tests := []struct {
		name string
		in   string
		keys []string
		vals []string // compacted
		err  bool
	}{
		{name: "empty", in: `{}`},
		{name: "spaced", in: " {\n \"a\" : 1 ,\t\"b\":[1, {\"c\": \"}\"}] }\n", keys: []string{"a", "b"}, vals: []string{`1`, `[1,{"c":"}"}]`}},
		{name: "order kept", in: `{"z":1,"a":2,"m":3}`, keys: []string{"z", "a", "m"}, vals: []string{"1", "2", "3"}},
		{name: "escaped key and value", in: `{"a\"b\u00e9":"x\\\"y]}","n":null}`, keys: []string{`a"bé`, "n"}, vals: []string{`"x\\\"y]}"`, "null"}},
		{name: "duplicate keeps last", in: `{"a":1,"b":2,"a":3}`, keys: []string{"a", "b"}, vals: []string{"3", "2"}},
		{name: "literals", in: `{"t":true,"f":false,"n":-1.5e3}`, keys: []string{"t", "f", "n"}, vals: []string{"true", "false", "-1.5e3"}},
		{name: "not an object", in: `[1,2]`, err: true},
		{name: "truncated", in: `{"a": `, err: true},
		{name: "trailing data", in: `{"a":1} {}`, err: true},
		{name: "empty input", in: ``, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseObject([]byte(tt.in))
			if (err != nil) != tt.err {
				t.Fatalf("err %v, want error %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if len(o.keys) != len(tt.keys) || len(o.keys) > 0 && !reflect.DeepEqual(o.keys, tt.keys) {
				t.Fatalf("keys %q, want %q", o.keys, tt.keys)
			}
			for i, v := range o.vals {
				var c bytes.Buffer
				if err := json.Compact(&c, v); err != nil || c.String() != tt.vals[i] {
					t.Errorf("value %d: %s, want %s (%v)", i, v, tt.vals[i], err)
				}
			}
		})
	}
}

// FuzzParseObject checks the hand-written splitter against encoding/json.
func FuzzParseObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,"]",{"b":"\""}],"c":null}`, `{"a":1,"a":2}`, `{"\u0041":"\\"}`, `[1]`, `{"a":`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var want map[string]json.RawMessage
		wantErr := json.Unmarshal(data, &want)
		o, err := parseObject(data)
		if wantErr != nil || appenvelope.FirstByte(data) != '{' {
			if err == nil && wantErr != nil {
				t.Fatalf("parseObject accepted what encoding/json rejects: %v", wantErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("parseObject: %v", err)
		}
		if len(o.keys) != len(want) {
			t.Fatalf("%d keys, encoding/json has %d", len(o.keys), len(want))
		}
		for i, k := range o.keys {
			if !sameJSON(o.vals[i], want[k]) {
				t.Fatalf("key %q: %s, encoding/json has %s", k, o.vals[i], want[k])
			}
		}
	})
}

func TestObjectEdits(t *testing.T) {
	o, err := parseObject([]byte(`{"id":"s1","attachmentId":"a1","status":"complete"}`))
	if err != nil {
		t.Fatal(err)
	}
	o.setAfter("attachmentId", "hash", rawString("ab<&>"))
	o.setAfter("missing", "tail", rawInt(7))
	if v, ok := o.take("status"); !ok || string(v) != `"complete"` {
		t.Fatalf("take status: %s %v", v, ok)
	}
	o.set("id", rawBool(false))
	got := string(o.appendJSON(nil))
	want := `{"id":false,"attachmentId":"a1","hash":"ab<&>","tail":7}`
	if got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	if s, ok := o.str("hash"); !ok || s != "ab<&>" {
		t.Errorf("str(hash) = %q, %v", s, ok)
	}
	if _, ok := o.str("tail"); ok {
		t.Error("str of a number succeeded")
	}
	if got := string(rawStrings(nil)); got != "[]" {
		t.Errorf("rawStrings(nil) = %s", got)
	}
}

func TestUnwrap(t *testing.T) {
	payload := `{"id":"s1","tags":["a"]}`
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(payload))
	zw.Close()
	b64 := base64.StdEncoding.EncodeToString(gz.Bytes())
	tests := []struct {
		name, in, want string
		err            bool
	}{
		{name: "plain object", in: payload, want: payload},
		{name: "plain array", in: `[1,2]`, want: `[1,2]`},
		{name: "gzip envelope", in: `{"version":1,"checksum":"x","timestamp":1,"compressed":true,"data":"GZIP_V1:` + b64 + `"}`, want: payload},
		{name: "raw JSON string in envelope", in: `{"version":1,"checksum":"x","compressed":false,"data":"{\"id\":\"s1\"}"}`, want: `{"id":"s1"}`},
		{name: "value in envelope", in: `{"version":1,"timestamp":1,"data":[3]}`, want: `[3]`},
		{name: "bare string in envelope", in: `{"version":1,"timestamp":1,"data":"hello there"}`, want: `"hello there"`},
		{name: "object with a data member is not an envelope", in: `{"id":"x","data":"y"}`, want: `{"id":"x","data":"y"}`},
		{name: "bad gzip", in: `{"version":1,"checksum":"x","data":"GZIP_V1:AAAA"}`, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := unwrap([]byte(tt.in))
			if (err != nil) != tt.err || err == nil && string(got) != tt.want {
				t.Fatalf("unwrap = %s, %v; want %s (error %v)", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestDecodeDataURL(t *testing.T) {
	data := []byte("\xff\xd8\xff\xe0 some jpeg bytes \x00\x01")
	std := base64.StdEncoding.EncodeToString(data)
	tests := []struct {
		name, in, mime string
		err            bool
	}{
		{name: "plain", in: std},
		{name: "data URL", in: "data:image/jpeg;base64," + std, mime: "image/jpeg"},
		{name: "data URL with parameters", in: "data:audio/webm;codecs=opus;base64," + std, mime: "audio/webm"},
		{name: "line breaks", in: std[:10] + "\n" + std[10:20] + "\r\n" + std[20:]},
		{name: "no padding", in: base64.RawStdEncoding.EncodeToString(data)},
		{name: "url-safe", in: base64.RawURLEncoding.EncodeToString(data)},
		{name: "not base64", in: "@@@@", err: true},
		{name: "data URL not base64", in: "data:text/plain,hello", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, mime, err := decodeDataURL(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("err %v, want error %v", err, tt.err)
			}
			if err == nil && (!bytes.Equal(got, data) || mime != tt.mime) {
				t.Fatalf("decoded %q (mime %q), want %q (mime %q)", got, mime, data, tt.mime)
			}
		})
	}
}

func TestExtensionFor(t *testing.T) {
	tests := []struct{ mime, name, want string }{
		{"image/jpeg", "", "jpg"},
		{"IMAGE/PNG", "", "png"},
		{"audio/mp3", "", "mp3"},
		{"audio/mpeg", "x.bin", "mp3"},
		{"audio/webm;codecs=opus", "", "webm"},
		{"application/x-unknown", "report.PDF", "pdf"},
		{"", "weird.name.tar.gz", "gz"},
		{"", "../../etc/passwd", "bin"},
		{"", "noext", "bin"},
		{"", "x.toolongext", "bin"},
	}
	for _, tt := range tests {
		if got := extensionFor(tt.mime, tt.name); got != tt.want {
			t.Errorf("extensionFor(%q, %q) = %q, want %q", tt.mime, tt.name, got, tt.want)
		}
	}
}

func TestIsSessionFile(t *testing.T) {
	for name, want := range map[string]bool{
		"abc.json": true, "abc.tmp.json": false, "abc.1730000000000.backup.json": false,
		"abc.backup-2025-01-01T00:00:00Z.json": false, ".hidden.json": false, "abc.txt": false, ".json": false,
	} {
		if got := isSessionFile(name); got != want {
			t.Errorf("isSessionFile(%q) = %v, want %v", name, got, want)
		}
	}
}
