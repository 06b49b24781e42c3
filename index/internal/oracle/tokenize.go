package oracle

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxTermBytes caps a term's length; longer words are cut at a rune boundary
// (the same cut applies to query words, so they still match).
const maxTermBytes = 64

// stopWords are dropped by the tokenizer, as in the seed.
var stopWords = map[string]bool{
	"the": true, "a": true, "an": true, "and": true, "or": true, "but": true,
	"in": true, "on": true, "at": true, "to": true, "for": true,
}

// isWordRune reports whether r belongs to a word: letters, digits and combining
// marks (so that decomposed accents and Indic vowel signs do not split words).
func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)
}

// scanTokens calls fn for every token of s with the byte range [start,end) of
// the word in s, until fn returns false. Tokens are lowercased, at least two
// runes long, not stop words, and cut to maxTermBytes.
func scanTokens(s string, fn func(tok string, start, end int) bool) {
	var b strings.Builder
	i := 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !isWordRune(r) {
			i += size
			continue
		}
		start := i
		b.Reset()
		runes, full := 0, false
		for i < len(s) {
			r, size = utf8.DecodeRuneInString(s[i:])
			if !isWordRune(r) {
				break
			}
			i += size
			runes++
			l := unicode.ToLower(r)
			if !full && b.Len()+utf8.RuneLen(l) <= maxTermBytes {
				b.WriteRune(l)
			} else {
				full = true
			}
		}
		if runes < 2 {
			continue
		}
		tok := b.String()
		if stopWords[tok] {
			continue
		}
		if !fn(tok, start, i) {
			return
		}
	}
}

// Tokenize splits s into index terms: lowercase, split on anything that is not
// a letter, digit or combining mark (Unicode aware), tokens shorter than two
// runes and the stop words "the a an and or but in on at to for" dropped.
func Tokenize(s string) []string {
	var out []string
	scanTokens(s, func(tok string, _, _ int) bool {
		out = append(out, tok)
		return true
	})
	return out
}
