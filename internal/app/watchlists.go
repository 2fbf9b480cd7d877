package app

import (
	"context"

	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/flow"
)

// watchlists is a project's watchlists as match nodes see them
// (flow.Watchlists over data.Service.MatchFace): the flow engine knows no
// data center.
type watchlists struct {
	data    *data.Service
	project string
}

func (w watchlists) Match(ctx context.Context, embedding []float32) ([]flow.WatchlistHit, error) {
	hits, err := w.data.MatchFace(ctx, w.project, embedding)
	if err != nil || len(hits) == 0 {
		return nil, err
	}
	out := make([]flow.WatchlistHit, len(hits))
	for i, h := range hits {
		out[i] = flow.WatchlistHit(h)
	}
	return out, nil
}
