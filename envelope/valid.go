package envelope

import (
	"bytes"

	"github.com/tidwall/gjson"
)

// maxNesting is encoding/json's limit on nested arrays and objects: deeper
// input is not valid JSON to it, so it is not to Valid either.
const maxNesting = 10000

// Valid reports whether b is valid JSON, exactly as encoding/json.Valid
// does (FuzzValid holds the two to each other), about four times faster:
// every session file is validated on ingest, reindex and import.
//
// It is gjson's validator (tidwall/gjson, a single-pass byte scanner)
// behind a pass that measures the nesting first: gjson recurses once per
// level and would overflow the stack (a fatal error, not a panic) on a few
// megabytes of "[", where encoding/json stops at 10,000 levels.
func Valid(b []byte) bool {
	return nestingWithin(b, maxNesting) && gjson.ValidBytes(b)
}

// nestingWithin reports whether no array or object in b opens more than
// limit levels deep, counting brackets outside strings as a JSON scanner
// sees them (a string starts at a quote and ends at the next quote not
// escaped by a backslash).
func nestingWithin(b []byte, limit int) bool {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			// The string ends at the next quote after an even run of
			// backslashes (each backslash escapes the byte after it).
			j := i + 1
			for {
				k := bytes.IndexByte(b[j:], '"')
				if k < 0 {
					return true // unterminated: nothing nests further
				}
				j += k
				n := 0
				for p := j - 1; p > i && b[p] == '\\'; p-- {
					n++
				}
				if n%2 == 0 {
					break
				}
				j++
			}
			i = j
		case '[', '{':
			if depth++; depth > limit {
				return false
			}
		case ']', '}':
			depth--
		}
	}
	return true
}
