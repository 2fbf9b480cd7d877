package edge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tianshu-ai/tianshu/internal/data"
)

// subjectWatchlists is the watchlist exchange: the edge names the version
// of its project's watchlists it applied last and, when the cloud's
// differs, gets back the whole set, or, for a set larger than one link
// message, its version, size and sha256 to read it in chunks on
// subjectWatchlistChunk. It is its own request, not part of the deploy
// reply, so that the set is sent only when it changed.
const subjectWatchlists = "edge.%s.watchlists" // watchlistsMsg → watchlistsReply

// subjectWatchlistChunk reads a chunk of the set a watchlist exchange
// announced, by its version and offset.
const subjectWatchlistChunk = "edge.%s.watchlistchunk" // watchlistChunkMsg → watchlistChunkReply

// maxWatchlistBytes is the largest set sent in the exchange's reply: one
// link message, with room for its envelope. A larger one is read in
// chunks of artifactChunk bytes.
const maxWatchlistBytes = maxLinkMessage - 256<<10

// watchlistIdle is how long the hub keeps a project's snapshot that no
// node asked for or read from.
const watchlistIdle = 5 * time.Minute

type watchlistsMsg struct {
	// Have is the version the edge applied last; "" for none.
	Have string `json:"Have"`
}

type watchlistsReply struct {
	// Set is the whole set, when it differs from the edge's and fits
	// this reply.
	Set json.RawMessage `json:"Set,omitempty"`
	// Version, Size and Sum announce a set read in chunks: its version,
	// its bytes of JSON and their sha256 (hex).
	Version string `json:"Version,omitempty"`
	Size    int64  `json:"Size,omitempty"`
	Sum     string `json:"Sum,omitempty"`
	// Error is why no set is sent; with Size, it is for edges that read
	// no chunks (older versions), which would otherwise take the reply
	// for "unchanged" and never say why they lag.
	Error string `json:"Error,omitempty"`
}

type watchlistChunkMsg struct {
	Version string `json:"Version"`
	Offset  int64  `json:"Offset"`
}

type watchlistChunkReply struct {
	Data []byte `json:"Data"`
	// Moved says the cloud holds that version no more: the edge starts
	// over at its next exchange.
	Moved bool   `json:"Moved,omitempty"`
	Error string `json:"Error,omitempty"`
}

// watchlistSnapshot is a project's set as the hub serialised it once for
// all its nodes, or the refusal of a set over the bound. The hub holds one
// per project, replaced when the version moves on and dropped when idle
// (HubServer.cut).
type watchlistSnapshot struct {
	// version is the set's version (for a refusal, the one that was
	// read).
	version string
	body    []byte // the set's JSON; nil when refused
	sum     string // sha256 of body, hex
	refused string // the error nodes are sent
	used    time.Time
}

// errWatchlistsMoved says the cloud's set changed while the edge read it
// in chunks.
var errWatchlistsMoved = errors.New("the cloud's watchlists changed while read")

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
	n, err := h.o.Nodes.Get(ctx, node)
	if err != nil {
		return watchlistsReply{Error: "node: " + err.Error()}
	}
	v, err := h.o.Placement.WatchlistVersion(ctx, n.ProjectID)
	if err != nil {
		h.log.Error("edge watchlists not read", "node", node, "err", err)
		return watchlistsReply{Error: "watchlists: " + err.Error()}
	}
	if v == in.Have {
		h.m.watchlists.WithLabelValues("unchanged").Inc()
		return watchlistsReply{}
	}
	s, err := h.snapshot(ctx, node, n.ProjectID, v)
	if err != nil {
		h.log.Error("edge watchlists not read", "node", node, "err", err)
		return watchlistsReply{Error: "watchlists: " + err.Error()}
	}
	if s.refused != "" {
		h.m.watchlists.WithLabelValues("too_large").Inc()
		return watchlistsReply{Error: s.refused}
	}
	if len(s.body) <= maxWatchlistBytes {
		h.m.watchlists.WithLabelValues("sent").Inc()
		return watchlistsReply{Set: s.body}
	}
	h.mu.Lock()
	h.wlReaders[node] = n.ProjectID
	h.mu.Unlock()
	h.m.watchlists.WithLabelValues("chunked").Inc()
	return watchlistsReply{Version: s.version, Size: int64(len(s.body)), Sum: s.sum,
		Error: fmt.Sprintf("the cloud's set of %d bytes is read in chunks, which this edge's version does not do: upgrade it", len(s.body))}
}

// snapshot returns the project's snapshot at version v: the one held, or
// one read and serialised now in its place.
func (h *HubServer) snapshot(ctx context.Context, node, project, v string) (*watchlistSnapshot, error) {
	now := time.Now()
	h.mu.Lock()
	s := h.wlSnaps[project]
	if s != nil && s.version == v {
		s.used = now
		h.mu.Unlock()
		return s, nil
	}
	h.mu.Unlock()
	bound := h.o.WatchlistBytes
	s = &watchlistSnapshot{version: v, used: now}
	set, err := h.o.Placement.Watchlists(ctx, project, int(bound))
	if errors.Is(err, data.ErrWatchlistsTooLarge) {
		s.refused = fmt.Sprintf("%v, this cloud's --edge.watchlist-bytes (docs/search.md, watchlists on edge sites)", err)
	} else if err != nil {
		return nil, err
	} else if body, err := json.Marshal(set); err != nil {
		return nil, err
	} else if int64(len(body)) > bound {
		// The export counts as it reads, about; the bytes decide.
		s.refused = fmt.Sprintf("%v: project %s's set is %d bytes, over %d, this cloud's --edge.watchlist-bytes (docs/search.md, watchlists on edge sites)",
			data.ErrWatchlistsTooLarge, project, len(body), bound)
	} else {
		sum := sha256.Sum256(body)
		s.version, s.body, s.sum = set.Version, body, hex.EncodeToString(sum[:])
	}
	if s.refused != "" {
		h.log.Warn("edge watchlists too large for the link", "node", node, "project", project, "version", v, "err", s.refused)
	}
	h.mu.Lock()
	h.wlSnaps[project] = s
	h.mu.Unlock()
	return s, nil
}

// watchlistChunk answers a chunk of the set the node's last exchange
// announced: only a joined node, only its project's set.
func (h *HubServer) watchlistChunk(node string, m *nats.Msg) any {
	var in watchlistChunkMsg
	if err := json.Unmarshal(m.Data, &in); err != nil || in.Offset < 0 {
		h.m.watchlistChunks.WithLabelValues("refused").Inc()
		return watchlistChunkReply{Error: "watchlist chunk: not a request"}
	}
	if h.o.chunkHook != nil {
		h.o.chunkHook(node, in.Offset)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if ok, err := h.o.Nodes.joined(ctx, node); err != nil || !ok {
		h.m.watchlistChunks.WithLabelValues("refused").Inc()
		return watchlistChunkReply{Error: "edge node " + node + " is not a joined node"}
	}
	h.mu.Lock()
	project, ok := h.wlReaders[node]
	s := h.wlSnaps[project]
	held := ok && s != nil && s.body != nil && s.version == in.Version
	if held {
		s.used = time.Now()
	}
	h.mu.Unlock()
	switch {
	case !ok:
		h.m.watchlistChunks.WithLabelValues("refused").Inc()
		return watchlistChunkReply{Error: "watchlist chunk: no set was announced to this node"}
	case !held:
		h.m.watchlistChunks.WithLabelValues("moved").Inc()
		return watchlistChunkReply{Moved: true}
	case in.Offset > int64(len(s.body)):
		h.m.watchlistChunks.WithLabelValues("refused").Inc()
		return watchlistChunkReply{Error: fmt.Sprintf("watchlist chunk: offset %d past the set's %d bytes", in.Offset, len(s.body))}
	}
	end := min(in.Offset+artifactChunk, int64(len(s.body)))
	h.m.watchlistChunks.WithLabelValues("sent").Inc()
	return watchlistChunkReply{Data: s.body[in.Offset:end]}
}

// dropIdleSnapshots forgets the snapshots no node used within
// watchlistIdle, and what nodes no longer joined may read. h.mu is held.
func (h *HubServer) dropIdleSnapshots(live map[string]bool, now time.Time) {
	for project, s := range h.wlSnaps {
		if now.Sub(s.used) > watchlistIdle {
			delete(h.wlSnaps, project)
		}
	}
	for node := range h.wlReaders {
		if !live[node] {
			delete(h.wlReaders, node)
		}
	}
}

// syncWatchlists brings the edge's watchlists to the cloud's: it asks for
// the set when the cloud's version differs from have, reads it (in chunks
// when it is larger than one link message) and applies it whole, and
// returns the version applied now. The error is why the edge still
// matches with an older set (or none): the cloud's set is too large, was
// not read whole, or did not apply here. A set that changed on the cloud
// while read is no error: the next exchange reads the newer one.
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
	raw := r.Set
	switch {
	case r.Size > 0:
		raw, err = l.readWatchlists(ctx, r)
		if errors.Is(err, errWatchlistsMoved) {
			l.log.Info("edge watchlists changed on the cloud while read; read again at the next exchange", "version", r.Version)
			return have, nil
		}
		if err != nil {
			return have, fmt.Errorf("watchlists not synced: %w", err)
		}
	case r.Error != "":
		return have, errors.New("watchlists not synced: " + r.Error)
	case r.Set == nil:
		return have, nil
	}
	var set data.WatchlistSet
	if err := json.Unmarshal(raw, &set); err != nil {
		return have, fmt.Errorf("watchlists not synced: %w", err)
	}
	if r.Size > 0 && set.Version != r.Version {
		return have, fmt.Errorf("watchlists not synced: the set read holds version %s, not the %s announced", set.Version, r.Version)
	}
	if err := l.o.Site.ApplyWatchlists(ctx, set); err != nil {
		return have, fmt.Errorf("watchlists not applied: %w", err)
	}
	l.log.Info("edge watchlists applied", "version", set.Version, "bytes", len(raw), "lists", len(set.Lists), "people", len(set.People), "faces", len(set.Faces))
	return set.Version, nil
}

// readWatchlists reads the set r announced, a chunk per request, and
// checks it whole against its sha256.
func (l *Link) readWatchlists(ctx context.Context, r watchlistsReply) ([]byte, error) {
	if bound := l.o.Config.WatchlistBytes; r.Size > bound {
		return nil, fmt.Errorf("the cloud's set (version %s) is %d bytes, over %d, this edge's --edge.watchlist-bytes", r.Version, r.Size, bound)
	}
	subject := fmt.Sprintf(subjectWatchlistChunk, l.cred.NodeID)
	body := make([]byte, 0, r.Size)
	for int64(len(body)) < r.Size {
		req, _ := json.Marshal(watchlistChunkMsg{Version: r.Version, Offset: int64(len(body))})
		rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		resp, err := l.nc.RequestWithContext(rctx, subject, req)
		cancel()
		if err != nil {
			return nil, err
		}
		var c watchlistChunkReply
		if err := json.Unmarshal(resp.Data, &c); err != nil {
			return nil, err
		}
		if c.Moved {
			return nil, errWatchlistsMoved
		}
		if c.Error != "" {
			return nil, errors.New(c.Error)
		}
		if len(c.Data) == 0 || int64(len(body)+len(c.Data)) > r.Size {
			return nil, fmt.Errorf("a chunk of %d bytes at %d of the set's %d", len(c.Data), len(body), r.Size)
		}
		body = append(body, c.Data...)
	}
	if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != r.Sum {
		return nil, fmt.Errorf("the %d bytes read of the cloud's set (version %s) do not match its sha256", len(body), r.Version)
	}
	return body, nil
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
