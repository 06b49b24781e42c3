package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestContentRoundTrip writes contents of every kind and reads exactly the
// same bytes back, before and after a remount.
func TestContentRoundTrip(t *testing.T) {
	m := mountFS(t, newDataDir(t))
	jpeg := append([]byte{0xff, 0xd8, 0xff, 0xe0}, randomBytes(20, 100<<10)...)
	cases := []struct {
		name string
		path string // under the mount
		data []byte
	}{
		{"empty", "sessions/c/empty", nil},
		{"one zero byte", "sessions/c/zero", []byte{0}},
		{"binary random", "sessions/c/random.bin", randomBytes(21, 3<<20+17)},
		{"exactly one chunk", "sessions/c/1mib.bin", randomBytes(22, 1<<20)},
		{"one chunk plus a byte", "sessions/c/1mib1.bin", randomBytes(23, 1<<20+1)},
		{"zeros", "sessions/c/zeros", make([]byte, 2<<20)},
		{"compressible text", "sessions/c/log.txt", bytes.Repeat([]byte("INFO request served in 3ms\r\n"), 40_000)},
		{"jpeg magic", "sessions/c/photo.jpg", jpeg},
		{"non-JSON text", "sessions/c/notes.txt", []byte("{not json: [1, 2,\n\x00\xff trailing garbage")},
		{"broken metadata.json", "sessions/s1/metadata.json", []byte(`{"id": "s1", "name": "unterminated`)},
		{"valid JSON with odd spacing", "sessions/s2/metadata.json", []byte("{ \"id\":\"s2\" ,\n\t\"name\" : \"kept verbatim\",\"tags\":[ ] }\n\n")},
		{"app envelope", "sessions/s3/summary.json", []byte(`{"version":1,"checksum":"x","timestamp":0,"compressed":true,"data":"GZIP_V1:H4sIAAAAAAAA/6tWyk0tLk5MT1WyUoJxFQC00R1sEgAAAA=="}`)},
		{"outside sessions", "c-root/file.bin", randomBytes(24, 5000)},
	}
	// Small compressible files, one per size around the inline and
	// compression thresholds.
	for _, n := range []int{1, 2, 63, 64, 65, 100, 128, 129, 200, 255, 256, 257, 300, 1000, 4096} {
		cases = append(cases, struct {
			name string
			path string
			data []byte
		}{fmt.Sprintf("compressible %d bytes", n), fmt.Sprintf("sessions/small/%d.txt", n),
			[]byte(strings.Repeat("ab"+strconv.Itoa(n), n)[:n])})
	}
	for _, c := range cases {
		mustMkdirAll(t, filepath.Dir(m.Path(c.path)))
		mustWrite(t, m.Path(c.path), c.data)
	}
	// The same random bytes, written back to front in odd-sized pieces.
	scattered := randomBytes(25, 2<<20+333)
	writeScattered(t, m.Path("sessions/c/scattered.bin"), scattered, 4097)
	cases = append(cases, struct {
		name string
		path string
		data []byte
	}{"written back to front", "sessions/c/scattered.bin", scattered})

	check := func(when string) {
		t.Helper()
		for _, c := range cases {
			got, err := os.ReadFile(m.Path(c.path))
			if err != nil {
				t.Errorf("%s, %s: read: %v", when, c.name, err)
				continue
			}
			if !bytes.Equal(got, c.data) {
				t.Errorf("%s, %s: read %d bytes, want %d; first difference at %d", when, c.name, len(got), len(c.data), firstDiff(got, c.data))
			}
		}
	}
	check("before remount")
	m.Remount()
	check("after remount")
	m.Unmount()
}

// writeScattered writes data to path in pieces of size piece, last piece
// first.
func writeScattered(t testing.TB, path string, data []byte, piece int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for off := (len(data) - 1) / piece * piece; off >= 0; off -= piece {
		if _, err := f.WriteAt(data[off:min(off+piece, len(data))], int64(off)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// seededStream is an endless reproducible random byte stream.
func seededStream(seed uint64) io.Reader {
	return rand.NewChaCha8([32]byte{byte(seed), 0xa5, byte(seed >> 8)})
}

// TestLargeFile1GiB streams 1 GiB of random bytes through the mount and
// compares sha256 after a remount; neither side holds the file in memory.
func TestLargeFile1GiB(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the 1 GiB round trip takes the better part of a minute")
	}
	const size = 1 << 30
	m := mountFS(t, newDataDir(t))
	path := m.Path("sessions", "big.bin")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	buf := make([]byte, 1<<20)
	n, err := io.CopyBuffer(io.MultiWriter(f, h), io.LimitReader(seededStream(1), size), buf)
	if err != nil || n != size {
		t.Fatalf("write: %d bytes, %v", n, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	want := hex.EncodeToString(h.Sum(nil))
	// Dirty data spills to the staging dir; a daemon that buffered the
	// whole file in memory would show it here.
	if rss := m.PeakRSS(); rss > 512<<20 {
		t.Errorf("daemon peak RSS %d MiB after writing 1 GiB", rss>>20)
	} else {
		t.Logf("daemon peak RSS after writing 1 GiB: %d MiB", rss>>20)
	}

	m.Remount()
	if st := lstat(t, path); st.Size != size {
		t.Fatalf("size after remount %d, want %d", st.Size, size)
	}
	got, err := fileSHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("sha256 after remount %s, want %s", got, want)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	m.Unmount()
}

// TestSparse4GiB writes data after a 4 GiB hole: the size is right, the
// hole reads as zeros and the data dir stores no hole.
func TestSparse4GiB(t *testing.T) {
	const holeEnd = 4 << 30
	tail := []byte("data after a 4 GiB hole")
	data := newDataDir(t)
	m := mountFS(t, data)
	path := m.Path("sessions", "sparse.bin")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(tail, holeEnd); err != nil {
		t.Fatalf("pwrite at 4 GiB: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	before := diskUsage(t, data)

	check := func(when string) {
		t.Helper()
		if st := lstat(t, path); st.Size != holeEnd+int64(len(tail)) {
			t.Errorf("%s: size %d, want %d", when, st.Size, holeEnd+int64(len(tail)))
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		zeros := make([]byte, 1<<20)
		buf := make([]byte, 1<<20)
		for _, off := range []int64{0, 1<<20 - 7, 1 << 30, 3<<30 + 12345, holeEnd - 1<<20} {
			n, err := f.ReadAt(buf, off)
			if err != nil || n != len(buf) || !bytes.Equal(buf, zeros) {
				t.Errorf("%s: reading the hole at %d: %d bytes, %v, zeros=%v", when, off, n, err, bytes.Equal(buf[:n], zeros[:n]))
			}
		}
		end := make([]byte, 100)
		n, err := f.ReadAt(end, holeEnd-10)
		if err != io.EOF || n != 10+len(tail) {
			t.Errorf("%s: reading across the end of the hole: %d bytes, %v; want %d and EOF", when, n, err, 10+len(tail))
		}
		if want := append(make([]byte, 10), tail...); !bytes.Equal(end[:n], want) {
			t.Errorf("%s: end of the file is %q, want %q", when, end[:n], want)
		}
	}
	check("before remount")
	m.Remount()
	check("after remount")
	m.Unmount()
	if grew := diskUsage(t, data) - before; grew > 64<<20 {
		t.Errorf("the data dir grew by %d MiB for a file of %d bytes of data", grew>>20, len(tail))
	}
}

// TestDedup stores five copies of a 1 MiB file as one blob, answers the
// content hash as an xattr, and gives the space back after gc.
func TestDedup(t *testing.T) {
	requireTool(t, "getfattr", "sha256sum", "cp")
	data := newDataDir(t)
	m := mountFS(t, data)
	const size = 1 << 20
	content := randomBytes(30, size)
	paths := []string{
		m.Path("sessions", "dup", "a.bin"),
		m.Path("sessions", "dup", "deeper", "b.bin"),
		m.Path("sessions", "other", "c.jpg"),
		m.Path("dedup-root", "d"),
		m.Path("sessions", "dup", "e-by-cp.bin"),
	}
	for _, p := range paths[:4] {
		mustMkdirAll(t, filepath.Dir(p))
		mustWrite(t, p, content)
	}
	run(t, "", "cp", paths[0], paths[4])
	// A sixth file first holds other bytes and is then overwritten with the
	// shared content: its first blob must become garbage.
	replaced := m.Path("sessions", "dup", "replaced.bin")
	mustWrite(t, replaced, randomBytes(31, size))
	m.Remount()
	filesBefore, bytesBefore := blobUsage(t, data)
	mustWrite(t, replaced, content)
	paths = append(paths, replaced)
	m.Remount()

	files, stored := blobUsage(t, data)
	if files != 2 {
		t.Errorf("%d blob files for six copies of one 1 MiB file plus one replaced version, want 2 (blobs before the overwrite: %d files)", files, filesBefore)
	}
	if stored > 2*size+64<<10 {
		t.Errorf("blobs take %d bytes for two distinct 1 MiB contents", stored)
	}
	sum := sha256.Sum256(content)
	want := hex.EncodeToString(sum[:])
	for _, p := range paths {
		got := strings.TrimSpace(run(t, "", "getfattr", "--absolute-names", "--only-values", "-n", "user.taskerfs.sha256", p))
		if got != want {
			t.Errorf("%s: user.taskerfs.sha256 = %q, want %s", p, got, want)
		}
		if out := run(t, "", "sha256sum", p); !strings.HasPrefix(out, want+" ") {
			t.Errorf("sha256sum %s = %s, want %s", p, out, want)
		}
	}

	// gc while mounted removes only the replaced version's blob.
	run(t, "", taskerfsBin, "gc", "--data", data)
	if files, stored := blobUsage(t, data); files != 1 || stored > size+64<<10 {
		t.Errorf("after gc: %d blob files, %d bytes; want the shared blob only (%d bytes before the overwrite)", files, stored, bytesBefore)
	}
	if got := mustRead(t, paths[0]); !bytes.Equal(got, content) {
		t.Errorf("gc damaged a live file")
	}

	for _, p := range paths {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	out := run(t, "", taskerfsBin, "gc", "--data", data)
	if files, stored := blobUsage(t, data); files != 0 || stored != 0 {
		t.Errorf("after deleting every copy and gc: %d blob files, %d bytes remain; gc said: %s", files, stored, out)
	}
	m.Unmount()
	// gc of an unmounted data dir finds nothing more to do.
	if out := run(t, "", taskerfsBin, "gc", "--data", data); !strings.Contains(out, "removed 0") {
		t.Errorf("gc after unmount: %s", out)
	}
}
