package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	dto "github.com/prometheus/client_model/go"

	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/testenv"
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

// watchSite is an edge's side that records the watchlist sets the link
// applies, each checked to be one version's whole (bigSet's people carry
// their version's letter).
type watchSite struct {
	siteLog
	mu      sync.Mutex
	applied []string // versions
	mixed   []string
}

func (s *watchSite) ApplyWatchlists(_ context.Context, set data.WatchlistSet) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied = append(s.applied, set.Version)
	want := strings.Repeat(set.Version[:1], len(set.People[0].Notes))
	for _, p := range set.People {
		if p.Notes != want {
			s.mixed = append(s.mixed, set.Version+": person "+p.ID)
		}
	}
	return nil
}

func (s *watchSite) versions() (applied, mixed []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.applied), slices.Clone(s.mixed)
}

// bigSet is a set of version v larger than one link message: 30 people
// whose notes are 300 KB of v's first letter (about 9 MB, three chunks).
func bigSet(v string) data.WatchlistSet {
	set := data.WatchlistSet{Version: v, Lists: []data.SyncList{}, Faces: []data.SyncFace{}, Members: []data.SyncMember{}}
	notes := strings.Repeat(v[:1], 300_000)
	for i := range 30 {
		set.People = append(set.People, data.SyncPerson{ID: fmt.Sprintf("psn-%02d", i), Name: "p", Notes: notes})
	}
	return set
}

// watchHub is a cloud whose hub serves place's watchlists, with hook
// run before each watchlist chunk is answered; its node's edge runs with
// site and logs into logs.
type watchHub struct {
	c     *cloudEnd
	h     *HubServer
	place *placementStub
	node  string
	site  *watchSite
	logs  *testenv.LogBuffer
	l     *Link
}

func startWatchHub(t *testing.T, first data.WatchlistSet, hook func(w *watchHub, node string, offset int64), edgeBytes int64) *watchHub {
	t.Helper()
	w := &watchHub{c: startCloud(t), place: &placementStub{}, site: &watchSite{}, logs: &testenv.LogBuffer{}}
	_ = w.c.hub.Close()
	w.place.setWatchlists(first)
	var ready atomic.Bool // the hook runs only once w.h is set
	o := HubOptions{Addr: "127.0.0.1:0", Dir: w.c.dir, Nodes: w.c.nodes, Records: w.c.data, Placement: w.place, Sweep: 100 * time.Millisecond}
	if hook != nil {
		o.chunkHook = func(node string, offset int64) {
			if ready.Load() {
				hook(w, node, offset)
			}
		}
	}
	h, err := StartHub(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	w.h = h
	ready.Store(true)
	var tok string
	w.node, tok = newNode(t, w.c, "site")
	w.l = startEdgeWith(t, w.c, t.TempDir(), tok, w.logs, func(o *LinkOptions) {
		o.Site = w.site
		if edgeBytes > 0 {
			o.Config.WatchlistBytes = edgeBytes
		}
	})
	return w
}

// refused waits for the edge to log why it refused a set, which must
// name why, and checks that it applied none.
func (w *watchHub) refused(t *testing.T, why string) {
	t.Helper()
	testenv.EventuallyExplained(t, 30*time.Second, "the edge refusing the set: "+why, func() bool {
		return strings.Contains(w.logs.String(), why)
	}, w.logs.String)
	if a, _ := w.site.versions(); len(a) > 0 {
		t.Fatalf("applied %v", a)
	}
}

// chunks counts the hub's watchlist chunk requests of an outcome.
func (h *HubServer) chunks(outcome string) float64 {
	var m dto.Metric
	_ = h.m.watchlistChunks.WithLabelValues(outcome).Write(&m)
	return m.GetCounter().GetValue()
}

// A set larger than one link message reaches the edge in chunks. When the
// cloud's version moves on between two chunks (another node's exchange
// read the newer set while this one read the older), the edge drops what
// it read, applies nothing, and reads the newer set at its next exchange:
// it never applies a mixed set, and ends at the newest version.
func TestWatchlistSetChangesBetweenChunks(t *testing.T) {
	var once sync.Once
	w := startWatchHub(t, bigSet("a1"), func(w *watchHub, node string, offset int64) {
		if offset == 0 {
			return
		}
		once.Do(func() {
			w.place.setWatchlists(bigSet("b2"))
			body, _ := json.Marshal(watchlistsMsg{Have: "a1"})
			if r, ok := w.h.watchlists(node, &nats.Msg{Data: body}).(watchlistsReply); !ok || r.Version != "b2" {
				t.Errorf("the exchange that moves the set on: %+v", r)
			}
		})
	}, 0)
	testenv.EventuallyExplained(t, 30*time.Second, "version b2 applied on the edge", func() bool {
		a, _ := w.site.versions()
		return slices.Contains(a, "b2")
	}, w.logs.String)
	applied, mixed := w.site.versions()
	if !slices.Equal(applied, []string{"b2"}) || len(mixed) > 0 {
		t.Errorf("applied %v, mixed %v", applied, mixed)
	}
	if n := w.h.chunks("moved"); n != 1 {
		t.Errorf("%v chunk requests answered moved", n)
	}
	if s := w.logs.String(); !strings.Contains(s, "changed on the cloud while read") {
		t.Errorf("the edge's log:\n%s", s)
	}
	// Later exchanges find the edge up to date: nothing applied again.
	n := w.h.chunks("sent")
	testenv.Eventually(t, 30*time.Second, "unchanged exchanges", func() bool {
		var m dto.Metric
		_ = w.h.m.watchlists.WithLabelValues("unchanged").Write(&m)
		return m.GetCounter().GetValue() >= 3
	})
	if a, _ := w.site.versions(); len(a) != 1 || w.h.chunks("sent") != n {
		t.Errorf("applied %v after the edge was up to date", a)
	}
}

// A set read in chunks that does not match its sha256 (bytes changed on
// the way), or comes short of its announced size, is refused: the edge
// applies nothing and says why; a sound set after applies.
func TestWatchlistChunksCorrupt(t *testing.T) {
	corrupted := false // under w.h.mu
	w := startWatchHub(t, bigSet("a1"), func(w *watchHub, node string, offset int64) {
		w.h.mu.Lock()
		defer w.h.mu.Unlock()
		s := w.h.wlSnaps[w.h.wlReaders[node]]
		switch {
		case s == nil || offset != 0:
		case s.version == "a1" && !corrupted:
			// A note's letter, past the first chunk.
			i := len(s.body) - 1000
			s.body[i]++
			corrupted = true
		case s.version == "b2" && len(s.body) > 8<<20:
			s.body = s.body[:8<<20]
		}
	}, 0)
	w.refused(t, "do not match its sha256")
	w.place.setWatchlists(bigSet("b2"))
	w.refused(t, "a chunk of 0 bytes at 8388608")
	w.place.setWatchlists(bigSet("c3"))
	testenv.EventuallyExplained(t, 30*time.Second, "the sound set applied", func() bool {
		a, _ := w.site.versions()
		return slices.Equal(a, []string{"c3"})
	}, w.logs.String)
	if _, mixed := w.site.versions(); len(mixed) > 0 {
		t.Errorf("mixed: %v", mixed)
	}
}

// An edge reads no set announced larger than its own bound (it would hold
// it in memory): it applies nothing, says why, and reads no chunk.
func TestWatchlistsOverEdgeBound(t *testing.T) {
	w := startWatchHub(t, bigSet("a1"), nil, 1<<20)
	w.refused(t, "over 1048576, this edge's --edge.watchlist-bytes")
	if n := w.h.chunks("sent"); n > 0 {
		t.Errorf("%v chunks read", n)
	}
}
