package app

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tianshu-ai/tianshu/internal/algorepo"
	"github.com/tianshu-ai/tianshu/internal/algorithm"
	"github.com/tianshu-ai/tianshu/internal/algorithm/builtin"
	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/appcenter"
	"github.com/tianshu-ai/tianshu/internal/blob"
	"github.com/tianshu-ai/tianshu/internal/bus"
	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/device"
	"github.com/tianshu-ai/tianshu/internal/devicecenter"
	"github.com/tianshu-ai/tianshu/internal/edge"
	"github.com/tianshu-ai/tianshu/internal/edge/edgeconfig"
	"github.com/tianshu-ai/tianshu/internal/execpolicy"
	"github.com/tianshu-ai/tianshu/internal/flow"
	"github.com/tianshu-ai/tianshu/internal/function"
	"github.com/tianshu-ai/tianshu/internal/gb28181"
	"github.com/tianshu-ai/tianshu/internal/gpu"
	"github.com/tianshu-ai/tianshu/internal/iam"
	"github.com/tianshu-ai/tianshu/internal/ids"
	"github.com/tianshu-ai/tianshu/internal/imagebuild"
	"github.com/tianshu-ai/tianshu/internal/imagebuild/builtinreg"
	"github.com/tianshu-ai/tianshu/internal/kube"
	"github.com/tianshu-ai/tianshu/internal/logview"
	"github.com/tianshu-ai/tianshu/internal/pipeline"
	"github.com/tianshu-ai/tianshu/internal/push"
	"github.com/tianshu-ai/tianshu/internal/ratelimit"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/studio"
	"github.com/tianshu-ai/tianshu/internal/task"
	"github.com/tianshu-ai/tianshu/internal/telemetry"
	"github.com/tianshu-ai/tianshu/internal/tracing/tracesdk"
	"github.com/tianshu-ai/tianshu/internal/vectors"
)

func (p *Platform) initStore(ctx context.Context) (func(context.Context) error, error) {
	db, err := store.Open(ctx, p.cfg.DB, store.Options{Logger: p.log, Registerer: p.Metrics})
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
	p.EdgeNodes = edge.NewNodes(db, p.now)
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
	ring, err := secrets.LoadKeyring(p.getenv("TIANSHU_MASTER_KEY"), filepath.Join(p.cfg.DataDir, "master.key"))
	if err != nil {
		return nil, err
	}
	p.Box, err = secrets.NewKeyring(ring)
	if err == nil {
		p.log.Info("master keys loaded", "keys", ring.Describe())
	}
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

func (p *Platform) initApps(context.Context) (func(context.Context) error, error) {
	p.Apps = appcenter.New(p.DB, p.Box, p.log, p.now)
	p.Apps.SetCacheTTL(p.cfg.API.AppCacheTTL)
	p.Apps.UseBindings(p.Access) // apps' roles are project role bindings
	return nil, nil
}

func (p *Platform) initIAM(context.Context) (func(context.Context) error, error) {
	p.Users = iam.NewUsers(p.DB, p.now)
	p.Sessions = iam.NewSessions(p.DB, p.cfg.API.Sessions, p.now)
	p.Audit = iam.NewAudit(p.DB, p.now, iam.WithCheckpointKey(p.Box.DeriveKey("audit-checkpoint")))
	if err := p.Audit.RegisterMetrics(p.Metrics); err != nil {
		return nil, err
	}
	p.Projects = p.projectQuotas()
	p.Access = iam.NewAccess(p.DB, p.now)
	p.Access.SetTTL(p.cfg.API.GrantsCacheTTL)
	p.Users.OnRoleChange(p.Access.Changed) // grants hold who is a platform admin
	// The gateway records through the queue (Audit.Auditor): an audited
	// change stages its event in its own transaction, other events are
	// staged before the call answers, and the queue's chainer hashes staged
	// events into the log in batches (docs/iam.md, The chain).
	q := p.Audit.StartQueue(p.log)
	stop := p.loop(ModIAM, func(ctx context.Context) error {
		return p.Audit.RunRetention(ctx, p.cfg.Audit, p.log)
	})
	return func(ctx context.Context) error {
		return errors.Join(stop(ctx), q.Close(ctx))
	}, nil
}

func (p *Platform) initFlows(context.Context) (func(context.Context) error, error) {
	fm, err := flow.NewMetrics(p.Metrics)
	if err != nil {
		return nil, err
	}
	// Whether a task uses a flow is the tasks module's to say; it starts
	// after this one and connects itself (initTasks).
	p.Studio = studio.New(p.DB, studio.Options{Logger: p.log, Now: p.now, Metrics: fm, Algorithms: p.Algos, AlgorithmsFor: p.Algos.ForProject,
		ScriptGate: function.NewGate(function.DefaultGatePerKey), StoredAlgorithm: func(id string) bool { return !p.Algos.IsBuiltin(id) },
		Catalog: p.Algos.Catalog,
		// The devices module may start after this one, or not run in this
		// process at all: zone nodes that name a device's zone then fail
		// to compile, saying zones are not available.
		ZonesFor: func(projectID string) flow.Zones {
			if p.Devices == nil {
				return nil
			}
			return p.Devices.ZonesFor(projectID)
		},
		// Likewise the data center, which keeps the watchlists (on an
		// edge box, its cloud's, synced by the link: internal/edge).
		WatchlistsFor: func(projectID string) flow.Watchlists {
			if p.Data == nil {
				return nil
			}
			return watchlists{data: p.Data, project: projectID}
		}})
	return nil, nil
}

func (p *Platform) initTasks(context.Context) (func(context.Context) error, error) {
	p.Tasks = task.NewService(p.DB, p.Studio.ResolveVersion, p.log, p.now)
	p.Previews = task.NewPreviews()
	p.Studio.SetInUse(p.Tasks.UsesFlow)
	p.Tasks.SetParamCheck(p.Studio.CheckParams)
	return nil, nil
}

func (p *Platform) initAPI(ctx context.Context) (func(context.Context) error, error) {
	lim, err := ratelimit.Open(ctx, p.cfg.Cache)
	if err != nil {
		return nil, err
	}
	// Failed logins are counted in the same cache as rate limits, so
	// replicas sharing Redis share the lockout.
	p.Logins = iam.NewLogins(p.Users, p.Sessions, lim, p.cfg.API.Sessions, p.log)
	// The actions are registered in Start, once every module of this
	// process exists (modules after api in start order included).
	p.Registry = api.NewRegistry()
	p.Access.UseRegistry(p.Registry)
	// CreateTask checks the devices a task reads from against the caller's
	// reach; the device center knows them.
	p.Tasks.SetDeviceLocator(p.Devices.Locate)
	// Devices and tasks may be placed on the project's edge nodes.
	p.Tasks.SetEdgePlacement(p.edgeOfProject, p.deviceEdge)
	p.Devices.UseEdgeNodes(p.edgeOfProject)
	p.EdgeNodes.OnDelete(p.unplaceEdge)
	// A task's insert and a delete of its flow or a device it reads from
	// lock the same row: one decision whatever the interleaving.
	p.Tasks.SetUseLocks(p.Studio.LockForUse, p.Devices.LockForUse)
	// Flow test runs read their pictures from uploads, devices and records.
	p.Studio.UseTestRuns(testImages{data: p.Data, devices: p.Devices}, p.Blob)
	// Creates come through the action API, which runs where the projects
	// (and their quotas) are: the centers check them from here.
	p.Apps.UseQuotas(p.Projects)
	p.Tasks.UseQuotas(p.Projects)
	p.Devices.UseQuotas(p.Projects)
	p.Gateway = api.NewGateway(p.cfg.API, p.Registry, api.GatewayOptions{
		Keys: p.Apps, Sessions: p.Sessions, Authorizer: p.Access, Auditor: p.Audit.Auditor(), Limiter: lim, Failures: lim, Replays: lim, Logger: p.log.With("component", "api"), Registerer: p.Metrics, Now: p.now, Tracer: p.Tracing.Provider(),
		SecureCookies: strings.HasPrefix(p.cfg.PublicURL, "https://"),
	})
	// Replicas on one store tell each other when apps or keys change, so
	// that their caches forget at once; a bus without ephemeral messages
	// (Kafka) leaves it to the cache TTL.
	stopListening := func() {}
	if eph, ok := p.Bus.(bus.Ephemeral); ok {
		stopApps, err := p.Apps.UseInvalidations(eph)
		if err != nil {
			_ = lim.Close()
			return nil, err
		}
		// Roles and bindings likewise: a role revoked through one
		// replica is refused on every one at once.
		stopAccess, err := p.Access.UseInvalidations(eph, p.log)
		if err != nil {
			stopApps()
			_ = lim.Close()
			return nil, err
		}
		stopSessions, err := p.Sessions.UseInvalidations(eph, p.log)
		if err != nil {
			stopApps()
			stopAccess()
			_ = lim.Close()
			return nil, err
		}
		stopListening = func() { stopApps(); stopAccess(); stopSessions() }
	}
	lv := p.cfg.API.Live
	p.Live = task.NewLive(p.Tasks, p.Previews, p.Box.DeriveKey("live-ticket"),
		task.LiveConfig{MaxViewers: lv.MaxViewers, MaxViewersPerProject: lv.MaxViewersPerProject}, p.log, p.Metrics)
	// Images are built where versions are created: the action API.
	stopImages, err := p.initImages(ctx)
	if err != nil {
		stopListening()
		_ = lim.Close()
		return nil, err
	}
	return func(ctx context.Context) error {
		stopListening()
		var err error
		if stopImages != nil {
			err = stopImages(ctx)
		}
		return errors.Join(err, lim.Close())
	}, nil
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
	var logins *iam.Logins
	var access *iam.Access
	var flows *studio.Service
	var tasks *task.Service
	var algos *algorepo.Service
	var pkgs algorepo.PackageStore
	var records *data.Service
	var devices *devicecenter.Service
	var snaps devicecenter.SnapshotStore
	var subs *push.Service
	var recent *tracesdk.Recent
	var logs *telemetry.LogRing
	if p != nil {
		recent, logs = p.Tracing.Recent(), p.Logs
		subs, logins = p.Push, p.Logins
		apps, audit, flows, tasks, algos, records, devices, projects = p.Apps, p.Audit, p.Studio, p.Tasks, p.Algos, p.Data, p.Devices, p.Projects
		access = p.Access
		pkgs, snaps = algorepo.BlobPackages{Blob: p.Blob, Uploaded: p.Data.CompletedUpload}, devicecenter.BlobSnapshots{Blob: p.Blob}
	}
	appcenter.RegisterActions(reg, apps)
	iam.RegisterActions(reg, audit)
	iam.RegisterProjectActions(reg, projects)
	iam.RegisterUserActions(reg, logins)
	iam.RegisterAccessActions(reg, access)
	iam.RegisterMyPermissionsAction(reg, access, projects)
	studio.RegisterActions(reg, flows)
	task.RegisterActions(reg, tasks)
	algorepo.RegisterActions(reg, algos, pkgs)
	if records != nil && algos != nil {
		records.UseFaceEmbedder(faceEmbedder{algos})
	}
	data.RegisterActions(reg, records)
	devicecenter.RegisterActions(reg, devices, snaps)
	var edges *edge.Nodes
	window := 3 * edgeconfig.Default().Heartbeat
	if p != nil {
		edges, window = p.EdgeNodes, 3*p.cfg.Edge.Heartbeat
	}
	edge.RegisterActions(reg, edges, window)
	push.RegisterActions(reg, subs)
	var tracePeers tracesdk.Asker
	if p != nil && p.tracePeers != nil {
		tracePeers = p.tracePeers
	}
	tracesdk.RegisterActions(reg, recent, tracePeers)
	var logPeers logview.Asker
	process := ""
	if p != nil {
		process = p.processName()
		if p.logPeers != nil {
			logPeers = p.logPeers
		}
	}
	logview.RegisterActions(reg, logs, process, logPeers)
}

func (p *Platform) initEdgeHub(ctx context.Context) (func(context.Context) error, error) {
	if p.cfg.Edge.LeafAddr == "" {
		return nil, nil
	}
	h, err := edge.StartHub(ctx, edge.HubOptions{Addr: p.cfg.Edge.LeafAddr, Advertise: p.cfg.Edge.LeafAdvertise,
		Dir: edge.HubDir(p.cfg.DataDir), Box: p.Box, Nodes: p.EdgeNodes, Records: p.Data, Events: p.Bus, Objects: p.Blob, Artifacts: p.Blob, Placement: cloudPlacement{p}, WatchlistBytes: p.cfg.Edge.WatchlistBytes, Logger: p.log, Registerer: p.Metrics})
	if err != nil {
		return nil, err
	}
	p.EdgeHub = h
	stopStale := p.loop(ModEdgeHub, p.staleEdgeDevices)
	return func(ctx context.Context) error { _ = stopStale(ctx); return h.Close() }, nil
}

func (p *Platform) initEdgeLink(ctx context.Context) (func(context.Context) error, error) {
	if p.cfg.Edge.Cloud == "" {
		return nil, errors.New("edge: --cloud is required with --target=edge")
	}
	l, err := edge.StartLink(ctx, edge.LinkOptions{Config: p.cfg.Edge, Dir: edge.HubDir(p.cfg.DataDir), Box: p.Box,
		Versions: map[string]string{"tianshu": buildVersion()}, Site: edgeSite{p}, Events: p.Bus, Objects: p.Blob, Logger: p.log, Registerer: p.Metrics, Now: p.now})
	if err != nil {
		return nil, err
	}
	p.EdgeLink = l
	return func(context.Context) error { return l.Close() }, nil
}

// buildVersion is the binary's module version ("(devel)" in a work tree).
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.Main.Version
	}
	return "unknown"
}

func (p *Platform) initScheduler(context.Context) (func(context.Context) error, error) {
	holder := p.cfg.Worker.Name + "/" + ids.New("sched")
	s := task.NewScheduler(p.DB, p.Tasks, task.DefaultSchedulerConfig(), holder, p.log, p.Metrics, p.now)
	return p.loop(ModScheduler, func(ctx context.Context) error {
		s.Run(ctx)
		return nil
	}), nil
}

func (p *Platform) initWorker(ctx context.Context) (func(context.Context) error, error) {
	cfg := p.cfg.Worker
	cfg.GPUs = p.gpus
	// Store nodes wait for their batch to commit: a short interval keeps
	// that wait small when traffic is light; under load batches fill first.
	wo := data.WriterOptions{FlushInterval: 10 * time.Millisecond}
	if p.EdgeLink != nil {
		// On an edge, committed records are also buffered for the cloud.
		wo.OnFlush = p.EdgeLink.OnFlush
	}
	writer := p.Data.NewWriter(wo)
	var records pipeline.RecordStore = p.Data.NewRecordSink(writer)
	if p.EdgeLink != nil {
		// Not a pipeline.RecordCrops on an edge: a crop URL of the edge's
		// own would not reach the cloud's subscribers, whom its hit
		// events are forwarded to (DescribeRecord on the cloud signs the
		// forwarded crop).
		records = struct{ pipeline.RecordStore }{records}
	}
	cfg.Interval = min(time.Second, cfg.LeaseTTL/4)
	p.Worker = task.NewWorker(cfg, task.WorkerDeps{
		DB: p.DB, Service: p.Tasks, Bus: p.Bus, Logger: p.log.With("component", "task"), Metrics: p.Metrics, Now: p.now, Previews: p.Previews, Tracer: p.Tracing.Provider(),
		Plan: func(ctx context.Context, flowID string, version int64, tr flow.Tracer) (*flow.Plan, error) {
			return p.Studio.Compile(ctx, flowID, version, tr)
		},
		Sources: map[string]pipeline.SourceFactory{"topic": task.NewTopicSource, "upload": p.Data.UploadSources(device.DecodeVideoFrames), "device": p.Devices.NewTaskSource},
		Records: records,
	})
	stop := p.loop(ModWorker, p.Worker.Run)
	return func(ctx context.Context) error {
		err := stop(ctx)
		return errors.Join(err, writer.Close(ctx))
	}, nil
}

// projectQuotas returns the projects' quotas over the store, with the
// configured defaults.
func (p *Platform) projectQuotas() *iam.Projects {
	q := iam.NewProjects(p.DB, p.now)
	d := p.cfg.API.Quotas
	q.SetDefaultQuotas(iam.Quotas{Apps: d.Apps, Devices: d.Devices, Tasks: d.Tasks, StorageBytes: int(d.StorageBytes)})
	return q
}

func (p *Platform) initData(ctx context.Context) (func(context.Context) error, error) {
	svc, err := data.New(p.DB, p.Blob, data.Options{Logger: p.log.With("component", "data"), Registerer: p.Metrics, Now: p.now,
		TokenKey: p.Box.DeriveKey("upload-token"), StagingDir: filepath.Join(p.cfg.DataDir, "uploads"), PublicURL: p.cfg.PublicBase(p.Addr())})
	if err != nil {
		return nil, err
	}
	p.Data = svc
	// Records enter on workers, which may run without the IAM module:
	// the storage quota is read from the store here.
	svc.UseQuotas(p.projectQuotas())
	// The vector index of record embeddings (SearchFaces), rebuilt from
	// the store's embeddings when its files are missing or corrupt.
	ix, err := vectors.Open(ctx, p.cfg.Vectors, vectors.Options{DataDir: p.cfg.DataDir, Source: svc.VectorSource(),
		Logger: p.log.With("component", "vectors"), Registerer: p.Metrics})
	if err != nil {
		return nil, err
	}
	svc.UseVectors(ix)
	ret := svc.NewRetention(data.RetentionOptions{Interval: time.Minute})
	stop := p.loop(ModData, func(ctx context.Context) error {
		go svc.RunDigests(ctx)
		return ret.Run(ctx)
	})
	return func(ctx context.Context) error {
		err := stop(ctx)
		if cerr := ix.Close(); err == nil {
			err = cerr
		}
		return err
	}, nil
}

func (p *Platform) initAlgorithms(context.Context) (func(context.Context) error, error) {
	builtins, err := builtin.All()
	if err != nil {
		return nil, err
	}
	p.Algos = algorepo.New(p.DB, builtins, p.log, p.now)
	p.Algos.UseSecrets(p.Box)
	return nil, nil
}

// initImages sets up building container images from install packages
// when the configuration asks for it, and the built-in registry.
func (p *Platform) initImages(ctx context.Context) (func(context.Context) error, error) {
	c := p.cfg.Images
	if !c.Enabled() {
		return nil, nil
	}
	// Registries are reached under the outbound policy, besides being
	// the operator's list; the built-in one in-process.
	deps := imagebuild.Deps{Box: p.Box, Credentials: p.Algos.RegistryCredential,
		Policy: p.outbound, Registerer: p.Metrics, Logger: p.log}
	var stop func(context.Context) error
	if host := c.BuiltinHost(); host != "" {
		login := algorepo.RegistryLogin{Host: host, Username: builtinreg.PushUser, Password: hex.EncodeToString(p.Box.DeriveKey("builtin-registry push"))}
		reg, err := builtinreg.New(ctx, p.Blob, builtinreg.Options{PushUser: login.Username, PushPassword: login.Password,
			MaxBlobBytes: max(c.MaxLayerBytes, algorithm.DefaultMaxUnpackedBytes) + 64<<20, Logger: p.log})
		if err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", c.Builtin.Addr)
		if err != nil {
			return nil, fmt.Errorf("images.builtin_registry.addr %s: %w", c.Builtin.Addr, err)
		}
		srv := &http.Server{Handler: reg, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				p.log.Error("built-in registry stopped", "err", err)
			}
		}()
		p.log.Info("built-in registry listening", "addr", ln.Addr().String(), "host", host)
		stop = srv.Shutdown
		sealed, others := p.Box.Seal(login.Password), deps.Credentials
		deps.Credentials = func(ctx context.Context, h string) (string, string, error) {
			if h == host {
				return login.Username, sealed, nil
			}
			return others(ctx, h)
		}
		deps.Transports = map[string]http.RoundTripper{host: reg.Transport()}
		p.Algos.UseBuiltinRegistry(login)
	}
	b, err := imagebuild.New(c, deps)
	if err != nil {
		if stop != nil {
			_ = stop(ctx)
		}
		return nil, err
	}
	p.Algos.UseImages(b, func(ctx context.Context, key string) (io.ReadCloser, error) {
		rc, _, err := p.Blob.Get(ctx, key)
		return rc, err
	})
	return stop, nil
}

// initRuntime starts this process's algorithm instances: the builtins and
// every version desired running, kept in step with the repository.
func (p *Platform) initRuntime(ctx context.Context) (func(context.Context) error, error) {
	gpus, err := gpu.Detect(ctx, "")
	if err != nil {
		p.log.Warn("gpu detection failed", "err", err)
	}
	p.gpus = gpus
	p.log.Info("gpus detected", "count", len(gpus))
	pol, _, err := p.execPolicies()
	if err != nil {
		return nil, err
	}
	workDir := filepath.Join(p.cfg.DataDir, "algorithms")
	if pol.SwitchesUser() {
		// Processes run as --exec.user cannot reach into the data dir:
		// their packages are unpacked (and handed to them) outside it.
		if workDir, err = os.MkdirTemp(p.cfg.Exec.WorkDir, "tianshu-algorithms-"); err != nil {
			return nil, err
		}
		if err := os.Chmod(workDir, 0o755); err != nil {
			return nil, err
		}
	}
	containers, err := p.containerRuntime(ctx)
	if err != nil {
		return nil, err
	}
	servingDir := p.cfg.Worker.ServingDir
	if servingDir != "" {
		if servingDir, err = filepath.Abs(servingDir); err != nil {
			return nil, err
		}
	}
	m, err := algorithm.New(algorithm.Options{
		ServingDir: servingDir,
		Containers: containers,
		GPUs:       gpu.Indices(gpus),
		Logger:     p.log.With("component", "algorithm"), Registerer: p.Metrics, Now: p.now, Tracer: p.Tracing.Provider(),
		WorkDir: workDir,
		Exec:    pol,
		OpenPackage: func(ctx context.Context, key string) (io.ReadCloser, error) {
			rc, _, err := p.Blob.Get(ctx, key)
			return rc, err
		},
		Outbound:      p.outbound,
		PackageLimits: algorithm.PackageLimits{MaxBytes: p.cfg.Worker.MaxPackageBytes},
	})
	if err != nil {
		return nil, err
	}
	if err := p.Algos.StartRuntime(ctx, m); err != nil {
		_ = m.Close(ctx)
		return nil, err
	}
	stopLoop := p.loop(ModRuntime, func(ctx context.Context) error {
		p.Algos.Run(ctx, 2*time.Second)
		return nil
	})
	stopGPU := func(context.Context) error { return nil }
	if len(gpus) > 0 {
		stopGPU = p.loop(ModRuntime, func(ctx context.Context) error {
			m.WatchGPUMemory(ctx, 15*time.Second)
			return nil
		})
	}
	return func(ctx context.Context) error {
		_ = stopGPU(ctx)
		_ = stopLoop(ctx)
		return m.Close(ctx)
	}, nil
}

// containerRuntime returns the Kubernetes runtime of container versions
// when --kube.kubeconfig or --kube.in-cluster configures a cluster, and nil
// otherwise (container versions are then refused). Building it makes no
// request and starts nothing: the algorithm manager calls it when a
// container version is applied.
func (p *Platform) containerRuntime(ctx context.Context) (algorithm.ContainerRuntime, error) {
	kc := p.cfg.Kube
	if !kc.Enabled() {
		return nil, nil
	}
	var (
		cfg kube.Config
		ns  string
		err error
	)
	if kc.InCluster {
		cfg, ns, err = kube.InCluster()
	} else {
		cfg, ns, err = kube.LoadKubeconfig(kc.Kubeconfig)
	}
	if err != nil {
		return nil, err
	}
	if kc.Namespace != "" {
		ns = kc.Namespace
	}
	if ns == "" {
		ns = "default"
	}
	rt, err := kube.New(cfg, ns, p.log)
	if err != nil {
		return nil, err
	}
	// Objects carry the platform's id, so that versions stopped or deleted
	// while no process with the runtime ran are found and removed, and
	// another platform's objects in the namespace never are.
	id, err := p.platformID(ctx)
	if err != nil {
		return nil, fmt.Errorf("kube: platform id: %w", err)
	}
	rt.SetPlatform(id)
	p.log.Info("kubernetes runtime configured", "host", cfg.Host, "namespace", ns, "in_cluster", kc.InCluster)
	return rt, nil
}

// execPolicies returns the exec policy and media roots of the
// configuration, built once; the first call warns when children would run
// as root.
func (p *Platform) execPolicies() (*execpolicy.Policy, *execpolicy.Media, error) {
	p.execOnce.Do(func() {
		p.execPol, p.execErr = execpolicy.New(p.cfg.Exec)
		if p.execErr != nil {
			return
		}
		p.media, p.execErr = execpolicy.NewMedia(p.cfg.Media)
		if p.execPol.RunsAsRoot() {
			p.log.Warn("adapters, ffmpeg and algorithm processes run as root: set --exec.user")
		}
	})
	return p.execPol, p.media, p.execErr
}

func (p *Platform) initDevices(ctx context.Context) (func(context.Context) error, error) {
	pol, media, err := p.execPolicies()
	if err != nil {
		return nil, err
	}
	// The default ffmpeg is the operator's, fixed at start: the one on PATH.
	ffmpeg := "ffmpeg"
	if lp, err := exec.LookPath("ffmpeg"); err == nil {
		ffmpeg = lp
	}
	rt, err := device.NewRuntime(device.Options{Logger: p.log, Registerer: p.Metrics, Outbound: p.outbound, FFmpeg: ffmpeg, Exec: pol, Media: media})
	if err != nil {
		return nil, err
	}
	var events devicecenter.Publisher
	if p.Bus != nil {
		events = p.Bus
	}
	p.Devices = devicecenter.New(p.DB, p.Box, rt, events, p.log, p.now)
	if after := p.cfg.Worker.StallAfter; after > 0 {
		if err := p.Devices.UseStallDetection(after, p.Metrics); err != nil {
			return nil, err
		}
	}
	stopGB := func() error { return nil }
	if gc := p.cfg.GB28181; gc.Addr != "" {
		// The GB/T 28181 SIP server cameras register to (off by default).
		dir := p.Devices.GB28181Directory()
		var auditor api.Auditor
		if p.Audit != nil {
			auditor = p.Audit
		}
		lo, hi := gc.PortRange()
		srv, err := gb28181.New(gb28181.Config{Addr: gc.Addr, ServerID: gc.ServerID, Realm: gc.Realm, Password: gc.Password, KeepaliveTimeout: gc.KeepaliveTimeout,
			MediaIP: gc.MediaIP, MediaPortMin: lo, MediaPortMax: hi, NoMediaTimeout: gc.NoMediaTimeout},
			gb28181.Options{Directory: dir, Logger: p.log, Registerer: p.Metrics, Auditor: auditor, Now: p.now})
		if err != nil {
			return nil, err
		}
		if err := srv.Start(ctx); err != nil {
			return nil, err
		}
		dir.Attach(srv)
		p.GB28181 = srv
		stopGB = srv.Close
		if eph, ok := p.Bus.(bus.Ephemeral); ok {
			// Workers in other processes ask this server to invite devices
			// for them (gb28181.Remote).
			stopRemote, err := srv.ServeRemote(eph)
			if err != nil {
				_ = srv.Close()
				return nil, err
			}
			stopGB = func() error { stopRemote(); return srv.Close() }
		}
		if gc.Upper != "" {
			// Cascading: this platform registers to an upper one as a
			// lower platform and answers its catalog and PTZ commands.
			link, err := gb28181.NewCascade(gb28181.CascadeConfig{Upper: gc.Upper, UpperID: gc.UpperID, ID: gc.ServerID, Password: gc.UpperPassword,
				Transport: gc.UpperTransport, Keepalive: gc.UpperKeepalive, Logger: p.log}, dir.CascadeSource(gc.UpperProject))
			if err != nil {
				_ = stopGB()
				return nil, err
			}
			stopLink := p.loop(ModDevices, link.Run)
			stopSIP := stopGB
			stopGB = func() error { _ = stopLink(context.Background()); return stopSIP() }
		}
	} else if eph, ok := p.Bus.(bus.Ephemeral); ok && p.Running(ModWorker) && !p.Running(ModAPI) {
		// A worker on its own: the control plane's SIP server invites
		// devices to send video to this process's media ports.
		lo, hi := gc.PortRange()
		r, err := gb28181.NewRemote(gb28181.Config{ServerID: gc.ServerID, MediaIP: gc.MediaIP, MediaPortMin: lo, MediaPortMax: hi, NoMediaTimeout: gc.NoMediaTimeout},
			gb28181.RemoteOptions{Relay: eph, Name: p.cfg.Worker.Name, Logger: p.log, Registerer: p.Metrics, Now: p.now})
		if err != nil {
			return nil, err
		}
		p.Devices.UseRemoteGB28181(r)
	}
	stopProber := func(context.Context) error { return nil }
	if p.Running(ModScheduler) {
		// The control plane probes devices that no running task reports on.
		stopProber = p.loop(ModDevices, func(ctx context.Context) error {
			return p.Devices.RunProber(ctx, 30*time.Second, 2*time.Minute, 4)
		})
	}
	return func(ctx context.Context) error {
		_ = stopProber(ctx)
		_ = stopGB()
		return rt.Close()
	}, nil
}

func (p *Platform) initPush(ctx context.Context) (func(context.Context) error, error) {
	svc, err := push.New(push.Config{DB: p.DB, Bus: p.Bus, Box: p.Box, Keys: p.Apps, Logger: p.log, Registerer: p.Metrics, Now: p.now, Tracer: p.Tracing.Provider(),
		Outbound: p.outbound,
		NodeID:   p.cfg.Worker.Name + "/" + ids.New("push")})
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
