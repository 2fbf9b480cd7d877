package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"

	"github.com/tianshu-ai/tianshu/internal/algorepo"
	"github.com/tianshu-ai/tianshu/internal/algorithm"
	"github.com/tianshu-ai/tianshu/internal/algorithm/builtin"
	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/appcenter"
	"github.com/tianshu-ai/tianshu/internal/blob"
	"github.com/tianshu-ai/tianshu/internal/bus"
	"github.com/tianshu-ai/tianshu/internal/config"
	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/device"
	"github.com/tianshu-ai/tianshu/internal/devicecenter"
	"github.com/tianshu-ai/tianshu/internal/flow"
	"github.com/tianshu-ai/tianshu/internal/gpu"
	"github.com/tianshu-ai/tianshu/internal/iam"
	"github.com/tianshu-ai/tianshu/internal/ids"
	"github.com/tianshu-ai/tianshu/internal/push"
	"github.com/tianshu-ai/tianshu/internal/ratelimit"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/studio"
	"github.com/tianshu-ai/tianshu/internal/task"
	"github.com/tianshu-ai/tianshu/internal/telemetry"
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

	DB       *store.DB
	Bus      bus.Bus
	Blob     blob.Store
	Box      *secrets.Box
	Apps     *appcenter.Service
	Users    *iam.Users
	Audit    *iam.Audit
	Projects *iam.Projects
	Studio   *studio.Service
	Tasks    *task.Service
	Algos    *algorepo.Service
	Data     *data.Service
	Devices  *devicecenter.Service
	Push     *push.Service
	Worker   *task.Worker
	Registry *api.Registry
	Gateway  *api.Gateway

	gpus     []gpu.GPU
	grpc     *grpc.Server
	mux      *http.ServeMux
	server   *http.Server
	listener net.Listener
	grpcLn   net.Listener // GRPCAddr's, when set
	stops    []namedStop
	ready    atomic.Bool
	serveErr chan error
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
	p := &Platform{cfg: cfg, log: o.Logger, getenv: o.Getenv, now: o.Now, order: order, mux: http.NewServeMux(), serveErr: make(chan error, 1)}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
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
	return p, nil
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
	}
	if err := os.MkdirAll(p.cfg.DataDir, 0o750); err != nil {
		closeListeners()
		return fmt.Errorf("data_dir %s: %w", p.cfg.DataDir, err)
	}
	inits := p.initFuncs()
	for _, name := range p.order {
		t0 := time.Now()
		stop, err := inits[name](ctx)
		if err != nil {
			closeListeners()
			p.stopModules(context.Background())
			return fmt.Errorf("module %s: %w", name, err)
		}
		if stop != nil {
			p.stops = append(p.stops, namedStop{name, stop})
		}
		p.log.Debug("module started", "module", name, "duration_ms", time.Since(t0).Milliseconds())
	}
	if p.Registry != nil {
		registerActions(p.Registry, p)
	}
	p.routes()
	var handler http.Handler = p.mux
	if p.grpc != nil {
		// gRPC (push subscriptions) shares the main port: HTTP/2 requests
		// with a gRPC content type go to the gRPC server, the rest to the mux.
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
				p.grpc.ServeHTTP(w, r)
				return
			}
			p.mux.ServeHTTP(w, r)
		})
	}
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
	}
	go func() {
		if err := p.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.serveErr <- err
		}
	}()
	p.serveGRPC()
	p.ready.Store(true)
	p.log.Info("tianshu ready", "addr", p.Addr(), "grpc_addr", p.GRPCAddr(), "targets", p.order, "db", p.DBDialect())
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

// Stop stops serving (finishing requests in flight) and stops the modules
// in reverse order, within ctx's deadline.
func (p *Platform) Stop(ctx context.Context) error {
	p.ready.Store(false)
	var errs []error
	if p.server != nil {
		if err := p.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http server: %w", err))
			_ = p.server.Close()
		}
	}
	errs = append(errs, p.stopModules(ctx)...)
	p.log.Info("tianshu stopped")
	return errors.Join(errs...)
}

func (p *Platform) stopModules(ctx context.Context) []error {
	var errs []error
	for i := len(p.stops) - 1; i >= 0; i-- {
		s := p.stops[i]
		if err := s.stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("module %s: %w", s.name, err))
		}
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
	}
	if p.Blob != nil {
		if h, ok := blob.Handler(p.Blob); ok {
			p.mux.Handle("/objects/", h)
		}
	}
	if p.Push != nil {
		p.mux.Handle(push.SSEPath, p.Push.SSEHandler())
	}
	if p.Data != nil {
		// tus takes every method and streams large bodies: it sits beside
		// the gateway, outside its body limit, behind its own upload tokens.
		p.mux.Handle("/files/", p.Data.Handler())
	}
}

// readyz answers 200 when every module started and the store answers.
func (p *Platform) readyz(w http.ResponseWriter, r *http.Request) {
	if !p.ready.Load() {
		http.Error(w, "starting or stopping\n", http.StatusServiceUnavailable)
		return
	}
	if p.DB != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := p.DB.PingContext(ctx); err != nil {
			http.Error(w, "store: "+err.Error()+"\n", http.StatusServiceUnavailable)
			return
		}
	}
	_, _ = w.Write([]byte("ready\n"))
}

func (p *Platform) initStore(ctx context.Context) (func(context.Context) error, error) {
	db, err := store.Open(ctx, p.cfg.DB, store.Options{Logger: p.log})
	if err != nil {
		return nil, err
	}
	if _, err := db.Migrate(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	// go_sql_* metrics: pool size, waits, connections in use.
	if _, err := telemetry.Register(p.Metrics, collectors.NewDBStatsCollector(db.DB, "tianshu")); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: metrics: %w", err)
	}
	p.DB = db
	return func(context.Context) error { return db.Close() }, nil
}

func (p *Platform) initBus(ctx context.Context) (func(context.Context) error, error) {
	b, err := bus.Open(ctx, p.cfg.Bus, bus.Options{DataDir: p.cfg.DataDir, Logger: p.log, Registerer: p.Metrics})
	if err != nil {
		return nil, err
	}
	p.Bus = b
	return func(context.Context) error { return b.Close() }, nil
}

func (p *Platform) initSecrets(context.Context) (func(context.Context) error, error) {
	key, err := secrets.LoadKey(p.getenv("TIANSHU_MASTER_KEY"), filepath.Join(p.cfg.DataDir, "master.key"))
	if err != nil {
		return nil, err
	}
	p.Box, err = secrets.New(key)
	return nil, err
}

func (p *Platform) initBlob(ctx context.Context) (func(context.Context) error, error) {
	// Signed object URLs are keyed by a value derived from the master key,
	// so every replica signs and verifies alike.
	signing := p.Box.DeriveKey("blob-url-signing")
	s, err := blob.Open(ctx, p.cfg.Blob, blob.Options{DataDir: p.cfg.DataDir, PublicURL: p.cfg.PublicBase(p.Addr()),
		SigningKey: signing, Logger: p.log, Registerer: p.Metrics, Now: p.now})
	if err != nil {
		return nil, err
	}
	p.Blob = s
	return func(context.Context) error { return s.Close() }, nil
}

func (p *Platform) initCenters(context.Context) (func(context.Context) error, error) {
	p.Apps = appcenter.New(p.DB, p.Box, p.log, p.now)
	p.Users = iam.NewUsers(p.DB, p.now)
	p.Audit = iam.NewAudit(p.DB, p.now)
	p.Projects = iam.NewProjects(p.DB, p.now)
	fm, err := flow.NewMetrics(p.Metrics)
	if err != nil {
		return nil, err
	}
	p.Tasks = task.NewService(p.DB, func(ctx context.Context, flowID string, version int64) (int64, string, error) {
		v, err := p.Studio.GetVersion(ctx, flowID, version)
		if err != nil {
			return 0, "", err
		}
		return v.Version, v.ProjectID, nil
	}, p.log, p.now)
	p.Studio = studio.New(p.DB, studio.Options{Logger: p.log, Now: p.now, Metrics: fm, InUse: p.Tasks.UsesFlow, Algorithms: p.Algos,
		AlgorithmsFor: p.Algos.ForProject})
	return nil, nil
}

func (p *Platform) initAPI(ctx context.Context) (func(context.Context) error, error) {
	lim, err := ratelimit.Open(ctx, p.cfg.Cache)
	if err != nil {
		return nil, err
	}
	// The actions are registered in Start, once every module of this
	// process exists (modules after api in start order included).
	p.Registry = api.NewRegistry()
	p.Gateway = api.NewGateway(p.cfg.API, p.Registry, api.GatewayOptions{
		Keys: p.Apps, Auditor: p.Audit, Limiter: lim, Logger: p.log, Registerer: p.Metrics, Now: p.now,
	})
	return func(context.Context) error { return lim.Close() }, nil
}

// NewRegistry returns the registry of every action. p may be nil when the
// registry only feeds the docs or the CLI.
func NewRegistry(p *Platform) *api.Registry {
	reg := api.NewRegistry()
	registerActions(reg, p)
	return reg
}

func registerActions(reg *api.Registry, p *Platform) {
	var apps *appcenter.Service
	var audit *iam.Audit
	var projects *iam.Projects
	var flows *studio.Service
	var tasks *task.Service
	var algos *algorepo.Service
	var pkgs algorepo.PackageStore
	var records *data.Service
	var devices *devicecenter.Service
	var snaps devicecenter.SnapshotStore
	var subs *push.Service
	if p != nil {
		subs = p.Push
		apps, audit, flows, tasks, algos, records, devices, projects = p.Apps, p.Audit, p.Studio, p.Tasks, p.Algos, p.Data, p.Devices, p.Projects
		pkgs, snaps = blobPackages{b: p.Blob, d: p.Data}, blobSnapshots{p.Blob}
	}
	appcenter.RegisterActions(reg, apps)
	iam.RegisterActions(reg, audit)
	iam.RegisterProjectActions(reg, projects)
	studio.RegisterActions(reg, flows)
	task.RegisterActions(reg, tasks)
	algorepo.RegisterActions(reg, algos, pkgs)
	data.RegisterActions(reg, records)
	devicecenter.RegisterActions(reg, devices, snaps)
	push.RegisterActions(reg, subs)
}

// background runs fn until the module stops, and waits for it to return.
func background(fn func(ctx context.Context)) func(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(ctx)
	}()
	return func(stopCtx context.Context) error {
		cancel()
		select {
		case <-done:
			return nil
		case <-stopCtx.Done():
			return stopCtx.Err()
		}
	}
}

func (p *Platform) initScheduler(context.Context) (func(context.Context) error, error) {
	holder := p.cfg.Worker.Name + "/" + ids.New("sched")
	s := task.NewScheduler(p.DB, p.Tasks, task.DefaultSchedulerConfig(), holder, p.log, p.Metrics, p.now)
	return background(s.Run), nil
}

func (p *Platform) initWorker(ctx context.Context) (func(context.Context) error, error) {
	cfg := p.cfg.Worker
	cfg.GPUs = p.gpus
	// Store nodes wait for their batch to commit: a short interval keeps
	// that wait small when traffic is light; under load batches fill first.
	writer := p.Data.NewWriter(data.WriterOptions{FlushInterval: 10 * time.Millisecond})
	cfg.Interval = min(time.Second, cfg.LeaseTTL/4)
	p.Worker = task.NewWorker(cfg, task.WorkerDeps{
		DB: p.DB, Service: p.Tasks, Bus: p.Bus, Logger: p.log, Metrics: p.Metrics, Now: p.now,
		Plan: func(ctx context.Context, flowID string, version int64, tr flow.Tracer) (*flow.Plan, error) {
			return p.Studio.Compile(ctx, flowID, version, tr)
		},
		Sources: map[string]task.SourceFactory{"topic": task.NewTopicSource, "upload": p.newUploadSource, "device": p.Devices.NewTaskSource},
		Records: recordStore{d: p.Data, w: writer},
	})
	stop := background(func(ctx context.Context) {
		if err := p.Worker.Run(ctx); err != nil {
			p.log.Error("worker failed", "err", err)
		}
	})
	return func(ctx context.Context) error {
		err := stop(ctx)
		return errors.Join(err, writer.Close(ctx))
	}, nil
}

func (p *Platform) initData(ctx context.Context) (func(context.Context) error, error) {
	svc, err := data.New(p.DB, p.Blob, data.Options{Logger: p.log, Registerer: p.Metrics, Now: p.now,
		TokenKey: p.Box.DeriveKey("upload-token"), StagingDir: filepath.Join(p.cfg.DataDir, "uploads"), PublicURL: p.cfg.PublicBase(p.Addr())})
	if err != nil {
		return nil, err
	}
	p.Data = svc
	ret := svc.NewRetention(data.RetentionOptions{Interval: time.Minute})
	return background(func(ctx context.Context) {
		go svc.RunDigests(ctx)
		_ = ret.Run(ctx)
	}), nil
}

func (p *Platform) initAlgorithms(ctx context.Context) (func(context.Context) error, error) {
	gpus, err := gpu.Detect(ctx, "")
	if err != nil {
		p.log.Warn("gpu detection failed", "err", err)
	}
	p.gpus = gpus
	p.log.Info("gpus detected", "count", len(gpus))
	m, err := algorithm.New(algorithm.Options{
		GPUs:   gpu.Indices(gpus),
		Logger: p.log, Registerer: p.Metrics, Now: p.now,
		WorkDir: filepath.Join(p.cfg.DataDir, "algorithms"),
		OpenPackage: func(ctx context.Context, key string) (io.ReadCloser, error) {
			rc, _, err := p.Blob.Get(ctx, key)
			return rc, err
		},
		CheckEndpoint: outboundPolicy,
	})
	if err != nil {
		return nil, err
	}
	builtins, err := builtin.All()
	if err != nil {
		_ = m.Close(ctx)
		return nil, err
	}
	p.Algos = algorepo.New(p.DB, m, builtins, p.log, p.now)
	if err := p.Algos.Start(ctx); err != nil {
		_ = m.Close(ctx)
		return nil, err
	}
	stopLoop := background(func(ctx context.Context) { p.Algos.Run(ctx, 2*time.Second) })
	return func(ctx context.Context) error {
		_ = stopLoop(ctx)
		return m.Close(ctx)
	}, nil
}

// outboundPolicy refuses algorithm endpoints on link-local and cloud
// metadata addresses; private networks are normal in private deployments.
func outboundPolicy(u *url.URL) error {
	host := u.Hostname()
	if ip := net.ParseIP(host); ip != nil && (ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.Equal(net.ParseIP("fd00:ec2::254"))) {
		return fmt.Errorf("endpoint %s: link-local and cloud-metadata addresses are refused", host)
	}
	if host == "metadata.google.internal" {
		return fmt.Errorf("endpoint %s: cloud-metadata hosts are refused", host)
	}
	return nil
}

// blobPackages keeps algorithm packages in the blob store.
type blobPackages struct {
	b blob.Store
	d *data.Service
}

// UploadedPackage returns the blob key of a completed upload of the project.
func (bp blobPackages) UploadedPackage(ctx context.Context, projectID, uploadID string) (string, error) {
	u, err := bp.d.Upload(ctx, uploadID)
	if err != nil {
		return "", err
	}
	if u.ProjectID != projectID {
		return "", api.NotFound("PackageUploadId", uploadID)
	}
	if u.BlobKey == "" {
		return "", api.InvalidValue("PackageUploadId", "upload %s is %s, not completed", uploadID, u.State)
	}
	return u.BlobKey, nil
}

func (bp blobPackages) PutPackage(ctx context.Context, algID, version string, data []byte) (string, error) {
	key := "packages/" + algID + "/" + ids.New("pkg") + ".pkg"
	if _, err := bp.b.Put(ctx, key, bytes.NewReader(data), blob.PutOptions{ContentType: "application/octet-stream", Size: int64(len(data))}); err != nil {
		return "", err
	}
	return key, nil
}

func (p *Platform) initDevices(context.Context) (func(context.Context) error, error) {
	rt, err := device.NewRuntime(device.Options{Logger: p.log, Registerer: p.Metrics})
	if err != nil {
		return nil, err
	}
	p.Devices = devicecenter.New(p.DB, p.Box, rt, p.publishDeviceStatus, p.log, p.now)
	stops := []func(context.Context) error{}
	if p.Running(ModScheduler) {
		// The control plane probes devices that no running task reports on.
		stops = append(stops, background(func(ctx context.Context) {
			t := time.NewTicker(30 * time.Second)
			defer t.Stop()
			for {
				p.Devices.ProbeAll(ctx, 2*time.Minute, 4)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}))
	}
	return func(ctx context.Context) error {
		for _, s := range stops {
			_ = s(ctx)
		}
		return rt.Close()
	}, nil
}

// publishDeviceStatus announces a device going online or offline as a
// CloudEvent on its project's events topic, where subscriptions see it.
func (p *Platform) publishDeviceStatus(ctx context.Context, d *devicecenter.Device, previous string) {
	if p.Bus == nil {
		return
	}
	now := p.now().UTC()
	ce := task.CloudEvent{SpecVersion: "1.0", ID: fmt.Sprintf("%s:status:%d", d.ID, now.UnixNano()), Source: "/tianshu/devices/" + d.ID,
		Type: "tianshu.device." + d.Status, Subject: d.ID, Time: now.Format(time.RFC3339Nano), DataContentType: "application/json",
		ProjectID: d.ProjectID, Data: map[string]any{"DeviceId": d.ID, "Name": d.Name, "Status": d.Status, "Previous": previous,
			"Reason": d.Reason, "LastError": d.LastError}}
	b, _ := json.Marshal(ce)
	if _, err := p.Bus.Publish(ctx, task.EventsTopic(d.ProjectID), d.ID, b, map[string]string{bus.HeaderID: ce.ID}); err != nil {
		p.log.Warn("device status not published", "device", d.ID, "err", err)
	}
}

// blobSnapshots keeps device snapshots in the blob store behind signed URLs.
type blobSnapshots struct{ b blob.Store }

func (bs blobSnapshots) PutSnapshot(ctx context.Context, projectID, deviceID string, jpeg []byte) (string, error) {
	key := fmt.Sprintf("projects/%s/devices/%s/snapshots/%d.jpg", projectID, deviceID, time.Now().UnixNano())
	if _, err := bs.b.Put(ctx, key, bytes.NewReader(jpeg), blob.PutOptions{ContentType: "image/jpeg", Size: int64(len(jpeg))}); err != nil {
		return "", err
	}
	return bs.b.PresignGet(ctx, key, time.Hour)
}

func (p *Platform) initPush(ctx context.Context) (func(context.Context) error, error) {
	svc, err := push.New(push.Config{DB: p.DB, Bus: p.Bus, Box: p.Box, Keys: p.Apps, Logger: p.log, Registerer: p.Metrics, Now: p.now,
		NodeID: p.cfg.Worker.Name + "/" + ids.New("push")})
	if err != nil {
		return nil, err
	}
	if err := svc.Start(ctx); err != nil {
		return nil, err
	}
	p.Push = svc
	p.grpc = svc.GRPCServer()
	return func(context.Context) error {
		svc.Stop()
		p.grpc.Stop()
		return nil
	}, nil
}
