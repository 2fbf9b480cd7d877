package flow

import (
	"context"
	"testing"
)

// fakeWatchlists hits list "wl-vip" with person Alice when the
// embedding's first value is above 0.5.
type fakeWatchlists struct{}

func (fakeWatchlists) Match(_ context.Context, v []float32) ([]WatchlistHit, error) {
	if len(v) > 0 && v[0] > 0.5 {
		return []WatchlistHit{{WatchlistID: "wl-vip", WatchlistName: "vip", Threshold: 0.8, PersonID: "psn-a", PersonName: "Alice", Similarity: 0.91234}}, nil
	}
	return nil, nil
}

// A match node stores a hit record with the crop and publishes
// tianshu.watchlist.hit naming the face's record; a face that hits
// nothing stores and publishes nothing. Without watchlists the node does
// not compile.
func TestMatchNode(t *testing.T) {
	doc := `{"nodes": [{"id": "m", "kind": "match", "inputs": {"embedding": "$input.emb", "recordId": "$input.rec", "crop": "$input.crop", "box": "$input.box"}}]}`
	opts := testOptions()
	opts.Watchlists = fakeWatchlists{}
	p := compileDoc(t, doc, opts)
	sinks := &fakeSinks{}
	res, err := p.Run(t.Context(), Input{Key: "dev-1", Sinks: sinks, Data: map[string]any{"emb": []any{0.9, 0.1}, "rec": "rec-face", "crop": []byte("jpeg"), "box": []any{1, 2, 3, 4}}})
	if err != nil {
		t.Fatal(err)
	}
	out := res.Output["m"].(map[string]any)
	if out["matched"] != true || len(out["hits"].([]any)) != 1 {
		t.Errorf("output %v", out)
	}
	if len(sinks.records) != 1 || len(sinks.events) != 1 {
		t.Fatalf("%d records, %d events; want 1 and 1", len(sinks.records), len(sinks.events))
	}
	r, e := sinks.records[0], sinks.events[0]
	if r.Type != "watchlist_hit" || r.Data["PersonId"] != "psn-a" || r.Data["FaceRecordId"] != "rec-face" || r.Data["Crop"] == nil || r.Data["Similarity"] != 0.9123 {
		t.Errorf("hit record %+v", r)
	}
	if e.Type != WatchlistHitEvent || e.Subject != "dev-1" || e.Data["RecordId"] != "rec-1" || e.Data["WatchlistName"] != "vip" || e.Data["Crop"] != nil || e.Origin == r.Origin+"x" {
		t.Errorf("hit event %+v", e)
	}
	if _, err := p.Run(t.Context(), Input{Key: "dev-1", Sinks: sinks, Data: map[string]any{"emb": []any{0.1, 0.9}}}); err != nil || len(sinks.records) != 1 || len(sinks.events) != 1 {
		t.Errorf("a face without a hit: %v; %d records, %d events", err, len(sinks.records), len(sinks.events))
	}
	if _, err := p.Run(t.Context(), Input{Key: "dev-1", Sinks: sinks, Data: map[string]any{"emb": "nope"}}); err == nil {
		t.Error("an embedding that is not a list of numbers runs")
	}
	// A face the model described no embedding for matches nothing.
	if res, err := p.Run(t.Context(), Input{Key: "dev-1", Sinks: sinks, Data: map[string]any{}}); err != nil || res.Output["m"].(map[string]any)["matched"] != false {
		t.Errorf("a face without an embedding: %v, %v", res.Output, err)
	}
	if errs := validateDoc(t, doc, testOptions()); len(errs) != 1 || errs[0].Field != "kind" {
		t.Errorf("without watchlists: %v", errs)
	}
}
