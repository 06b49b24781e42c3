package gen

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// sessionData is one session in memory while it is written; it is the same
// for every layout, only its serialisation differs.
type sessionData struct {
	index         int
	core          sessionCore
	start, end    time.Time
	screenshots   []screenshot
	audio         []audioSegment
	videoChunks   []videoChunk
	video         *sessionVideo
	summary       *summary
	insights      *audioInsights
	canvas        *canvasSpec
	transcription string
	taskIDs       []string
	noteIDs       []string
	info          SessionInfo
}

// First and last possible session start: spread over 22 months so that
// month facets and after:/before: queries have something to select.
var (
	epochStart = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	epochDays  = 670
)

func iso(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func uuid(r *rand.Rand) string {
	a, b := r.Uint64(), r.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x",
		a>>32, (a>>16)&0xffff, a&0xfff, 0x8000|(b>>48)&0x3fff, b&0xffffffffffff)
}

// build creates session i. Everything random comes from r, which is seeded
// by (seed, i) alone, so sessions can be built in any order.
func (g *generator) build(i int, r *rand.Rand) *sessionData {
	p := &prose{r: r, vocab: g.vocab}
	s := &sessionData{index: i}
	c := &s.core
	c.ID = uuid(r)

	cat := pick(r, categories)
	c.Category, c.SubCategory = cat.name, pick(r, cat.subs)
	c.Tags = pickN(r, tagPool, 1+r.IntN(4))
	sessionTopics := pickN(r, topicPool, 2+r.IntN(3))

	verb := pick(r, activityVerbs)
	c.Name = verb + " " + p.word() + " " + p.word()
	c.Description = "Working on " + sessionTopics[0] + " with " + pick(r, apps) + ". " + p.sentence(8+r.IntN(10))

	switch u := r.Float64(); {
	case u < 0.70:
		c.Status = "completed"
	case u < 0.80:
		c.Status = "interrupted"
	case u < 0.88:
		c.Status = "paused"
	default:
		c.Status = "active"
	}
	done := c.Status == "completed" || c.Status == "interrupted"

	s.start = epochStart.Add(time.Duration(r.IntN(epochDays))*24*time.Hour +
		time.Duration(7*3600+r.IntN(11*3600))*time.Second + time.Duration(r.IntN(1000))*time.Millisecond)
	c.StartTime = iso(s.start)

	interval := pick(r, []float64{2, 2, 2, 1, 5, -1})
	c.ScreenshotInterval = interval
	c.AutoAnalysis = true
	c.EnableScreenshots = g.opts.Screenshots > 0
	c.AudioRecording = g.opts.AudioSegments > 0
	c.AudioMode = "off"
	if c.AudioRecording {
		c.AudioMode = "transcription"
	}
	hasVideo := r.Float64() < 0.3
	c.VideoRecording = hasVideo
	c.Version = 1 + r.IntN(5)

	// Screenshots.
	t := s.start
	for j := 0; j < g.opts.Screenshots; j++ {
		step := time.Duration(interval * float64(time.Minute))
		if interval < 0 {
			step = time.Duration(10+r.IntN(290)) * time.Second
		}
		if j > 0 {
			t = t.Add(step)
		}
		s.screenshots = append(s.screenshots, g.screenshotRecord(p, s, t, j, sessionTopics, done))
	}
	if n := len(s.screenshots); n > 0 {
		c.LastScreenshotTime = s.screenshots[n-1].Timestamp
	}
	end := t
	// Audio: back-to-back 10 s segments from the start.
	var full []string
	for k := 0; k < g.opts.AudioSegments; k++ {
		at := s.start.Add(time.Duration(k*10) * time.Second)
		seg := audioSegment{
			ID: uuid(r), SessionID: c.ID, Timestamp: iso(at), Duration: 10,
			Transcription:        p.paragraph(10 + r.IntN(20)),
			AttachmentID:         uuid(r),
			TranscriptionQuality: "final",
			KeyPhrases:           []string{p.word() + " " + p.word(), p.word()},
			Sentiment:            pick(r, sentiments),
			ContainsTask:         r.IntN(8) == 0,
			ContainsBlocker:      r.IntN(12) == 0,
		}
		s.audio = append(s.audio, seg)
		full = append(full, seg.Transcription)
		if e := at.Add(10 * time.Second); e.After(end) {
			end = e
		}
	}
	end = end.Add(time.Duration(30+r.IntN(300)) * time.Second)
	s.end = end
	durationMin := int(end.Sub(s.start).Minutes()) + 1

	switch c.Status {
	case "completed", "interrupted":
		c.EndTime = iso(end)
		c.TotalDuration = durationMin
	case "paused":
		c.PausedAt = iso(end)
		c.TotalPausedTime = int64(r.IntN(600)) * 1000
	}

	if r.IntN(3) == 0 {
		c.TrackingNoteID = uuid(r)
	}
	c.Relationships = []relationship{}
	for n := r.IntN(3); n > 0; n-- {
		target := pick(r, []string{"task", "note"})
		rel := relationship{ID: uuid(r), Type: "session-" + target, SourceType: "session", SourceID: c.ID,
			TargetType: target, TargetID: uuid(r),
			Metadata: map[string]string{"source": "ai", "createdAt": iso(end)}, Canonical: true}
		c.Relationships = append(c.Relationships, rel)
		if target == "task" {
			s.taskIDs = append(s.taskIDs, rel.TargetID)
		} else {
			s.noteIDs = append(s.noteIDs, rel.TargetID)
		}
	}

	if len(full) > 0 {
		s.transcription = strings.Join(full, " ")
	}
	if done {
		c.AudioReviewCompleted = len(s.audio) > 0
		s.summary = g.summaryDoc(p, s, sessionTopics)
		if len(s.audio) > 0 {
			s.insights = g.insightsDoc(p, s)
		}
		if c.Status == "completed" {
			s.canvas = g.canvasDoc(p, s)
		}
		c.EnrichmentStatus = &enrichmentStatus{
			Status: "completed", StartedAt: iso(end), CompletedAt: iso(end.Add(90 * time.Second)),
			Progress: 100, CurrentStage: "complete",
			Audio:     stageStatus{Status: stage(len(s.audio) > 0)},
			Video:     stageStatus{Status: stage(hasVideo)},
			Summary:   stageStatus{Status: "completed"},
			TotalCost: float64(r.IntN(50)) / 100, Errors: []string{}, Warnings: []string{},
		}
		c.EnrichmentConfig = &enrichmentConfig{IncludeAudioReview: true, IncludeVideoChapters: hasVideo, AutoEnrichOnComplete: true}
	}
	if hasVideo {
		g.videoDocs(p, s, sessionTopics, durationMin)
	}

	g.plant(r, s)
	s.info = s.describe()
	return s
}

func stage(ran bool) string {
	if ran {
		return "completed"
	}
	return "skipped"
}

func (g *generator) screenshotRecord(p *prose, s *sessionData, t time.Time, j int, topics []string, done bool) screenshot {
	r := p.r
	sh := screenshot{ID: uuid(r), SessionID: s.core.ID, Timestamp: iso(t), AttachmentID: uuid(r),
		AnalysisStatus: "complete"}
	// An active session's newest screenshots are still waiting for analysis.
	if !done && j >= g.opts.Screenshots-2 {
		sh.AnalysisStatus = "pending"
		return sh
	}
	a := &aiAnalysis{
		Summary:          p.paragraph(15 + r.IntN(20)),
		DetectedActivity: pick(r, activityVerbs) + " " + p.word() + " in " + pick(r, apps),
		ExtractedText:    p.paragraph(60 + r.IntN(120)),
		KeyElements:      p.phrases(2, 5, 4),
		SuggestedActions: p.phrases(0, 2, 6),
		ContextDelta:     p.sentence(6 + r.IntN(8)),
		Curiosity:        float64(r.IntN(100)) / 100,
		CuriosityReason:  p.sentence(5 + r.IntN(6)),
		Confidence:       0.5 + float64(r.IntN(50))/100,
	}
	a.ProgressIndicators.Achievements = p.phrases(0, 2, 6)
	a.ProgressIndicators.Blockers = p.phrases(0, 1, 6)
	a.ProgressIndicators.Insights = p.phrases(0, 2, 8)
	for _, tp := range pickN(r, topics, 1+r.IntN(2)) {
		a.DetectedEntities.Topics = append(a.DetectedEntities.Topics, named{tp, 0.6 + float64(r.IntN(40))/100})
	}
	a.DetectedEntities.Companies = []named{}
	if r.IntN(4) == 0 {
		a.DetectedEntities.Companies = append(a.DetectedEntities.Companies, named{pick(r, companies), 0.8})
	}
	a.DetectedEntities.Contacts = []named{}
	if r.IntN(4) == 0 {
		a.DetectedEntities.Contacts = append(a.DetectedEntities.Contacts, named{pick(r, contacts), 0.7})
	}
	sh.AIAnalysis = a
	if r.IntN(15) == 0 {
		sh.UserComment = p.sentence(4 + r.IntN(8))
	}
	sh.Flagged = r.IntN(25) == 0
	return sh
}

func (g *generator) summaryDoc(p *prose, s *sessionData, topics []string) *summary {
	r := p.r
	sm := &summary{
		Narrative:    "Session spent most of the time on " + topics[0] + ". " + p.paragraph(80+r.IntN(120)),
		Achievements: p.phrases(1, 5, 8),
		Blockers:     p.phrases(0, 3, 8),
		LastUpdated:  iso(s.end),
		// The summary counts what it saw.
		ScreenshotCount:  len(s.screenshots),
		RecommendedTasks: []recommendedTask{},
		KeyInsights:      []keyInsight{},
	}
	for n := r.IntN(4); n > 0; n-- {
		sm.RecommendedTasks = append(sm.RecommendedTasks, recommendedTask{
			Title: "Follow up on " + p.word() + " " + p.word(), Priority: pick(r, []string{"low", "medium", "high"}),
			Context: p.sentence(10), RelatedScreenshotIDs: g.someScreenshotIDs(r, s, 2)})
	}
	for n := 1 + r.IntN(4); n > 0; n-- {
		sm.KeyInsights = append(sm.KeyInsights, keyInsight{Insight: p.sentence(8 + r.IntN(10)),
			Timestamp:     iso(s.start.Add(time.Duration(r.IntN(3600)) * time.Second)),
			ScreenshotIDs: g.someScreenshotIDs(r, s, 2)})
	}
	left := 100.0
	for i, tp := range topics {
		pct := left
		if i < len(topics)-1 {
			pct = float64(int(left * (0.3 + 0.4*r.Float64())))
		}
		left -= pct
		sm.FocusAreas = append(sm.FocusAreas, focusArea{Area: tp, Duration: int(pct) * (s.core.TotalDuration + 1) / 100, Percentage: pct})
	}
	return sm
}

func (g *generator) someScreenshotIDs(r *rand.Rand, s *sessionData, max int) []string {
	ids := []string{}
	for _, sh := range pickN(r, s.screenshots, r.IntN(max+1)) {
		ids = append(ids, sh.ID)
	}
	return ids
}

func (g *generator) insightsDoc(p *prose, s *sessionData) *audioInsights {
	r := p.r
	secs := len(s.audio) * 10
	ai := &audioInsights{
		Narrative: p.paragraph(60 + r.IntN(80)), ProcessedAt: iso(s.end.Add(time.Minute)),
		ModelUsed: pick(r, []string{"whisper-1", "gpt-4o"}), ProcessingDuration: 2000 + r.IntN(30000),
	}
	for n := 2 + r.IntN(3); n > 0; n-- {
		ai.EmotionalJourney = append(ai.EmotionalJourney, struct {
			Timestamp   int    `json:"timestamp"`
			Emotion     string `json:"emotion"`
			Description string `json:"description"`
		}{r.IntN(secs), pick(r, emotions), p.sentence(8)})
	}
	for n := 1 + r.IntN(4); n > 0; n-- {
		ai.KeyMoments = append(ai.KeyMoments, struct {
			Timestamp   int    `json:"timestamp"`
			Type        string `json:"type"`
			Description string `json:"description"`
			Context     string `json:"context"`
			Excerpt     string `json:"excerpt"`
		}{r.IntN(secs), pick(r, []string{"achievement", "blocker", "decision", "insight"}),
			p.sentence(8), p.sentence(10), p.sentence(12)})
	}
	ai.WorkPatterns.FocusLevel = pick(r, []string{"high", "medium", "low"})
	ai.WorkPatterns.Interruptions = r.IntN(6)
	start := 0
	for n := 1 + r.IntN(2); n > 0 && start < secs; n-- {
		e := start + 1 + r.IntN(secs-start)
		ai.WorkPatterns.FlowStates = append(ai.WorkPatterns.FlowStates, struct {
			Start       int    `json:"start"`
			End         int    `json:"end"`
			Description string `json:"description"`
		}{start, e, p.sentence(6)})
		start = e
	}
	ai.EnvironmentalContext.AmbientNoise = pick(r, []string{"quiet", "low", "medium"})
	ai.EnvironmentalContext.WorkSetting = pick(r, []string{"office", "home", "cafe"})
	ai.EnvironmentalContext.TimeOfDay = pick(r, []string{"morning", "afternoon", "evening"})
	return ai
}

func (g *generator) canvasDoc(p *prose, s *sessionData) *canvasSpec {
	r := p.r
	cs := &canvasSpec{}
	cs.Theme.Primary, cs.Theme.Secondary = pick(r, colors), pick(r, colors)
	cs.Theme.Mood = pick(r, moods)
	cs.Theme.Explanation = p.sentence(12)
	cs.Layout.Type = pick(r, layouts)
	for i, title := range []string{"Focus", "Highlights", "Timeline", "Wins", "Next steps"}[:2+r.IntN(4)] {
		cs.Layout.Sections = append(cs.Layout.Sections, canvasSection{ID: uuid(r), Type: strings.ToLower(strings.Fields(title)[0]),
			Emphasis: pick(r, []string{"low", "medium", "high"}), Position: i, Content: p.sentence(10)})
	}
	cs.Layout.Emphasis = []string{cs.Layout.Sections[0].ID}
	cs.Metadata.GeneratedAt = iso(s.end.Add(2 * time.Minute))
	cs.Metadata.SessionType = pick(r, []string{"work", "coding", "meeting", "review"})
	cs.Metadata.Confidence = 0.6 + float64(r.IntN(40))/100
	return cs
}

func (g *generator) videoDocs(p *prose, s *sessionData, topics []string, durationMin int) {
	r := p.r
	secs := durationMin * 60
	v := &sessionVideo{ID: uuid(r), SessionID: s.core.ID, Duration: secs, ChunkingStatus: "complete", Chapters: []videoChapter{}}
	n := 1 + secs/300
	for k := 0; k < n; k++ {
		from, to := k*secs/n, (k+1)*secs/n
		tp := pick(r, topics)
		s.videoChunks = append(s.videoChunks, videoChunk{
			ID: uuid(r), VideoID: v.ID, SessionID: s.core.ID, AttachmentID: uuid(r),
			StartTime: from, EndTime: to, Topic: tp, Description: p.sentence(10 + r.IntN(10)),
			TranscriptExcerpt:      p.sentence(12),
			RelatedScreenshotIDs:   g.someScreenshotIDs(r, s, 3),
			RelatedAudioSegmentIDs: []string{},
			Analyzed:               true, LastAnalyzedAt: iso(s.end.Add(3 * time.Minute)),
		})
		if k%3 == 0 {
			v.Chapters = append(v.Chapters, videoChapter{ID: uuid(r), SessionID: s.core.ID, StartTime: from, EndTime: to,
				Title: "Chapter " + p.word(), Summary: p.sentence(10), KeyTopics: []string{tp},
				Confidence: 0.7, CreatedAt: iso(s.end.Add(3 * time.Minute))})
		}
	}
	s.video = v
}

// plant puts each planted word into one indexed text field of the sessions
// its share selects. Which sessions is a function of (seed, session, word).
func (g *generator) plant(r *rand.Rand, s *sessionData) {
	for wi, pl := range g.opts.Plant {
		if g.unit(streamPlant, uint64(s.index)<<16|uint64(wi)) >= pl.Share {
			continue
		}
		var targets []*string
		targets = append(targets, &s.core.Name, &s.core.Description)
		if s.summary != nil {
			targets = append(targets, &s.summary.Narrative)
		}
		for k := range s.screenshots {
			if a := s.screenshots[k].AIAnalysis; a != nil {
				targets = append(targets, &a.Summary, &a.ExtractedText)
			}
		}
		if len(s.audio) > 0 {
			k := r.IntN(len(s.audio))
			targets = append(targets, &s.audio[k].Transcription)
		}
		at := pick(r, targets)
		*at = plantInto(r, *at, pl.Word)
		s.info.Words = append(s.info.Words, pl.Word)
	}
	if len(s.audio) > 0 {
		// Audio transcriptions may have changed; the full text follows them.
		full := make([]string, len(s.audio))
		for k := range s.audio {
			full[k] = s.audio[k].Transcription
		}
		s.transcription = strings.Join(full, " ")
	}
}

// describe returns what a test needs to predict query results.
func (s *sessionData) describe() SessionInfo {
	info := SessionInfo{
		ID: s.core.ID, Name: s.core.Name, Status: s.core.Status,
		Category: s.core.Category, SubCategory: s.core.SubCategory,
		Tags: s.core.Tags, StartTime: s.start, Month: s.start.Format("2006-01"),
		Screenshots: len(s.screenshots), AudioSegments: len(s.audio),
		Words: s.info.Words,
	}
	for _, sh := range s.screenshots {
		if sh.AIAnalysis == nil {
			continue
		}
		for _, t := range sh.AIAnalysis.DetectedEntities.Topics {
			if !slices.Contains(info.Topics, t.Name) {
				info.Topics = append(info.Topics, t.Name)
			}
		}
	}
	slices.Sort(info.Topics)
	return info
}
