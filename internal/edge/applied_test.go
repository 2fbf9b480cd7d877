package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// placementStub is a cloud's desired state for a node, and its project's
// watchlists (none unless set), changed by the test (the app's placement
// reads them from the store).
type placementStub struct {
	mu sync.Mutex
	d  Desired
	wl *data.WatchlistSet
}

func (p *placementStub) set(d Desired) { p.mu.Lock(); p.d = d; p.mu.Unlock() }
func (p *placementStub) setWatchlists(s data.WatchlistSet) {
	p.mu.Lock()
	p.wl = &s
	p.mu.Unlock()
}
func (p *placementStub) Desired(context.Context, string) (Desired, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.d, nil
}
func (p *placementStub) Report(context.Context, string, TaskReport) error         { return nil }
func (p *placementStub) ReportDevice(context.Context, string, DeviceReport) error { return nil }
func (p *placementStub) WatchlistVersion(context.Context, string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.wl == nil {
		return data.NoWatchlistVersion, nil
	}
	return p.wl.Version, nil
}

// Watchlists refuses a set over maxBytes as the data center's export
// does, though only once it is whole.
func (p *placementStub) Watchlists(_ context.Context, _ string, maxBytes int) (data.WatchlistSet, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.wl == nil {
		return data.WatchlistSet{Version: data.NoWatchlistVersion}, nil
	}
	if b, _ := json.Marshal(p.wl); len(b) > maxBytes {
		return data.WatchlistSet{}, fmt.Errorf("%w: %d bytes", data.ErrWatchlistsTooLarge, len(b))
	}
	return *p.wl, nil
}

// siteLog is an edge's side that records what the link asks of it (the
// app's site runs algorithm versions and tasks).
type siteLog struct {
	mu               sync.Mutex
	applied, retired []string
}

func (s *siteLog) ApplyDevice(context.Context, DesiredDevice) error { return nil }
func (s *siteLog) ApplyAlgorithm(_ context.Context, a DesiredAlgorithm, _ Fetch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied = append(s.applied, a.Key())
	return nil
}
func (s *siteLog) RetireAlgorithm(_ context.Context, id, version string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retired = append(s.retired, id+"@"+version)
	return nil
}
func (s *siteLog) Apply(context.Context, DesiredTask, FlowVersion) error { return nil }
func (s *siteLog) Report(_ context.Context, id string) (TaskReport, error) {
	return TaskReport{ID: id, Status: "Running"}, nil
}
func (s *siteLog) DeviceReport(_ context.Context, id string) (DeviceReport, error) {
	return DeviceReport{ID: id, Status: "online"}, nil
}
func (s *siteLog) ApplyWatchlists(context.Context, data.WatchlistSet) error { return nil }
func (s *siteLog) calls() (applied, retired []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.applied), slices.Clone(s.retired)
}

// The algorithm versions an edge applied are kept on its disk: an edge
// restarted while its cloud is away, and whose cloud meanwhile stopped
// wanting a version, retires that version at the first exchange after the
// link is back (before, it forgot it and kept it running).
func TestAppliedVersionsSurviveRestart(t *testing.T) {
	ctx := context.Background()
	c := startCloud(t)
	_ = c.hub.Close()
	place := &placementStub{}
	place.set(Desired{Algorithms: []DesiredAlgorithm{{AlgorithmID: "alg-a", Version: "1"}, {AlgorithmID: "alg-b", Version: "1"}}})
	startHub := func(addr string) *HubServer {
		h, err := StartHub(ctx, HubOptions{Addr: addr, Dir: c.dir, Nodes: c.nodes, Records: c.data, Placement: place, Sweep: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = h.Close() })
		return h
	}
	h := startHub("127.0.0.1:0")
	_, tok := newNode(t, c, "site")
	dir := t.TempDir()
	site := &siteLog{}
	l := startEdgeWith(t, c, dir, tok, nil, func(o *LinkOptions) { o.Site = site })
	testenv.Eventually(t, 30*time.Second, "both versions applied", func() bool {
		a, _ := site.calls()
		return slices.Contains(a, "alg-a@1") && slices.Contains(a, "alg-b@1")
	})

	// The cloud goes away; the edge restarts without it; meanwhile the
	// cloud's state drops alg-b.
	addr := h.Addr()
	_ = h.Close()
	testenv.Eventually(t, 30*time.Second, "link down", func() bool { return !l.Up() })
	_ = l.Close()
	place.set(Desired{Algorithms: []DesiredAlgorithm{{AlgorithmID: "alg-a", Version: "1"}}})
	site2 := &siteLog{}
	l2 := startEdgeWith(t, c, dir, "", nil, func(o *LinkOptions) { o.Site = site2 })
	if a, r := site2.calls(); len(a)+len(r) != 0 {
		t.Fatalf("the edge applied %v and retired %v without its cloud", a, r)
	}
	startHub(addr)
	testenv.Eventually(t, 30*time.Second, "link up again", l2.Up)
	testenv.EventuallyExplained(t, 30*time.Second, "alg-b retired after the restart", func() bool {
		_, r := site2.calls()
		return slices.Equal(r, []string{"alg-b@1"})
	}, func() string { _, r := site2.calls(); return "retired " + fmtList(r) })
	if v := l2.versions()["algorithm/alg-b"]; v != "" {
		t.Errorf("heartbeat still reports alg-b %q", v)
	}
}

func fmtList(l []string) string { return "[" + strings.Join(l, ", ") + "]" }
