package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/tianshu-ai/tianshu/internal/api/apiconfig"
	"github.com/tianshu-ai/tianshu/internal/api/tc3"
	redactpkg "github.com/tianshu-ai/tianshu/internal/redact"
	"github.com/tianshu-ai/tianshu/internal/telemetry"
	"github.com/tianshu-ai/tianshu/internal/tracing"
)

// ErrKeyNotFound is wrapped by KeyResolver errors for unknown SecretIds.
var ErrKeyNotFound = errors.New("api: SecretId not found")

// Config configures the gateway. It is defined in the leaf package
// apiconfig, with its flags and validation, so that the root configuration
// can nest it without importing the gateway.
type Config = apiconfig.Config

// DefaultConfig returns the gateway's defaults.
func DefaultConfig() Config { return apiconfig.Default() }

// Gateway serves the action API at POST /.
type Gateway struct {
	tracer   trace.Tracer // nil: tracing is off
	cfg      Config
	reg      *Registry
	keys     KeyResolver
	sessions SessionResolver
	authz    Authorizer
	audit    Auditor
	limiter  RateLimiter
	failures FailureCounter
	replays  ReplayCache
	log      *slog.Logger
	now      func() time.Time
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// oks and latencies hold each action label's metric children, bound
	// once (label -> child), so that a request does not hash its labels.
	oks, latencies sync.Map
	authFail       failureGate
	// gates bound the calls running at once, per action class.
	gates gates
	// secureCookies marks session cookies Secure even over plain HTTP (a
	// TLS-terminating proxy in front; the public URL is https).
	secureCookies bool
}

// GatewayOptions are the gateway's collaborators.
type GatewayOptions struct {
	Keys     KeyResolver
	Sessions SessionResolver // nil: people cannot call (only keys)
	// Authorizer resolves callers' role bindings; nil: each app's Role in
	// its own project is its one binding.
	Authorizer Authorizer
	Auditor    Auditor     // nil: nothing is audited
	Limiter    RateLimiter // nil: no rate limits
	// Failures counts failed authentications per source address and per
	// SecretId (cfg.AuthFailures); nil: they are not limited.
	Failures FailureCounter
	// Replays remembers accepted signatures; nil accepts a signature any
	// number of times within the window (benchmarks, tests).
	Replays    ReplayCache
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
	// SecureCookies marks the session cookie Secure on every response, for
	// a platform served over https behind a proxy.
	SecureCookies bool
	// Tracer records a span per action call (continuing the request's
	// traceparent); nil: tracing is off.
	Tracer trace.TracerProvider
}

// NewGateway returns a gateway over reg.
func NewGateway(cfg Config, reg *Registry, o GatewayOptions) *Gateway {
	g := &Gateway{cfg: cfg, reg: reg, keys: o.Keys, sessions: o.Sessions, authz: o.Authorizer, audit: o.Auditor, limiter: o.Limiter, failures: o.Failures, replays: o.Replays, log: o.Logger, now: o.Now,
		secureCookies: o.SecureCookies, tracer: tracing.Tracer(o.Tracer, "tianshu/api")}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.now == nil {
		g.now = time.Now
	}
	g.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tianshu_api_requests_total",
		Help: "Action API requests by action and result code (OK for success).",
	}, []string{"action", "code"})
	g.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tianshu_api_request_duration_seconds",
		Help:    "Action API latency by action, from the first byte read to the response written.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	}, []string{"action"})
	g.requests = telemetry.MustRegister(o.Registerer, g.requests)
	g.latency = telemetry.MustRegister(o.Registerer, g.latency)
	g.gates = newGates(cfg, o.Registerer)
	return g
}

// Registry returns the gateway's registry.
func (g *Gateway) Registry() *Registry { return g.reg }

// ServeHTTP implements the action API endpoint.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := g.now()
	// The body must arrive within BodyReadTimeout (a network deadline, on
	// the real clock). Servers that cannot set one (ErrNotSupported) keep
	// their own timeouts.
	if g.cfg.BodyReadTimeout > 0 {
		rc := http.NewResponseController(w)
		if rc.SetReadDeadline(time.Now().Add(g.cfg.BodyReadTimeout)) == nil {
			r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
		}
	}
	c := &Caller{RequestID: newRequestID(), SourceIP: sourceIP(r)}
	r = r.WithContext(telemetry.WithRequestID(r.Context(), c.RequestID))
	var span trace.Span
	if g.tracer != nil {
		var ctx context.Context
		ctx, span = g.tracer.Start(tracing.Remote(r.Context(), r.Header.Get("Traceparent")), "api.action", trace.WithSpanKind(trace.SpanKindServer))
		r = r.WithContext(ctx)
	}
	resp, action, err := g.serve(r, c)
	if span != nil {
		defer endActionSpan(span, c, action, err)
	}
	code := "OK"
	if err != nil {
		e, ok := AsError(err)
		if !ok {
			if e, ok = FaultError(err, c.RequestID); ok {
				g.log.WarnContext(r.Context(), "action failed: a backend cannot serve", "action", action, "code", e.Code, "request_id", c.RequestID, "app", c.AppID, "err", err)
			} else {
				g.log.ErrorContext(r.Context(), "action failed", "action", action, "request_id", c.RequestID, "app", c.AppID, "err", err)
				e = Errorf(InternalError, "internal error; quote RequestId %s", c.RequestID)
			}
		}
		code = string(e.Code)
		writeError(w, c.RequestID, e)
	} else {
		g.setSessionCookie(w, r, resp)
		writeResponse(w, c.RequestID, resp)
	}
	label := action
	if _, known := g.reg.Lookup(action); !known {
		label = "unknown" // bounded metric cardinality for junk action names
	}
	d := g.now().Sub(start)
	if code == "OK" {
		g.okCounter(label).Inc()
	} else {
		g.requests.WithLabelValues(label, code).Inc()
	}
	g.latencyOf(label).Observe(d.Seconds())
	// The access log is at info: when the level is above, its arguments
	// are not even built.
	if g.log.Enabled(r.Context(), slog.LevelInfo) {
		g.log.InfoContext(r.Context(), "action served", "action", label, "code", code, "request_id", c.RequestID, "app", c.AppID, "user", c.UserName, "duration_ms", float64(d.Microseconds())/1000)
	}
}

// endActionSpan names the call's span for its action and ends it with the
// call's project (so DescribeTrace shows it to that project) and result.
func endActionSpan(span trace.Span, c *Caller, action string, err error) {
	span.SetName("api " + action)
	span.SetAttributes(tracing.KeyAction.String(action), attribute.String("tianshu.request_id", c.RequestID))
	if p := c.ActedProject(); p != "" {
		span.SetAttributes(tracing.KeyProject.String(p))
	}
	tracing.End(span, err)
}

// okCounter returns label's requests counter for code OK, bound on the
// label's first success (so that a series appears only once it counts).
// Labels are bounded: registered action names and "unknown".
func (g *Gateway) okCounter(label string) prometheus.Counter {
	if m, ok := g.oks.Load(label); ok {
		return m.(prometheus.Counter)
	}
	m, _ := g.oks.LoadOrStore(label, g.requests.WithLabelValues(label, "OK"))
	return m.(prometheus.Counter)
}

// latencyOf returns label's latency histogram, bound on first use.
func (g *Gateway) latencyOf(label string) prometheus.Observer {
	if m, ok := g.latencies.Load(label); ok {
		return m.(prometheus.Observer)
	}
	m, _ := g.latencies.LoadOrStore(label, g.latency.WithLabelValues(label))
	return m.(prometheus.Observer)
}

// newRequestID returns a random (version 4) UUID, as uuid.NewString does,
// with one allocation instead of two.
func newRequestID() string {
	var u uuid.UUID
	if _, err := rand.Read(u[:]); err != nil {
		return uuid.NewString()
	}
	u[6] = (u[6] & 0x0f) | 0x40 // version 4
	u[8] = (u[8] & 0x3f) | 0x80 // variant RFC 4122
	return u.String()
}

// deadlineBody lifts the body's read deadline once the whole body has
// been read, so that the deadline bounds the body only and nothing the
// connection reads later (the server's check for a client hanging up
// during a long action, the next request) runs under it.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	// Only a body read to its end lifts it: after a timeout the server
	// must not wait for the rest while it discards it.
	if err == io.EOF && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// serve authenticates, authorizes, decodes and runs one call. A panic in
// a handler becomes an InternalError for that call, not a dropped
// connection.
func (g *Gateway) serve(r *http.Request, c *Caller) (resp any, action string, err error) {
	defer func() {
		if p := recover(); p != nil {
			g.log.Error("action panicked", "action", action, "request_id", c.RequestID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			resp, err = nil, Errorf(InternalError, "internal error; quote RequestId %s", c.RequestID)
		}
	}()
	return g.serveAction(r, c)
}

func (g *Gateway) serveAction(r *http.Request, c *Caller) (any, string, error) {
	action := r.Header.Get("X-Tc-Action") // canonical form: Get does not allocate
	c.Action = action
	if r.Method != http.MethodPost {
		return nil, action, Errorf(UnsupportedProtocol, "method %s: the action API takes POST with a JSON body", r.Method)
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/json" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return nil, action, Errorf(UnsupportedProtocol, "Content-Type %q: want application/json", ct)
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, g.cfg.MaxBodyBytes))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, action, Errorf(RequestSizeLimitExceeded, "body: larger than %d bytes", g.cfg.MaxBodyBytes)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, action, Errorf(InvalidParameter, "body: not received within %s", g.cfg.BodyReadTimeout)
		}
		return nil, action, Errorf(InvalidParameter, "body: %v", err)
	}
	if action == "" {
		return nil, action, Missing("X-TC-Action")
	}
	a, ok := g.reg.Lookup(action)
	if !ok {
		return nil, action, Errorf(InvalidAction, "X-TC-Action: no action named %q", truncate(action, 64))
	}
	if v := r.Header.Get("X-Tc-Version"); v != "" && v != Version {
		return nil, action, Errorf(NoSuchVersion, "X-TC-Version: %q is not served; use %s", truncate(v, 32), Version)
	}
	if a.Public {
		release, err := g.gates.of(a).acquire(r.Context())
		if err != nil {
			return nil, action, err
		}
		defer release()
		resp, err := a.call(r.Context(), c, body)
		g.record(r.Context(), a, c, body, err)
		return resp, action, err
	}
	if err := g.checkAuthHold(r.Context(), r, c); err != nil {
		return nil, action, err
	}
	cred, err := g.authenticate(r, a, body, c)
	if err != nil {
		g.countAuthFailure(r.Context(), r, c, err)
		g.recordAuthFailure(r, a, c, err)
		return nil, action, err
	}
	if err := g.limit(r.Context(), a, c, cred); err != nil {
		return nil, action, err
	}
	// The class's slot is taken once the caller is known and within its
	// rate (a flood of bad signatures or one runaway key does not take
	// the slots of others) and held until the action returns.
	release, err := g.gates.of(a).acquire(r.Context())
	if err != nil {
		return nil, action, err
	}
	defer release()
	if a.Self {
		if c.UserID == "" {
			err := Errorf(AuthFailureUnauthorizedOperation, "%s acts on the calling person's own account: call it with a session from Login, not an app's key", a.Name)
			g.record(r.Context(), a, c, body, err)
			return nil, action, err
		}
	} else if err := g.authorize(r.Context(), a, c); err != nil {
		g.record(r.Context(), a, c, body, err)
		return nil, action, err
	}
	resp, err := g.callAudited(r.Context(), a, c, body)
	return resp, action, err
}

// callAudited calls an authorized action and records its event. An
// audited action's success event is bound to the call's context when the
// auditor can write it in the action's own transaction (TxAuditor); it is
// written there when the action names its resource before its change
// commits (modifications and deletions do; creations learn their id at
// the insert). Otherwise, on failure, or when the call's event changed
// after it was written (say, a create named its resource later), the
// event is recorded after the call, before the answer, as for any call.
func (g *Gateway) callAudited(ctx context.Context, a *Action, c *Caller, body []byte) (any, error) {
	ta, ok := g.audit.(TxAuditor)
	if !ok || !a.Audit {
		resp, err := a.call(ctx, c, body)
		g.record(ctx, a, c, body, err)
		return resp, err
	}
	var inTx AuditEvent
	tctx, written := ta.WithEvent(ctx, func() (AuditEvent, bool) {
		if c.Resource() == "" {
			return AuditEvent{}, false
		}
		inTx = g.event(a, c, body, nil)
		return inTx, true
	})
	resp, err := a.call(tctx, c, body)
	if err == nil && written() {
		now := inTx // the request's part (Detail) cannot have changed
		now.ProjectID, now.Actor, now.Resource = c.ActedProject(), c.Actor(), c.Resource()
		if now == inTx {
			return resp, nil
		}
	}
	g.record(ctx, a, c, body, err)
	return resp, err
}

// authorize resolves the caller's grants and runs the pre-check: does any
// role of the caller, in any project, grant the action? The decision for
// one project is taken where the project becomes known (scopeProject for
// ProjectId fields, Caller.Sees for resources named by id).
func (g *Gateway) authorize(ctx context.Context, a *Action, c *Caller) error {
	if g.authz != nil {
		gr, err := g.authz.Grants(ctx, c)
		if err != nil {
			return err
		}
		c.grants = gr
	}
	if c.MayRun(a) {
		return nil
	}
	if c.grants == nil {
		return Errorf(AuthFailureUnauthorizedOperation, "role %q does not grant %s (needed by %s)", c.Role, a.Permission, a.Name)
	}
	return Errorf(AuthFailureUnauthorizedOperation, "%s holds no role that grants %s (permission %s)", c.Actor(), a.Name, a.Permission)
}

// limit applies the caller's rate limit for the action's class, then its
// project's: an app's own limit (or the default) bounds one key, the
// project's bounds all of a project's apps together, so that a project
// does not raise its allowance by creating apps. A limiter failure (Redis
// down) lets the request through: availability of the API matters more
// than an exact limit, and the failure is logged.
func (g *Gateway) limit(ctx context.Context, a *Action, c *Caller, cred Credential) error {
	if g.limiter == nil {
		return nil
	}
	rate := cred.ReadRPS
	if rate == 0 {
		rate = g.cfg.DefaultReadRPS
	}
	if a.Permission.Access == Write {
		rate = cred.WriteRPS
		if rate == 0 {
			rate = g.cfg.DefaultWriteRPS
		}
	}
	burst := cred.Burst
	if burst == 0 {
		burst = g.cfg.DefaultBurst
	}
	if rate > 0 { // the names are built only for a limit that applies
		who := "app " + cred.AppID
		key := "app:" + cred.AppID
		if c.UserID != "" {
			who, key = "user "+c.UserName, "user:"+c.UserID
		}
		if err := g.allow(ctx, who, key+":"+string(a.Permission.Access), string(a.Permission.Access)+" ", rate, burst); err != nil {
			return err
		}
	}
	// A person's request is charged to its project once its body is
	// decoded and the project it acts on known (Caller.chargeProject).
	if c.UserID != "" {
		c.charge = g.chargeProject
		return nil
	}
	return g.chargeProject(ctx, c.ProjectID)
}

// chargeProject takes one request from the project's budget, which all
// its apps and people share; "" is none.
func (g *Gateway) chargeProject(ctx context.Context, projectID string) error {
	if projectID == "" || g.cfg.ProjectRPS <= 0 {
		return nil
	}
	return g.allow(ctx, "project "+projectID, "project:"+projectID, "", g.cfg.ProjectRPS, g.cfg.ProjectBurst)
}

// allow takes one request from the bucket key (rate per second, burst;
// rate 0 is unlimited, burst 0 two seconds' worth); who and class name it
// in the refusal.
func (g *Gateway) allow(ctx context.Context, who, key, class string, rate float64, burst int) error {
	if rate <= 0 {
		return nil
	}
	if burst == 0 {
		burst = max(1, int(2*rate))
	}
	ok, retry, err := g.limiter.Allow(ctx, key, rate, burst)
	if err != nil {
		g.log.WarnContext(ctx, "rate limiter unavailable", "caller", who, "err", err)
		return nil
	}
	if !ok {
		return Errorf(RequestLimitExceeded, "%s exceeded %g %srequests/s (burst %d); retry after %d ms",
			who, rate, class, burst, retry.Milliseconds()+1)
	}
	return nil
}

// authenticate finds who calls: an app by its TC3 signature, or a person
// by the session cookie (when there is no Authorization header).
func (g *Gateway) authenticate(r *http.Request, a *Action, body []byte, c *Caller) (Credential, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		if ck, err := r.Cookie(SessionCookie); err == nil && ck.Value != "" {
			return g.authenticateSession(r, a, body, c, ck.Value)
		}
		return Credential{}, Errorf(AuthFailureInvalidAuthorization, "Authorization: required (TC3-HMAC-SHA256), or the session cookie from Login")
	}
	auth, err := c.authorization(r)
	if err != nil {
		return Credential{}, Errorf(AuthFailureInvalidAuthorization, "Authorization: %v", err)
	}
	// Signed calls name the version they were written for (the official
	// SDKs always send it), so that a change of version cannot silently
	// change what an old signature means.
	if r.Header.Get("X-Tc-Version") == "" {
		return Credential{}, Missing("X-TC-Version")
	}
	if !auth.Signs("content-type") || !auth.Signs("host") {
		return Credential{}, Errorf(AuthFailureInvalidAuthorization, "SignedHeaders %q: must include content-type and host", truncate(strings.Join(auth.SignedHeaders, ";"), 64))
	}
	if !g.hostServed(r.Host) {
		return Credential{}, Errorf(AuthFailureInvalidAuthorization, "Host %q: signed requests are served at %s (api.signed_hosts)", truncate(r.Host, 64), strings.Join(g.cfg.SignedHosts, ", "))
	}
	if !scopeServiceOK(auth.Service, r.Host) {
		return Credential{}, Errorf(AuthFailureSignatureFailure, "credential scope %q: service %q is not %q", truncate(auth.Scope(), 64), truncate(auth.Service, 32), Service)
	}
	ts, err := strconv.ParseInt(r.Header.Get("X-Tc-Timestamp"), 10, 64)
	if err != nil {
		return Credential{}, Errorf(AuthFailureInvalidAuthorization, "X-TC-Timestamp: want Unix seconds")
	}
	if skew := g.now().Sub(time.Unix(ts, 0)); skew > g.cfg.SignatureWindow || skew < -g.cfg.SignatureWindow {
		return Credential{}, Errorf(AuthFailureSignatureExpire, "X-TC-Timestamp %d is %s from the server's clock; the window is ±%s", ts, skew.Round(time.Second), g.cfg.SignatureWindow)
	}
	cred, err := g.keys.ResolveKey(r.Context(), auth.SecretID)
	if err != nil {
		if errors.Is(err, ErrKeyNotFound) {
			return Credential{}, Errorf(AuthFailureSecretIDNotFound, "SecretId %q not found", truncate(auth.SecretID, 64))
		}
		return Credential{}, err
	}
	if !tc3.Verify(r, body, auth, cred.SecretKey, ts) {
		return Credential{}, Errorf(AuthFailureSignatureFailure, "signature does not match for SecretId %s", auth.SecretID)
	}
	if cred.RequireSignedAction && !auth.Signs("x-tc-action") {
		return Credential{}, Errorf(AuthFailureInvalidAuthorization, "SignedHeaders: key %s requires x-tc-action to be signed", auth.SecretID)
	}
	if err := g.remember(r.Context(), auth, ts, r.Header.Get("X-Tc-Action")); err != nil {
		return Credential{}, err
	}
	c.AppID, c.ProjectID, c.Role, c.SecretID = cred.AppID, cred.ProjectID, cred.Role, auth.SecretID
	return cred, nil
}

// hostServed reports whether host, as the request names it and as it is
// signed, is one of api.signed_hosts (any, when none are configured). A
// configured name without a port matches that name on any port.
func (g *Gateway) hostServed(host string) bool {
	if len(g.cfg.SignedHosts) == 0 {
		return true
	}
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	for _, s := range g.cfg.SignedHosts {
		if strings.EqualFold(s, host) || strings.EqualFold(s, name) {
			return true
		}
	}
	return false
}

// scopeServiceOK reports whether a credential scope's service is one this
// server accepts: "tianshu", or the first label of the Host the request was
// sent to, which is how the official Node.js SDK names the service
// (endpoint.split(".")[0]: "127" for 127.0.0.1:8080). Host is signed, so
// the second form still binds the signature to a request aimed at this
// server under that name.
func scopeServiceOK(service, host string) bool {
	if service == Service {
		return true
	}
	first, _, _ := strings.Cut(host, ".")
	return service == first
}

// remember records an accepted signature in the replay cache until its
// timestamp leaves the window, and refuses one recorded before. When the
// cache cannot answer (Redis down, or the memory cache full of live
// signatures) the request is refused with ResourceUnavailable unless
// api.signature_replay_fail_open is set: letting it through would accept
// replays for as long as the outage lasts.
//
// When X-TC-Action is not signed (the official SDKs' default), the action
// is part of the key: those SDKs sign only content-type, host, the body and
// the timestamp in seconds, so calls of two actions with the same body in
// one second share a signature, and refusing the second would break them.
// Such a signature is therefore accepted once per action: a replay is
// refused, and re-aiming it is bounded to one call of each other action
// whose request accepts the same body. Keys created with
// RequireSignedAction close that too.
func (g *Gateway) remember(ctx context.Context, auth tc3.Authorization, ts int64, action string) error {
	if g.replays == nil {
		return nil
	}
	key := auth.SecretID + ":" + auth.Signature
	if !auth.Signs("x-tc-action") {
		key += ":" + action
	}
	ttl := time.Unix(ts, 0).Add(g.cfg.SignatureWindow).Sub(g.now()) + time.Second
	fresh, err := g.replays.Remember(ctx, key, ttl)
	if err != nil {
		if g.cfg.SignatureReplayFailOpen {
			g.log.WarnContext(ctx, "replay cache unavailable; accepting the signature unchecked", "secret_id", auth.SecretID, "err", err)
			return nil
		}
		g.log.ErrorContext(ctx, "replay cache unavailable; refusing signed requests", "secret_id", auth.SecretID, "err", err)
		return Errorf(ResourceUnavailable, "signature replay check unavailable; retry shortly with a new signature")
	}
	if !fresh {
		return Errorf(AuthFailureSignatureReplayed, "signature already accepted once for SecretId %s; sign each request anew, retries included", auth.SecretID)
	}
	return nil
}

// record appends the call's audit event: for audited actions whatever
// their result, and for every action when the caller was refused
// permission, so that probing shows up whatever it probes.
func (g *Gateway) record(ctx context.Context, a *Action, c *Caller, body []byte, err error) {
	result := resultOf(err)
	if g.audit == nil || !(a.Audit || result == string(AuthFailureUnauthorizedOperation)) {
		return
	}
	g.append(ctx, g.event(a, c, body, err))
}

// event is the audit event of a call with result err.
func (g *Gateway) event(a *Action, c *Caller, body []byte, err error) AuditEvent {
	return AuditEvent{
		ProjectID: c.ActedProject(), Actor: c.Actor(), Action: a.Name, Resource: c.Resource(),
		Result: resultOf(err), SourceIP: c.SourceIP, RequestID: c.RequestID, Detail: RedactJSON(body, 2048),
	}
}

// recordAuthFailure appends an event for a failed authentication that
// names a principal (an unknown SecretId, a bad signature, a timestamp
// outside the window), for any action; failures without one (no or a
// malformed Authorization) are only counted in the metrics. The actor is
// the SecretId presented; the source address's allowance (failureGate)
// bounds how many such events one address adds.
func (g *Gateway) recordAuthFailure(r *http.Request, a *Action, c *Caller, err error) {
	e, ok := AsError(err)
	if g.audit == nil || !ok {
		return
	}
	switch e.Code {
	case AuthFailureSecretIDNotFound, AuthFailureSignatureFailure, AuthFailureSignatureExpire, AuthFailureSignatureReplayed:
	default:
		return
	}
	auth, perr := c.authorization(r)
	if perr != nil {
		return
	}
	ok, suppressed := g.authFail.admit(c.SourceIP, g.now())
	if !ok {
		return
	}
	// The key's project, where the key exists, so that the project's
	// auditors see attempts on their keys.
	var project string
	if e.Code != AuthFailureSecretIDNotFound {
		if cred, err := g.keys.ResolveKey(r.Context(), auth.SecretID); err == nil {
			project = cred.ProjectID
		}
	}
	detail := struct {
		Message    string `json:"Message"`
		Suppressed int    `json:"Suppressed,omitempty"`
	}{e.Message, suppressed}
	b, _ := json.Marshal(detail)
	g.append(r.Context(), AuditEvent{
		ProjectID: project, Actor: "secret:" + truncate(auth.SecretID, 64), Action: a.Name,
		Result: string(e.Code), SourceIP: c.SourceIP, RequestID: c.RequestID, Detail: string(b),
	})
}

func (g *Gateway) append(ctx context.Context, ev AuditEvent) {
	// The audit write must not be cancelled by a client that hangs up.
	if aerr := g.audit.Record(context.WithoutCancel(ctx), ev); aerr != nil {
		g.log.ErrorContext(ctx, "audit record failed", "action", ev.Action, "request_id", ev.RequestID, "err", aerr)
	}
}

// resultOf is an audit event's Result for a call's error.
func resultOf(err error) string {
	if err == nil {
		return "OK"
	}
	if e, ok := AsError(err); ok {
		return string(e.Code)
	}
	if e, ok := FaultError(err, ""); ok {
		return string(e.Code)
	}
	return string(InternalError)
}

// RedactJSON returns body with the values of sensitive fields replaced,
// truncated to max bytes, for audit events and logs.
func RedactJSON(body []byte, max int) string {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	v = redact(v)
	out, _ := json.Marshal(v)
	return truncate(string(out), max)
}

// redact masks, in place, the values of sensitive fields, entries marked
// secret ({"name", "value", "secret": true}) and the userinfo of URLs in
// any string.
func redact(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if redactpkg.IsSecretEntry(x) {
			redactpkg.Entries(x)
		}
		for k, e := range x {
			if sensitive(k) {
				x[k] = redactpkg.Mask
			} else {
				x[k] = redact(e)
			}
		}
	case []any:
		for i, e := range x {
			x[i] = redact(e)
		}
	case string:
		return redactpkg.URLs(x)
	}
	return v
}

type errorBody struct {
	Code    Code   `json:"Code"`
	Message string `json:"Message"`
}

func writeError(w http.ResponseWriter, requestID string, e *Error) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	b, _ := json.Marshal(struct {
		Response struct {
			Error     errorBody `json:"Error"`
			RequestID string    `json:"RequestId"`
		} `json:"Response"`
	}{Response: struct {
		Error     errorBody `json:"Error"`
		RequestID string    `json:"RequestId"`
	}{errorBody{e.Code, e.Message}, requestID}})
	writeJSON(w, b)
}

// writeResponse writes {"Response": {...resp fields..., "RequestId": id}}.
func writeResponse(w http.ResponseWriter, requestID string, resp any) {
	out := responseBufs.Get().(*bytes.Buffer)
	defer putResponseBuf(out)
	out.Reset()
	const prefix = `{"Response":`
	out.WriteString(prefix)
	var b []byte
	var err error
	if a, ok := resp.(JSONAppender); ok {
		b, err = a.AppendJSON(out.AvailableBuffer())
		out.Write(b) // in place when it fitted: b is then the buffer's own tail
		b = out.Bytes()[len(prefix):]
	} else {
		// No HTML escaping: answers are JSON for programs, and signed URLs
		// should read as they are ("&", not "\u0026").
		e := json.NewEncoder(out)
		e.SetEscapeHTML(false)
		err = e.Encode(resp)
		b = bytes.TrimRight(out.Bytes()[len(prefix):], "\n")
	}
	if err != nil || len(b) < 2 || b[0] != '{' {
		writeError(w, requestID, Errorf(InternalError, "response encoding failed; quote RequestId %s", requestID))
		return
	}
	out.Truncate(len(prefix) + len(b) - 1) // drop the object's "}"
	if len(b) > 2 {
		out.WriteByte(',')
	}
	out.WriteString(`"RequestId":"`)
	out.WriteString(requestID)
	out.WriteString(`"}}`)
	writeJSON(w, out.Bytes())
}

// JSONAppender is a response that encodes itself, on a hot path, as
// encoding/json with HTML escaping off would encode it, without reflection
// (InvokeFlow's). The gateway calls AppendJSON instead of encoding/json.
type JSONAppender interface {
	AppendJSON(b []byte) ([]byte, error)
}

// AppendJSONString appends s quoted as a JSON string (no HTML escaping),
// for JSONAppender implementations.
func AppendJSONString(b []byte, s string) []byte { return appendString(b, s) }

// AppendJSONValue appends v as encoding/json encodes it (no HTML escaping;
// maps and lists of decoded JSON without reflection), for JSONAppender
// implementations.
func AppendJSONValue(b []byte, v any) ([]byte, error) { return appendJSON(b, v) }

// responseBufs holds answer buffers: writeJSON copies an answer into the
// connection's buffer, so one is free again once written.
var responseBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func putResponseBuf(b *bytes.Buffer) {
	if b.Cap() <= 64<<10 { // a rare huge answer is not kept
		responseBufs.Put(b)
	}
}

// jsonContentType is the Content-Type header's value, shared by every
// answer (net/http only reads it).
var jsonContentType = []string{"application/json"}

func writeJSON(w http.ResponseWriter, b []byte) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func sourceIP(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
