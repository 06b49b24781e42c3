package migrate

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"testing"

	appenvelope "github.com/taskerfs/taskerfs/envelope"
)

// A session file whose GZIP_V1 payload inflates past the cap is refused
// instead of read whole: a few hundred KiB must not cost gigabytes.
func TestUnwrapCapsPayload(t *testing.T) {
	payload := bytes.Repeat([]byte(" "), appenvelope.MaxDecodedBytes+1<<20)
	payload[0], payload[len(payload)-1] = '[', ']'
	var gz bytes.Buffer
	zw := gzipWriter(&gz)
	zw.Write(payload)
	zw.Close()
	payload = nil
	env, _ := json.Marshal(map[string]any{"version": 1, "checksum": "x", "timestamp": 1,
		"compressed": true, "data": gzipPrefix + base64.StdEncoding.EncodeToString(gz.Bytes())})
	got, err := unwrap(env)
	if err == nil {
		t.Fatalf("unwrap of a %d-byte envelope inflating to %d bytes succeeded (%d bytes)", len(env), appenvelope.MaxDecodedBytes+1<<20, len(got))
	}
}

func FuzzParseDocument(f *testing.F) {
	f.Add([]byte(`{"id":"s1","tags":["a"]}`))
	f.Add([]byte(`{"version":1,"checksum":"x","compressed":false,"data":"{\"id\":\"s1\"}"}`))
	f.Add([]byte(`{"version":1,"timestamp":1,"data":{"id":"s2","name":"n"}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		o, err := parseDocument(in, 1<<16)
		if err != nil {
			return
		}
		// A parsed document is an object whose members are valid JSON.
		for i, k := range o.keys {
			if !json.Valid(o.vals[i]) {
				t.Fatalf("member %q = %q is not JSON", k, o.vals[i])
			}
		}
	})
}
