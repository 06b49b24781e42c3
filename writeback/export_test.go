package writeback

// Hooks for the external tests.

// SetBackgroundHook makes fn run on a background worker before each file
// it prepares. Set it before the manager's first commit.
func SetBackgroundHook(m *Manager, fn func()) {
	if m.low != nil {
		m.low.onRun = fn
	}
}

// AddHeldWriters counts n more (or fewer) writers as held back.
func AddHeldWriters(m *Manager, n int32) { m.held.Add(n) }

var (
	LowerPriority = lowerPriority
	ThreadNice    = threadNice
)
