package envelope

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

func gz(t testing.TB, payload []byte) string {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(payload)
	zw.Close()
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

func wrap(data string) string {
	return `{"version":1,"checksum":"x","timestamp":1,"compressed":true,"data":` + data + `}`
}

func TestUnwrap(t *testing.T) {
	payload := `{"id":"s1","tags":["a"]}`
	b64 := gz(t, []byte(payload))
	inner := wrap(`"GZIP_V1:` + b64 + `"`)
	innerQuoted, _ := json.Marshal(inner)
	tests := []struct {
		name, in, want string
		err            error
	}{
		{name: "plain object", in: payload, want: payload},
		{name: "plain array", in: `[1,2]`, want: `[1,2]`},
		{name: "gzip envelope", in: wrap(`"GZIP_V1:` + b64 + `"`), want: payload},
		{name: "gzip envelope, base64 with line breaks", in: wrap(`"GZIP_V1:` + b64[:8] + `\n` + b64[8:] + `"`), want: payload},
		{name: "raw JSON string in envelope", in: `{"version":1,"checksum":"x","compressed":false,"data":"{\"id\":\"s1\"}"}`, want: `{"id":"s1"}`},
		{name: "value in envelope", in: `{"version":1,"timestamp":1,"data":[3]}`, want: `[3]`},
		{name: "bare string in envelope", in: `{"version":1,"timestamp":1,"data":"hello there"}`, want: `"hello there"`},
		{name: "nested envelope", in: wrap(string(innerQuoted)), want: payload},
		{name: "escaped key names", in: `{"vers\u0069on":1,"checksum":"x","d\u0061ta":[4]}`, want: `[4]`},
		{name: "keys match exactly", in: `{"Version":1,"Checksum":"x","Data":[4]}`, want: `{"Version":1,"Checksum":"x","Data":[4]}`},
		{name: "one marker is not an envelope", in: `{"id":"x","version":2,"data":"y"}`, want: `{"id":"x","version":2,"data":"y"}`},
		{name: "object with a data member is not an envelope", in: `{"id":"x","data":"y"}`, want: `{"id":"x","data":"y"}`},
		{name: "not JSON", in: `{"version":1,`, err: ErrInvalidJSON},
		{name: "bad gzip", in: `{"version":1,"checksum":"x","data":"GZIP_V1:AAAA"}`, err: ErrCorrupt},
		{name: "bad base64", in: `{"version":1,"checksum":"x","data":"GZIP_V1:@@@"}`, err: ErrCorrupt},
		{name: "gzip of non-JSON", in: wrap(`"GZIP_V1:` + gz(t, []byte("not json")) + `"`), err: ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Unwrap([]byte(tt.in))
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Unwrap = %q, %v; want error %v", got, err, tt.err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("Unwrap = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// A gzip bomb: a few KiB that inflate past the cap fail without
// allocating what they claim.
func TestUnwrapCap(t *testing.T) {
	big := bytes.Repeat([]byte(" "), 1<<20)
	big[0], big[len(big)-1] = '[', ']'
	env := []byte(wrap(`"GZIP_V1:` + gz(t, big) + `"`))
	if len(env) > 8<<10 {
		t.Fatalf("test bomb is %d bytes", len(env))
	}
	if _, err := UnwrapLimit(env, 1<<20-1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("1 MiB payload under a cap of 1 MiB-1: %v, want ErrTooLarge", err)
	}
	got, err := UnwrapLimit(env, 1<<20)
	if err != nil || len(got) != 1<<20 {
		t.Fatalf("1 MiB payload under a cap of 1 MiB: %d bytes, %v", len(got), err)
	}
}

func TestDecodeBase64(t *testing.T) {
	data := []byte("\xff\xd8\xff\xe0 some bytes \x00\x01")
	for _, in := range []string{
		base64.StdEncoding.EncodeToString(data),
		base64.RawStdEncoding.EncodeToString(data),
		base64.RawURLEncoding.EncodeToString(data),
		strings.Join(strings.SplitAfter(base64.StdEncoding.EncodeToString(data), "A"), "\r\n"),
	} {
		got, err := DecodeBase64(in)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("DecodeBase64(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := DecodeBase64("@@@@"); err == nil {
		t.Error("DecodeBase64(@@@@) succeeded")
	}
}

// The seed corpus is in testdata/fuzz/FuzzUnwrap; the f.Add seeds cover
// every form of envelope.
func FuzzUnwrap(f *testing.F) {
	f.Add([]byte(`{"id":"s1"}`))
	f.Add([]byte(`{"version":1,"timestamp":1,"data":"hello"}`))
	f.Add([]byte(`{"version":1,"checksum":"x","data":"{\"a\":[1,2]}"}`))
	f.Add([]byte(wrap(`"GZIP_V1:` + gz(f, []byte(`{"id":"s1","tags":["a"]}`)) + `"`)))
	f.Add([]byte(wrap(`"GZIP_V1:` + gz(f, bytes.Repeat([]byte("[1]"), 1)) + `"`)))
	f.Add([]byte(`{"ver\u0073ion":1,"checksum":"x","data":{"version":1,"checksum":2,"data":[]}}`))
	const limit = 1 << 16
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := UnwrapLimit(in, limit)
		if err != nil {
			if !errors.Is(err, ErrInvalidJSON) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unexpected error %v", err)
			}
			if errors.Is(err, ErrInvalidJSON) == json.Valid(in) {
				t.Fatalf("ErrInvalidJSON is %v for input whose validity is %v", err, json.Valid(in))
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("Unwrap(%q) = %q, not JSON", in, out)
		}
		if len(out) > max(len(in), limit) {
			t.Fatalf("Unwrap returned %d bytes from %d with a cap of %d", len(out), len(in), limit)
		}
		if _, isEnv := Data(in); !isEnv && !bytes.Equal(out, in) {
			t.Fatalf("non-envelope %q changed to %q", in, out)
		}
		// eachMember agrees with encoding/json on the set of keys.
		var m map[string]json.RawMessage
		if json.Unmarshal(in, &m) == nil && FirstByte(in) == '{' {
			keys := map[string]bool{}
			EachMember(in, func(k string, v []byte) {
				keys[k] = true
				if !json.Valid(v) {
					t.Fatalf("member %q value %q is not JSON", k, v)
				}
			})
			for k := range m {
				if !keys[k] {
					t.Fatalf("key %q missed in %q", k, in)
				}
			}
		}
	})
}
