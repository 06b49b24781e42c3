package meta

import "testing"

func TestOpenTablesFor(t *testing.T) {
	for _, c := range []struct {
		nofile uint64
		want   int
	}{
		{0, 1000}, // unknown: pebble's default
		{1024, 1000},
		{4096, 2048},
		{20000, 10000},
		{1 << 20, 16384},
	} {
		if got := openTablesFor(c.nofile); got != c.want {
			t.Errorf("openTablesFor(%d) = %d, want %d", c.nofile, got, c.want)
		}
	}
}
