package algorithm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/tianshu-ai/tianshu/internal/execpolicy"
	"github.com/tianshu-ai/tianshu/internal/netpolicy"
	"github.com/tianshu-ai/tianshu/internal/tracing"
)

// Options configure a Manager. Zero fields take the defaults noted.
type Options struct {
	Logger     *slog.Logger          // default: discard
	Registerer prometheus.Registerer // nil: metrics are not registered
	Now        func() time.Time      // default time.Now; breakers use it
	// Tracer records a span per call inside the caller's trace (protocol,
	// instance, batch size), and HTTP calls carry its traceparent; nil:
	// tracing is off.
	Tracer trace.TracerProvider

	// WorkDir receives unpacked packages (default: a directory under
	// os.TempDir()).
	WorkDir string
	// OpenPackage reads a package from the blob store by key; a Package
	// that is not a local path is looked up here.
	OpenPackage func(ctx context.Context, key string) (io.ReadCloser, error)
	// ServingDir holds the serving runtimes' package directories (the
	// repository's runtimes/, with their node_modules installed): a
	// model-file version runs the one its Serving.Runtime names.
	ServingDir string
	// PackageLimits bound unpacking.
	PackageLimits PackageLimits
	// GPUs are the node's GPU indices for CUDA_VISIBLE_DEVICES; empty
	// when the node has none.
	GPUs []int
	// SMI is the nvidia-smi that SampleGPUMemory asks (empty: the one on
	// PATH).
	SMI string
	// ProcessEnv adds KEY=VALUE pairs to every process's environment
	// (which otherwise holds only the manifest's env and the exec policy's
	// own PATH, HOME and TMPDIR: nothing of the server's, so that platform
	// secrets never leak).
	ProcessEnv []string
	// Exec is the exec policy processes run under: a package's command runs
	// only from inside the package, or, named bare, from a directory the
	// operator allowed. nil allows nothing but commands inside packages and
	// sets no limits.
	Exec *execpolicy.Policy

	MaxImageBytes    int64         // per image input (default 32 MiB)
	MaxResponseBytes int64         // per response (default 16 MiB)
	DefaultTimeout   time.Duration // per call when the version sets none (default 30s)
	HealthInterval   time.Duration // between health checks (default 5s)
	StartupTimeout   time.Duration // to become healthy (default 60s)
	RestartBackoff   time.Duration // first restart delay, doubled per failure (default 500ms)
	// MaxRestartBackoff caps the restart delay (default 30s).
	MaxRestartBackoff time.Duration
	// MaxStartFailures is how many failed starts in a row (without 10s
	// of readiness between them) turn an instance failed (default 5).
	MaxStartFailures int
	BreakerFailures  int           // consecutive failures that open a breaker (default 5)
	BreakerCooldown  time.Duration // before a half-open probe (default 5s)
	// Transport overrides the shared HTTP transport (tests, proxies);
	// it replaces the dialer, and with it Outbound's connect-time check.
	Transport http.RoundTripper
	// Outbound is the outbound network policy for endpoint algorithms:
	// Apply refuses endpoints on refused IP literals, and every connection
	// to an endpoint is checked on its resolved address. Redirects are not
	// followed. Process algorithms, which the platform starts on loopback
	// itself, are not subject to it. Nil checks nothing.
	Outbound *netpolicy.Policy
	// Containers runs container versions (internal/kube on Kubernetes).
	// Nil: applying a container version fails with ErrContainerRuntime.
	Containers ContainerRuntime
	// ReconcileInterval is how often a running container version is
	// deployed again, which undoes edits and deletions made by hand
	// (default 30s).
	ReconcileInterval time.Duration
}

// ContainerRuntime runs container versions somewhere the platform does
// not supervise itself. Deploy creates or updates what runs a version and
// refuses an impossible one with a *FieldError, leaving nothing behind;
// Remove deletes all of it (what is gone is no error); URL is the base URL
// the version answers its protocol at once its replicas are ready; Status
// tells how far its replicas have come.
type ContainerRuntime interface {
	Deploy(ctx context.Context, v Version) error
	Remove(ctx context.Context, ref Ref) error
	URL(ref Ref) string
	Status(ctx context.Context, ref Ref) (ContainerStatus, error)
	// Check refuses with a *FieldError what the cluster cannot run (more
	// GPUs than any node has), creating nothing.
	Check(ctx context.Context, v Version) error
	// Scale sets a deployed version's replica count (scale to zero).
	Scale(ctx context.Context, ref Ref, replicas int) error
	// Deployed lists the versions whose objects this platform deployed.
	Deployed(ctx context.Context) ([]Ref, error)
}

// ContainerStatus is how far a container version's replicas have come, as
// the cluster reports it.
type ContainerStatus struct {
	// Desired is the replica count asked for; Updated run the current
	// definition; Ready pass their readiness probe; Available have been
	// ready long enough.
	Desired   int `json:"desired"`
	Updated   int `json:"updated"`
	Ready     int `json:"ready"`
	Available int `json:"available"`
	// Message says why replicas are missing: a failing condition of the
	// cluster (a quota exceeded) or a container that cannot start (e.g.
	// "ErrImagePull" for a missing image); empty when nothing fails.
	Message string `json:"message,omitempty"`
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.WorkDir == "" {
		o.WorkDir = filepath.Join(os.TempDir(), "tianshu-algorithms")
	}
	set := func(p *time.Duration, d time.Duration) {
		if *p <= 0 {
			*p = d
		}
	}
	set(&o.DefaultTimeout, 30*time.Second)
	set(&o.HealthInterval, 5*time.Second)
	set(&o.StartupTimeout, 60*time.Second)
	set(&o.RestartBackoff, 500*time.Millisecond)
	set(&o.MaxRestartBackoff, 30*time.Second)
	set(&o.BreakerCooldown, 5*time.Second)
	set(&o.ReconcileInterval, 30*time.Second)
	if o.MaxImageBytes <= 0 {
		o.MaxImageBytes = 32 << 20
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = 16 << 20
	}
	if o.MaxStartFailures <= 0 {
		o.MaxStartFailures = 5
	}
	if o.BreakerFailures <= 0 {
		o.BreakerFailures = 5
	}
}

// Ref names one algorithm version. An empty Version means the
// algorithm's current version: the one applied last.
type Ref struct {
	ID      string
	Version string
}

// Manager runs algorithm versions and calls them. It knows nothing of
// flows: algorepo adapts it to the flow engine. All methods are safe for
// concurrent use.
type Manager struct {
	// tracer starts the calls' spans; nil while tracing is off.
	tracer  trace.Tracer
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics
	client  *http.Client // to endpoints, through the outbound policy
	// procClient reaches the processes this manager started on loopback.
	procClient *http.Client
	gpus       *gpuAllocator

	lifecycle sync.Mutex // serialises Apply and Stop

	mu       sync.RWMutex
	deps     map[Ref]*deployment
	current  map[string]string // algorithm id → version for refs without one
	builtins map[string]Builtin
}

// New creates a Manager and registers its metrics.
func New(opts Options) (*Manager, error) {
	opts.defaults()
	met, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	transport := func(p *netpolicy.Policy) http.RoundTripper {
		if opts.Transport != nil {
			return opts.Transport
		}
		return tracing.HTTPTransport(&http.Transport{
			Proxy:               nil, // a proxy would hide the endpoint from the policy
			DialContext:         p.Guard(&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true, // images do not compress; save the CPU
			TLSHandshakeTimeout: 10 * time.Second,
		}, opts.Tracer != nil)
	}
	return &Manager{
		tracer:  tracing.Tracer(opts.Tracer, "tianshu/algorithm"),
		opts:    opts,
		log:     opts.Logger,
		now:     opts.Now,
		metrics: met,
		// An endpoint has no reason to redirect, and a redirect could
		// point a call somewhere the version never named.
		client: &http.Client{Transport: transport(opts.Outbound),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		procClient: &http.Client{Transport: transport(nil)},
		gpus:       newGPUAllocator(opts.GPUs),
		deps:       map[Ref]*deployment{},
		current:    map[string]string{},
		builtins:   map[string]Builtin{},
	}, nil
}

// RegisterBuiltin makes a Go algorithm available to versions with runtime
// "builtin" under name. Registering a name twice is an error.
func (m *Manager) RegisterBuiltin(name string, b Builtin) error {
	if b.Func == nil {
		return fmt.Errorf("builtin %q: Func is nil", name)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.builtins[name]; ok {
		return fmt.Errorf("builtin %q is already registered", name)
	}
	m.builtins[name] = b
	return nil
}

// Builtins lists the registered builtin names, sorted.
func (m *Manager) Builtins() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	names := make([]string, 0, len(m.builtins))
	for n := range m.builtins {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Apply validates v and starts it, replacing a running version of the
// same id and version whose definition differs (an identical one is left
// alone). The version becomes its algorithm's current one. Apply returns
// once instances are starting, not ready: Instances tells their progress,
// and calls made meanwhile wait for the first ready instance. Errors are
// *FieldError for a bad definition or package, ErrContainerRuntime, or
// others for I/O failures.
func (m *Manager) Apply(ctx context.Context, v Version) error {
	if err := v.Validate(); err != nil {
		return err
	}
	if v.Runtime == RuntimeContainer && m.opts.Containers == nil {
		return ErrContainerRuntime
	}
	v.Endpoints = slices.Clone(v.Endpoints)
	m.lifecycle.Lock()
	defer m.lifecycle.Unlock()
	ref := Ref{ID: v.AlgorithmID, Version: v.Version}
	m.mu.RLock()
	old := m.deps[ref]
	m.mu.RUnlock()
	if old != nil && reflect.DeepEqual(old.v, v) {
		m.mu.Lock()
		m.current[v.AlgorithmID] = v.Version
		m.mu.Unlock()
		return nil
	}
	if v.Runtime == RuntimeContainer {
		// Before the running definition is stopped: a refused one (an
		// impossible GPU request) leaves the version as it was, and an
		// accepted one updates its objects in place.
		if err := m.opts.Containers.Deploy(ctx, v); err != nil {
			return err
		}
	}
	if old != nil {
		// Stop first: the new definition may need the same GPUs, and
		// both would share metric series.
		m.mu.Lock()
		delete(m.deps, ref)
		m.mu.Unlock()
		if err := m.stopDeployment(ctx, old, false, false); err != nil {
			return err
		}
		if old.v.Runtime == RuntimeContainer && v.Runtime != RuntimeContainer {
			if err := m.opts.Containers.Remove(ctx, ref); err != nil {
				return fmt.Errorf("stopping %s: %w", old.v.ref(), err)
			}
		}
	}
	d, err := m.build(ctx, v)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.deps[ref] = d
	m.current[v.AlgorithmID] = v.Version
	m.mu.Unlock()
	m.log.InfoContext(ctx, "algorithm version applied", "algorithm", v.AlgorithmID, "version", v.Version, "runtime", v.Runtime, "instances", len(d.insts))
	return nil
}

// CheckContainer asks the container runtime whether it could run v (a
// *FieldError when not), without deploying anything. Versions of other
// runtimes, and any version when no container runtime is configured, pass.
func (m *Manager) CheckContainer(ctx context.Context, v Version) error {
	if v.Runtime != RuntimeContainer || m.opts.Containers == nil {
		return nil
	}
	return m.opts.Containers.Check(ctx, v)
}

// build creates the deployment and starts its runtime.
func (m *Manager) build(ctx context.Context, v Version) (*deployment, error) {
	d := &deployment{
		m:         m,
		v:         v,
		timeout:   v.Timeout.Std(),
		readyCh:   make(chan struct{}),
		duration:  m.metrics.duration.WithLabelValues(v.AlgorithmID, v.Version),
		batchSize: m.metrics.batchSize.WithLabelValues(v.AlgorithmID, v.Version),
		stopRT:    func() {},
	}
	if d.timeout == 0 {
		d.timeout = m.opts.DefaultTimeout
	}
	if v.Sticky != "" {
		d.sticky = strings.Split(v.Sticky, ".")
	}
	base := httpBase{client: m.client, maxResp: m.opts.MaxResponseBytes, idempotent: v.Idempotent}
	if v.Runtime == RuntimeProcess || v.Runtime == RuntimeContainer {
		// The platform made both: the outbound policy, which may refuse
		// a cluster's private addresses, is for endpoints others run.
		base.client = m.procClient
	}
	switch v.protocol() {
	case "":
		d.proto = builtinProto{}
	case ProtocolTianshuV1:
		d.proto = &tianshuV1{httpBase: base, healthPath: healthPathOf(&v)}
	case ProtocolOIPV2:
		d.proto = newOIP(base, &v)
		if v.Serving != nil {
			d.proto = newServingProto(base, &v, m.opts.MaxImageBytes, m.metrics.tensors)
		}
	case ProtocolHTTPMapped:
		p, err := newMapped(base, &v, m.opts.MaxImageBytes)
		if err != nil {
			return nil, err
		}
		d.proto = p
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	switch v.Runtime {
	case RuntimeBuiltin:
		name := v.Package
		if name == "" {
			name = v.AlgorithmID
		}
		m.mu.RLock()
		b, ok := m.builtins[name]
		m.mu.RUnlock()
		if !ok {
			d.cancel()
			return nil, &FieldError{Field: "package", Msg: fmt.Sprintf("no builtin algorithm %q is registered", name)}
		}
		in := d.newInstance("0", "")
		in.builtin = &b
		d.insts = []*instance{in}
		in.setStatus(StatusReady, "")
	case RuntimeEndpoint:
		for i, e := range v.Endpoints {
			u, _ := url.Parse(e)
			if err := m.opts.Outbound.CheckURL(u); err != nil {
				d.cancel()
				return nil, &FieldError{Field: fmt.Sprintf("endpoints[%d]", i), Msg: err.Error()}
			}
			d.insts = append(d.insts, d.newInstance(e, strings.TrimSuffix(e, "/")))
		}
		for _, in := range d.insts {
			d.wg.Add(1)
			go d.watchEndpoint(in)
		}
	case RuntimeContainer:
		// Apply deployed it. One instance: the runtime's service, which balances over the
		// replicas that pass their readiness probes.
		url := m.opts.Containers.URL(Ref{ID: v.AlgorithmID, Version: v.Version})
		in := d.newInstance("service", url)
		d.insts = []*instance{in}
		d.wg.Add(2)
		go d.watchEndpoint(in)
		go d.reconcileContainer()
	case RuntimeProcess:
		spec, gpus, cleanup, err := m.prepareProcess(ctx, d)
		if err != nil {
			d.cancel()
			return nil, err
		}
		d.stopRT = cleanup
		for i := range v.replicas() {
			in := d.newInstance(itoa(i), "")
			in.logs = newLogRing(200, m.now)
			in.logs.secrets = in.secrets
			d.insts = append(d.insts, in)
		}
		for i, in := range d.insts {
			d.wg.Add(1)
			go d.supervise(in, spec, gpus[i])
		}
	}
	if v.Batch.Max > 1 {
		wait := v.Batch.Wait.Std()
		if wait <= 0 {
			wait = 5 * time.Millisecond
		}
		d.batcher = newBatcher(d, v.Batch.Max, wait)
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.batcher.run()
		}()
	}
	return d, nil
}

// reconcileContainer deploys a container version again every
// ReconcileInterval until it stops, so objects edited or deleted by hand
// come back to the definition.
func (d *deployment) reconcileContainer() {
	defer d.wg.Done()
	t := time.NewTicker(d.m.opts.ReconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-d.ctx.Done():
			return
		}
		// Not while an Apply or Stop runs: a replaced definition must not
		// be deployed again after its successor. They hold the lock
		// while they cancel d.ctx, so the check below sees it.
		if !d.m.lifecycle.TryLock() {
			continue
		}
		if d.ctx.Err() == nil {
			if err := d.m.opts.Containers.Deploy(d.ctx, d.v); err != nil && d.ctx.Err() == nil {
				d.m.log.Warn("container version reconcile failed", "algorithm", d.v.AlgorithmID, "version", d.v.Version, "err", err)
			}
		}
		d.m.lifecycle.Unlock()
	}
}

// containerStatus reads the replicas of a container version into in and
// returns the cluster's reason for missing ones ("" when none).
func (d *deployment) containerStatus(in *instance) string {
	ctx, cancel := context.WithTimeout(d.ctx, min(d.m.opts.HealthInterval, 5*time.Second))
	defer cancel()
	st, err := d.m.opts.Containers.Status(ctx, Ref{ID: d.v.AlgorithmID, Version: d.v.Version})
	if err != nil {
		if d.ctx.Err() == nil {
			d.m.log.Debug("container version status failed", "algorithm", d.v.AlgorithmID, "version", d.v.Version, "err", err)
		}
		return ""
	}
	in.mu.Lock()
	in.replicas = &st
	in.mu.Unlock()
	if st.Desired == 0 && d.v.ScaleToZero && st.Message == "" {
		return "scaled to zero: no running task calls this version"
	}
	return st.Message
}

// healthPathOf is the version's health path: its own, else the
// protocol's ("" for http-mapped: no check).
func healthPathOf(v *Version) string {
	if v.HealthPath != "" {
		return v.HealthPath
	}
	if v.Serving != nil {
		return servingHealthPath
	}
	switch v.protocol() {
	case ProtocolTianshuV1:
		return TianshuHealthPath
	case ProtocolOIPV2:
		return newOIP(httpBase{}, v).healthPath
	}
	return ""
}

// watchEndpoint health-checks one endpoint until the version stops: ready
// after a passing check, unhealthy after two failures in a row (or the
// first, while starting).
func (d *deployment) watchEndpoint(in *instance) {
	defer d.wg.Done()
	t := time.NewTicker(d.m.opts.HealthInterval)
	defer t.Stop()
	fails := 0
	for {
		ctx, cancel := context.WithTimeout(d.ctx, min(d.m.opts.HealthInterval, 5*time.Second))
		err := d.proto.health(ctx, in)
		cancel()
		if d.ctx.Err() != nil {
			in.setStatus(StatusStopped, "")
			return
		}
		var why string
		if err != nil {
			why = "health check: " + err.Error()
		}
		if d.v.Runtime == RuntimeContainer {
			// The cluster knows why replicas are missing (an image that
			// cannot be pulled), which says more than a failed check.
			if msg := d.containerStatus(in); msg != "" {
				why = msg
			}
		}
		switch {
		case err == nil || errors.Is(err, errNoHealthCheck):
			fails = 0
			in.setStatus(StatusReady, "")
		default:
			fails++
			if fails >= 2 || in.statusOf() == StatusStarting {
				in.setStatus(StatusUnhealthy, why)
			}
		}
		select {
		case <-t.C:
		case <-d.ctx.Done():
			in.setStatus(StatusStopped, "")
			return
		}
	}
}

// Stop stops a version (or, when ref.Version is empty, every version of
// the algorithm): new calls fail with ErrUnknownAlgorithm, processes are
// terminated (their process groups killed after a grace period), and
// Stop returns when they are gone or ctx ends. Stopping what is not
// running is not an error.
func (m *Manager) Stop(ctx context.Context, ref Ref) error {
	return m.stop(ctx, ref, true)
}

// stop stops what Stop does; removeContainers also removes container
// versions from their cluster.
func (m *Manager) stop(ctx context.Context, ref Ref, removeContainers bool) error {
	m.lifecycle.Lock()
	defer m.lifecycle.Unlock()
	var stop []*deployment
	m.mu.Lock()
	for r, d := range m.deps {
		if r.ID == ref.ID && (ref.Version == "" || r.Version == ref.Version) {
			stop = append(stop, d)
			delete(m.deps, r)
		}
	}
	if cur, ok := m.current[ref.ID]; ok && (ref.Version == "" || cur == ref.Version) {
		delete(m.current, ref.ID)
	}
	m.mu.Unlock()
	var errs []error
	for _, d := range stop {
		if err := m.stopDeployment(ctx, d, true, removeContainers); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close stops every version this process runs. Container versions keep
// running in their cluster: a platform that restarts (a rolling update of
// its own pods) finds them there and takes them over; Stop removes them.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.RLock()
	ids := map[string]bool{}
	for r := range m.deps {
		ids[r.ID] = true
	}
	m.mu.RUnlock()
	var errs []error
	for id := range ids {
		errs = append(errs, m.stop(ctx, Ref{ID: id}, false))
	}
	return errors.Join(errs...)
}

func (m *Manager) stopDeployment(ctx context.Context, d *deployment, forget, removeContainer bool) error {
	d.cancel()
	done := make(chan struct{})
	go func() {
		d.wg.Wait()
		d.stopRT()
		if c, ok := d.proto.(io.Closer); ok {
			_ = c.Close()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("stopping %s: %w", d.v.ref(), ctx.Err())
	}
	for _, in := range d.insts {
		in.setStatus(StatusStopped, "")
	}
	// A replaced container version is updated in place by the next
	// Deploy; a stopped one goes.
	if forget && removeContainer && d.v.Runtime == RuntimeContainer {
		if err := m.opts.Containers.Remove(ctx, Ref{ID: d.v.AlgorithmID, Version: d.v.Version}); err != nil {
			return fmt.Errorf("stopping %s: %w", d.v.ref(), err)
		}
	}
	if forget {
		for _, in := range d.insts {
			m.metrics.forget(d.v.AlgorithmID, d.v.Version, in.id)
		}
		m.metrics.forgetVersion(d.v.AlgorithmID, d.v.Version)
	}
	m.log.InfoContext(ctx, "algorithm version stopped", "algorithm", d.v.AlgorithmID, "version", d.v.Version)
	return nil
}

// lookup finds the deployment for ref; an empty version means the
// algorithm's current one.
func (m *Manager) lookup(ref Ref) (*deployment, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if ref.Version == "" {
		ref.Version = m.current[ref.ID]
	}
	d, ok := m.deps[ref]
	if !ok {
		if ref.Version == "" {
			return nil, fmt.Errorf("%w %q: no version is running", ErrUnknownAlgorithm, ref.ID)
		}
		return nil, fmt.Errorf("%w %q version %q: not running", ErrUnknownAlgorithm, ref.ID, ref.Version)
	}
	return d, nil
}

// Invoke calls a running version with inputs (images as media.Image, []byte or
// media.Encoded values) and returns its outputs. Failures are *InvokeError
// values wrapping the cause (ErrNoInstance, ErrInputTooLarge,
// ErrBadResponse, *RemoteError, context errors, ...); an unknown
// reference wraps ErrUnknownAlgorithm.
func (m *Manager) Invoke(ctx context.Context, ref Ref, inputs map[string]any) (map[string]any, error) {
	d, err := m.lookup(ref)
	if err != nil {
		return nil, err
	}
	return d.invoke(ctx, inputs)
}

// Scale runs a running container version that scales to zero on no
// replica (in use false) or on its Replicas; other versions are left as
// they are. An unknown reference wraps ErrUnknownAlgorithm.
func (m *Manager) Scale(ctx context.Context, ref Ref, inUse bool) error {
	d, err := m.lookup(ref)
	if err != nil {
		return err
	}
	if !d.v.ScaleToZero || d.v.Runtime != RuntimeContainer || m.opts.Containers == nil {
		return nil
	}
	n := 0
	if inUse {
		n = d.v.replicas()
	}
	return m.opts.Containers.Scale(ctx, ref, n)
}

// PruneContainers removes the cluster objects of container versions this
// platform deployed that wanted does not hold and this manager does not
// run: those stopped or deleted while no process with the runtime ran. It
// lists the cluster before calling wanted, so a version deployed meanwhile
// is not seen, and one deployed before is already wanted.
func (m *Manager) PruneContainers(ctx context.Context, wanted func(context.Context) (map[Ref]bool, error)) ([]Ref, error) {
	if m.opts.Containers == nil {
		return nil, nil
	}
	deployed, err := m.opts.Containers.Deployed(ctx)
	if err != nil || len(deployed) == 0 {
		return nil, err
	}
	want, err := wanted(ctx)
	if err != nil {
		return nil, err
	}
	var removed []Ref
	var errs []error
	for _, r := range deployed {
		m.mu.RLock()
		_, running := m.deps[r]
		m.mu.RUnlock()
		if want[r] || running {
			continue
		}
		if err := m.opts.Containers.Remove(ctx, r); err != nil {
			errs = append(errs, err)
			continue
		}
		m.log.Info("container version pruned", "algorithm", r.ID, "version", r.Version)
		removed = append(removed, r)
	}
	return removed, errors.Join(errs...)
}

// Contract returns a copy of a running version's contract; an unknown
// reference wraps ErrUnknownAlgorithm. Versions that are registered but
// not running are unknown here; the caller answers those from its store.
func (m *Manager) Contract(ref Ref) (*Contract, error) {
	d, err := m.lookup(ref)
	if err != nil {
		return nil, err
	}
	return d.v.Contract.clone(), nil
}

// Version returns the definition a running version was applied with.
func (m *Manager) Version(ref Ref) (Version, error) {
	d, err := m.lookup(ref)
	if err != nil {
		return Version{}, err
	}
	return d.v, nil
}

// Instances reports the instances of a running version (every running
// version of the algorithm when ref.Version is empty), with recent log
// lines for process instances.
func (m *Manager) Instances(ref Ref) ([]InstanceStatus, error) {
	m.mu.RLock()
	var ds []*deployment
	for r, d := range m.deps {
		if r.ID == ref.ID && (ref.Version == "" || r.Version == ref.Version) {
			ds = append(ds, d)
		}
	}
	m.mu.RUnlock()
	if len(ds) == 0 {
		return nil, fmt.Errorf("%w %q: not running", ErrUnknownAlgorithm, ref.ID)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].v.Version < ds[j].v.Version })
	var out []InstanceStatus
	for _, d := range ds {
		for _, in := range d.insts {
			out = append(out, in.snapshot(d.v.AlgorithmID, d.v.Version))
		}
	}
	return out, nil
}
