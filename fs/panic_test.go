package fs

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// TestHandlerPanic: a handler's panic is answered EIO and logged through
// slog with the panic value and the stack that raised it.
func TestHandlerPanic(t *testing.T) {
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	defer slog.SetDefault(old)
	if st := handlerPanic("boom in a handler"); st != fuse.EIO {
		t.Fatalf("status %v, want EIO", st)
	}
	out := buf.String()
	for _, want := range []string{"boom in a handler", "TestHandlerPanic", "level=ERROR"} {
		if !strings.Contains(out, want) {
			t.Fatalf("log lacks %q:\n%s", want, out)
		}
	}
}
