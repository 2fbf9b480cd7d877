package edge

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// Two cloud replicas serve the leaf port with one certificate, kept in the
// shared store (the first hub's, copied from its data dir where an earlier
// version made it, so tokens already issued keep working): an edge whose
// token was made while one hub ran fails over to the other behind the
// same advertised address (a load balancer, here a proxy that switches),
// and everything it buffered arrives once.
func TestHubsShareCertificate(t *testing.T) {
	ctx := context.Background()
	c := startCloud(t) // a hub of an earlier version: its certificate in c.dir
	before, err := c.nodes.Hub(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.hub.Close()
	box, err := secrets.New(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	px := newCountingProxy(t, "")
	start := func(dir string) *HubServer {
		h, err := StartHub(ctx, HubOptions{Addr: "127.0.0.1:0", Advertise: px.ln.Addr().String(), Dir: dir, Box: box,
			Nodes: c.nodes, Records: c.data, Sweep: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = h.Close() })
		hub, err := c.nodes.Hub(ctx)
		if err != nil || hub.Fingerprint != before.Fingerprint {
			t.Fatalf("hub in %s: fingerprint %s, want %s (%v)", dir, hub.Fingerprint, before.Fingerprint, err)
		}
		return h
	}
	a := start(c.dir)
	b := start(t.TempDir()) // a replica with a data dir of its own
	var sealed string
	if err := c.db.QueryRow(ctx, "SELECT key_enc FROM edge_hub_certificates").Scan(&sealed); err != nil || bytes.Contains([]byte(sealed), []byte("PRIVATE KEY")) {
		t.Fatalf("the stored key is not sealed: %.40q, %v", sealed, err)
	}
	to := func(h *HubServer) { px.mu.Lock(); px.target = h.Addr(); px.mu.Unlock() }
	to(a)
	_, tok := newNode(t, c, "site")
	l := startEdge(t, c, t.TempDir(), tok, nil)
	testenv.Eventually(t, 30*time.Second, "link up through the first hub", l.Up)
	enqueue := func(from int) {
		recs := make([]data.Record, 20)
		for i := range recs {
			recs[i] = data.Record{ID: fmt.Sprintf("rec-hubs%014d", from+i), Type: "t", Data: []byte(`{}`), Time: time.Now()}
		}
		if err := l.Enqueue(ctx, recs); err != nil {
			t.Fatal(err)
		}
	}
	enqueue(0)
	forwarded := func(n int) func() bool {
		return func() bool {
			left, err := l.Buffered(ctx)
			_, total, _ := c.data.Records(ctx, data.Query{Limit: 1})
			return err == nil && left == 0 && total == n
		}
	}
	testenv.Eventually(t, 30*time.Second, "records through the first hub", forwarded(20))

	// The first replica goes; the balancer sends the edge to the second.
	to(b)
	_ = a.Close()
	testenv.Eventually(t, 30*time.Second, "link down", func() bool { return !l.Up() })
	enqueue(20)
	testenv.Eventually(t, 30*time.Second, "link up through the second hub", l.Up)
	testenv.Eventually(t, 30*time.Second, "records through the second hub", forwarded(40))
}
