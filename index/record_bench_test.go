package index

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkBuildRecord is the extraction a commit's prepare workers and a
// reindex run per file: the JSON walk, tokenizing, counting and sorting
// the terms, the snippet text and the sums.
func BenchmarkBuildRecord(b *testing.B) {
	files := benchFiles(b, rand.New(rand.NewPCG(1, 1)), 50)
	var bytes int64
	for _, f := range files {
		bytes += int64(len(f.content))
	}
	b.SetBytes(bytes / int64(len(files)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f := files[i%len(files)]
		buildRecord(f.sid, f.kind, f.content)
	}
}
