package s3

import (
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	cases := []struct {
		in      string
		want    Config
		wantErr bool
	}{
		{"s3://bucket", Config{Bucket: "bucket"}, false},
		{"s3://bucket/", Config{Bucket: "bucket"}, false},
		{"s3://bucket/a/b", Config{Bucket: "bucket", Prefix: "a/b/"}, false},
		{"s3://bucket/a/", Config{Bucket: "bucket", Prefix: "a/"}, false},
		{"s3://b/a/", Config{}, true},
		{"s3://Bad_Bucket/a/", Config{}, true},
		{"http://bucket/a", Config{}, true},
		{"s3:///a", Config{}, true},
		{"s3://key:secret@bucket/a", Config{}, true},
		{"bucket/a", Config{}, true},
	}
	for _, c := range cases {
		got, err := ParseURL(c.in)
		if (err != nil) != c.wantErr || err == nil && got != c.want {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v (error %v)", c.in, got, err, c.want, c.wantErr)
		}
	}
}

func TestParseEndpoint(t *testing.T) {
	for in, want := range map[string]string{"": "", "http://127.0.0.1:9000": "http://127.0.0.1:9000",
		"https://s3.example.com/": "https://s3.example.com", "ftp://x": "!", "http://k:s@host": "!", "host:9000": "!", "http://h/path": "!"} {
		got, err := ParseEndpoint(in)
		if want == "!" {
			if err == nil {
				t.Errorf("ParseEndpoint(%q) = %q, want an error", in, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("ParseEndpoint(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	// Nothing said, nothing recorded: local.
	if _, ok, err := Resolve(dir, Config{}); ok || err != nil {
		t.Fatalf("fresh dir: ok=%v err=%v", ok, err)
	}
	if _, _, err := Resolve(dir, Config{Endpoint: "http://h:1"}); err == nil {
		t.Fatal("an endpoint without --blobs was accepted")
	}
	first := Config{Bucket: "b", Prefix: "p/", Endpoint: "http://h:1"}
	steps := []struct {
		name    string
		want    Config
		expect  Config
		wantErr string
	}{
		{"adopt", first, first, ""},
		{"remembered", Config{}, first, ""},
		{"new endpoint", Config{Endpoint: "http://h:2"}, Config{Bucket: "b", Prefix: "p/", Endpoint: "http://h:2"}, ""},
		{"same bucket, endpoint kept", Config{Bucket: "b", Prefix: "p/"}, Config{Bucket: "b", Prefix: "p/", Endpoint: "http://h:2"}, ""},
		{"other prefix", Config{Bucket: "b", Prefix: "q/"}, Config{}, "keeps its blobs in s3://b/p/"},
		{"other bucket", Config{Bucket: "c", Prefix: "p/"}, Config{}, "keeps its blobs"},
	}
	for _, s := range steps {
		got, ok, err := Resolve(dir, s.want)
		if s.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), s.wantErr) {
				t.Errorf("%s: err %v, want %q", s.name, err, s.wantErr)
			}
			continue
		}
		if err != nil || !ok || got != s.expect {
			t.Errorf("%s: %+v ok=%v err=%v; want %+v", s.name, got, ok, err, s.expect)
		}
		if rec, _, _ := LoadConfig(dir); rec != s.expect {
			t.Errorf("%s: recorded %+v, want %+v", s.name, rec, s.expect)
		}
	}
}
