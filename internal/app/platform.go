package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"
	"google.golang.org/grpc"

	"github.com/tianshu-ai/tianshu/internal/algorepo"
	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/appcenter"
	"github.com/tianshu-ai/tianshu/internal/blob"
	"github.com/tianshu-ai/tianshu/internal/bus"
	"github.com/tianshu-ai/tianshu/internal/config"
	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/devicecenter"
	"github.com/tianshu-ai/tianshu/internal/edge"
	"github.com/tianshu-ai/tianshu/internal/execpolicy"
	"github.com/tianshu-ai/tianshu/internal/gb28181"
	"github.com/tianshu-ai/tianshu/internal/gpu"
	"github.com/tianshu-ai/tianshu/internal/iam"
	"github.com/tianshu-ai/tianshu/internal/netpolicy"
	"github.com/tianshu-ai/tianshu/internal/peers"
	"github.com/tianshu-ai/tianshu/internal/push"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/studio"
	"github.com/tianshu-ai/tianshu/internal/task"
	"github.com/tianshu-ai/tianshu/internal/telemetry"
	"github.com/tianshu-ai/tianshu/internal/telemetry/influx"
	"github.com/tianshu-ai/tianshu/internal/tracing/tracesdk"
	"github.com/tianshu-ai/tianshu/web"
)

// Options are the platform's process-level collaborators.
type Options struct {
	Logger *slog.Logger
	// Getenv reads the environment (bootstrap credentials, master key);
	// os.Getenv when nil.
	Getenv func(string) string
	Now    func() time.Time
}

// Platform is one Tianshu process: the modules of its targets and the HTTP
// server in front of them. Two platforms can run in one test process.
type Platform struct {
	cfg    config.Config
	log    *slog.Logger
	getenv func(string) string
	now    func() time.Time
	order  []string

	// Metrics is this platform's Prometheus registry, served at /metrics.
	Metrics *prometheus.Registry
	// Tracing is this platform's OpenTelemetry tracing; its Provider is
	// nil (no span anywhere) unless --otel.* turned it on.
	Tracing *tracesdk.Tracing
	// Logs are the last lines each component logged (--log.recent-*).
	Logs *telemetry.LogRing
	// tracePeers and logPeers ask the platform's other processes for
	// their parts of a trace and their log lines (and answer theirs);
	// nil when the bus carries no ephemeral messages (or, for traces,
	// tracing in memory is off).
	tracePeers, logPeers *peers.Peers
	// Influx writes Metrics to InfluxDB; nil unless --influx.url is set.
	Influx     *influx.Writer
	influxStop func()

	DB       *store.DB
	Bus      bus.Bus
	Blob     blob.Store
	Box      *secrets.Box
	Apps     *appcenter.Service
	Users    *iam.Users
	Sessions *iam.Sessions
	Logins   *iam.Logins
	Audit    *iam.Audit
	Projects *iam.Projects
	Access   *iam.Access
	Studio   *studio.Service
	Tasks    *task.Service
	Algos    *algorepo.Service
	Data     *data.Service
	Devices  *devicecenter.Service
	// GB28181 is the GB/T 28181 SIP server, nil while --gb28181.addr is unset.
	GB28181 *gb28181.Server
	Push    *push.Service
	Worker  *task.Worker
	// EdgeNodes is the register of edge nodes (with the store); EdgeHub
	// the cloud's leaf listener, nil without --edge.leaf-addr; EdgeLink
	// this edge's link to its cloud, nil unless the edge target runs.
	EdgeNodes *edge.Nodes
	EdgeHub   *edge.HubServer
	EdgeLink  *edge.Link
	// Previews taps the frames of this process's tasks for the live view;
	// Live serves them (with the api module).
	Previews *task.Previews
	Live     *task.Live
	Registry *api.Registry
	Gateway  *api.Gateway

	gpus     []gpu.GPU
	execOnce sync.Once
	execPol  *execpolicy.Policy
	media    *execpolicy.Media
	execErr  error
	grpc     *grpc.Server
	mux      *http.ServeMux
	server   *http.Server
	listener net.Listener
	grpcLn   net.Listener // GRPCAddr's, when set
	// outbound is the policy every connection made on a tenant's behalf
	// goes through; built once the listen addresses are known.
	outbound *netpolicy.Policy
	stops    []namedStop
	states   *moduleStates
	ready    atomic.Bool
	// readiness caches /readyz's checks.
	readiness readiness
	serveErr  chan error

	// The graceful stop (drain.go): the listener that empties its queue,
	// every connection's idle time, whether a stop began, and the context
	// of streaming requests, cancelled when it does.
	drainLn    *drainListener
	conns      *connTracker
	stopping   atomic.Bool
	streams    context.Context
	endStreams context.CancelFunc
}

type namedStop struct {
	name string
	stop func(context.Context) error
}

// New returns a platform for cfg; Start runs it.
func New(cfg config.Config, o Options) (*Platform, error) {
	order, err := resolve(cfg.Targets)
	if err != nil {
		return nil, fmt.Errorf("config: targets: %w", err)
	}
	p := &Platform{cfg: cfg, log: o.Logger, getenv: o.Getenv, now: o.Now, order: order, mux: http.NewServeMux(), serveErr: make(chan error, 1),
		states: newModuleStates(order), conns: newConnTracker()}
	p.streams, p.endStreams = context.WithCancel(context.Background())
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	// Every line written within a request or a traced message carries its
	// request_id and trace_id; the last lines of each component stay in
	// memory for DescribeLogs.
	p.Logs = telemetry.NewLogRing(cfg.Log.RecentLines, cfg.Log.RecentBytes)
	p.log = slog.New(telemetry.WithContextFields(telemetry.Tee(p.log.Handler(), p.Logs.Handler(telemetry.ParseLevel(cfg.Log.Level)))))
	if p.getenv == nil {
		p.getenv = os.Getenv
	}
	if p.now == nil {
		p.now = time.Now
	}
	p.Metrics = prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if _, err := telemetry.Register[prometheus.Collector](p.Metrics, c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	if p.Tracing, err = tracesdk.New(cfg.Otel, tracesdk.Options{Logger: p.log, Registerer: p.Metrics, Instance: cfg.Worker.Name, Process: p.processName()}); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return p, nil
}

// processName names this process to the others and in what it shows of
// theirs: its worker name (or host) and its targets, "w1 (worker)".
func (p *Platform) processName() string {
	name := p.cfg.Worker.Name
	if name == "" {
		name, _ = os.Hostname()
	}
	return name + " (" + strings.Join(p.cfg.Targets, ",") + ")"
}

// Start listens, initialises every module in dependency order, then serves.
// The listener is opened first so that a port in use fails fast, before any
// module has touched its backend. On error, what was started is stopped.
func (p *Platform) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", p.cfg.HTTPAddr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("http_addr %s: port already in use (another tianshu running? choose one with --http-addr): %w", p.cfg.HTTPAddr, err)
		}
		return fmt.Errorf("http_addr %s: %w", p.cfg.HTTPAddr, err)
	}
	// A stop empties the accept queue instead of resetting it (drain.go).
	if tl, ok := ln.(*net.TCPListener); ok {
		p.drainLn = newDrainListener(tl)
		ln = p.drainLn
	}
	// The cap wraps the listener: a connection over it is not accepted
	// until another closes, so a flood of slow clients queues in the
	// kernel instead of holding goroutines and file descriptors.
	if n := p.cfg.API.MaxConnections; n > 0 {
		ln = netutil.LimitListener(ln, n)
	}
	p.listener = ln
	closeListeners := func() {
		_ = ln.Close()
		if p.grpcLn != nil {
			_ = p.grpcLn.Close()
		}
	}
	if p.cfg.GRPCAddr != "" {
		if p.grpcLn, err = net.Listen("tcp", p.cfg.GRPCAddr); err != nil {
			_ = ln.Close()
			if errors.Is(err, syscall.EADDRINUSE) {
				return fmt.Errorf("grpc_addr %s: port already in use (choose one with --grpc-addr): %w", p.cfg.GRPCAddr, err)
			}
			return fmt.Errorf("grpc_addr %s: %w", p.cfg.GRPCAddr, err)
		}
		if n := p.cfg.API.MaxConnections; n > 0 {
			p.grpcLn = netutil.LimitListener(p.grpcLn, n)
		}
	}
	// The server's own addresses are refused to outbound connections, so
	// that no tenant can point an algorithm or webhook back at its API.
	if p.outbound, err = netpolicy.New(p.cfg.Outbound, p.Addr(), p.GRPCAddr()); err != nil {
		closeListeners()
		return fmt.Errorf("outbound: %w", err)
	}
	if err := os.MkdirAll(p.cfg.DataDir, 0o750); err != nil {
		closeListeners()
		return fmt.Errorf("data_dir %s: %w", p.cfg.DataDir, err)
	}
	inits := p.initFuncs()
	for _, name := range p.order {
		t0 := time.Now()
		p.states.set(name, StateStarting)
		stop, err := inits[name](ctx)
		if err != nil {
			p.states.fail(name, err)
			closeListeners()
			p.stopModules(context.Background())
			return fmt.Errorf("module %s: %w", name, err)
		}
		p.stops = append(p.stops, namedStop{name, stop})
		p.states.set(name, StateRunning)
		p.log.Debug("module started", "module", name, "duration_ms", time.Since(t0).Milliseconds())
	}
	if err := p.startPeers(ctx); err != nil {
		closeListeners()
		p.stopModules(context.Background())
		return err
	}
	if p.Registry != nil {
		registerActions(p.Registry, p)
	}
	if err := p.startInflux(); err != nil {
		closeListeners()
		return err
	}
	p.routes()
	var handler http.Handler = p.mux
	if p.grpc != nil {
		// gRPC (push subscriptions) shares the main port: HTTP/2 requests
		// with a gRPC content type go to the gRPC server, the rest to the mux.
		grpcStreams := p.endOnStop(p.grpc)
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
				grpcStreams.ServeHTTP(w, r)
				return
			}
			p.mux.ServeHTTP(w, r)
		})
	}
	handler = p.closeOnStop(handler)
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	p.server = &http.Server{
		Handler:           handler,
		Protocols:         protocols,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
		ConnState:         p.conns.track,
	}
	go func() {
		if err := p.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, errDrained) {
			p.serveErr <- err
		}
	}()
	p.serveGRPC()
	p.ready.Store(true)
	p.log.Info("tianshu ready", "addr", p.Addr(), "grpc_addr", p.GRPCAddr(), "targets", p.order, "db", p.DBDialect())
	return nil
}

// startInflux starts writing the metrics to InfluxDB, when configured;
// it writes once more when the platform stops.
func (p *Platform) startInflux() error {
	if p.cfg.Influx.URL == "" {
		return nil
	}
	w, err := influx.New(p.cfg.Influx, p.Metrics, p.Metrics, p.log)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	p.Influx, p.influxStop = w, func() { cancel(); <-done }
	return nil
}

// serveGRPC serves gRPC on GRPCAddr's listener with gRPC's own HTTP/2
// transport, which writes a stream's events in batches where h2c on the
// main port writes and flushes each one.
func (p *Platform) serveGRPC() {
	if p.grpcLn == nil {
		return
	}
	if p.grpc == nil {
		p.log.Warn("grpc_addr set but no gRPC service runs here (targets without push); not listening", "grpc_addr", p.cfg.GRPCAddr)
		_ = p.grpcLn.Close()
		p.grpcLn = nil
		return
	}
	ln, gs := p.grpcLn, p.grpc
	go func() {
		// Serve returns nil after the push module's stop calls Stop.
		if err := gs.Serve(ln); err != nil {
			select {
			case p.serveErr <- fmt.Errorf("grpc server: %w", err):
			default:
			}
		}
	}()
}

// GRPCAddr returns the address of gRPC's own listener ("" without one).
func (p *Platform) GRPCAddr() string {
	if p.grpcLn == nil {
		return ""
	}
	return p.grpcLn.Addr().String()
}

// Err returns a channel that receives an error if the HTTP server fails.
func (p *Platform) Err() <-chan error { return p.serveErr }

// Addr returns the address the server listens on.
func (p *Platform) Addr() string {
	if p.listener == nil {
		return ""
	}
	return p.listener.Addr().String()
}

// BaseURL returns the URL clients use to reach this platform.
func (p *Platform) BaseURL() string { return p.cfg.PublicBase(p.Addr()) }

// DBDialect names the store's dialect ("" when the store is not running).
func (p *Platform) DBDialect() string {
	if p.DB == nil {
		return ""
	}
	return p.DB.Dialect().Name()
}

// Stop stops serving gracefully (drain.go: no new connection, the
// accepted ones answered, requests in flight finished) within the grace
// period, then stops the modules in reverse order, within ctx's deadline.
func (p *Platform) Stop(ctx context.Context) error {
	p.ready.Store(false)
	var errs []error
	if p.server != nil {
		grace := p.cfg.ShutdownGrace
		if grace <= 0 {
			grace = config.Default().ShutdownGrace
		}
		gctx, cancel := context.WithTimeout(ctx, grace)
		err := p.stopHTTP(gctx)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("http server: %w", err))
		}
	}
	p.endStreams()
	errs = append(errs, p.stopModules(ctx)...)
	if p.influxStop != nil {
		p.influxStop()
	}
	if err := p.Tracing.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("tracing: %w", err))
	}
	p.log.Info("tianshu stopped")
	return errors.Join(errs...)
}

func (p *Platform) stopModules(ctx context.Context) []error {
	var errs []error
	for i := len(p.stops) - 1; i >= 0; i-- {
		s := p.stops[i]
		p.states.set(s.name, StateStopping)
		if s.stop != nil {
			if err := s.stop(ctx); err != nil {
				p.states.fail(s.name, fmt.Errorf("stop: %w", err))
				errs = append(errs, fmt.Errorf("module %s: %w", s.name, err))
				continue
			}
		}
		p.states.set(s.name, StateTerminated)
	}
	p.stops = nil
	return errs
}

func (p *Platform) routes() {
	p.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	p.mux.HandleFunc("GET /readyz", p.readyz)
	p.mux.Handle("GET /metrics", promhttp.HandlerFor(p.Metrics, promhttp.HandlerOpts{Registry: p.Metrics}))
	if p.Gateway != nil {
		p.mux.Handle("/{$}", p.Gateway)
		// The console: GET / and every other GET no route below claims
		// answer the single-page app; the action API stays POST /. Server
		// routes this process may not run answer 404, not the console.
		console := web.Handler(web.Dist(), "/files/", "/objects/", "/push/", "/metrics/", "/healthz/", "/readyz/", task.LivePath)
		p.mux.Handle("GET /{$}", console)
		p.mux.Handle("/", console)
	}
	if p.Live != nil {
		if eph, ok := p.Bus.(bus.Ephemeral); ok {
			p.Live.UseBus(eph) // tasks other workers run come over the bus
		}
		p.mux.Handle(task.LivePath, p.endOnStop(p.Live))
	}
	if p.Blob != nil {
		if h, ok := blob.Handler(p.Blob); ok {
			p.mux.Handle("/objects/", h)
		}
	}
	if p.Push != nil {
		p.mux.Handle(push.SSEPath, p.endOnStop(p.Push.SSEHandler()))
	}
	if p.EdgeNodes != nil && p.Gateway != nil {
		p.mux.Handle("POST "+edge.JoinPath, http.MaxBytesHandler(edge.JoinHandler(p.EdgeNodes, p.log), 4<<10))
		p.mux.Handle("POST "+edge.CheckPath, http.MaxBytesHandler(edge.CheckHandler(p.EdgeNodes, p.log), 4<<10))
	}
	if p.Data != nil {
		// tus takes every method and streams large bodies: it sits beside
		// the gateway, outside its body limit, behind its own upload tokens.
		p.mux.Handle("/files/", p.Data.Handler())
	}
}
