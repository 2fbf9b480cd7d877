package edge

import (
	"encoding/json"
	"testing"
)

// A task hears why the edge's watchlists are not the cloud's when its flow
// has a match node anywhere: at the top, or in a foreach's body as in the
// face-watchlist template.
func TestFlowMatches(t *testing.T) {
	for doc, want := range map[string]bool{
		`{"nodes": [{"id": "m", "kind": "match", "inputs": {"embedding": [1]}}]}`: true,
		`{"nodes": [{"id": "faces", "kind": "foreach", "config": {"body": {"nodes": [
		   {"id": "embed", "kind": "algorithm"}, {"id": "match", "kind": "match"}]}}}]}`: true,
		`{"nodes": [{"id": "s", "kind": "store", "config": {"type": "match"}}]}`:     false,
		`{"nodes": [{"id": "kind", "kind": "script", "inputs": {"kind": "match"}}]}`: false,
		`not json`: false,
	} {
		if got := (FlowVersion{Document: json.RawMessage(doc)}).matches(); got != want {
			t.Errorf("%s: matches %v, want %v", doc, got, want)
		}
	}
}
