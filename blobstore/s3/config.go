package s3

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// Config names a bucket location. It is what a data dir remembers (in
// ConfigFile), so that every later command uses the same backend; it never
// holds credentials.
type Config struct {
	Bucket   string `json:"bucket"`
	Prefix   string `json:"prefix,omitempty"`   // "" or ends in "/"
	Endpoint string `json:"endpoint,omitempty"` // http(s)://host:port; "" is AWS
	Region   string `json:"region,omitempty"`
}

// ConfigFile is the file in a data dir that selects the S3 backend.
const ConfigFile = "blobs-s3.json"

// ParseURL parses s3://BUCKET[/PREFIX]. The prefix gets a trailing slash.
func ParseURL(s string) (Config, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Config{}, fmt.Errorf("blobs URL %q: %w", s, err)
	}
	if u.Scheme != "s3" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return Config{}, fmt.Errorf("blobs URL %q: want s3://BUCKET/PREFIX", s)
	}
	if err := s3utils.CheckValidBucketNameStrict(u.Host); err != nil {
		return Config{}, fmt.Errorf("blobs URL %q: %w", s, err)
	}
	c := Config{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}
	if c.Prefix != "" {
		c.Prefix += "/"
	}
	return c, nil
}

// URL is the s3:// form of c.
func (c Config) URL() string { return "s3://" + c.Bucket + "/" + c.Prefix }

// ParseEndpoint checks an --s3-endpoint value and returns it normalised.
func ParseEndpoint(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || strings.Trim(u.Path, "/") != "" {
		return "", fmt.Errorf("s3 endpoint %q: want http(s)://HOST[:PORT] (credentials come from the environment, never the URL)", s)
	}
	return u.Scheme + "://" + u.Host, nil
}

// LoadConfig reads dataDir's backend choice; ok is false for a data dir
// that keeps its blobs locally.
func LoadConfig(dataDir string) (c Config, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dataDir, ConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return c, false, nil
	}
	if err != nil {
		return c, false, err
	}
	if len(b) > 1<<16 {
		return c, false, fmt.Errorf("%s: too large", ConfigFile)
	}
	if err := json.Unmarshal(b, &c); err != nil || c.Bucket == "" {
		return c, false, fmt.Errorf("%s: not a blob backend config (%v)", filepath.Join(dataDir, ConfigFile), err)
	}
	return c, true, nil
}

// SaveConfig records c in dataDir durably (write, fsync, rename, fsync dir).
func SaveConfig(dataDir string, c Config) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dataDir, ConfigFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dataDir, ConfigFile))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(dataDir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Resolve decides a data dir's backend from what the command line asked
// (want, zero for "nothing said") and what the data dir remembers. A data
// dir that holds an S3 choice keeps it: a different bucket or prefix is an
// error (its blobs are there), a new endpoint or region replaces the old
// one. A data dir without one adopts want; it may hold local blobs, which
// then become uploads pending to the bucket. ok is false for local blobs.
func Resolve(dataDir string, want Config) (c Config, ok bool, err error) {
	have, had, err := LoadConfig(dataDir)
	if err != nil {
		return c, false, err
	}
	switch {
	case want.Bucket == "" && !had:
		if want.Endpoint != "" {
			return c, false, fmt.Errorf("--s3-endpoint needs --blobs s3://BUCKET/PREFIX")
		}
		return c, false, nil
	case want.Bucket == "":
		c = have
		if want.Endpoint != "" {
			c.Endpoint = want.Endpoint
		}
		if want.Region != "" {
			c.Region = want.Region
		}
	case had && (want.Bucket != have.Bucket || want.Prefix != have.Prefix):
		return c, false, fmt.Errorf("data dir %s keeps its blobs in %s, not %s", dataDir, have.URL(), want.URL())
	default:
		c = want
		if c.Endpoint == "" {
			c.Endpoint = have.Endpoint
		}
		if c.Region == "" {
			c.Region = have.Region
		}
	}
	if !had || c != have {
		if err := SaveConfig(dataDir, c); err != nil {
			return c, false, fmt.Errorf("record the blob backend: %w", err)
		}
	}
	return c, true, nil
}
