package gen

import (
	"math/rand/v2"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultVocabulary is the word list generated prose draws from when
// Options.Vocabulary is empty. Planted words must not be in it.
var DefaultVocabulary = strings.Fields(`
code review pull request branch merge commit test suite failing passing build pipeline deploy
release staging production server client database query index schema migration table column
api endpoint request response latency error timeout retry cache memory leak profile trace log
metric dashboard alert incident outage fix patch bug issue ticket backlog sprint roadmap
planning estimate priority deadline meeting standup sync call notes agenda decision action
design mockup prototype layout component button form modal page screen navigation sidebar
header footer style color font spacing icon image upload download file folder document
draft outline paragraph chapter edit proofread publish blog post article report summary
spreadsheet chart budget forecast revenue invoice customer account user feedback survey
interview research paper reference citation dataset model training evaluation accuracy
experiment hypothesis result analysis insight pattern trend signal noise sample
function method class module package library dependency version upgrade config setting
environment variable secret token permission role access login logout session cookie
authentication authorization password email notification message thread channel reply
review comment approve reject revert rebase conflict resolve refactor rename extract
inline optimize benchmark throughput concurrency lock queue worker job scheduler cron
container image cluster node pod service network proxy certificate domain route
frontend backend mobile desktop browser extension plugin terminal shell script command
keyboard shortcut window tab split focus context switch break lunch coffee walk
progress blocked waiting unblocked done finished started continued paused resumed
quickly carefully finally again still already almost mostly clearly probably
new old large small slow fast stable flaky broken clean messy simple complex
important urgent minor major critical optional manual automatic remote local
team manager designer engineer customer partner vendor stakeholder reviewer
monday tuesday wednesday thursday friday morning afternoon evening week month quarter
`)

var (
	apps = []string{"VS Code", "Chrome", "Slack", "Figma", "Terminal", "Zoom", "Notion",
		"Linear", "GitHub", "Xcode", "Safari", "Postman", "Jira", "Excel", "Docs", "Mail"}
	activityVerbs = []string{"Editing", "Reviewing", "Debugging", "Reading", "Writing",
		"Testing", "Designing", "Planning", "Discussing", "Deploying", "Refactoring", "Researching"}
	tagPool = []string{"deep-work", "bug-fix", "feature", "meeting", "review", "planning",
		"research", "writing", "design", "ops", "learning", "admin", "urgent", "client",
		"internal", "frontend", "backend", "infra", "docs", "support", "hiring", "focus",
		"pairing", "oncall", "release", "experiment", "refactor", "security", "data", "mobile"}
	topicPool = []string{"authentication", "payments", "onboarding", "search", "notifications",
		"performance", "database", "caching", "deployment", "testing", "accessibility",
		"analytics", "billing", "pricing", "hiring", "roadmap", "architecture", "security",
		"migration", "documentation", "monitoring", "logging", "mobile", "design-system",
		"api", "storage", "compression", "indexing", "sync", "offline", "localization",
		"reporting", "permissions", "email", "calendar", "video", "audio", "transcription",
		"machine-learning", "customer-support"}
	categories = []struct {
		name string
		subs []string
	}{
		{"Development", []string{"Backend", "Frontend", "Debugging", "Code-Review", "Infrastructure"}},
		{"Design", []string{"UI", "UX-Research", "Prototyping"}},
		{"Meetings", []string{"Standup", "Planning", "One-on-One", "Client"}},
		{"Research", []string{"Reading", "Experiments", "Competitors"}},
		{"Writing", []string{"Documentation", "Blog", "Email"}},
		{"Operations", []string{"Incident", "Maintenance", "Support"}},
		{"Learning", []string{"Course", "Tutorial"}},
		{"Admin", []string{"Finance", "Hiring"}},
	}
	companies  = []string{"Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Vandelay"}
	contacts   = []string{"Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy"}
	emotions   = []string{"focused", "frustrated", "curious", "relieved", "energized", "tired", "calm"}
	sentiments = []string{"positive", "neutral", "neutral", "negative"}
	moods      = []string{"energetic", "calm", "focused", "celebratory"}
	layouts    = []string{"timeline", "story", "dashboard", "grid", "flow"}
	colors     = []string{"#2563eb", "#7c3aed", "#059669", "#dc2626", "#d97706", "#0891b2", "#db2777"}
)

// reservedTokens holds every token the generator can emit on its own, so that
// a planted word is guaranteed to appear only where it was planted.
func reservedTokens(vocab []string) map[string]bool {
	set := map[string]bool{}
	add := func(ss ...string) {
		for _, s := range ss {
			for _, t := range tokens(s) {
				set[t] = true
			}
		}
	}
	add(vocab...)
	add(apps...)
	add(activityVerbs...)
	add(tagPool...)
	add(topicPool...)
	for _, c := range categories {
		add(c.name)
		add(c.subs...)
	}
	add(companies...)
	add(contacts...)
	add(emotions...)
	add(sentiments...)
	add(moods...)
	add(layouts...)
	add(fixedPhrases...)
	return set
}

// fixedPhrases are the literal strings used in generated prose besides the
// pools above.
var fixedPhrases = []string{
	"Working on", "in", "with", "Worked on", "Blocked by", "Follow up on", "Finished",
	"Session", "spent", "most", "of", "the", "time", "on", "Noticed", "Switch", "to",
	"high medium low", "quiet office home cafe", "achievement blocker decision insight",
	"Focus", "Highlights", "Timeline", "Wins", "Next", "steps", "Chapter",
	"whisper-1 gpt-4o claude-3-5-sonnet", "work coding meeting review",
}

// tokens splits like the index does: lowercase, runs of letters and digits.
func tokens(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// prose draws words with a skewed (Zipf-like) frequency so that term
// statistics look like real text rather than uniform noise.
type prose struct {
	r     *rand.Rand
	vocab []string
	sb    strings.Builder
}

func (p *prose) word() string {
	u := p.r.Float64()
	return p.vocab[int(u*u*float64(len(p.vocab)))]
}

// sentence returns n words, capitalised, ending with a period.
func (p *prose) sentence(n int) string {
	p.sb.Reset()
	for i := 0; i < n; i++ {
		w := p.word()
		if i == 0 {
			r, n := utf8.DecodeRuneInString(w)
			w = string(unicode.ToUpper(r)) + w[n:]
		} else {
			p.sb.WriteByte(' ')
		}
		p.sb.WriteString(w)
	}
	p.sb.WriteByte('.')
	return p.sb.String()
}

// paragraph returns about words words in sentences of 6 to 16 words.
func (p *prose) paragraph(words int) string {
	var parts []string
	for words > 0 {
		n := 6 + p.r.IntN(11)
		if n > words {
			n = words
		}
		parts = append(parts, p.sentence(n))
		words -= n
	}
	return strings.Join(parts, " ")
}

func (p *prose) phrases(min, max, words int) []string {
	out := make([]string, min+p.r.IntN(max-min+1))
	for i := range out {
		out[i] = p.sentence(words/2 + 1 + p.r.IntN(words/2+1))
	}
	return out
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// pickN returns n distinct elements of xs in random order.
func pickN[T any](r *rand.Rand, xs []T, n int) []T {
	if n > len(xs) {
		n = len(xs)
	}
	idx := r.Perm(len(xs))[:n]
	out := make([]T, n)
	for i, j := range idx {
		out[i] = xs[j]
	}
	return out
}

// plantInto inserts word at a random word boundary of s.
func plantInto(r *rand.Rand, s, word string) string {
	fields := strings.Split(s, " ")
	at := r.IntN(len(fields) + 1)
	fields = append(fields[:at], append([]string{word}, fields[at:]...)...)
	return strings.Join(fields, " ")
}
