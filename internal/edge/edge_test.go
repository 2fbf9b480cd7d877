package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/blob"
	"github.com/tianshu-ai/tianshu/internal/blob/fileblob"
	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/edge/edgeconfig"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
	"github.com/tianshu-ai/tianshu/internal/testenv"

	dto "github.com/prometheus/client_model/go"

	_ "github.com/tianshu-ai/tianshu/internal/store/sqlite"
)

// refusals counts the leaf connections h refused so far.
func (h *HubServer) refusals() float64 {
	var m dto.Metric
	_ = h.m.refused.Write(&m)
	return m.GetCounter().GetValue()
}

// cloudEnd is a cloud's half in one test: a migrated SQLite store, the
// data center's records over it, a running hub and the join endpoint.
type cloudEnd struct {
	db    *store.DB
	blobs *fileblob.Store
	nodes *Nodes
	data  *data.Service
	hub   *HubServer
	join  *httptest.Server
	dir   string
}

func startCloud(t testing.TB) *cloudEnd {
	t.Helper()
	c := &cloudEnd{db: storetest.Open(t, "sqlite"), dir: t.TempDir()}
	c.nodes = NewNodes(c.db, nil)
	var err error
	if c.blobs, err = fileblob.New(t.TempDir(), blob.Options{}); err != nil {
		t.Fatal(err)
	}
	if c.data, err = data.New(c.db, nil, data.Options{}); err != nil {
		t.Fatal(err)
	}
	c.startHub(t, "127.0.0.1:0")
	c.join = httptest.NewServer(JoinHandler(c.nodes, slog.New(slog.DiscardHandler)))
	t.Cleanup(c.join.Close)
	return c
}

func (c *cloudEnd) startHub(t testing.TB, addr string) {
	t.Helper()
	h, err := StartHub(context.Background(), HubOptions{Addr: addr, Dir: c.dir, Nodes: c.nodes, Records: c.data, Objects: c.blobs, Sweep: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c.hub = h
	t.Cleanup(func() { _ = h.Close() })
}

// startEdge joins with token (unless dir holds a credential) and starts a
// link.
func startEdge(t testing.TB, c *cloudEnd, dir, token string, logs *testenv.LogBuffer) *Link {
	t.Helper()
	return startEdgeWith(t, c, dir, token, logs, nil)
}

// startEdgeWith is startEdge with the options changed by with.
func startEdgeWith(t testing.TB, c *cloudEnd, dir, token string, logs *testenv.LogBuffer, with func(*LinkOptions)) *Link {
	t.Helper()
	cfg := edgeconfig.Default()
	cfg.Cloud, cfg.JoinToken, cfg.Heartbeat = c.join.URL, token, 100*time.Millisecond
	box, err := secrets.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	o := LinkOptions{Config: cfg, Dir: dir, Box: box, Versions: map[string]string{"tianshu": "test"}}
	if logs != nil {
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if with != nil {
		with(&o)
	}
	l, err := StartLink(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func newNode(t testing.TB, c *cloudEnd, name string) (string, string) {
	t.Helper()
	n := &Node{Name: name}
	tok, err := c.nodes.Create(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	return n.ID, tok
}

// A node may use only its own subjects: a request to another node's
// records subject gets no answer, its own does, and the object keys it
// sends are not kept.
func TestLinkIsolatesNodes(t *testing.T) {
	c := startCloud(t)
	_, tokA := newNode(t, c, "a")
	idB, _ := newNode(t, c, "b")
	a := startEdge(t, c, t.TempDir(), tokA, nil)
	testenv.Eventually(t, 30*time.Second, "link up", a.Up)
	batch, _ := json.Marshal([]wireRecord{{ID: "rec-0000000000000000001", Type: "t", Data: json.RawMessage(`{}`),
		Objects: []string{"tasks/task-other/frame.jpg"}}})
	if _, err := a.nc.Request(fmt.Sprintf(subjectRecords, idB), batch, 2*time.Second); err == nil {
		t.Fatal("node a's request on node b's subject was answered")
	}
	if err := a.send(context.Background(), fmt.Sprintf(subjectRecords, a.NodeID()), batch, 1); err != nil {
		t.Fatalf("own subject: %v", err)
	}
	recs, _, err := c.data.Records(context.Background(), data.Query{})
	if err != nil || len(recs) != 1 {
		t.Fatalf("cloud records %d, %v", len(recs), err)
	}
	// Object keys name the edge's objects, never the cloud's.
	if len(recs[0].Objects) != 0 {
		t.Errorf("forwarded record kept object keys %v", recs[0].Objects)
	}
}

// A forged credential is refused; a token whose pinned certificate is not
// the hub's never sends the credential.
func TestLinkRefusesForgedCredentialAndWrongCertificate(t *testing.T) {
	c := startCloud(t)
	_, tok := newNode(t, c, "site")
	dir := t.TempDir()
	l := startEdge(t, c, dir, tok, nil)
	testenv.Eventually(t, 30*time.Second, "link up", l.Up)
	_ = l.Close()

	// The stored credential replaced by a forged one.
	b, err := os.ReadFile(credentialFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	var cr credential
	_ = json.Unmarshal(b, &cr)
	box, _ := secrets.New(bytes.Repeat([]byte{7}, 32))
	cr.Sealed = box.Seal("forged")
	b, _ = json.Marshal(cr)
	if err := os.WriteFile(credentialFile(dir), b, 0o600); err != nil {
		t.Fatal(err)
	}
	refused := c.hub.refusals()
	startEdge(t, c, dir, "", nil)
	testenv.Eventually(t, 30*time.Second, "hub refuses the forged credential", func() bool { return c.hub.refusals() > refused })

	// A token pinning another certificate.
	_, tok2 := newNode(t, c, "site-2")
	forged := tok2[:len(tok2)-64] + strings.Repeat("0", 64)
	logs := &testenv.LogBuffer{}
	l2 := startEdge(t, c, t.TempDir(), forged, logs)
	testenv.Eventually(t, 30*time.Second, "edge refuses the hub's certificate", func() bool {
		return strings.Contains(logs.String(), "not the one the join token pins")
	})
	if l2.Up() {
		t.Fatal("link up with a certificate the token does not pin")
	}
}

// A full buffer under drop-oldest keeps the newest records and counts the
// dropped ones; under stop-ingesting it refuses new ones.
func TestBufferPolicies(t *testing.T) {
	for _, policy := range []string{edgeconfig.PolicyDropOldest, edgeconfig.PolicyStopIngesting} {
		t.Run(policy, func(t *testing.T) {
			c := startCloud(t)
			_, tok := newNode(t, c, "site")
			addr := c.hub.Addr()
			_ = c.hub.Close() // offline from the start, after the join
			cfg := edgeconfig.Default()
			cfg.Cloud, cfg.JoinToken, cfg.Heartbeat, cfg.BufferBytes, cfg.BufferPolicy = c.join.URL, tok, 100*time.Millisecond, 1<<20, policy
			box, _ := secrets.New(bytes.Repeat([]byte{7}, 32))
			l, err := StartLink(context.Background(), LinkOptions{Config: cfg, Dir: t.TempDir(), Box: box})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = l.Close() })
			// 64 KiB records: 16 fit a 1 MiB buffer with their headers
			// and then no more.
			payload := `{"blob": "` + strings.Repeat("x", 64<<10) + `"}`
			var refused error
			for i := range 40 {
				err := l.Enqueue(context.Background(), []data.Record{{ID: fmt.Sprintf("rec-%019d", i), Type: "t", Data: json.RawMessage(payload), Time: time.Now()}})
				if err != nil {
					refused = err
				}
			}
			n, err := l.Buffered(context.Background())
			if err != nil || n == 0 || n >= 40 {
				t.Fatalf("buffered %d, %v", n, err)
			}
			if policy == edgeconfig.PolicyStopIngesting && refused == nil {
				t.Fatal("stop-ingesting accepted every record into a full buffer")
			}
			if policy == edgeconfig.PolicyDropOldest && refused != nil {
				t.Fatalf("drop-oldest refused: %v", refused)
			}
			c.startHub(t, addr)
			testenv.Eventually(t, 60*time.Second, "buffer forwarded", func() bool {
				left, err := l.Buffered(context.Background())
				return err == nil && left == 0
			})
			recs, total, _ := c.data.Records(context.Background(), data.Query{Limit: 100})
			// stop-ingesting forwards exactly what it buffered; drop-oldest
			// may also forward the batch it held when the oldest went.
			if total >= 40 || (policy == edgeconfig.PolicyStopIngesting && total != int(n)) {
				t.Errorf("%s: cloud has %d records, the buffer held %d of 40", policy, total, n)
			}
			want := "rec-0000000000000000000" // the first record
			if policy == edgeconfig.PolicyDropOldest {
				want = "rec-0000000000000000039" // the newest record
			}
			found := false
			for _, r := range recs {
				found = found || r.ID == want
			}
			if !found {
				t.Errorf("%s: %s not forwarded", policy, want)
			}
		})
	}
}
