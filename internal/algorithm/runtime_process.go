package algorithm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tianshu-ai/tianshu/internal/execpolicy"
)

// procSpec is how to start one replica of a process version.
type procSpec struct {
	dir        string
	command    string
	args       []string
	env        map[string]string
	secrets    map[string]string // added to env, never to the arguments
	portEnv    string
	healthPath string // empty: the port accepting connections is enough
	startup    time.Duration
	// memory is each replica's address space limit in bytes
	// (resources.addressSpaceMB), 0 for the operator's limit alone.
	memory uint64
}

// prepareProcess resolves the package to an unpacked directory, reads its
// manifest and reserves GPUs; the returned cleanup undoes both.
func (m *Manager) prepareProcess(ctx context.Context, d *deployment) (*procSpec, [][]int, func(), error) {
	v := &d.v
	var dir, model, recModel string
	var unpacked bool
	var err error
	if v.Serving != nil {
		dir, model, recModel, err = m.servingDir(ctx, v)
	} else {
		dir, unpacked, err = m.packageDir(ctx, v)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	cleanup := func() {
		if unpacked {
			_ = os.RemoveAll(dir)
		}
		if v.Serving != nil {
			_ = os.RemoveAll(filepath.Join(m.opts.WorkDir, "models", v.AlgorithmID+"@"+v.Version))
		}
	}
	man, err := readManifest(dir, m.opts.Exec, false)
	if err != nil {
		cleanup()
		return nil, nil, nil, fmt.Errorf("package %s: %w", v.Package, err)
	}
	cmd, _ := man.resolveCommand(dir, m.opts.Exec)
	if unpacked {
		// A process running as --exec.user must be able to read its package.
		if err := m.opts.Exec.Share(dir); err != nil {
			cleanup()
			return nil, nil, nil, fmt.Errorf("package %s: %w", v.Package, err)
		}
	}
	spec := &procSpec{
		dir:     dir,
		command: cmd,
		args:    man.Args,
		env:     map[string]string{},
		secrets: v.Secrets,
		portEnv: man.PortEnv,
		startup: m.opts.StartupTimeout,
	}
	if man.StartupTimeout > 0 {
		spec.startup = man.StartupTimeout.Std()
	}
	for _, kv := range m.opts.ProcessEnv {
		if k, val, ok := strings.Cut(kv, "="); ok {
			spec.env[k] = val
		}
	}
	for k, val := range man.Env {
		spec.env[k] = val
	}
	spec.env["PACKAGE_DIR"] = dir
	if v.Serving != nil {
		spec.env["MODEL_PATH"] = model
		spec.env["MODEL_NAME"] = servingModelID
		spec.env["THREADS"] = strconv.Itoa(max(v.Serving.Threads, 1))
		if recModel != "" {
			spec.env["EXTRA_MODELS"] = ocrRecModelID + "=" + recModel
		}
	}
	switch {
	case man.Health != "":
		spec.healthPath = man.Health
	default:
		spec.healthPath = healthPathOf(v)
	}
	addrMB := v.Resources.AddressSpaceMB
	if addrMB == 0 {
		addrMB = man.Resources.AddressSpaceMB
	}
	spec.memory = uint64(addrMB) << 20
	gpu := v.Resources.GPU
	if gpu == 0 {
		gpu = man.Resources.GPU
	}
	gpus := make([][]int, v.replicas())
	for i := range gpus {
		if gpus[i], err = m.gpus.alloc(gpu); err != nil {
			for _, g := range gpus[:i] {
				m.gpus.free(g, gpu)
			}
			cleanup()
			return nil, nil, nil, &FieldError{Field: "resources.gpu", Msg: err.Error()}
		}
	}
	return spec, gpus, func() {
		for _, g := range gpus {
			m.gpus.free(g, gpu)
		}
		cleanup()
	}, nil
}

// packageDir returns the unpacked package: the directory itself, or a
// fresh unpacking of a local archive or a blob under WorkDir.
func (m *Manager) packageDir(ctx context.Context, v *Version) (dir string, unpacked bool, err error) {
	if st, err := os.Stat(v.Package); err == nil && st.IsDir() {
		return v.Package, false, nil
	}
	dst := filepath.Join(m.opts.WorkDir, "packages", v.AlgorithmID+"@"+v.Version)
	if err := os.RemoveAll(dst); err != nil {
		return "", false, err
	}
	if st, err := os.Stat(v.Package); err == nil && st.Mode().IsRegular() {
		if err := UnpackFile(v.Package, dst, m.opts.PackageLimits); err != nil {
			_ = os.RemoveAll(dst)
			return "", false, fmt.Errorf("package %s: %w", v.Package, err)
		}
		return dst, true, nil
	}
	if m.opts.OpenPackage == nil {
		return "", false, &FieldError{Field: "package", Msg: fmt.Sprintf("%q is not a local package and no blob store is configured", v.Package)}
	}
	rc, err := m.opts.OpenPackage(ctx, v.Package)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", false, &FieldError{Field: "package", Msg: fmt.Sprintf("package %q not found", v.Package)}
		}
		return "", false, fmt.Errorf("package %s: %w", v.Package, err)
	}
	defer rc.Close()
	if err := Unpack(rc, dst, m.opts.PackageLimits); err != nil {
		_ = os.RemoveAll(dst)
		return "", false, fmt.Errorf("package %s: %w", v.Package, err)
	}
	return dst, true, nil
}

// servingDir returns the serving runtime's package directory and the
// model files' local paths (the recognizer's only for kind ocr): the
// version's own when they are local files, else copies of the blobs under
// WorkDir.
func (m *Manager) servingDir(ctx context.Context, v *Version) (dir, model, recModel string, err error) {
	rt, ok := LookupServingRuntime(v.Serving.Runtime)
	if !ok {
		return "", "", "", &FieldError{Field: "serving.runtime", Msg: fmt.Sprintf("unknown serving runtime %q", v.Serving.Runtime)}
	}
	if dir, err = m.servingRuntimeDir(rt); err != nil {
		return "", "", "", &FieldError{Field: "serving.runtime", Msg: err.Error()}
	}
	mdir := filepath.Join(m.opts.WorkDir, "models", v.AlgorithmID+"@"+v.Version)
	if err := os.RemoveAll(mdir); err != nil {
		return "", "", "", err
	}
	model, err = m.modelFile(ctx, v.Serving.Model, "serving.model", mdir, "model."+rt.Format)
	if err != nil {
		return "", "", "", err
	}
	if r := v.Serving.Recognition; r != nil {
		if recModel, err = m.modelFile(ctx, r.Model, "serving.recognition.model", mdir, "recognition."+rt.Format); err != nil {
			_ = os.RemoveAll(mdir)
			return "", "", "", err
		}
	}
	return dir, model, recModel, nil
}

// ServingRuntimeAvailable says whether this node can run the serving
// runtime called name: nil when it can, else an error saying why not (no
// serving directory, the runtime not installed in it, its command not
// allowed by the exec policy), the same words a version's start fails with.
func (m *Manager) ServingRuntimeAvailable(name string) error {
	rt, ok := LookupServingRuntime(name)
	if !ok {
		return fmt.Errorf("unknown serving runtime %q", name)
	}
	_, err := m.servingRuntimeDir(rt)
	return err
}

// servingRuntimeDir returns the runtime's installed package directory, or
// why it cannot run here.
func (m *Manager) servingRuntimeDir(rt ServingRuntime) (string, error) {
	if m.opts.ServingDir == "" {
		return "", errors.New("this node has no serving runtimes directory (--worker.serving-dir)")
	}
	dir := filepath.Join(m.opts.ServingDir, rt.Dir)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return "", fmt.Errorf("serving runtime %s is not installed on this node: no directory %s", rt.Name, dir)
	}
	for _, r := range rt.Requires {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(r))); err != nil {
			return "", fmt.Errorf("serving runtime %s is not installed on this node: %s has no %s (npm ci --omit=dev --ignore-scripts --prefix %s)", rt.Name, dir, r, dir)
		}
	}
	if _, err := readManifest(dir, m.opts.Exec, false); err != nil {
		return "", fmt.Errorf("serving runtime %s cannot start on this node: %v", rt.Name, err)
	}
	return dir, nil
}

// modelFile returns a model file's local path: key itself when it is a
// local file, else a copy of the blob as mdir/name.
func (m *Manager) modelFile(ctx context.Context, key, field, mdir, name string) (string, error) {
	if st, err := os.Stat(key); err == nil && st.Mode().IsRegular() {
		return key, nil
	}
	if m.opts.OpenPackage == nil {
		return "", &FieldError{Field: field, Msg: fmt.Sprintf("%q is not a local file and no blob store is configured", key)}
	}
	rc, err := m.opts.OpenPackage(ctx, key)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", &FieldError{Field: field, Msg: fmt.Sprintf("model file %q not found", key)}
		}
		return "", fmt.Errorf("model %s: %w", key, err)
	}
	defer rc.Close()
	if err := os.MkdirAll(mdir, 0o755); err != nil {
		return "", err
	}
	model := filepath.Join(mdir, name)
	f, err := os.Create(model)
	if err != nil {
		return "", err
	}
	n, err := io.Copy(f, io.LimitReader(rc, MaxModelBytes+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > MaxModelBytes {
		err = fmt.Errorf("larger than %d bytes", int64(MaxModelBytes))
	}
	if err == nil {
		// A process running as --exec.user must be able to read it.
		err = m.opts.Exec.Share(mdir)
	}
	if err != nil {
		_ = os.RemoveAll(mdir)
		return "", fmt.Errorf("model %s: %w", key, err)
	}
	return model, nil
}

// supervise runs one replica until the deployment stops: start, wait for
// health, watch, restart with exponential backoff; give up (failed) when
// the command cannot start or after MaxStartFailures quick failures.
func (d *deployment) supervise(in *instance, spec *procSpec, gpus []int) {
	defer d.wg.Done()
	opts := &d.m.opts
	failures := 0
	for attempt := 0; ; attempt++ {
		if d.ctx.Err() != nil {
			break
		}
		if attempt > 0 {
			in.mu.Lock()
			in.restarts++
			in.mu.Unlock()
			in.restartC.Inc()
			in.setStatus(StatusStarting, "")
		}
		r := d.runOnce(in, spec, gpus)
		if d.ctx.Err() != nil {
			break
		}
		if r.fatal {
			in.setStatus(StatusFailed, r.reason)
			d.m.log.Warn("algorithm process failed", "algorithm", d.v.AlgorithmID, "version", d.v.Version, "instance", in.id, "reason", r.reason)
			return
		}
		if r.readyFor >= 10*time.Second {
			failures = 0
		}
		failures++
		if failures >= opts.MaxStartFailures {
			in.setStatus(StatusFailed, fmt.Sprintf("%s (gave up after %d failed starts)", r.reason, failures))
			d.m.log.Warn("algorithm process failed", "algorithm", d.v.AlgorithmID, "version", d.v.Version, "instance", in.id, "reason", r.reason)
			return
		}
		status := StatusRestarting
		if r.unhealthy {
			status = StatusUnhealthy
		}
		in.setStatus(status, r.reason)
		d.m.log.Info("algorithm process restarting", "algorithm", d.v.AlgorithmID, "version", d.v.Version, "instance", in.id, "reason", r.reason)
		backoff := opts.RestartBackoff << min(failures-1, 16)
		if backoff > opts.MaxRestartBackoff || backoff <= 0 {
			backoff = opts.MaxRestartBackoff
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-d.ctx.Done():
			t.Stop()
		}
	}
	in.setStatus(StatusStopped, "")
}

type runResult struct {
	reason    string
	unhealthy bool
	fatal     bool
	readyFor  time.Duration
}

// runOnce starts the process once and returns when it has ended (it
// exited, failed its health checks and was killed, or the deployment
// stopped).
func (d *deployment) runOnce(in *instance, spec *procSpec, gpus []int) runResult {
	port, err := freePort()
	if err != nil {
		return runResult{reason: "no free port: " + err.Error()}
	}
	addr := "http://127.0.0.1:" + strconv.Itoa(port)
	in.addr.Store(&addr)
	env := make(map[string]string, len(spec.env)+2)
	for k, v := range spec.env {
		env[k] = v
	}
	env[spec.portEnv] = strconv.Itoa(port)
	if len(d.m.opts.GPUs) > 0 {
		ids := make([]string, len(gpus))
		for i, g := range gpus {
			ids[i] = strconv.Itoa(g)
		}
		env["CUDA_VISIBLE_DEVICES"] = strings.Join(ids, ",")
	}
	args := make([]string, len(spec.args))
	for i, a := range spec.args {
		args[i] = os.Expand(a, func(k string) string {
			if v, ok := env[k]; ok {
				return v
			}
			return "$" + k
		})
	}
	// Secrets are added after $VAR in the arguments was expanded, so that
	// none reaches the command line (readable by every local user); the
	// platform's own variables win over a secret of the same name.
	for k, v := range spec.secrets {
		if _, taken := env[k]; !taken {
			env[k] = v
		}
	}
	// Under the exec policy: only this environment (nothing of the
	// server's), a home of its own, limits, the children's user.
	envList := make([]string, 0, len(env))
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}
	child, err := d.m.opts.Exec.Command(context.Background(), execpolicy.Spec{Path: spec.command, Args: args, Env: envList,
		Dir: spec.dir, NoAddressSpaceLimit: len(gpus) > 0, AddressSpace: spec.memory})
	if err != nil {
		return runResult{reason: "cannot start " + spec.command + ": " + err.Error(), fatal: true}
	}
	defer child.Cleanup()
	cmd := child.Cmd
	stdout, stderr := in.logs.writer("stdout"), in.logs.writer("stderr")
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = 2 * time.Second
	if err := child.Start(); err != nil {
		return runResult{reason: "cannot start " + spec.command + ": " + err.Error(), fatal: true}
	}
	pid := cmd.Process.Pid
	in.mu.Lock()
	in.pid = pid
	in.gpus = gpus
	in.mu.Unlock()
	d.m.log.Debug("algorithm process started", "algorithm", d.v.AlgorithmID, "version", d.v.Version, "instance", in.id, "pid", pid, "addr", addr)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	exitReason := func(prefix string, err error) string {
		stdout.flush()
		stderr.flush()
		s := prefix + " with status 0" // a server must not end at all
		if err != nil {
			s = prefix + ": " + err.Error()
		}
		if tail := in.logs.tail("stderr", 5); tail != "" {
			s += ": " + tail
		}
		return s
	}
	check := func() error {
		ctx, cancel := context.WithTimeout(d.ctx, min(2*time.Second, spec.startup))
		defer cancel()
		if spec.healthPath == "" {
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", strings.TrimPrefix(addr, "http://"))
			if err == nil {
				c.Close()
			}
			return err
		}
		return httpHealth(ctx, &httpBase{client: d.m.procClient}, addr+spec.healthPath)
	}

	// Starting: poll health until ready, bounded by the startup timeout.
	deadline := time.NewTimer(spec.startup)
	defer deadline.Stop()
	poll := time.NewTicker(100 * time.Millisecond)
	var lastErr error = errors.New("no health check answered yet")
starting:
	for {
		select {
		case err := <-exited:
			signalGroup(pid, true)
			return runResult{reason: exitReason("exited during startup", err)}
		case <-d.ctx.Done():
			poll.Stop()
			stopProcess(pid, exited)
			return runResult{}
		case <-deadline.C:
			poll.Stop()
			stopProcess(pid, exited)
			return runResult{reason: fmt.Sprintf("not healthy within %v: %v", spec.startup, lastErr), unhealthy: true}
		case <-poll.C:
			if lastErr = check(); lastErr == nil {
				break starting
			}
		}
	}
	poll.Stop()
	if err := d.checkMetadata(addr); err != nil {
		stopProcess(pid, exited)
		return runResult{reason: err.Error(), fatal: true}
	}
	in.setStatus(StatusReady, "")
	readyAt := time.Now()
	d.m.log.Info("algorithm instance ready", "algorithm", d.v.AlgorithmID, "version", d.v.Version, "instance", in.id, "pid", pid, "addr", addr)

	// Running: health-check periodically; three failures in a row restart it.
	tick := time.NewTicker(d.m.opts.HealthInterval)
	defer tick.Stop()
	fails := 0
	for {
		select {
		case err := <-exited:
			signalGroup(pid, true) // children left in the group
			in.setStatus(StatusRestarting, "")
			return runResult{reason: exitReason("exited", err), readyFor: time.Since(readyAt)}
		case <-d.ctx.Done():
			stopProcess(pid, exited)
			return runResult{}
		case <-tick.C:
			err := check()
			if err == nil {
				fails = 0
				continue
			}
			fails++
			if fails >= 3 {
				in.setStatus(StatusUnhealthy, "health check failed 3 times: "+err.Error())
				stopProcess(pid, exited)
				return runResult{reason: "health check failed 3 times: " + err.Error(), unhealthy: true, readyFor: time.Since(readyAt)}
			}
		}
	}
}

// stopProcess asks the process group to terminate, kills it after a grace
// period, and waits for the process to be reaped.
func stopProcess(pid int, exited <-chan error) {
	signalGroup(pid, false)
	t := time.NewTimer(3 * time.Second)
	defer t.Stop()
	select {
	case <-exited:
		signalGroup(pid, true) // children left in the group
		return
	case <-t.C:
	}
	signalGroup(pid, true)
	<-exited
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before ours binds; the replica then exits and is restarted on a
// new port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// checkMetadata refuses a tianshu-v1 package whose /v1/metadata declares an
// embedding output with another dimension than the version's contract:
// the wrong model, found before any record is described with it. A package
// without metadata (optional in the protocol) is not checked here; every
// answer still is (Contract.checkOutputs).
func (d *deployment) checkMetadata(addr string) error {
	if d.v.protocol() != ProtocolTianshuV1 || !d.v.Contract.declaresDim() {
		return nil
	}
	ctx, cancel := context.WithTimeout(d.ctx, 5*time.Second)
	defer cancel()
	md, err := FetchMetadata(ctx, d.m.procClient, addr)
	if err != nil {
		d.m.log.Debug("algorithm metadata not read", "algorithm", d.v.AlgorithmID, "version", d.v.Version, "err", err)
		return nil
	}
	return d.v.Contract.checkMetadata(&md.Contract)
}
