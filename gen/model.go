package gen

// The JSON shapes below follow the real app's types (spec/taskerino-real-app.md
// section 1); field order is the order a TypeScript object literal would give.

// sessionCore is what Session and SessionMetadata share.
type sessionCore struct {
	ID                   string            `json:"id"`
	Name                 string            `json:"name"`
	Description          string            `json:"description"`
	Status               string            `json:"status"`
	StartTime            string            `json:"startTime"`
	EndTime              string            `json:"endTime,omitempty"`
	LastScreenshotTime   string            `json:"lastScreenshotTime,omitempty"`
	PausedAt             string            `json:"pausedAt,omitempty"`
	TotalPausedTime      int64             `json:"totalPausedTime,omitempty"`
	ScreenshotInterval   float64           `json:"screenshotInterval"`
	AutoAnalysis         bool              `json:"autoAnalysis"`
	EnableScreenshots    bool              `json:"enableScreenshots"`
	AudioRecording       bool              `json:"audioRecording"`
	AudioMode            string            `json:"audioMode"`
	VideoRecording       bool              `json:"videoRecording"`
	TrackingNoteID       string            `json:"trackingNoteId,omitempty"`
	Relationships        []relationship    `json:"relationships"`
	Tags                 []string          `json:"tags"`
	Category             string            `json:"category,omitempty"`
	SubCategory          string            `json:"subCategory,omitempty"`
	ActivityType         string            `json:"activityType,omitempty"`
	TotalDuration        int               `json:"totalDuration,omitempty"`
	AudioReviewCompleted bool              `json:"audioReviewCompleted"`
	EnrichmentStatus     *enrichmentStatus `json:"enrichmentStatus,omitempty"`
	EnrichmentConfig     *enrichmentConfig `json:"enrichmentConfig,omitempty"`
	Version              int               `json:"version"`
}

type relationship struct {
	ID         string            `json:"id"`
	Type       string            `json:"type"`
	SourceType string            `json:"sourceType"`
	SourceID   string            `json:"sourceId"`
	TargetType string            `json:"targetType"`
	TargetID   string            `json:"targetId"`
	Metadata   map[string]string `json:"metadata"`
	Canonical  bool              `json:"canonical"`
}

type stageStatus struct {
	Status      string  `json:"status"`
	StartedAt   string  `json:"startedAt,omitempty"`
	CompletedAt string  `json:"completedAt,omitempty"`
	Cost        float64 `json:"cost,omitempty"`
}

type enrichmentStatus struct {
	Status       string      `json:"status"`
	StartedAt    string      `json:"startedAt,omitempty"`
	CompletedAt  string      `json:"completedAt,omitempty"`
	Progress     int         `json:"progress"`
	CurrentStage string      `json:"currentStage"`
	Audio        stageStatus `json:"audio"`
	Video        stageStatus `json:"video"`
	Summary      stageStatus `json:"summary"`
	TotalCost    float64     `json:"totalCost"`
	Errors       []string    `json:"errors"`
	Warnings     []string    `json:"warnings"`
	CanResume    bool        `json:"canResume"`
}

type enrichmentConfig struct {
	IncludeAudioReview   bool `json:"includeAudioReview"`
	IncludeVideoChapters bool `json:"includeVideoChapters"`
	AutoEnrichOnComplete bool `json:"autoEnrichOnComplete"`
}

// chunkInfo is one entry of SessionMetadata.chunks.
type chunkInfo struct {
	Count      int `json:"count"`
	ChunkCount int `json:"chunkCount"`
	ChunkSize  int `json:"chunkSize"`
}

type chunkManifest struct {
	Screenshots   chunkInfo `json:"screenshots"`
	AudioSegments chunkInfo `json:"audioSegments"`
	VideoChunks   chunkInfo `json:"videoChunks"`
}

// sessionMetadata is metadata.json: the real app's SessionMetadata plus the
// seed document's count fields.
type sessionMetadata struct {
	sessionCore
	ExtractedTaskIDs    []string      `json:"extractedTaskIds"`
	ExtractedNoteIDs    []string      `json:"extractedNoteIds"`
	RelationshipVersion int           `json:"relationshipVersion"`
	Chunks              chunkManifest `json:"chunks"`
	HasSummary          bool          `json:"hasSummary"`
	HasAudioInsights    bool          `json:"hasAudioInsights"`
	HasCanvasSpec       bool          `json:"hasCanvasSpec"`
	HasTranscription    bool          `json:"hasTranscription"`
	HasVideo            bool          `json:"hasVideo"`
	HasFullAudio        bool          `json:"hasFullAudio"`
	Video               *sessionVideo `json:"video,omitempty"`
	StorageVersion      int           `json:"storageVersion"`
	CreatedAt           string        `json:"createdAt"`
	UpdatedAt           string        `json:"updatedAt"`
	ScreenshotCount     int           `json:"screenshotCount"`
	AudioSegmentCount   int           `json:"audioSegmentCount"`
	VideoChunkCount     int           `json:"videoChunkCount"`
	HasScreenshots      bool          `json:"hasScreenshots"`
	HasAudio            bool          `json:"hasAudio"`
}

// legacySession is one monolithic Phase 3 Session with everything inline.
type legacySession struct {
	sessionCore
	Screenshots       []screenshot   `json:"screenshots"`
	AudioSegments     []audioSegment `json:"audioSegments"`
	VideoChunks       []videoChunk   `json:"videoChunks,omitempty"`
	FullTranscription string         `json:"fullTranscription,omitempty"`
	AudioInsights     *audioInsights `json:"audioInsights,omitempty"`
	Summary           *summary       `json:"summary,omitempty"`
	CanvasSpec        *canvasSpec    `json:"canvasSpec,omitempty"`
	Video             *sessionVideo  `json:"video,omitempty"`
}

type sessionVideo struct {
	ID             string         `json:"id"`
	SessionID      string         `json:"sessionId"`
	Duration       int            `json:"duration"`
	ChunkingStatus string         `json:"chunkingStatus"`
	Chapters       []videoChapter `json:"chapters"`
}

type videoChapter struct {
	ID         string   `json:"id"`
	SessionID  string   `json:"sessionId"`
	StartTime  int      `json:"startTime"`
	EndTime    int      `json:"endTime"`
	Title      string   `json:"title"`
	Summary    string   `json:"summary"`
	KeyTopics  []string `json:"keyTopics"`
	Confidence float64  `json:"confidence"`
	CreatedAt  string   `json:"createdAt"`
}

type screenshot struct {
	ID             string      `json:"id"`
	SessionID      string      `json:"sessionId"`
	Timestamp      string      `json:"timestamp"`
	AttachmentID   string      `json:"attachmentId"`
	Hash           string      `json:"hash,omitempty"`
	AnalysisStatus string      `json:"analysisStatus"`
	AIAnalysis     *aiAnalysis `json:"aiAnalysis,omitempty"`
	UserComment    string      `json:"userComment,omitempty"`
	Flagged        bool        `json:"flagged,omitempty"`
}

type named struct {
	Name       string  `json:"name"`
	Confidence float64 `json:"confidence"`
}

type aiAnalysis struct {
	Summary            string   `json:"summary"`
	DetectedActivity   string   `json:"detectedActivity"`
	ExtractedText      string   `json:"extractedText"`
	KeyElements        []string `json:"keyElements"`
	SuggestedActions   []string `json:"suggestedActions"`
	ContextDelta       string   `json:"contextDelta"`
	Curiosity          float64  `json:"curiosity"`
	CuriosityReason    string   `json:"curiosityReason"`
	ProgressIndicators struct {
		Achievements []string `json:"achievements"`
		Blockers     []string `json:"blockers"`
		Insights     []string `json:"insights"`
	} `json:"progressIndicators"`
	DetectedEntities struct {
		Topics    []named `json:"topics"`
		Companies []named `json:"companies"`
		Contacts  []named `json:"contacts"`
	} `json:"detectedEntities"`
	Confidence float64 `json:"confidence"`
}

type audioSegment struct {
	ID                   string   `json:"id"`
	SessionID            string   `json:"sessionId"`
	Timestamp            string   `json:"timestamp"`
	Duration             int      `json:"duration"`
	Transcription        string   `json:"transcription"`
	AttachmentID         string   `json:"attachmentId"`
	Hash                 string   `json:"hash,omitempty"`
	TranscriptionQuality string   `json:"transcriptionQuality"`
	KeyPhrases           []string `json:"keyPhrases"`
	Sentiment            string   `json:"sentiment"`
	ContainsTask         bool     `json:"containsTask"`
	ContainsBlocker      bool     `json:"containsBlocker"`
}

type videoChunk struct {
	ID                     string   `json:"id"`
	VideoID                string   `json:"videoId"`
	SessionID              string   `json:"sessionId"`
	AttachmentID           string   `json:"attachmentId"`
	StartTime              int      `json:"startTime"`
	EndTime                int      `json:"endTime"`
	Topic                  string   `json:"topic"`
	Description            string   `json:"description"`
	TranscriptExcerpt      string   `json:"transcriptExcerpt"`
	RelatedScreenshotIDs   []string `json:"relatedScreenshotIds"`
	RelatedAudioSegmentIDs []string `json:"relatedAudioSegmentIds"`
	Analyzed               bool     `json:"analyzed"`
	LastAnalyzedAt         string   `json:"lastAnalyzedAt"`
}

type summary struct {
	Narrative        string            `json:"narrative"`
	Achievements     []string          `json:"achievements"`
	Blockers         []string          `json:"blockers"`
	LastUpdated      string            `json:"lastUpdated"`
	ScreenshotCount  int               `json:"screenshotCount"`
	RecommendedTasks []recommendedTask `json:"recommendedTasks"`
	KeyInsights      []keyInsight      `json:"keyInsights"`
	FocusAreas       []focusArea       `json:"focusAreas"`
}

type recommendedTask struct {
	Title                string   `json:"title"`
	Priority             string   `json:"priority"`
	Context              string   `json:"context"`
	RelatedScreenshotIDs []string `json:"relatedScreenshotIds"`
}

type keyInsight struct {
	Insight       string   `json:"insight"`
	Timestamp     string   `json:"timestamp"`
	ScreenshotIDs []string `json:"screenshotIds"`
}

type focusArea struct {
	Area       string  `json:"area"`
	Duration   int     `json:"duration"`
	Percentage float64 `json:"percentage"`
}

type audioInsights struct {
	Narrative          string `json:"narrative"`
	ProcessedAt        string `json:"processedAt"`
	ModelUsed          string `json:"modelUsed"`
	ProcessingDuration int    `json:"processingDuration"`
	EmotionalJourney   []struct {
		Timestamp   int    `json:"timestamp"`
		Emotion     string `json:"emotion"`
		Description string `json:"description"`
	} `json:"emotionalJourney"`
	KeyMoments []struct {
		Timestamp   int    `json:"timestamp"`
		Type        string `json:"type"`
		Description string `json:"description"`
		Context     string `json:"context"`
		Excerpt     string `json:"excerpt"`
	} `json:"keyMoments"`
	WorkPatterns struct {
		FocusLevel    string `json:"focusLevel"`
		Interruptions int    `json:"interruptions"`
		FlowStates    []struct {
			Start       int    `json:"start"`
			End         int    `json:"end"`
			Description string `json:"description"`
		} `json:"flowStates"`
	} `json:"workPatterns"`
	EnvironmentalContext struct {
		AmbientNoise string `json:"ambientNoise"`
		WorkSetting  string `json:"workSetting"`
		TimeOfDay    string `json:"timeOfDay"`
	} `json:"environmentalContext"`
}

type canvasSpec struct {
	Theme struct {
		Primary     string `json:"primary"`
		Secondary   string `json:"secondary"`
		Mood        string `json:"mood"`
		Explanation string `json:"explanation"`
	} `json:"theme"`
	Layout struct {
		Type     string          `json:"type"`
		Sections []canvasSection `json:"sections"`
		Emphasis []string        `json:"emphasis"`
	} `json:"layout"`
	Metadata struct {
		GeneratedAt string  `json:"generatedAt"`
		SessionType string  `json:"sessionType"`
		Confidence  float64 `json:"confidence"`
	} `json:"metadata"`
}

type canvasSection struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Emphasis string `json:"emphasis"`
	Position int    `json:"position"`
	Content  string `json:"content,omitempty"`
}

// Real-app chunk objects ({sessionId, chunkIndex, <array>}).
type screenshotChunk struct {
	SessionID   string       `json:"sessionId"`
	ChunkIndex  int          `json:"chunkIndex"`
	Screenshots []screenshot `json:"screenshots"`
}

type audioChunk struct {
	SessionID  string         `json:"sessionId"`
	ChunkIndex int            `json:"chunkIndex"`
	Segments   []audioSegment `json:"segments"`
}

type videoChunkObject struct {
	SessionID  string       `json:"sessionId"`
	ChunkIndex int          `json:"chunkIndex"`
	Chunks     []videoChunk `json:"chunks"`
}

// legacyAttachment is attachments/<id>.json of the Phase 3 layout.
type legacyAttachment struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Name      string `json:"name"`
	MimeType  string `json:"mimeType"`
	Size      int    `json:"size"`
	CreatedAt string `json:"createdAt"`
}
