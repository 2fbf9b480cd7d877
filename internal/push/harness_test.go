package push

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/bus"
	_ "github.com/tianshu-ai/tianshu/internal/bus/natsbus"
	"github.com/tianshu-ai/tianshu/internal/event"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// keys is a fixed api.KeyResolver.
type keys map[string]api.Credential

func (k keys) ResolveKey(_ context.Context, id string) (api.Credential, error) {
	c, ok := k[id]
	if !ok {
		return api.Credential{}, fmt.Errorf("%w: %s", api.ErrKeyNotFound, id)
	}
	return c, nil
}

// Test apps: app A and app B in project "pa", app C in project "pb".
var (
	callerA  = &api.Caller{AppID: "app-a", ProjectID: "pa", Role: api.RoleAdmin, SecretID: "AKIDa"}
	callerB  = &api.Caller{AppID: "app-b", ProjectID: "pa", Role: api.RoleAdmin, SecretID: "AKIDb"}
	callerC  = &api.Caller{AppID: "app-c", ProjectID: "pb", Role: api.RoleAdmin, SecretID: "AKIDc"}
	testKeys = keys{
		"AKIDa": {SecretKey: "key-a", AppID: "app-a", ProjectID: "pa", Role: api.RoleAdmin},
		"AKIDb": {SecretKey: "key-b", AppID: "app-b", ProjectID: "pa", Role: api.RoleAdmin},
		"AKIDc": {SecretKey: "key-c", AppID: "app-c", ProjectID: "pb", Role: api.RoleAdmin},
	}
)

// env is a push service over a real store and a real embedded bus.
type env struct {
	t   *testing.T
	db  *store.DB
	bus bus.Bus
	box *secrets.Box
	svc *Service
	reg *api.Registry
	// grpcAddr is where the last grpcClient started the gRPC server.
	grpcAddr string
}

func testLogger() *slog.Logger {
	if os.Getenv("TIANSHU_TEST_LOGS") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func fastConfig(c *Config) {
	c.Reconcile = 50 * time.Millisecond
	c.AckWait = 2 * time.Second
	c.LeaseTTL = 3 * time.Second
	c.RetryDelay = 50 * time.Millisecond
	c.WebhookTimeout = 5 * time.Second
}

func newEnv(t *testing.T, adjust func(*Config)) *env {
	t.Helper()
	return newEnvOn(t, "nats://embedded", adjust)
}

// newEnvOn is newEnv on the bus at busURL.
func newEnvOn(t *testing.T, busURL string, adjust func(*Config)) *env {
	t.Helper()
	ctx := context.Background()
	db := storetest.Open(t, testenv.Getenv("TIANSHU_PUSH_TEST_DIALECT", "sqlite"))
	b, err := bus.Open(ctx, busURL, bus.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	key := make([]byte, secrets.KeySize)
	_, _ = rand.Read(key)
	box, err := secrets.New(key)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, bus: b, box: box}
	e.svc = e.newService(adjust)
	e.reg = api.NewRegistry()
	RegisterActions(e.reg, e.svc)
	return e
}

func (e *env) newService(adjust func(*Config)) *Service {
	cfg := Config{DB: e.db, Bus: e.bus, Box: e.box, Keys: testKeys, Logger: testLogger()}
	fastConfig(&cfg)
	if adjust != nil {
		adjust(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = s.Stop() })
	return s
}

// call runs an action and returns its response as JSON, or its error.
func (e *env) call(c *api.Caller, action string, body any) (map[string]any, error) {
	e.t.Helper()
	a, ok := e.reg.Lookup(action)
	if !ok {
		e.t.Fatalf("no action %s", action)
	}
	b, _ := json.Marshal(body)
	cc := *c
	resp, err := a.Call(context.Background(), &cc, b)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	rb, _ := json.Marshal(resp)
	_ = json.Unmarshal(rb, &out)
	return out, nil
}

func (e *env) mustCall(c *api.Caller, action string, body any) map[string]any {
	e.t.Helper()
	out, err := e.call(c, action, body)
	if err != nil {
		e.t.Fatalf("%s: %v", action, err)
	}
	return out
}

// testEvent is what the tests publish: a CloudEvent like the tasks'.
type testEvent struct {
	SpecVersion string         `json:"specversion"`
	ID          string         `json:"id"`
	Source      string         `json:"source"`
	Type        string         `json:"type"`
	Subject     string         `json:"subject"`
	Time        string         `json:"time"`
	TaskID      string         `json:"taskid"`
	ProjectID   string         `json:"projectid"`
	Data        map[string]any `json:"data"`
}

// publish publishes n events of type typ for project, spread over keys
// devices, with ids prefix-<i>, and returns the ids in order.
func publish(t testing.TB, b bus.Bus, project, prefix, typ string, n, keys int, data map[string]any) []string {
	t.Helper()
	out := make([]string, n)
	for i := range n {
		ev := testEvent{SpecVersion: "1.0", ID: fmt.Sprintf("%s-%06d", prefix, i), Source: "/tianshu/tasks/task-t", Type: typ,
			Subject: fmt.Sprintf("dev-%d", i%keys), Time: time.Now().UTC().Format(time.RFC3339Nano), TaskID: "task-t", ProjectID: project, Data: data}
		body, _ := json.Marshal(ev)
		if _, err := b.Publish(context.Background(), event.Topic(project), ev.Subject, body, map[string]string{event.HeaderID: ev.ID}); err != nil {
			t.Fatal(err)
		}
		out[i] = ev.ID
	}
	return out
}

// receiver is a webhook endpoint that verifies signatures and records the
// event ids it accepted, per subject.
type receiver struct {
	srv    *httptest.Server
	secret atomic.Pointer[string]
	// fail, when it returns true, makes the receiver answer 500.
	fail atomic.Pointer[func() bool]

	mu      sync.Mutex
	bySubj  map[string][]string
	seen    map[string]int
	total   int
	badSigs int
}

func newReceiver(t testing.TB) *receiver {
	r := &receiver{bySubj: map[string][]string{}, seen: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setSecret(s string) { r.secret.Store(&s) }

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if f := r.fail.Load(); f != nil && (*f)() {
		http.Error(w, "failing", http.StatusInternalServerError)
		return
	}
	sec := r.secret.Load()
	if sec == nil || req.Header.Get("Content-Type") != event.ContentType ||
		VerifyWebhook(*sec, req.Header.Get(HeaderWebhookID), req.Header.Get(HeaderWebhookTimestamp), req.Header.Get(HeaderWebhookSignature), body, time.Now(), 5*time.Minute) != nil {
		r.mu.Lock()
		r.badSigs++
		r.mu.Unlock()
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var ev testEvent
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID != req.Header.Get(HeaderWebhookID) {
		http.Error(w, "bad event", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.bySubj[ev.Subject] = append(r.bySubj[ev.Subject], ev.ID)
	r.seen[ev.ID]++
	r.total++
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

func (r *receiver) has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[id] > 0
}

// checkOrder checks that, per subject, the first deliveries of the events
// come in publish order (ids sort in publish order) and that ids holds
// exactly the events received.
func (r *receiver) checkOrder(t testing.TB, ids []string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.badSigs > 0 {
		t.Errorf("%d requests with bad signatures", r.badSigs)
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
		if r.seen[id] == 0 {
			t.Errorf("event %s never delivered", id)
		}
	}
	for id := range r.seen {
		if !want[id] {
			t.Errorf("unexpected event %s delivered", id)
		}
	}
	for subj, got := range r.bySubj {
		firsts := map[string]bool{}
		last := ""
		for _, id := range got {
			if firsts[id] {
				continue
			}
			firsts[id] = true
			if id < last {
				t.Errorf("subject %s: %s delivered after %s", subj, id, last)
				return
			}
			last = id
		}
	}
}

func apiCode(err error) string {
	var ae *api.Error
	if errors.As(err, &ae) {
		return string(ae.Code)
	}
	return ""
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func retried(e *env) int64 {
	var n int64
	e.svc.mu.Lock()
	for _, r := range e.svc.runners {
		n += r.c.retried.Load()
	}
	e.svc.mu.Unlock()
	var db int64
	_ = e.db.QueryRow(context.Background(), "SELECT COALESCE(SUM(retried), 0) FROM subscriptions").Scan(&db)
	return n + db
}
