package index

import (
	"errors"
	"strings"
	"testing"
)

func TestParseQuery(t *testing.T) {
	tests := []struct{ in, want string }{
		{"oauth", "oauth"},
		{"  OAuth  ", "oauth"},
		{"fix login", "fix login"},
		{"fix AND login", "fix login"},
		{"fix OR login", "fix OR login"},
		{"a1 b2 OR c3", "a1 b2 OR c3"}, // OR binds tighter: a1 AND (b2 OR c3)
		{"(a1 b2) OR c3", "(a1 b2) OR c3"},
		{"(a1 OR b2) c3", "a1 OR b2 c3"},
		{"x1 OR y1 OR z1", "x1 OR y1 OR z1"},
		{"(x1 OR y1) OR z1", "(x1 OR y1) OR z1"},
		{"-draft", "-draft"},
		{"NOT draft", "-draft"},
		{"NOT NOT draft", "--draft"},
		{"--draft", "--draft"},
		{"-(a1 b2)", "-(a1 b2)"},
		{"-(a1 OR b2)", "-(a1 OR b2)"},
		{"fix-auth", `"fix auth"`},
		{`"machine learning"`, `"machine learning"`},
		{`"the"`, `""`},
		{"the", `""`},
		{"or", `""`},
		{"not", "not"},
		{"tag:Go", "tag:go"},
		{"TAG:Go", "tag:go"},
		{`tag:"Machine Learning"`, `tag:"machine learning"`},
		{"tag:c%2Fc++", "tag:c%2Fc++"},
		{"tag:100%", "tag:100%25"},
		{"tag:.net", "tag:%2Enet"},
		{"tag:a:b", "tag:a:b"},
		{`tag:"quo\"te"`, `tag:"quo\"te"`},
		{"topic:Auth", "topic:auth"},
		{"status:Completed", "status:completed"},
		{"category:Work sub:Coding", "category:work sub:coding"},
		{"month:2025-10", "month:2025-10"},
		{"after:2025-01-01 before:2025-02-01", "after:2025-01-01 before:2025-02-01"},
		{"-tag:draft", "-tag:draft"},
		{"oauth (tag:go OR tag:rust) -status:active", "oauth tag:go OR tag:rust -status:active"},
		{"(((deep)))", "deep"},
		{`"http://example.com/x"`, `"http example com"`},
		{"tag:a%0Ab", "tag:a%0Ab"},
		{"tag:%FF%C3", "tag:%FF%C3"},     // bytes that are not UTF-8 stay bytes
		{"tag:Ä%FF", "tag:ä%FF"},         // lowercased like any value
		{"tag:%C3%84", "tag:%25c3%2584"}, // not the one name of "ä": literal
		{"tag:*", "tag:*"},               // a literal value, not a wildcard
		{"c++", `""`},                    // a single letter is ignored, as documented
	}
	for _, tc := range tests {
		q, err := ParseQuery(tc.in)
		if err != nil {
			t.Errorf("ParseQuery(%q): %v", tc.in, err)
			continue
		}
		if got := q.String(); got != tc.want {
			t.Errorf("ParseQuery(%q) = %s, want %s", tc.in, got, tc.want)
		}
		again, err := ParseQuery(q.String())
		if err != nil || again.String() != q.String() {
			t.Errorf("canonical %q does not parse back: %v, %v", q.String(), again, err)
		}
	}
}

func TestParseQueryErrors(t *testing.T) {
	tests := []string{
		"",
		"   ",
		"()",
		"(oauth",
		"oauth)",
		")(",
		"OR",
		"oauth OR",
		"OR oauth",
		"oauth OR OR login",
		"AND oauth",
		"oauth AND",
		"NOT",
		"oauth NOT",
		"-",
		"oauth -",
		"- oauth",
		"-)",
		`"unterminated`,
		"tag:",
		`tag:""`,
		`tag:"  "`,
		"foo:bar",
		"http://example.com",
		"month:2025",
		"month:2025-13",
		"month:25-10",
		"after:2025-1-1",
		"after:2025-02-30",
		"before:yesterday",
		strings.Repeat("(", maxQueryDepth+1) + "x" + strings.Repeat(")", maxQueryDepth+1),
		strings.Repeat("-", maxQueryDepth+1) + "x",
		strings.Repeat("ab ", maxQueryNodes+1),
		strings.Repeat("x", maxQueryBytes+1),
		// No wildcards: a word without a letter or digit matches nothing
		// meaningful, so it is refused instead of matching everything.
		"*",
		"%",
		"?",
		"...",
		`"*"`,
		"oauth *",
		"oauth OR %",
		"-*",
		"tag:%",
	}
	for _, in := range tests {
		if q, err := ParseQuery(in); !errors.Is(err, ErrBadQuery) {
			t.Errorf("ParseQuery(%.40q) = %v, %v; want ErrBadQuery", in, q, err)
		}
	}
}

func TestScoringTerms(t *testing.T) {
	q, err := ParseQuery("alpha (beta OR -gamma) -(delta -epsilon) alpha")
	if err != nil {
		t.Fatal(err)
	}
	// epsilon is negated twice, so it counts.
	got := strings.Join(scoringTerms(q.root, false, nil), " ")
	if got != "alpha beta epsilon" {
		t.Fatalf("scoring terms %q", got)
	}
}
