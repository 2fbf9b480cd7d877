package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tianshu-ai/tianshu/internal/data"
)

// subjectWatchlists is the watchlist exchange: the edge names the version
// of its project's watchlists it applied last and gets back the whole set
// when the cloud's differs. It is its own request, not part of the deploy
// reply, so that the set (up to maxWatchlistBytes) is sent only when it
// changed.
const subjectWatchlists = "edge.%s.watchlists" // watchlistsMsg → watchlistsReply

// maxWatchlistBytes bounds a watchlist set on the link: one message, with
// room for its envelope. A larger set is refused, naming its size (the
// edge keeps matching with the last set it applied).
const maxWatchlistBytes = maxLinkMessage - 256<<10

type watchlistsMsg struct {
	// Have is the version the edge applied last; "" for none.
	Have string `json:"Have"`
}

type watchlistsReply struct {
	// Set is nil when the cloud's version is the edge's.
	Set   *data.WatchlistSet `json:"Set,omitempty"`
	Error string             `json:"Error,omitempty"`
}

// watchlists answers a node's watchlist exchange on the hub.
func (h *HubServer) watchlists(node string, m *nats.Msg) any {
	if h.o.Placement == nil {
		return watchlistsReply{Error: "this cloud places no tasks on edge nodes"}
	}
	var in watchlistsMsg
	if err := json.Unmarshal(m.Data, &in); err != nil || len(in.Have) > 128 {
		return watchlistsReply{Error: "watchlists: not a version of at most 128 bytes"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if ok, err := h.o.Nodes.joined(ctx, node); err != nil || !ok {
		return watchlistsReply{Error: "edge node " + node + " is not a joined node"}
	}
	v, err := h.o.Placement.WatchlistVersion(ctx, node)
	if err != nil {
		h.log.Error("edge watchlists not read", "node", node, "err", err)
		return watchlistsReply{Error: "watchlists: " + err.Error()}
	}
	if v == in.Have {
		h.m.watchlists.WithLabelValues("unchanged").Inc()
		return watchlistsReply{}
	}
	// A version refused as too large is not read again each heartbeat.
	h.mu.Lock()
	r, refused := h.tooLarge[node]
	h.mu.Unlock()
	if refused && r.version == v {
		h.m.watchlists.WithLabelValues("too_large").Inc()
		return watchlistsReply{Error: r.msg}
	}
	set, err := h.o.Placement.Watchlists(ctx, node, maxWatchlistBytes)
	if errors.Is(err, data.ErrWatchlistsTooLarge) {
		h.m.watchlists.WithLabelValues("too_large").Inc()
		h.log.Warn("edge watchlists too large for the link", "node", node, "err", err)
		msg := fmt.Sprintf("%v, one link message (docs/search.md, watchlists on edge sites)", err)
		h.mu.Lock()
		h.tooLarge[node] = refusal{version: v, msg: msg}
		h.mu.Unlock()
		return watchlistsReply{Error: msg}
	}
	if err != nil {
		h.log.Error("edge watchlists not read", "node", node, "err", err)
		return watchlistsReply{Error: "watchlists: " + err.Error()}
	}
	h.mu.Lock()
	delete(h.tooLarge, node)
	h.mu.Unlock()
	h.m.watchlists.WithLabelValues("sent").Inc()
	return watchlistsReply{Set: &set}
}

// refusal is a node's project's watchlist version refused as too large,
// with the error the node was sent.
type refusal struct{ version, msg string }

// syncWatchlists brings the edge's watchlists to the cloud's: it asks for
// the set when the cloud's version differs from have and applies it, and
// returns the version applied now. The error is why the edge still
// matches with an older set (or none): the cloud's set is too large, or
// did not apply here.
func (l *Link) syncWatchlists(ctx context.Context, have string) (string, error) {
	body, _ := json.Marshal(watchlistsMsg{Have: have})
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := l.nc.RequestWithContext(rctx, fmt.Sprintf(subjectWatchlists, l.cred.NodeID), body)
	if err != nil {
		return have, fmt.Errorf("watchlists not synced: %w", err)
	}
	var r watchlistsReply
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return have, fmt.Errorf("watchlists not synced: %w", err)
	}
	if r.Error != "" {
		return have, errors.New("watchlists not synced: " + r.Error)
	}
	if r.Set == nil {
		return have, nil
	}
	if err := l.o.Site.ApplyWatchlists(ctx, *r.Set); err != nil {
		return have, fmt.Errorf("watchlists not applied: %w", err)
	}
	l.log.Info("edge watchlists applied", "version", r.Set.Version, "lists", len(r.Set.Lists), "people", len(r.Set.People), "faces", len(r.Set.Faces))
	return r.Set.Version, nil
}

// matches reports whether a flow version has a match node, at the top or
// in a body (a foreach's, say): its tasks hear why the edge's watchlists
// are not the cloud's.
func (f FlowVersion) matches() bool {
	var doc any
	_ = json.Unmarshal(f.Document, &doc)
	return hasMatchNode(doc)
}

// hasMatchNode walks a decoded flow document for a "nodes" list holding a
// node of kind match.
func hasMatchNode(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		if nodes, ok := x["nodes"].([]any); ok {
			for _, n := range nodes {
				if m, ok := n.(map[string]any); ok && m["kind"] == "match" {
					return true
				}
			}
		}
		for _, e := range x {
			if hasMatchNode(e) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if hasMatchNode(e) {
				return true
			}
		}
	}
	return false
}
