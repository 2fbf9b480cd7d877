package device

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/execpolicy"
	"github.com/tianshu-ai/tianshu/internal/netpolicy"
	"github.com/tianshu-ai/tianshu/internal/telemetry"
)

// Clock is the time source of a Runtime; tests may pass a fake.
type Clock interface {
	Now() time.Time
	// After is time.After on this clock.
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Backoff is the reconnect schedule: Initial after the first failure,
// doubling up to Max, each delay jittered by ±20%.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
}

// Options configure a Runtime. Zero fields take their defaults.
type Options struct {
	// Logger receives driver logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the tianshu_device_* metrics; nil registers none.
	Registerer prometheus.Registerer
	// Clock is the time source; nil is the system clock.
	Clock Clock
	// FFmpeg is the ffmpeg binary for rtsp and video replay, unless a
	// device's Options.ffmpeg names another; default "ffmpeg" on PATH. It
	// is the operator's choice and needs no --exec.allow entry.
	FFmpeg string
	// Exec is the exec policy: the programs adapters and Options.ffmpeg may
	// name, and how children run. nil allows none of them.
	Exec *execpolicy.Policy
	// Media holds the roots replay addresses must lie under; nil allows
	// none.
	Media *execpolicy.Media
	// Backoff is the reconnect schedule; default 500ms doubling to 30s.
	Backoff Backoff
	// ProbeTimeout bounds Probe when the caller's context has no deadline;
	// default 15s.
	ProbeTimeout time.Duration
	// Outbound is the outbound network policy every device connection
	// goes through; nil checks nothing.
	Outbound *netpolicy.Policy
}

// Env is what a Runtime shares with the drivers it runs.
type Env struct {
	Logger  *slog.Logger
	Clock   Clock
	FFmpeg  string
	Exec    *execpolicy.Policy
	Media   *execpolicy.Media
	Backoff Backoff
	// Outbound checks every connection the drivers make, and the
	// addresses they hand to ffmpeg; nil checks nothing.
	Outbound *netpolicy.Policy
	m        *metrics
	gb       gbHolder
}

// Runtime opens and probes devices with shared logger, metrics and clock,
// and tracks the sources it opened so that Close stops them all.
type Runtime struct {
	env          *Env
	probeTimeout time.Duration

	mu      sync.Mutex
	closed  bool
	sources map[*stream]struct{}
}

// NewRuntime returns a Runtime; it fails only when the metrics cannot be
// registered.
func NewRuntime(opts Options) (*Runtime, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Clock == nil {
		opts.Clock = systemClock{}
	}
	if opts.FFmpeg == "" {
		opts.FFmpeg = "ffmpeg"
	}
	if opts.Backoff.Initial <= 0 {
		opts.Backoff.Initial = 500 * time.Millisecond
	}
	if opts.Backoff.Max < opts.Backoff.Initial {
		opts.Backoff.Max = max(30*time.Second, opts.Backoff.Initial)
	}
	if opts.ProbeTimeout <= 0 {
		opts.ProbeTimeout = 15 * time.Second
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	return &Runtime{
		env: &Env{Logger: opts.Logger, Clock: opts.Clock, FFmpeg: opts.FFmpeg, Exec: opts.Exec, Media: opts.Media,
			Backoff: opts.Backoff, Outbound: opts.Outbound, m: m},
		probeTimeout: opts.ProbeTimeout,
		sources:      map[*stream]struct{}{},
	}, nil
}

// Outbound returns the outbound policy the runtime's drivers use (nil:
// none), for callers that reach devices themselves, such as discovery.
func (r *Runtime) Outbound() *netpolicy.Policy { return r.env.Outbound }

// Check validates cfg, and checks it against the exec policy and the media
// roots, without starting anything: what saving a device must pass.
func (r *Runtime) Check(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	d, _ := lookup(cfg.Driver)
	if c, ok := d.(policyChecker); ok {
		_, err := c.check(r.env, cfg)
		return err
	}
	return nil
}

// policyChecker is a driver that runs programs or reads files the exec
// policy and media roots govern. check refuses what they forbid, before
// anything starts, and returns cfg with the resolved paths.
type policyChecker interface {
	check(env *Env, cfg Config) (Config, error)
}

// Probe validates cfg and looks at the device once. Without a deadline on
// ctx it is bounded by Options.ProbeTimeout.
func (r *Runtime) Probe(ctx context.Context, cfg Config) (ProbeResult, error) {
	if err := r.Check(cfg); err != nil {
		return ProbeResult{}, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.probeTimeout)
		defer cancel()
	}
	d, _ := lookup(cfg.Driver)
	res, err := d.Probe(ctx, r.env, cfg)
	err = cfg.scrubErr(err)
	for k, v := range res.Info {
		if s, ok := v.(string); ok {
			res.Info[k] = cfg.Scrub(s)
		}
	}
	if err != nil {
		r.env.m.errors.WithLabelValues(cfg.Driver, ReasonOf(err)).Inc()
		res.Online = false
	}
	return res, err
}

// Open validates cfg and starts a source delivering to sink. The source
// runs until its Close or the Runtime's Close.
func (r *Runtime) Open(ctx context.Context, cfg Config, sink Sink) (Source, error) {
	if err := r.Check(cfg); err != nil {
		return nil, err
	}
	if sink == nil {
		sink = SinkFuncs{}
	}
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	d, _ := lookup(cfg.Driver)
	src, err := d.Open(ctx, r.env, cfg, sink)
	if err != nil {
		return nil, err
	}
	return r.track(src), nil
}

// Close closes every source the Runtime opened and refuses new ones.
func (r *Runtime) Close() error {
	r.mu.Lock()
	r.closed = true
	srcs := make([]*stream, 0, len(r.sources))
	for s := range r.sources {
		srcs = append(srcs, s)
	}
	r.mu.Unlock()
	for _, s := range srcs {
		_ = s.Close()
	}
	return nil
}

// track registers a source so that Runtime.Close reaches it; sources that
// wrap a stream (onvif) register the stream underneath.
func (r *Runtime) track(src Source) Source {
	s, ok := src.(*stream)
	if !ok {
		return src
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		go s.Close()
		return s
	}
	r.sources[s] = struct{}{}
	s.onClose = func() {
		r.mu.Lock()
		delete(r.sources, s)
		r.mu.Unlock()
	}
	return s
}

// metrics are the tianshu_device_* series, labelled by driver.
type metrics struct {
	frames     *prometheus.CounterVec
	drops      *prometheus.CounterVec
	events     *prometheus.CounterVec
	reconnects *prometheus.CounterVec
	errors     *prometheus.CounterVec
	sources    *prometheus.GaugeVec
}

func newMetrics(r prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_device_frames_total", Help: "Frames received from devices.",
		}, []string{"driver"}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_device_drops_total", Help: "Frames replaced before the consumer took them (latest-frame-wins) and events dropped from a full queue.",
		}, []string{"driver"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_device_events_total", Help: "Events received from devices.",
		}, []string{"driver"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_device_reconnects_total", Help: "Connection attempts after a failure.",
		}, []string{"driver"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_device_errors_total", Help: "Device failures by reason.",
		}, []string{"driver", "reason"}),
		sources: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tianshu_device_sources", Help: "Open device sources by state.",
		}, []string{"driver", "state"}),
	}
	var err error
	if m.frames, err = telemetry.Register(r, m.frames); err != nil {
		return nil, fmt.Errorf("device: register metrics: %w", err)
	}
	if m.drops, err = telemetry.Register(r, m.drops); err != nil {
		return nil, fmt.Errorf("device: register metrics: %w", err)
	}
	if m.events, err = telemetry.Register(r, m.events); err != nil {
		return nil, fmt.Errorf("device: register metrics: %w", err)
	}
	if m.reconnects, err = telemetry.Register(r, m.reconnects); err != nil {
		return nil, fmt.Errorf("device: register metrics: %w", err)
	}
	if m.errors, err = telemetry.Register(r, m.errors); err != nil {
		return nil, fmt.Errorf("device: register metrics: %w", err)
	}
	if m.sources, err = telemetry.Register(r, m.sources); err != nil {
		return nil, fmt.Errorf("device: register metrics: %w", err)
	}
	return m, nil
}

// classifyNetErr maps network failures to a Reason.
func classifyNetErr(err error) string {
	if err == nil {
		return ""
	}
	// Refused before any packet was sent: nothing about the peer is known.
	if errors.Is(err, netpolicy.ErrRefused) {
		return ReasonPolicy
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return ReasonTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ReasonTimeout
	}
	var dnsErr *net.DNSError
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || errors.As(err, &dnsErr) {
		return ReasonUnreachable
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return ReasonUnreachable
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
		return ReasonStreamEnded
	}
	return ReasonError
}
