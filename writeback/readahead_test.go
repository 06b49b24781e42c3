package writeback_test

import (
	"testing"

	"github.com/taskerfs/taskerfs/meta"
	"github.com/taskerfs/taskerfs/writeback"
)

// A handle reading sequentially loads chunks ahead of itself; what it
// reads must still be the file as it is at each read: chunks rewritten,
// truncated away or written but not committed after the read-ahead began
// are read as they are now, and a seek reads the right place.
func TestReadAheadSeesChanges(t *testing.T) {
	const chunk = meta.ChunkSize
	cases := []struct {
		name   string
		change func(e *env, ino uint64, want []byte) []byte // after the first read; returns the new content
	}{
		{"no change", func(e *env, ino uint64, want []byte) []byte { return want }},
		{"chunk 2 rewritten and committed", func(e *env, ino uint64, want []byte) []byte {
			e.openFile(ino)
			d := data(chunk, 99)
			e.write(ino, d, 2*chunk)
			e.wb.Release(ino)
			if err := e.wb.SyncAll(); err != nil {
				t.Fatal(err)
			}
			return append(append(append([]byte{}, want[:2*chunk]...), d...), want[3*chunk:]...)
		}},
		{"chunk 1 rewritten, still dirty", func(e *env, ino uint64, want []byte) []byte {
			e.openFile(ino) // stays open: the bytes are only in memory
			d := data(chunk/2, 98)
			e.write(ino, d, chunk+100)
			out := append([]byte{}, want...)
			copy(out[chunk+100:], d)
			return out
		}},
		{"truncated to 1.5 chunks and committed", func(e *env, ino uint64, want []byte) []byte {
			e.openFile(ino)
			e.truncate(ino, chunk+chunk/2)
			e.wb.Release(ino)
			if err := e.wb.SyncAll(); err != nil {
				t.Fatal(err)
			}
			return want[:chunk+chunk/2]
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, setup{})
			ino := e.create("f")
			want := data(5*chunk, 7)
			e.writeFile(ino, want)
			if err := e.wb.SyncAll(); err != nil {
				t.Fatal(err)
			}
			var rc writeback.ReadCache
			buf := make([]byte, 128<<10)
			read := func(off int64) []byte {
				t.Helper()
				n, err := e.wb.Read(ino, buf, off, &rc)
				if err != nil {
					t.Fatalf("read at %d: %v", off, err)
				}
				return append([]byte{}, buf[:n]...)
			}
			sameBytes(t, "first read", read(0), want[:len(buf)])
			want = c.change(e, ino, want)
			var got []byte
			for off := int64(len(buf)); off < int64(len(want)); off += int64(len(buf)) {
				got = append(got, read(off)...)
			}
			sameBytes(t, "rest of the file", got, want[len(buf):])
			// A seek back and a sequential run from there.
			sameBytes(t, "after a seek", append(read(chunk-4096), read(chunk-4096+int64(len(buf)))...),
				want[chunk-4096:chunk-4096+2*len(buf)])
		})
	}
}
