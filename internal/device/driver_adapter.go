package device

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	adapterv1 "github.com/tianshu-ai/tianshu/api/adapter/v1"
	"github.com/tianshu-ai/tianshu/internal/execpolicy"
	"github.com/tianshu-ai/tianshu/internal/netpolicy"
	"github.com/tianshu-ai/tianshu/internal/tracing"
)

// adapterDriver runs an out-of-process vendor adapter (api/adapter/v1,
// docs/device-adapter.md): it starts the adapter's command with
// TIANSHU_ADAPTER_ADDR naming a unix socket in a private temp dir, waits for
// Health, opens the device's stream, health-checks the adapter while it
// runs, and restarts it (with the stream's backoff) when it exits or stops
// answering. One adapter process per open device.
//
// Address: passed to the adapter as is.
// Options: command (required: a program under the exec policy's allowed
// directories, run with a clean environment, a directory of its own, the
// policy's limits and user), args (list of strings), env (list of
// "KEY=value" strings or {"name": KEY, "value": value, "secret": true}
// objects; the device center keeps a secret entry's value write-only and
// sealed), start_timeout (default 15s), health_interval (default 5s);
// every other option is passed to the adapter in Device.options.
type adapterDriver struct{}

func init() { Register("adapter", adapterDriver{}) }

// EnvAdapterAddr is the environment variable holding the address an adapter
// must serve its gRPC service on, as unix:///path/to/socket.
const EnvAdapterAddr = "TIANSHU_ADAPTER_ADDR"

var adapterOwnOptions = []Option{
	{Name: "command", Type: "string", Required: true, PlatformAdmin: true, Description: "The adapter executable, under the exec policy's allowed directories."},
	{Name: "args", Type: "strings", Description: "Its arguments, one a line."},
	{Name: "env", Type: "strings", Description: "Extra environment, KEY=value one a line."},
	{Name: "start_timeout", Type: "duration", Default: "15s", Description: "How long the adapter may take to answer Health (100ms to 5m)."},
	{Name: "health_interval", Type: "duration", Default: "5s", Description: "How often Health is called while streaming (100ms to 5m)."},
}

func (adapterDriver) Spec() DriverSpec {
	return DriverSpec{Description: "Runs a vendor's out-of-process adapter (docs/device-adapter.md); other options are passed to it.",
		Fields:  []Option{address("Passed to the adapter as is (host:port, a path, …)."), fieldUsername, fieldPassword, fieldFps, fieldWidth},
		Options: adapterOwnOptions, OpenOptions: true, PlatformAdmin: true}
}

func (adapterDriver) Validate(cfg Config) error {
	cmd, err := cfg.optString("command", "")
	if err != nil {
		return err
	}
	if cmd == "" {
		return fieldErr("Options.command", "required: the adapter executable")
	}
	if _, err := cfg.optStrings("args"); err != nil {
		return err
	}
	if _, err := adapterEnv(cfg); err != nil {
		return err
	}
	if _, err := cfg.optDuration("start_timeout", 15*time.Second, 100*time.Millisecond, 5*time.Minute); err != nil {
		return err
	}
	if _, err := cfg.optDuration("health_interval", 5*time.Second, 100*time.Millisecond, 5*time.Minute); err != nil {
		return err
	}
	_, err = adapterDevice(cfg)
	return err
}

// adapterEnv returns the env option as KEY=value strings. An entry is a
// "KEY=value" string or an object {"name", "value", "secret"}.
func adapterEnv(cfg Config) ([]string, error) {
	v, ok := cfg.Options["env"]
	if !ok || v == nil {
		return nil, nil
	}
	var list []any
	switch l := v.(type) {
	case []any:
		list = l
	case []string:
		for _, s := range l {
			list = append(list, s)
		}
	default:
		return nil, fieldErr("Options.env", "must be a list of KEY=value strings or {name, value, secret} objects")
	}
	out := make([]string, 0, len(list))
	for i, e := range list {
		var k, val string
		switch x := e.(type) {
		case string:
			var ok bool
			if k, val, ok = strings.Cut(x, "="); !ok {
				k = ""
			}
		case map[string]any:
			for key := range x {
				if key != "name" && key != "value" && key != "secret" {
					return nil, fieldErr(fmt.Sprintf("Options.env[%d].%s", i, key), "unknown field (known: name, value, secret)")
				}
			}
			k, _ = x["name"].(string)
			val, _ = x["value"].(string)
			if s, ok := x["secret"]; ok {
				if _, isBool := s.(bool); !isBool {
					return nil, fieldErr(fmt.Sprintf("Options.env[%d].secret", i), "must be a boolean")
				}
			}
		default:
			return nil, fieldErr(fmt.Sprintf("Options.env[%d]", i), "must be a KEY=value string or a {name, value, secret} object")
		}
		if k == "" || k == EnvAdapterAddr || strings.Contains(k, "=") {
			return nil, fieldErr(fmt.Sprintf("Options.env[%d]", i), "entries must be KEY=value (and not %s)", EnvAdapterAddr)
		}
		out = append(out, k+"="+val)
	}
	return out, nil
}

// check refuses a command outside the exec policy's allowed directories.
func (adapterDriver) check(env *Env, cfg Config) (Config, error) {
	command, _ := cfg.optString("command", "")
	if _, err := env.Exec.Resolve(command); err != nil {
		return cfg, fieldErr("Options.command", "%v", err)
	}
	return cfg, nil
}

// adapterDevice is the Device message for cfg, less the driver's own options.
func adapterDevice(cfg Config) (*adapterv1.Device, error) {
	opts := map[string]any{}
	for k, v := range cfg.Options {
		own := false
		for _, o := range adapterOwnOptions {
			own = own || k == o.Name
		}
		if !own {
			opts[k] = v
		}
	}
	st, err := structpb.NewStruct(opts)
	if err != nil {
		return nil, fieldErr("Options", "cannot pass to the adapter: %v", err)
	}
	addr, user, pass := cfg.credentials()
	return &adapterv1.Device{Id: cfg.ID, Address: addr, Username: user, Password: pass,
		Options: st, Fps: cfg.FPS, Width: int32(cfg.Width)}, nil
}

// adapterProc is one running adapter process and its client.
type adapterProc struct {
	cmd    *exec.Cmd
	child  *execpolicy.Child
	conn   *grpc.ClientConn
	client adapterv1.AdapterClient
	tail   *tailBuffer
	exited chan struct{} // closed when the process has exited
	werr   error
	health *adapterv1.HealthResponse
}

// startAdapter starts the adapter and waits until Health says serving.
// The adapter gets only the device's env entries and its socket's
// address: the socket lies in the directory of its own the exec policy
// makes (owned by the children's user), removed when it stops.
func startAdapter(ctx context.Context, env *Env, cfg Config) (*adapterProc, error) {
	if err := checkAdapterAddress(ctx, env.Outbound, cfg.Address); err != nil {
		return nil, err
	}
	command, _ := cfg.optString("command", "")
	bin, err := env.Exec.Resolve(command)
	if err != nil {
		return nil, fieldErr("Options.command", "%v", err)
	}
	args, _ := cfg.optStrings("args")
	extra, _ := adapterEnv(cfg)
	startTimeout, _ := cfg.optDuration("start_timeout", 15*time.Second, 100*time.Millisecond, 5*time.Minute)
	child, err := env.Exec.Command(context.Background(), execpolicy.Spec{Path: bin, Args: args})
	if err != nil {
		return nil, statusErr(ReasonProcess, err)
	}
	sock := filepath.Join(child.Home, "adapter.sock")
	child.Cmd.Env = append(child.Cmd.Env, extra...)
	child.Cmd.Env = append(child.Cmd.Env, EnvAdapterAddr+"=unix://"+sock)
	p := &adapterProc{cmd: child.Cmd, child: child, tail: newTailBuffer(16, 4096), exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.tail, p.tail
	p.cmd.WaitDelay = 3 * time.Second
	if err := child.Start(); err != nil {
		child.Cleanup()
		return nil, statusErrf(ReasonProcess, "start adapter %s: %w", command, err)
	}
	go func() { p.werr = p.cmd.Wait(); close(p.exited) }()
	// Calls made inside a trace carry its traceparent in their metadata.
	p.conn, err = grpc.NewClient("unix://"+sock, append(tracing.GRPCClientOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))...)
	if err != nil {
		p.stop()
		return nil, statusErr(ReasonProcess, err)
	}
	p.client = adapterv1.NewAdapterClient(p.conn)
	deadline := time.Now().Add(startTimeout)
	for {
		hctx, cancel := context.WithTimeout(ctx, time.Second)
		h, err := p.client.Health(hctx, &adapterv1.HealthRequest{})
		cancel()
		if err == nil && h.GetServing() {
			p.health = h
			return p, nil
		}
		select {
		case <-p.exited:
			p.stop()
			return nil, p.exitErr("adapter exited during start")
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, statusErrf(ReasonTimeout, "adapter not serving after %v (last: %v): %s", startTimeout, err, orNone(p.tail.String()))
		}
	}
}

func (p *adapterProc) exitErr(what string) error {
	// The stream's fail and Probe mask the device's secrets in this text
	// (an adapter may print its environment).
	return statusErrf(ReasonProcess, "%s (%v): %s", what, p.werr, orNone(strings.TrimSpace(p.tail.String())))
}

// stop closes the connection and kills the adapter's process group.
func (p *adapterProc) stop() {
	if p.conn != nil {
		_ = p.conn.Close()
	}
	select {
	case <-p.exited:
	default:
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(2 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.exited
		}
	}
	p.child.Cleanup()
}

// rpcErr turns a gRPC failure into a StatusError.
func rpcErr(what string, err error) error {
	if s, ok := status.FromError(err); ok {
		return statusErrf(ReasonBadResponse, "%s: %s: %s", what, s.Code(), s.Message())
	}
	return statusErrf(ReasonError, "%s: %v", what, err)
}

func (adapterDriver) Probe(ctx context.Context, env *Env, cfg Config) (ProbeResult, error) {
	dev, err := adapterDevice(cfg)
	if err != nil {
		return ProbeResult{}, err
	}
	p, err := startAdapter(ctx, env, cfg)
	if err != nil {
		return ProbeResult{}, err
	}
	defer p.stop()
	r, err := p.client.Probe(ctx, &adapterv1.ProbeRequest{Device: dev})
	if err != nil {
		return ProbeResult{}, rpcErr("adapter Probe", err)
	}
	info := r.GetInfo().AsMap()
	info["adapter_vendor"], info["adapter_version"] = p.health.GetVendor(), p.health.GetVersion()
	res := ProbeResult{Online: r.GetOnline(), Info: info, Snapshot: r.GetSnapshot()}
	if !r.GetOnline() {
		reason := r.GetReason()
		if reason == "" {
			reason = ReasonError
		}
		return res, statusErrf(reason, "adapter: %s", orNone(r.GetError()))
	}
	return res, nil
}

func (adapterDriver) Open(_ context.Context, env *Env, cfg Config, sink Sink) (Source, error) {
	dev, err := adapterDevice(cfg)
	if err != nil {
		return nil, err
	}
	interval, _ := cfg.optDuration("health_interval", 5*time.Second, 100*time.Millisecond, 5*time.Minute)
	return startStream(env, cfg, sink, func(ctx context.Context, em *emitter) error {
		p, err := startAdapter(ctx, env, cfg)
		if err != nil {
			return err
		}
		pid := p.cmd.Process.Pid
		em.process(pid, true)
		defer em.process(pid, false)
		defer p.stop()
		ctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		go func() {
			select {
			case <-p.exited:
				cancel(p.exitErr("adapter exited"))
			case <-ctx.Done():
			}
		}()
		go func() {
			failures := 0
			for {
				select {
				case <-ctx.Done():
					return
				case <-env.Clock.After(interval):
				}
				hctx, hcancel := context.WithTimeout(ctx, max(interval, time.Second))
				h, err := p.client.Health(hctx, &adapterv1.HealthRequest{})
				hcancel()
				if err == nil && h.GetServing() {
					failures = 0
					continue
				}
				if failures++; failures >= 3 {
					cancel(statusErrf(ReasonTimeout, "adapter failed 3 health checks: %v", err))
					return
				}
			}
		}()
		stream, err := p.client.OpenStream(ctx, &adapterv1.OpenStreamRequest{Device: dev})
		if err != nil {
			return rpcErr("adapter OpenStream", err)
		}
		var reported error // the adapter's last trouble report, kept if it then ends the stream
		for {
			m, err := stream.Recv()
			if err != nil {
				if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
					return cause
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if errors.Is(err, io.EOF) {
					if reported != nil {
						return reported
					}
					return statusErrf(ReasonStreamEnded, "adapter ended the stream")
				}
				return rpcErr("adapter stream", err)
			}
			switch k := m.GetKind().(type) {
			case *adapterv1.StreamMessage_Frame:
				f := k.Frame
				fr := Frame{Image: f.GetJpeg(), Pixels: f.GetPixels(), Format: PixelFormat(f.GetPixelFormat()),
					Width: int(f.GetWidth()), Height: int(f.GetHeight())}
				if f.GetTimeUnixNano() != 0 {
					fr.Time = time.Unix(0, f.GetTimeUnixNano())
				}
				if fr.Pixels == nil {
					fr.Format = ""
				}
				em.frame(fr)
			case *adapterv1.StreamMessage_Event:
				e := k.Event
				ev := Event{Type: e.GetType(), Data: e.GetData().AsMap(), Snapshot: e.GetSnapshot()}
				if e.GetTimeUnixNano() != 0 {
					ev.Time = time.Unix(0, e.GetTimeUnixNano())
				}
				em.event(ev)
			case *adapterv1.StreamMessage_Status:
				s := k.Status
				if State(s.GetState()) == StateOnline {
					reported = nil
					em.online()
				} else {
					reason := s.GetReason()
					if reason == "" {
						reason = ReasonError
					}
					reported = statusErrf(reason, "adapter: %s", orNone(s.GetMessage()))
					em.status(State(s.GetState()), reason, s.GetMessage())
				}
			default:
				return statusErrf(ReasonBadResponse, "adapter sent an unknown message %T", k)
			}
		}
	}), nil
}

// checkAdapterAddress checks the address an adapter is handed, which the
// adapter connects to by itself: as a URL with a host, a host:port, or a
// bare IP address or host name. The port is the URL's (or its scheme's
// default) when known. A name that does not resolve may mean something
// to the adapter alone (a serial number), and passes; other free-form
// addresses are the adapter's business. The adapter resolves names again,
// the DNS-rebinding gap of every child process.
func checkAdapterAddress(ctx context.Context, p *netpolicy.Policy, address string) error {
	if p == nil || address == "" {
		return nil
	}
	var err error
	if u, perr := url.Parse(address); perr == nil && u.Host != "" {
		if err = p.CheckResolved(ctx, u); err != nil && !errors.Is(err, netpolicy.ErrRefused) && u.Port() == "" {
			// A scheme without a default port: check the host alone.
			err = p.CheckHost(ctx, u.Hostname(), 0)
		}
	} else if host, port, serr := net.SplitHostPort(address); serr == nil {
		n, _ := strconv.ParseUint(port, 10, 16)
		err = p.CheckHost(ctx, host, uint16(n))
	} else if !strings.ContainsAny(address, " /\\:@") {
		err = p.CheckHost(ctx, address, 0)
	} else if a, aerr := netip.ParseAddr(address); aerr == nil {
		err = p.Check(netip.AddrPortFrom(a, 0))
	}
	if errors.Is(err, netpolicy.ErrRefused) {
		return statusErr(ReasonPolicy, err)
	}
	return nil
}
