package algorithm

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/tianshu-ai/tianshu/internal/function"
	"github.com/tianshu-ai/tianshu/internal/media"
	"github.com/tianshu-ai/tianshu/internal/redact"
	"github.com/tianshu-ai/tianshu/internal/tracing"
)

// maxAttempts bounds the tries of one call, first included.
const maxAttempts = 3

// maxRetryAfter caps how long an instance's Retry-After may delay a retry.
const maxRetryAfter = time.Second

// deployment is one applied version: its protocol client, its instances
// and, for batching versions, its batcher.
type deployment struct {
	m       *Manager
	v       Version
	proto   protocol
	insts   []*instance
	timeout time.Duration
	sticky  []string
	batcher *batcher

	duration  prometheus.Observer
	batchSize prometheus.Observer

	ctx    context.Context // canceled by Stop
	cancel context.CancelFunc
	wg     sync.WaitGroup // runtime goroutines
	stopRT func()         // runtime cleanup after goroutines end

	readyMu sync.Mutex
	readyCh chan struct{} // closed and replaced when an instance turns ready
}

func (d *deployment) notifyReady() {
	d.readyMu.Lock()
	close(d.readyCh)
	d.readyCh = make(chan struct{})
	d.readyMu.Unlock()
}

func (d *deployment) readyWait() <-chan struct{} {
	d.readyMu.Lock()
	defer d.readyMu.Unlock()
	return d.readyCh
}

// invoke is one call as the flow engine makes it.
func (d *deployment) invoke(ctx context.Context, inputs map[string]any) (out map[string]any, err error) {
	start := time.Now()
	if d.m.tracer != nil && trace.SpanContextFromContext(ctx).IsValid() {
		var span tracing.Sub
		ctx, span = d.startSpan(ctx, start)
		defer func() { span.End(err) }()
	}
	if err := d.checkInputs(inputs); err != nil {
		d.fail("", ReasonBadInput)
		return nil, d.wrap("", ReasonBadInput, err)
	}
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > d.timeout {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.timeout)
		defer cancel()
	}
	if d.batcher != nil {
		out, err = d.batcher.submit(ctx, inputs)
	} else {
		key, hasKey := d.stickyKey(inputs)
		err = d.do(ctx, key, hasKey, func(ctx context.Context, in *instance) error {
			var err error
			out, err = d.proto.infer(ctx, in, inputs)
			return err
		})
	}
	if err == nil {
		if cerr := d.v.Contract.checkOutputs(out); cerr != nil {
			d.fail("", ReasonBadResponse)
			out, err = nil, d.wrap("", ReasonBadResponse, fmt.Errorf("%w: %v", ErrBadResponse, cerr))
		}
	}
	d.duration.Observe(time.Since(start).Seconds())
	if err != nil && len(d.v.Secrets) > 0 {
		err = maskSecrets(err, d.v.secretValues())
	}
	return out, err
}

// startSpan opens the call's span. Its instance is set by do, its batch
// size by the batcher (1 without one).
// A sampled-out message's call starts none, unless it fails (tracing.Sub).
func (d *deployment) startSpan(ctx context.Context, start time.Time) (context.Context, tracing.Sub) {
	proto := d.v.Protocol
	if proto == "" {
		proto = d.v.Runtime // builtin
	}
	ctx, span := tracing.Child(ctx, d.m.tracer, "algorithm.call "+d.v.AlgorithmID, start, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(tracing.KeyAlgorithm.String(d.v.AlgorithmID+"@"+d.v.Version), tracing.KeyProtocol.String(proto)))
	if d.batcher == nil {
		span.SetAttributes(tracing.KeyBatchSize.Int(1))
	}
	return ctx, span
}

// maskedError is an error whose message shows the version's secrets
// masked; errors.Is and As still see the error it wraps.
type maskedError struct {
	err error
	msg string
}

func (e *maskedError) Error() string { return e.msg }
func (e *maskedError) Unwrap() error { return e.err }

// maskSecrets masks the values of secrets in err's message (a vendor's
// error answer may echo the header it was sent), and in the message of the
// RemoteError it wraps, which callers show on their own.
func maskSecrets(err error, secrets []string) error {
	var re *RemoteError
	if errors.As(err, &re) {
		re.Message = redact.Text(re.Message, secrets...)
	}
	msg := redact.Text(err.Error(), secrets...)
	if msg == err.Error() {
		return err
	}
	return &maskedError{err: err, msg: msg}
}

// checkInputs enforces the image size limit before anything is sent.
func (d *deployment) checkInputs(inputs map[string]any) error {
	limit := d.m.opts.MaxImageBytes
	for k, v := range inputs {
		if data, _, ok := media.AsImage(v); ok && int64(len(data)) > limit {
			return fmt.Errorf("%w: input %q is %d bytes, over the %d byte limit", ErrInputTooLarge, k, len(data), limit)
		}
	}
	return nil
}

// stickyKey reads the routing key at the version's sticky path.
func (d *deployment) stickyKey(inputs map[string]any) (string, bool) {
	if d.sticky == nil {
		return "", false
	}
	var v any = inputs
	for _, p := range d.sticky {
		m, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		if v, ok = m[p]; !ok {
			return "", false
		}
	}
	switch x := v.(type) {
	case string:
		return x, true
	case int64:
		return strconv.FormatInt(x, 10), true
	case int:
		return strconv.Itoa(x), true
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), true
	case nil:
		return "", false
	}
	return fmt.Sprint(v), true
}

// do runs attempt on a chosen instance, retrying on another (or the same,
// after a backoff) only when the failure is known to be safe to retry.
func (d *deployment) do(ctx context.Context, key string, hasKey bool, attempt func(context.Context, *instance) error) error {
	var tried [maxAttempts]*instance
	for n := 0; ; n++ {
		in, err := d.acquire(ctx, key, hasKey, tried[:n])
		if err != nil {
			reason := ReasonUnavailable
			switch {
			case errors.Is(err, context.Canceled):
				reason = ReasonCanceled
			case errors.Is(err, context.DeadlineExceeded):
				reason = ReasonTimeout
			}
			d.fail("", reason)
			return d.wrap("", reason, err)
		}
		tried[n] = in
		if sp := trace.SpanFromContext(ctx); sp.IsRecording() {
			sp.SetAttributes(tracing.KeyInstance.String(in.id))
		}
		in.outstanding.Add(1)
		in.inFlight.Inc()
		in.requests.Inc()
		err = attempt(ctx, in)
		in.outstanding.Add(-1)
		in.inFlight.Dec()
		if err == nil {
			in.br.success()
			return nil
		}
		c := d.classify(ctx, err)
		switch c.health {
		case healthOK:
			in.br.success()
		case healthBad:
			in.br.failure(d.m.now())
		default:
			in.br.release(d.m.now())
		}
		d.fail(in.id, c.reason)
		if !c.retry || n+1 >= maxAttempts {
			return d.wrap(in.id, c.reason, err)
		}
		wait := c.wait
		if wait > 0 {
			wait = wait<<n + rand.N(wait)
			var re *RemoteError
			if errors.As(err, &re) && re.RetryAfter > 0 {
				wait = min(re.RetryAfter, maxRetryAfter)
			}
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
				return d.wrap(in.id, c.reason, err)
			}
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return d.wrap(in.id, c.reason, err)
			}
		}
	}
}

func (d *deployment) fail(instance, reason string) {
	d.m.metrics.errors.WithLabelValues(d.v.AlgorithmID, d.v.Version, instance, reason).Inc()
}

func (d *deployment) wrap(instance, reason string, err error) error {
	return &InvokeError{Algorithm: d.v.AlgorithmID, Version: d.v.Version, Instance: instance, Reason: reason, Err: err}
}

const (
	healthNeutral = iota
	healthOK
	healthBad
)

type class struct {
	reason string
	retry  bool
	wait   time.Duration // base backoff before the retry
	health int           // what the failure says about the instance
}

// classify decides what a failure means: its reason, whether retrying is
// safe, and whether it counts against the instance's breaker.
func (d *deployment) classify(ctx context.Context, err error) class {
	idem := d.v.Idempotent
	var re *RemoteError
	var te *transportError
	var se *function.ScriptError
	var le *function.LimitError
	var be *builtinError
	switch {
	case ctx.Err() == context.Canceled:
		return class{reason: ReasonCanceled}
	case ctx.Err() == context.DeadlineExceeded || errors.Is(err, context.DeadlineExceeded):
		return class{reason: ReasonTimeout, health: healthBad}
	case errors.As(err, &re):
		switch {
		case re.Status == 429:
			return class{reason: ReasonStatus, retry: true, wait: 20 * time.Millisecond}
		case re.Status == 503:
			return class{reason: ReasonStatus, retry: true, wait: 20 * time.Millisecond, health: healthBad}
		case re.Status >= 500:
			return class{reason: ReasonStatus, retry: idem && (re.Status == 502 || re.Status == 504), wait: 20 * time.Millisecond, health: healthBad}
		}
		return class{reason: ReasonStatus, health: healthOK}
	case errors.As(err, &te):
		// Nothing was sent after a failed dial: try another instance at once.
		return class{reason: ReasonConnection, retry: !te.sent || idem, health: healthBad}
	case errors.Is(err, ErrBadResponse):
		return class{reason: ReasonBadResponse, retry: idem, health: healthBad}
	case errors.Is(err, ErrInputTooLarge), errors.Is(err, ErrBadInput):
		return class{reason: ReasonBadInput}
	case errors.As(err, &se), errors.As(err, &le):
		return class{reason: ReasonScript}
	case errors.As(err, &be):
		return class{reason: ReasonAlgorithm}
	}
	return class{reason: ReasonConnection, health: healthBad}
}

// acquire picks an instance and passes its breaker; while none is ready
// but some are starting it waits (bounded by ctx) for one to turn ready.
func (d *deployment) acquire(ctx context.Context, key string, hasKey bool, tried []*instance) (*instance, error) {
	for {
		wait := d.readyWait()
		now := d.m.now()
		for range len(d.insts) + 1 {
			in := d.pick(now, key, hasKey, tried)
			if in == nil {
				break
			}
			if in.br.allow(now) {
				return in, nil
			}
		}
		starting, open := 0, 0
		for _, in := range d.insts {
			switch in.statusOf() {
			case StatusStarting, StatusRestarting:
				starting++
			case StatusReady:
				open++
			}
		}
		if starting == 0 {
			if open > 0 {
				return nil, fmt.Errorf("%w: %d of %d instances ready but their circuit breakers are open", ErrNoInstance, open, len(d.insts))
			}
			return nil, fmt.Errorf("%w: %s", ErrNoInstance, d.describe())
		}
		select {
		case <-wait:
		case <-d.ctx.Done():
			return nil, ErrStopped
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (%v)", ctx.Err(), d.describe())
		}
	}
}

// describe summarises instance statuses for errors: "2 starting, 1 failed: <reason>".
func (d *deployment) describe() string {
	counts := map[string]int{}
	last := ""
	for _, in := range d.insts {
		s := in.snapshot("", "")
		counts[s.Status]++
		if s.LastError != "" {
			last = s.LastError
		}
	}
	var parts []string
	for _, s := range []string{StatusReady, StatusStarting, StatusRestarting, StatusUnhealthy, StatusFailed, StatusStopped} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	out := "instances: " + strings.Join(parts, ", ")
	if last != "" {
		out += "; last error: " + last
	}
	return out
}

// pick chooses among ready instances whose breaker could pass, preferring
// ones not tried yet: by rendezvous hash of the key when sticky, else the
// one with the fewest outstanding requests (ties broken at random).
func (d *deployment) pick(now time.Time, key string, hasKey bool, tried []*instance) *instance {
	if in := d.pickFrom(now, key, hasKey, tried); in != nil {
		return in
	}
	if len(tried) > 0 {
		return d.pickFrom(now, key, hasKey, nil)
	}
	return nil
}

func (d *deployment) pickFrom(now time.Time, key string, hasKey bool, skip []*instance) *instance {
	var best *instance
	if hasKey {
		h := fnv.New64a()
		h.Write([]byte(key))
		kh := h.Sum64()
		var bestScore uint64
		for _, in := range d.insts {
			if !in.ready.Load() || !in.br.available(now) || contains(skip, in) {
				continue
			}
			if s := mix64(kh ^ in.hash); best == nil || s > bestScore {
				best, bestScore = in, s
			}
		}
		return best
	}
	var bestN int64
	ties := 0
	for _, in := range d.insts {
		if !in.ready.Load() || !in.br.available(now) || contains(skip, in) {
			continue
		}
		n := in.outstanding.Load()
		switch {
		case best == nil || n < bestN:
			best, bestN, ties = in, n, 1
		case n == bestN:
			ties++
			if rand.N(ties) == 0 {
				best = in
			}
		}
	}
	return best
}

func contains(l []*instance, in *instance) bool {
	for _, x := range l {
		if x == in {
			return true
		}
	}
	return false
}

// mix64 is the splitmix64 finaliser, spreading xor-combined hashes.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
