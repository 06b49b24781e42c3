package index

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The query grammar (the names under search/, and `taskerfs search`):
//
//	query   = and
//	and     = or { ["AND"] or }          words side by side are ANDed
//	or      = unary { "OR" unary }       OR binds tighter than AND: a b OR c = a AND (b OR c)
//	unary   = "-" unary | "NOT" unary | primary
//	primary = "(" and ")" | field ":" value | word | '"' quoted words '"'
//
// A word matches sessions whose full text holds all of its tokens (the
// tokenizer's rules; a quoted string is a word with spaces, its tokens are
// ANDed, positions are not checked). A word with no tokens left (a stop word,
// a single letter) matches every session, but a word without any letter or
// digit ('*', '%', '?', "...") is ErrBadQuery: there are no wildcards. Fields:
//
//	tag: topic: status: category: sub:   exact facet value, case-insensitive; the value may be
//	                                     quoted, and is %-unescaped as facet directory names are
//	                                     (tag:c%2Fc++ is the tag "c/c++")
//	month:YYYY-MM                        startTime in that month (UTC)
//	after:YYYY-MM-DD                     startTime on or after that day (inclusive, UTC)
//	before:YYYY-MM-DD                    startTime before that day (exclusive, UTC)
//
// so after:2025-01-01 before:2025-02-01 is January. Sessions without a
// parseable startTime match no month/after/before. A query made only of
// negations means all sessions minus those. OR, AND and NOT are operators only
// in capitals; anything else that does not parse (unbalanced parentheses, a
// dangling operator, an unknown field, a bad date) is ErrBadQuery.

// ErrBadQuery is wrapped by every error of a query that does not parse.
var ErrBadQuery = errors.New("bad query")

// Limits on a query, so that parsing and evaluating it stay cheap.
const (
	maxQueryBytes = 4096
	maxQueryDepth = 32
	maxQueryNodes = 256
)

// Query is a parsed search query.
type Query struct {
	root node
}

// String returns the query in canonical form; it parses back to the same query.
func (q Query) String() string {
	if q.root == nil {
		return ""
	}
	return q.root.String()
}

type node interface {
	String() string
}

// wordNode matches sessions holding every token; no tokens matches all.
type wordNode struct {
	tokens []string
}

// fieldNode is a facet (tag, topic, status, category, sub) or month condition.
type fieldNode struct {
	field string
	value string
}

// dayNode is after:day (inclusive) or before:day (exclusive).
type dayNode struct {
	before bool
	day    string
}

type notNode struct{ x node }
type andNode struct{ xs []node }
type orNode struct{ xs []node }

var facetFields = map[string]byte{
	"tag": fieldTag, "topic": fieldTopic, "status": fieldStatus, "category": fieldCategory, "sub": fieldSub,
}

func (n *wordNode) String() string {
	switch len(n.tokens) {
	case 0:
		return `""`
	case 1:
		return n.tokens[0]
	}
	return `"` + strings.Join(n.tokens, " ") + `"`
}

func (n *fieldNode) String() string {
	if n.field == "month" {
		return "month:" + n.value
	}
	return n.field + ":" + quoteIfNeeded(EscapeName(n.value))
}

func (n *dayNode) String() string {
	if n.before {
		return "before:" + n.day
	}
	return "after:" + n.day
}

func (n *notNode) String() string {
	switch n.x.(type) {
	case *andNode, *orNode:
		return "-(" + n.x.String() + ")"
	}
	return "-" + n.x.String()
}

func (n *andNode) String() string {
	parts := make([]string, len(n.xs))
	for i, x := range n.xs {
		parts[i] = x.String()
		if _, ok := x.(*andNode); ok {
			parts[i] = "(" + parts[i] + ")"
		}
	}
	return strings.Join(parts, " ")
}

func (n *orNode) String() string {
	parts := make([]string, len(n.xs))
	for i, x := range n.xs {
		parts[i] = x.String()
		switch x.(type) {
		case *andNode, *orNode:
			parts[i] = "(" + parts[i] + ")"
		}
	}
	return strings.Join(parts, " OR ")
}

func quoteIfNeeded(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || r == '(' || r == ')' || r == '"' || r == '\\'
	}) {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range []byte(s) {
		if c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String()
}

type lexKind int

const (
	lexEOF lexKind = iota
	lexWord
	lexString
	lexField
	lexLParen
	lexRParen
	lexMinus
	lexOr
	lexAnd
	lexNot
)

type lexeme struct {
	kind  lexKind
	text  string // word, quoted text, or field value
	field string // lexField: lowercased field name
	pos   int
}

var fieldNameRE = regexp.MustCompile(`^[A-Za-z]+$`)

func badQuery(pos int, format string, args ...any) error {
	return fmt.Errorf("%w: at %d: %s", ErrBadQuery, pos, fmt.Sprintf(format, args...))
}

func isSep(r rune) bool { return unicode.IsSpace(r) || r == '(' || r == ')' }

func lex(s string) ([]lexeme, error) {
	var out []lexeme
	i := 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case unicode.IsSpace(r):
			i += size
		case r == '(':
			out = append(out, lexeme{kind: lexLParen, pos: i})
			i++
		case r == ')':
			out = append(out, lexeme{kind: lexRParen, pos: i})
			i++
		case r == '-':
			next, _ := utf8.DecodeRuneInString(s[i+1:])
			if i+1 >= len(s) || unicode.IsSpace(next) || next == ')' {
				return nil, badQuery(i, "'-' must be followed by a term")
			}
			out = append(out, lexeme{kind: lexMinus, pos: i})
			i++
		case r == '"':
			text, n, err := lexQuoted(s, i)
			if err != nil {
				return nil, err
			}
			out = append(out, lexeme{kind: lexString, text: text, pos: i})
			i += n
		default:
			start := i
			for i < len(s) {
				r, size := utf8.DecodeRuneInString(s[i:])
				if isSep(r) || r == '"' {
					break
				}
				i += size
			}
			word := s[start:i]
			l, err := classifyWord(word, start)
			if err != nil {
				return nil, err
			}
			if l.kind == lexField && strings.HasSuffix(word, ":") && i < len(s) && s[i] == '"' {
				text, n, err := lexQuoted(s, i)
				if err != nil {
					return nil, err
				}
				l.text = text
				i += n
			}
			if l.kind == lexField && l.text == "" {
				return nil, badQuery(start, "%s: needs a value", l.field)
			}
			out = append(out, l)
		}
	}
	return out, nil
}

// lexQuoted reads a quoted string starting at s[i] == '"'; a backslash
// escapes the next byte. It returns the text and the bytes consumed.
func lexQuoted(s string, i int) (string, int, error) {
	var b strings.Builder
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			if j+1 < len(s) {
				j++
				b.WriteByte(s[j])
			}
		case '"':
			return b.String(), j + 1 - i, nil
		default:
			b.WriteByte(s[j])
		}
	}
	return "", 0, badQuery(i, "unterminated quote")
}

func classifyWord(word string, pos int) (lexeme, error) {
	switch word {
	case "OR":
		return lexeme{kind: lexOr, pos: pos}, nil
	case "AND":
		return lexeme{kind: lexAnd, pos: pos}, nil
	case "NOT":
		return lexeme{kind: lexNot, pos: pos}, nil
	}
	if name, value, ok := strings.Cut(word, ":"); ok && fieldNameRE.MatchString(name) {
		name = strings.ToLower(name)
		if _, facet := facetFields[name]; !facet && name != "month" && name != "after" && name != "before" {
			return lexeme{}, badQuery(pos, "unknown field %q", name)
		}
		return lexeme{kind: lexField, field: name, text: value, pos: pos}, nil
	}
	return lexeme{kind: lexWord, text: word, pos: pos}, nil
}

type parser struct {
	lx    []lexeme
	end   int // byte length of the query, the position of EOF
	pos   int
	depth int
	nodes int
}

// ParseQuery parses s by the grammar above; errors wrap ErrBadQuery.
func ParseQuery(s string) (Query, error) {
	if len(s) > maxQueryBytes {
		return Query{}, fmt.Errorf("%w: longer than %d bytes", ErrBadQuery, maxQueryBytes)
	}
	lx, err := lex(s)
	if err != nil {
		return Query{}, err
	}
	p := &parser{lx: lx, end: len(s)}
	root, err := p.parseAnd()
	if err != nil {
		return Query{}, err
	}
	if t := p.peek(); t.kind != lexEOF {
		return Query{}, badQuery(t.pos, "unexpected ')'")
	}
	return Query{root: root}, nil
}

func (p *parser) peek() lexeme {
	if p.pos < len(p.lx) {
		return p.lx[p.pos]
	}
	return lexeme{kind: lexEOF, pos: p.end}
}

func (p *parser) count() error {
	p.nodes++
	if p.nodes > maxQueryNodes {
		return fmt.Errorf("%w: more than %d terms", ErrBadQuery, maxQueryNodes)
	}
	return nil
}

func (p *parser) parseAnd() (node, error) {
	var xs []node
	for {
		t := p.peek()
		if t.kind == lexEOF || t.kind == lexRParen {
			break
		}
		if t.kind == lexAnd {
			if len(xs) == 0 {
				return nil, badQuery(t.pos, "AND needs a left operand")
			}
			p.pos++
			if n := p.peek().kind; n == lexEOF || n == lexRParen || n == lexOr || n == lexAnd {
				return nil, badQuery(t.pos, "AND needs a right operand")
			}
		}
		x, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		xs = append(xs, x)
	}
	switch len(xs) {
	case 0:
		return nil, badQuery(p.peek().pos, "empty query")
	case 1:
		return xs[0], nil
	}
	return &andNode{xs: xs}, p.count()
}

func (p *parser) parseOr() (node, error) {
	x, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	xs := []node{x}
	for p.peek().kind == lexOr {
		p.pos++
		y, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		xs = append(xs, y)
	}
	if len(xs) == 1 {
		return x, nil
	}
	return &orNode{xs: xs}, p.count()
}

func (p *parser) parseUnary() (node, error) {
	t := p.peek()
	if t.kind != lexMinus && t.kind != lexNot {
		return p.parsePrimary()
	}
	p.pos++
	if p.depth++; p.depth > maxQueryDepth {
		return nil, badQuery(t.pos, "nested too deeply")
	}
	x, err := p.parseUnary()
	p.depth--
	if err != nil {
		return nil, err
	}
	return &notNode{x: x}, p.count()
}

var monthRE = regexp.MustCompile(`^[0-9]{4}-(0[1-9]|1[0-2])$`)

func (p *parser) parsePrimary() (node, error) {
	t := p.peek()
	p.pos++
	switch t.kind {
	case lexLParen:
		if p.depth++; p.depth > maxQueryDepth {
			return nil, badQuery(t.pos, "nested too deeply")
		}
		x, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		p.depth--
		if p.peek().kind != lexRParen {
			return nil, badQuery(t.pos, "unbalanced '('")
		}
		p.pos++
		return x, nil
	case lexWord, lexString:
		if t.text != "" && !strings.ContainsFunc(t.text, isWordRune) {
			// '*', '%', '?': not wildcards, and not a word that matches everything.
			return nil, badQuery(t.pos, "%q has no letter or digit (there are no wildcards)", t.text)
		}
		return &wordNode{tokens: Tokenize(t.text)}, p.count()
	case lexField:
		n, err := fieldCondition(t)
		if err != nil {
			return nil, err
		}
		return n, p.count()
	case lexEOF:
		return nil, badQuery(t.pos, "a term is missing at the end")
	case lexRParen:
		return nil, badQuery(t.pos, "unexpected ')'")
	}
	return nil, badQuery(t.pos, "a term is missing before an operator")
}

func fieldCondition(t lexeme) (node, error) {
	switch t.field {
	case "month":
		if !monthRE.MatchString(t.text) {
			return nil, badQuery(t.pos, "month: wants YYYY-MM, got %q", t.text)
		}
		return &fieldNode{field: "month", value: t.text}, nil
	case "after", "before":
		if _, err := time.Parse("2006-01-02", t.text); err != nil || len(t.text) != 10 {
			return nil, badQuery(t.pos, "%s: wants YYYY-MM-DD, got %q", t.field, t.text)
		}
		return &dayNode{before: t.field == "before", day: t.text}, nil
	}
	value := t.text
	if u, err := UnescapeName(value); err == nil {
		value = u
	}
	value = lowerBytes(strings.TrimSpace(value))
	if value == "" {
		return nil, badQuery(t.pos, "%s: needs a value", t.field)
	}
	return &fieldNode{field: t.field, value: value}, nil
}
