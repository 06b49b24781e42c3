package index

import (
	"encoding/binary"
	"errors"
)

// Key layout. Every key starts with 'X'; the second byte names the table.
// A session gets a number (num, 4 bytes big-endian) when its first file is
// indexed; postings name sessions by number, which keeps them short whatever
// the session ids look like. Strings inside keys are escaped (0x00 -> 0x00
// 0xFF) and terminated by 0x00 0x01, which keeps byte order equal to string
// order and lets a prefix scan stop at the exact value. fid is the file id
// (inode), 8 bytes big-endian.
//
//	X g                                  global stats: sessions, files, tokens, next session number
//	X F fid                              file record: what the file contributed (for diff and removal)
//	X x fid                              the file's stored text, for snippets
//	X S sid                              the session's number (sid raw, last)
//	X N num                              session aggregate: sid, tokens, files, name, startTime
//	X s num fid                          per-file part of a session (tokens, name, startTime)
//	X t esc(term) num fid                delta posting: term frequency (uvarint; 0 = removed)
//	X T esc(term) seq                    delta postings of one commit, grouped (groups.go)
//	X P esc(term) firstNum               base postings: a packed block (blocks.go, compact.go)
//	X l num>>8                           length column: 256 session lengths (compact.go)
//	X L num                              the session got shorter: uvarint lengthGen then (blocks.go)
//	X v field esc(value) num fid         facet posting (field byte below)
//	X v u esc(category) esc(sub) num fid subCategory within its category
//	X d YYYY-MM-DD num fid               day of startTime (months and after:/before: are ranges)
//	X D num fid                          a dead file: its term postings are gone (dead.go)
//	X E num fid                          the dead file's record, for the purge (dead.go)
//
// Every posting key ends with num fid, so files of one session never collide,
// and removing a file deletes exactly the keys its record lists.
const (
	keyPrefix   = 'X'
	tblGlobal   = 'g'
	tblFile     = 'F'
	tblText     = 'x'
	tblSession  = 'S'
	tblNum      = 'N'
	tblSessFile = 's'
	tblTerm     = 't'
	tblFacet    = 'v'
	tblDay      = 'd'
)

// tailLen is the length of the num fid that ends every posting key.
const tailLen = 4 + 8

// Facet field bytes (the byte after "X v").
const (
	fieldTag      byte = 'g'
	fieldTopic    byte = 'p'
	fieldStatus   byte = 's'
	fieldCategory byte = 'c'
	fieldSub      byte = 'b'
	fieldCatSub   byte = 'u'
)

var errCorrupt = errors.New("index: corrupt key or value")

func tableKey(tbl byte) []byte { return []byte{keyPrefix, tbl} }

func appendEsc(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			dst = append(dst, 0, 0xFF)
		} else {
			dst = append(dst, s[i])
		}
	}
	return append(dst, 0, 1)
}

// decodeEsc reads one escaped string from the front of b.
func decodeEsc(b []byte) (s string, rest []byte, err error) {
	var out []byte
	for i := 0; i < len(b); i++ {
		if b[i] != 0 {
			continue
		}
		if i+1 >= len(b) {
			return "", nil, errCorrupt
		}
		switch b[i+1] {
		case 1:
			if out == nil {
				return string(b[:i]), b[i+2:], nil
			}
			return string(append(out, b[:i]...)), b[i+2:], nil
		case 0xFF:
			out = append(out, b[:i]...)
			out = append(out, 0)
			b = b[i+2:]
			i = -1
		default:
			return "", nil, errCorrupt
		}
	}
	return "", nil, errCorrupt
}

func appendFid(dst []byte, fid uint64) []byte { return binary.BigEndian.AppendUint64(dst, fid) }

// prefixEnd is the smallest key greater than every key starting with p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xFF {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// afterEsc is the smallest key greater than every key beginning with the
// escaped string that p ends with (its terminator 0x00 0x01 becomes 0x00 0x02).
func afterEsc(p []byte) []byte {
	end := append([]byte(nil), p...)
	end[len(end)-1] = 2
	return end
}

func fileKey(fid uint64) []byte { return appendFid(tableKey(tblFile), fid) }
func textKey(fid uint64) []byte { return appendFid(tableKey(tblText), fid) }

func sessionKey(sid string) []byte { return append(tableKey(tblSession), sid...) }
func numKey(num uint32) []byte     { return appendNum(tableKey(tblNum), num) }

func appendNum(dst []byte, num uint32) []byte { return binary.BigEndian.AppendUint32(dst, num) }

func sessFilePrefix(num uint32) []byte { return appendNum(tableKey(tblSessFile), num) }
func sessFileKey(num uint32, fid uint64) []byte {
	return appendFid(sessFilePrefix(num), fid)
}

func termPrefix(term string) []byte { return appendEsc(tableKey(tblTerm), term) }

// facetPrefix is the prefix of all postings of one facet value; for
// fieldCatSub, value is the category and sub the subCategory.
func facetPrefix(field byte, value, sub string) []byte {
	if field == fieldCatSub {
		return appendEsc(catSubPrefix(value), sub)
	}
	return appendEsc(append(tableKey(tblFacet), field), value)
}

// catSubPrefix is the prefix of the subCategory postings of one category.
func catSubPrefix(category string) []byte {
	return appendEsc(append(tableKey(tblFacet), fieldCatSub), category)
}

// withNumFid appends the session and file that end every posting key.
func withNumFid(p []byte, num uint32, fid uint64) []byte {
	return appendFid(appendNum(p, num), fid)
}

// numFidOf reads the num fid tail of a posting key.
func numFidOf(key []byte) (num uint32, fid uint64, err error) {
	if len(key) < 2+tailLen {
		return 0, 0, errCorrupt
	}
	tail := key[len(key)-tailLen:]
	return binary.BigEndian.Uint32(tail), binary.BigEndian.Uint64(tail[4:]), nil
}

// byteWriter and byteReader encode record values: uvarints and
// length-prefixed strings.
type byteWriter struct{ b []byte }

func (w *byteWriter) uint(v uint64)  { w.b = binary.AppendUvarint(w.b, v) }
func (w *byteWriter) str(s string)   { w.uint(uint64(len(s))); w.b = append(w.b, s...) }
func (w *byteWriter) byte1(c byte)   { w.b = append(w.b, c) }
func (w *byteWriter) fid(f uint64)   { w.b = appendFid(w.b, f) }
func (w *byteWriter) num(n uint32)   { w.b = appendNum(w.b, n) }
func (w *byteWriter) bytes() []byte  { return w.b }
func (r *byteReader) fail()          { r.err = errCorrupt; r.b = nil }
func newReader(b []byte) *byteReader { return &byteReader{b: b} }

type byteReader struct {
	b   []byte
	err error
}

func (r *byteReader) uint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *byteReader) str() string {
	n := r.uint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.fail()
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// bytes is str without the copy: the bytes are r's.
func (r *byteReader) bytes() []byte {
	n := r.uint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	s := r.b[:n:n]
	r.b = r.b[n:]
	return s
}

func (r *byteReader) byte1() byte {
	if len(r.b) < 1 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *byteReader) fid() uint64 {
	if len(r.b) < 8 {
		r.fail()
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func bytesToFid(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

func (r *byteReader) num() uint32 {
	if len(r.b) < 4 {
		r.fail()
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}
