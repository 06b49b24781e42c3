package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/cockroachdb/pebble"
)

// Facet directory names. EscapeName turns a facet value into one path
// component, reversibly:
//
//   - '%' and '/' are written as %25 and %2F;
//   - a leading '.' is written as %2E (so no value is hidden, "." or "..");
//   - each byte that is not part of valid UTF-8 is written as %XX: the
//     value's bytes are kept, never replaced by U+FFFD;
//   - the bytes of control characters (U+0000-U+001F, U+007F-U+009F), of the
//     line and paragraph separators U+2028 and U+2029 and of the
//     bidirectional controls (U+061C, U+200E, U+200F, U+202A-U+202E,
//     U+2066-U+2069) are written as %XX, so that no name moves a terminal's
//     cursor or shows its characters in another order;
//   - the empty value is written as a lone "%";
//   - everything else is kept as is. Hex digits are upper case.
//
// UnescapeName accepts exactly the names EscapeName produces, so every value
// has one name and every name one value: UnescapeName(EscapeName(v)) == v and
// EscapeName(UnescapeName(n)) == n for every n it accepts.

// EscapeName encodes a facet value as a single path component.
func EscapeName(value string) string {
	if value == "" {
		return "%"
	}
	var b strings.Builder
	for i := 0; i < len(value); {
		r, size := utf8.DecodeRuneInString(value[i:])
		c := value[i]
		switch {
		case r == utf8.RuneError && size == 1, c == '%', c == '/', c == '.' && i == 0, HiddenRune(r):
			for _, c := range []byte(value[i : i+size]) {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		default:
			b.WriteString(value[i : i+size])
		}
		i += size
	}
	return b.String()
}

// HiddenRune reports whether r is a control character, a line or paragraph
// separator or a bidirectional control: a rune that a name never shows raw.
func HiddenRune(r rune) bool {
	switch {
	case r < 0x20, 0x7F <= r && r <= 0x9F:
		return true
	case r == 0x061C, r == 0x200E, r == 0x200F, r == 0x2028, r == 0x2029:
		return true
	case 0x202A <= r && r <= 0x202E, 0x2066 <= r && r <= 0x2069:
		return true
	}
	return false
}

// CleanName reports whether s is valid UTF-8 without a hidden rune: a name
// that may be listed as it is.
func CleanName(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, HiddenRune)
}

// lowerBytes lowercases s rune by rune, keeping each byte that is not UTF-8
// (strings.ToLower would make it U+FFFD).
func lowerBytes(s string) string {
	if utf8.ValidString(s) {
		return strings.ToLower(s)
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteByte(s[i])
		} else {
			b.WriteString(strings.ToLower(s[i : i+size]))
		}
		i += size
	}
	return b.String()
}

var errBadName = errors.New("index: not an escaped facet name")

// UnescapeName decodes a name made by EscapeName.
func UnescapeName(name string) (string, error) {
	if name == "%" {
		return "", nil
	}
	var b []byte
	for i := 0; i < len(name); i++ {
		if name[i] != '%' {
			b = append(b, name[i])
			continue
		}
		if i+2 >= len(name) {
			return "", errBadName
		}
		hi, ok1 := upperHex(name[i+1])
		lo, ok2 := upperHex(name[i+2])
		if !ok1 || !ok2 {
			return "", errBadName
		}
		b = append(b, hi<<4|lo)
		i += 2
	}
	value := string(b)
	if EscapeName(value) != name {
		return "", errBadName
	}
	return value, nil
}

func upperHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// facetField maps the public field names to key bytes.
func facetField(field string) (byte, error) {
	if f, ok := facetFields[field]; ok {
		return f, nil
	}
	return 0, fmt.Errorf("index: unknown facet field %q", field)
}

// FacetValues lists the distinct values of field ("tag", "topic", "status",
// "category", "sub" or "month"), sorted, each held by at least one session.
// It skips from value to value, so its cost grows with the number of values,
// not of sessions.
func (x *Index) FacetValues(field string) ([]string, error) {
	if field == "month" {
		return x.months()
	}
	f, err := facetField(field)
	if err != nil {
		return nil, err
	}
	return distinctValues(x.db, append(tableKey(tblFacet), f))
}

// SubCategories lists the subCategories of sessions in category.
func (x *Index) SubCategories(category string) ([]string, error) {
	return distinctValues(x.db, catSubPrefix(category))
}

// distinctValues lists the escaped strings that follow prefix in its keys.
func distinctValues(r reader, prefix []byte) ([]string, error) {
	it, err := prefixIter(r, prefix)
	if err != nil {
		return nil, err
	}
	var out []string
	for ok := it.First(); ok; {
		v, _, err := decodeEsc(it.Key()[len(prefix):])
		if err != nil {
			_ = it.Close()
			return nil, err
		}
		out = append(out, v)
		ok = it.SeekGE(afterEsc(appendEsc(append([]byte(nil), prefix...), v)))
	}
	return out, it.Close()
}

func (x *Index) months() ([]string, error) {
	prefix := tableKey(tblDay)
	it, err := prefixIter(x.db, prefix)
	if err != nil {
		return nil, err
	}
	var out []string
	for ok := it.First(); ok; {
		k := it.Key()
		if len(k) < len(prefix)+10 {
			_ = it.Close()
			return nil, errCorrupt
		}
		month := string(k[len(prefix) : len(prefix)+7])
		out = append(out, month)
		// '.' follows '-': past every day of this month.
		ok = it.SeekGE(append(append([]byte(nil), prefix...), month+"."...))
	}
	return out, it.Close()
}

// FacetSessions lists, sorted, the sessions whose field has value exactly (as
// FacetValues lists it; month is YYYY-MM).
func (x *Index) FacetSessions(field, value string) ([]string, error) {
	if field == "month" {
		if !monthRE.MatchString(value) {
			return nil, nil
		}
		return sessionIDs(x.db, func(r reader) ([]uint32, error) { return daySessions(r, value+"-00", value+"-99") })
	}
	f, err := facetField(field)
	if err != nil {
		return nil, err
	}
	return sessionIDs(x.db, func(r reader) ([]uint32, error) { return scanSessions(r, facetPrefix(f, value, "")) })
}

// SubCategorySessions lists, sorted, the sessions of category with subCategory sub.
func (x *Index) SubCategorySessions(category, sub string) ([]string, error) {
	return sessionIDs(x.db, func(r reader) ([]uint32, error) { return scanSessions(r, facetPrefix(fieldCatSub, category, sub)) })
}

// sessionIDs runs list on a snapshot and turns the session numbers it
// returns into sorted session ids.
func sessionIDs(db *pebble.DB, list func(r reader) ([]uint32, error)) ([]string, error) {
	snap := db.NewSnapshot()
	defer snap.Close()
	nums, err := list(snap)
	if err != nil || len(nums) == 0 {
		return nil, err
	}
	prefix := tableKey(tblNum)
	it, err := prefixIter(snap, prefix)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(nums))
	key := append([]byte(nil), prefix...)
	for _, num := range nums {
		key = appendNum(key[:len(prefix)], num)
		if !it.SeekGE(key) || string(it.Key()) != string(key) {
			_ = it.Close()
			return nil, fmt.Errorf("index: session %d has postings but no aggregate: %w", num, errCorrupt)
		}
		sid, err := aggSid(it.Value())
		if err != nil {
			_ = it.Close()
			return nil, err
		}
		ids = append(ids, sid)
	}
	if err := it.Close(); err != nil {
		return nil, err
	}
	sort.Strings(ids)
	return ids, nil
}

// scanSessions lists, sorted and distinct, the session numbers of the
// posting keys under prefix, whose tails are num fid.
func scanSessions(r reader, prefix []byte) ([]uint32, error) {
	it, err := prefixIter(r, prefix)
	if err != nil {
		return nil, err
	}
	var ids []uint32
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != len(prefix)+tailLen {
			_ = it.Close()
			return nil, errCorrupt
		}
		if num := binary.BigEndian.Uint32(k[len(prefix):]); len(ids) == 0 || ids[len(ids)-1] != num {
			ids = append(ids, num)
		}
	}
	return ids, it.Close()
}

// daySessions lists, sorted and distinct, the sessions whose startTime day d
// satisfies from <= d < to (both YYYY-MM-DD or a bound past every day).
func daySessions(r reader, from, to string) ([]uint32, error) {
	prefix := tableKey(tblDay)
	lower := append(append([]byte(nil), prefix...), from...)
	upper := append(append([]byte(nil), prefix...), to...)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	var ids []uint32
	for ok := it.First(); ok; ok = it.Next() {
		num, _, err := numFidOf(it.Key())
		if err != nil || len(it.Key()) != len(prefix)+10+tailLen {
			_ = it.Close()
			return nil, errCorrupt
		}
		ids = append(ids, num)
	}
	slices.Sort(ids)
	return slices.Compact(ids), it.Close()
}
