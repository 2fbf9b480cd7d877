// Package push is Tianshu's message gateway: subscriptions (a filter over a
// project's events and a delivery channel) and their delivery, at least
// once and in order per key (the event subject), over signed webhooks, a
// gRPC server stream with explicit acknowledgements, or server-sent events.
//
// A subscription reads its project's events topic (events.<project>):
// a gRPC or SSE stream through a bus durable named after the subscription
// id; a webhook through its topic's hub on this replica (one shared bus
// reader and a bounded ring, fanout.go), or through such a durable of its
// own while it is behind what the ring holds. Per-key order holds only
// within one reader, so exactly one replica delivers a subscription at a
// time: the holder of the lease row in the subscriptions table. For
// webhooks every replica that runs Start competes for the leases of active
// webhook subscriptions; a gRPC or SSE stream takes the lease of its
// subscription while it is connected.
//
// Each deliverer tracks its acknowledgement floor (every event up to it is
// handled) and saves it every SavePosition and when it stops. Every start
// resumes just after the saved floor, so a new deliverer
// (after a restart, a crash, a lease move or a reconnect) gets events in
// sequence order; the events above the floor that were already delivered
// come again. The bus hands back what a stopped subscriber held in no
// particular order, so relying on its redelivery would break per-key order.
//
// See docs/push.md for the wire formats, signing, retries, dead letters and
// replays.
package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/bus"
	"github.com/tianshu-ai/tianshu/internal/ids"
	"github.com/tianshu-ai/tianshu/internal/netpolicy"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/tracing"
)

// Channels a subscription delivers over.
const (
	ChannelWebhook = "webhook"
	ChannelGRPC    = "grpc"
	ChannelSSE     = "sse"
)

// Subscription states.
const (
	StatusActive = "active"
	StatusPaused = "paused"
)

// Defaults of Config.
const (
	DefaultWebhookTimeout  = 10 * time.Second
	DefaultRetryDelay      = time.Second
	DefaultAckWait         = 10 * time.Second
	DefaultLeaseTTL        = 15 * time.Second
	DefaultReconcile       = time.Second
	DefaultSavePosition    = 50 * time.Millisecond
	DefaultMaxInFlight     = 16
	DefaultStreamInFlight  = 256
	DefaultMaxAttempts     = 15
	DefaultMaxAge          = 24 * time.Hour
	DefaultHeartbeat       = 15 * time.Second
	maxSubscriptionsPerApp = 100
)

// ErrStopped is returned by Start after Stop.
var ErrStopped = errors.New("push: service stopped")

// Config holds a Service's dependencies and tunables. DB, Bus and Box are
// required; Keys is required to serve gRPC and SSE.
type Config struct {
	// DB holds subscriptions, leases, counters and dead letters.
	DB *store.DB
	// Bus carries the events (topic events.<project>).
	Bus bus.Bus
	// Box seals webhook secrets at rest.
	Box *secrets.Box
	// Keys resolves the SecretId that signs a gRPC or SSE connection.
	Keys api.KeyResolver
	// Logger receives logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the tianshu_push_ metrics; nil leaves them
	// unregistered.
	Registerer prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Tracer records a span per webhook delivery, a child of the event's
	// traceparent, which the webhook then carries; nil: tracing is off
	// (the webhook carries the event's traceparent as it is).
	Tracer trace.TracerProvider
	// NodeID names this replica in lease rows; empty picks a random one.
	// Give every replica its own.
	NodeID string
	// Outbound is the outbound network policy webhooks go through; nil
	// is netpolicy's defaults with loopback allowed (link-local and
	// metadata addresses refused).
	Outbound *netpolicy.Policy
	// WebhookTimeout bounds one webhook request. Default 10s.
	WebhookTimeout time.Duration
	// RetryDelay is the pause before a webhook's second attempt; it doubles
	// per attempt (with ±20% jitter) up to the bus's cap of 30s. Default 1s.
	RetryDelay time.Duration
	// AckWait is the bus ack wait of push durables. Default 10s.
	AckWait time.Duration
	// LeaseTTL is how long a lease lasts without renewal. Default 15s.
	LeaseTTL time.Duration
	// Reconcile is how often Start's loop renews leases, picks up changed
	// subscriptions and flushes counters. Default 1s.
	Reconcile time.Duration
	// SavePosition is how often a deliverer saves its position when it
	// moved: after a crash, what was delivered since the last save is sent
	// again. Default 50ms.
	SavePosition time.Duration
	// MaxInFlight is how many webhook requests a subscription has in flight
	// (for different keys). Default 16.
	MaxInFlight int
	// StreamInFlight is how many unacknowledged events a gRPC stream may
	// have. Default 256.
	StreamInFlight int
	// Heartbeat is the SSE keep-alive comment interval. Default 15s.
	Heartbeat time.Duration
}

func (c *Config) withDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.NodeID == "" {
		c.NodeID = ids.New("push")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.WebhookTimeout, DefaultWebhookTimeout)
	def(&c.RetryDelay, DefaultRetryDelay)
	def(&c.AckWait, DefaultAckWait)
	def(&c.LeaseTTL, DefaultLeaseTTL)
	def(&c.Reconcile, DefaultReconcile)
	def(&c.SavePosition, DefaultSavePosition)
	def(&c.Heartbeat, DefaultHeartbeat)
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.StreamInFlight <= 0 {
		c.StreamInFlight = DefaultStreamInFlight
	}
}

// Service keeps subscriptions and delivers them. Create it with New; run
// webhook delivery with Start and Stop; serve streams with GRPCServer /
// RegisterGRPC and SSEHandler.
type Service struct {
	tracer trace.Tracer
	cfg    Config
	db     *store.DB
	bus    bus.Bus
	log    *slog.Logger
	met    *metrics
	client *http.Client

	mu       sync.Mutex
	runners  map[string]*runner  // webhook subscriptions delivered here
	sessions map[string]*session // gRPC/SSE streams connected here
	cancel   context.CancelFunc
	done     chan struct{}
	stopped  bool

	hubMu sync.Mutex
	hubs  map[string]*hub // webhook fan-out per events topic (fanout.go)
	// ringEvents bounds a hub's ring (hubRingEvents; tests make it small).
	ringEvents int
}

// New returns a Service. It starts nothing; call Start to deliver webhooks.
func New(cfg Config) (*Service, error) {
	if cfg.DB == nil || cfg.Bus == nil || cfg.Box == nil {
		return nil, errors.New("push: New needs DB, Bus and Box")
	}
	cfg.withDefaults()
	if cfg.Outbound == nil {
		p, err := netpolicy.New(netpolicy.Config{AllowLoopback: true})
		if err != nil {
			return nil, err
		}
		cfg.Outbound = p
	}
	met, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("push: metrics: %w", err)
	}
	s := &Service{cfg: cfg, db: cfg.DB, bus: cfg.Bus, log: cfg.Logger.With("component", "push"), met: met,
		runners: map[string]*runner{}, sessions: map[string]*session{}, hubs: map[string]*hub{},
		ringEvents: hubRingEvents}
	s.client = newWebhookClient(cfg.Outbound, cfg.MaxInFlight)
	s.tracer = tracing.Tracer(cfg.Tracer, "tianshu/push")
	return s, nil
}

// NodeID returns the name this replica writes in lease rows.
func (s *Service) NodeID() string { return s.cfg.NodeID }

// Start runs webhook delivery until Stop: a loop that every Reconcile
// claims and renews leases of active webhook subscriptions, starts and
// stops their deliveries, redelivers dead letters asked for by
// ReplaySubscription, and flushes counters. ctx bounds only the start.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	if s.cancel != nil {
		return nil
	}
	lctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	go s.loop(lctx)
	s.log.InfoContext(ctx, "push delivery started", "node", s.cfg.NodeID)
	return nil
}

// Stop ends webhook delivery: it stops every running delivery (events in
// flight go back to the bus for prompt redelivery), flushes counters,
// releases the leases, and ends connected streams. Stop is idempotent.
func (s *Service) Stop() error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	cancel, done := s.cancel, s.done
	sessions := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	for _, ss := range sessions {
		ss.end(errors.New("push: server stopping"))
	}
	s.log.Info("push delivery stopped", "node", s.cfg.NodeID)
	return nil
}

func (s *Service) now() time.Time { return s.cfg.Now() }
