package index

import (
	"unicode"
	"unicode/utf8"
)

// maxTermBytes caps a term's length; longer words are cut at a rune boundary
// (the same cut applies to query words, so they still match).
const maxTermBytes = 64

// stopWords are dropped by the tokenizer, as in the seed: the, a, an, and,
// or, but, in, on, at, to, for (isStopWord; "a" is shorter than a token).
func isStopWord(b []byte) bool {
	switch len(b) {
	case 2:
		switch string(b) {
		case "an", "or", "in", "on", "at", "to":
			return true
		}
	case 3:
		switch string(b) {
		case "the", "and", "but", "for":
			return true
		}
	}
	return false
}

// asciiWord maps an ASCII byte to itself lowercased when it belongs to a
// word (a letter or digit), else to 0.
var asciiWord = func() (t [utf8.RuneSelf]byte) {
	for c := byte('0'); c <= '9'; c++ {
		t[c] = c
	}
	for c := byte('a'); c <= 'z'; c++ {
		t[c] = c
		t[c-'a'+'A'] = c
	}
	return t
}()

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
	scanTokenBytes(s, func(tok []byte, start, end int) bool { return fn(string(tok), start, end) })
}

// scanTokenBytes is scanTokens without an allocation per token: tok is only
// valid until fn returns.
func scanTokenBytes(s string, fn func(tok []byte, start, end int) bool) {
	var buf [maxTermBytes]byte
	i := 0
	for i < len(s) {
		if c := s[i]; c < utf8.RuneSelf {
			if asciiWord[c] == 0 {
				i++
				continue
			}
		} else if r, size := utf8.DecodeRuneInString(s[i:]); !isWordRune(r) {
			i += size
			continue
		}
		start := i
		b := buf[:0]
		runes, full := 0, false
		for i < len(s) {
			if c := s[i]; c < utf8.RuneSelf {
				l := asciiWord[c]
				if l == 0 {
					break
				}
				i++
				runes++
				if full {
					continue
				}
				if len(b) < maxTermBytes {
					b = append(b, l)
				} else {
					full = true
				}
				continue
			}
			r, size := utf8.DecodeRuneInString(s[i:])
			if !isWordRune(r) {
				break
			}
			i += size
			runes++
			if full {
				continue
			}
			l := unicode.ToLower(r)
			if len(b)+utf8.RuneLen(l) <= maxTermBytes {
				b = utf8.AppendRune(b, l)
			} else {
				full = true
			}
		}
		if runes < 2 || isStopWord(b) {
			continue
		}
		if !fn(b, start, i) {
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
