package task

import (
	"testing"
	"time"
)

// TestFrameDecisions: a flow's per-frame decision, in its declared output
// or in a node's output, is counted; anything else is not; a task whose
// flow reports none has no Frames.
func TestFrameDecisions(t *testing.T) {
	s := &taskStats{nodes: map[string]*nodeStats{}}
	if st := s.snapshot(time.Now()); st.Frames != nil {
		t.Fatalf("no decisions yet: %+v", st.Frames)
	}
	for _, out := range []map[string]any{
		{"decision": "detected"},
		{"detect": map[string]any{"decision": "motion", "faces": []any{}}, "track": map[string]any{}},
		{"detect": map[string]any{"decision": "tracked"}},
		{"detect": map[string]any{"decision": "tracked"}},
		{"detect": map[string]any{"decision": "skipped"}},
		{"detect": map[string]any{"decision": "guessed"}},
		{"decision": 3},
		nil,
	} {
		s.countDecision(out)
	}
	st := s.snapshot(time.Now())
	if st.Frames == nil || *st.Frames != (FrameDecisions{Detected: 1, Motion: 1, Tracked: 2, Skipped: 1}) {
		t.Errorf("frames %+v", st.Frames)
	}
}
