package tracing

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// HeadSampler is what a tracer from tracesdk also implements: the head
// decision for a new trace, by its id, taken before any span is started.
// A tracer without it samples every new trace.
type HeadSampler interface {
	SampleNew(id trace.TraceID) bool
}

// Sampled is the ratio decision for trace id that every process takes
// alike: the trace id's low 63 bits below ratio's share of them (the
// OpenTelemetry SDK's TraceIDRatioBased rule).
func Sampled(id trace.TraceID, ratio float64) bool {
	switch {
	case ratio >= 1:
		return true
	case ratio <= 0:
		return false
	}
	return binary.BigEndian.Uint64(id[8:16])>>1 < uint64(ratio*(1<<63))
}

// Describer gives a root span's attributes and first children, asked
// only when the span is made: a sampled-out message that does not fail
// never builds them.
type Describer interface {
	SpanAttributes() []attribute.KeyValue
	// SpanStarted is called with the context of the root's span once it
	// is made, to record what belongs under it from its start (a source
	// read, with its own start and end times).
	SpanStarted(ctx context.Context)
}

// Root is the local root span of one message. When its trace is sampled
// it is an SDK span started at once; when not, it starts no span at all:
// it holds the message's start, its trace and span ids, and is itself the
// (unrecorded) span its context carries, so events and node errors carry
// the trace id. If something under it fails, it makes its span then, with
// the ids and start time it was given, and the failing child's span under
// it (Sub.End), both kept whatever the sampling: a sampled-out message
// costs two random numbers and a context value, and a failed one is still
// one connected trace.
//
// Its zero value is ready for Start; keep it inside the message's own
// struct so that it costs no allocation of its own.
type Root struct {
	noop.Span
	t         trace.Tracer
	name      string
	start     time.Time
	kind      trace.SpanKind
	describe  Describer
	parent    trace.SpanContext
	sc        trace.SpanContext
	mu        sync.Mutex
	span      trace.Span
	made      atomic.Bool
	recording bool
	// first is when the first pending child started (Unix ns; 0: none).
	first atomic.Int64
}

// FirstChild is when the root's first child that was not started
// (Pending) began, or now when none has: where a sampled-out message's
// source read ends, without reading the clock once more per message.
func (r *Root) FirstChild() time.Time {
	if ns := r.first.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Now()
}

// Start begins the root span named name at start, in the trace that
// traceparent (from the message, may be "") names or in a new one. It
// returns ctx carrying the span, and the span when it is recorded (nil
// when its trace is sampled out). d gives the span's attributes when it
// is made: at once when sampled, else only if something fails.
func (r *Root) Start(ctx context.Context, t trace.Tracer, traceparent, name string, start time.Time, kind trace.SpanKind, d Describer) (context.Context, trace.Span) {
	r.t, r.name, r.start, r.kind, r.describe = t, name, start, kind, d
	sampled := true
	var tid trace.TraceID
	if psc, ok := SpanContext(traceparent); ok {
		r.parent, tid, sampled = psc, psc.TraceID(), psc.IsSampled()
	} else {
		tid = NewTraceID()
		if hs, ok := t.(HeadSampler); ok {
			sampled = hs.SampleNew(tid)
		}
	}
	sid := NewSpanID()
	if sampled {
		// With the ids chosen here (tracesdk's id generator takes them),
		// so the SDK's sampler decides on the same trace id.
		r.span = r.begin(r.parentContext(ctx), tid, sid, false)
		r.recording = r.span.IsRecording()
		if r.recording {
			return trace.ContextWithSpan(ctx, r.span), r.span
		}
		// A tracer that did not record it after all: it is made again,
		// forced, if something fails.
		r.span = nil
	}
	r.sc = trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid})
	return trace.ContextWithSpan(ctx, r), nil
}

// parentContext is ctx with the span the root's is a child of: the remote
// one it arrived with, or none.
func (r *Root) parentContext(ctx context.Context) context.Context {
	if r.parent.IsValid() {
		return trace.ContextWithRemoteSpanContext(ctx, r.parent)
	}
	return ctx
}

// begin starts the SDK span under parent with ids tid and sid (handed to
// tracesdk's id generator for this span alone) and the Describer's
// attributes; forced marks it kept whatever the sampling (KeyForce).
func (r *Root) begin(parent context.Context, tid trace.TraceID, sid trace.SpanID, forced bool) trace.Span {
	opts := []trace.SpanStartOption{trace.WithTimestamp(r.start), trace.WithSpanKind(r.kind)}
	if !r.parent.IsValid() {
		opts = append(opts, trace.WithNewRoot())
	}
	if forced {
		opts = append(opts, trace.WithAttributes(KeyForce.Bool(true)))
	}
	if r.describe != nil {
		opts = append(opts, trace.WithAttributes(r.describe.SpanAttributes()...))
	}
	_, s := r.t.Start(context.WithValue(parent, idsKey{}, ids{tid, sid}), r.name, opts...)
	if r.describe != nil && s.IsRecording() {
		r.describe.SpanStarted(trace.ContextWithSpan(parent, s))
	}
	return s
}

// madeLocked returns the root's span, making it (forced) when its trace was
// sampled out; r.mu is held.
func (r *Root) madeLocked() trace.Span {
	if r.span == nil {
		r.span = r.begin(r.parentContext(context.Background()), r.sc.TraceID(), r.sc.SpanID(), true)
		r.made.Store(true)
	}
	return r.span
}

// SpanContext implements trace.Span: the ids of the root's span, made or
// not.
func (r *Root) SpanContext() trace.SpanContext {
	if r.recording {
		return r.span.SpanContext()
	}
	return r.sc
}

// Finish ends the root span, failed with err when err is not nil. A
// sampled-out root makes its span now if it failed or a child did.
func (r *Root) Finish(err error) {
	if r.recording {
		End(r.span, err)
		return
	}
	if err == nil && !r.made.Load() {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	End(r.madeLocked(), err)
}

// fail records child name, started at start, as failed with err under
// the root's span, made now if it was not.
func (r *Root) fail(name string, start time.Time, opts []trace.SpanStartOption, err error) {
	r.mu.Lock()
	parent := r.madeLocked()
	r.mu.Unlock()
	o := make([]trace.SpanStartOption, 0, len(opts)+2)
	o = append(o, opts...)
	o = append(o, trace.WithTimestamp(start), trace.WithAttributes(KeyForce.Bool(true)))
	_, s := r.t.Start(trace.ContextWithSpan(context.Background(), parent), name, o...)
	s.RecordError(err)
	s.SetStatus(codes.Error, err.Error())
	s.End()
}

// Sub is a child span as Child starts it: the SDK's span when its parent
// is recorded, or else what it would have been (name, start, options),
// made after the fact by End if it fails under a sampled-out Root.
type Sub struct {
	span   trace.Span
	parent trace.Span
	name   string
	start  time.Time
	opts   []trace.SpanStartOption
}

// Child starts a span named name under the span in ctx when that span is
// recorded; start is the time now, which a span made after the fact
// starts at. Otherwise (a sampled-out trace, or no span at all) it
// starts none and returns ctx unchanged: End makes the span then only if
// it fails. Use it only under a local parent: a remote one (a
// traceparent that came in) is never recorded here, and its first local
// span must be started.
func Child(ctx context.Context, t trace.Tracer, name string, start time.Time, opts ...trace.SpanStartOption) (context.Context, Sub) {
	parent := trace.SpanFromContext(ctx)
	if t == nil || !parent.IsRecording() {
		return ctx, Sub{parent: parent, name: name, start: start, opts: opts}
	}
	// Started now: start (just taken) is what the SDK takes itself.
	ctx, s := t.Start(ctx, name, opts...)
	return ctx, Sub{span: s}
}

// Pending is a child span under the span in ctx, from start, not
// started yet: Start starts it when its parent is recorded; else it is
// named (Named) only if it fails, for a caller that finds a span's name
// and options at a cost. It notes start as the first child's start of a
// sampled-out Root (Root.FirstChild).
func Pending(ctx context.Context, start time.Time) Sub {
	p := trace.SpanFromContext(ctx)
	if r, ok := p.(*Root); ok {
		r.first.CompareAndSwap(0, start.UnixNano())
	}
	return Sub{parent: p, start: start}
}

// ParentRecording reports whether a pending span's parent is recorded:
// it should then be started.
func (s Sub) ParentRecording() bool {
	return s.span == nil && s.parent != nil && s.parent.IsRecording()
}

// Start starts pending span s named name under its (recorded) parent,
// which ctx carries.
func (s Sub) Start(ctx context.Context, t trace.Tracer, name string, opts ...trace.SpanStartOption) (context.Context, Sub) {
	ctx, span := t.Start(ctx, name, opts...)
	return ctx, Sub{span: span}
}

// Named returns s named name with options opts, when it was not started:
// what End makes of it if it fails.
func (s Sub) Named(name string, opts ...trace.SpanStartOption) Sub {
	if s.span == nil {
		s.name, s.opts = name, opts
	}
	return s
}

// Recording says whether the span was started (its trace is sampled).
func (s Sub) Recording() bool { return s.span != nil }

// SetAttributes sets attributes on the span when it was started.
func (s Sub) SetAttributes(kv ...attribute.KeyValue) {
	if s.span != nil {
		s.span.SetAttributes(kv...)
	}
}

// End ends the span, failed with err when err is not nil. One that was
// not started is made now, if it failed: under its Root's span when the
// parent was a sampled-out Root, or else as a lone error span under its
// parent (End).
func (s Sub) End(err error) {
	switch {
	case s.span != nil:
		End(s.span, err)
	case err == nil || s.parent == nil || s.parent.IsRecording():
		// A recorded parent is its caller's to end, not this span's.
	default:
		if r, ok := s.parent.(*Root); ok {
			r.fail(s.name, s.start, s.opts, err)
			return
		}
		End(s.parent, err)
	}
}

// ids are the trace and span id a Root chose for its span, handed to
// tracesdk's id generator through the context of the span's start.
type idsKey struct{}

type ids struct {
	trace trace.TraceID
	span  trace.SpanID
}

// PresetIDs returns the ids a Root chose for the span being started in
// ctx, if any: tracesdk's id generator uses them.
func PresetIDs(ctx context.Context) (trace.TraceID, trace.SpanID, bool) {
	v, ok := ctx.Value(idsKey{}).(ids)
	return v.trace, v.span, ok
}

// NewTraceID and NewSpanID are random non-zero ids from the runtime's
// per-thread generator: no lock, no allocation.
func NewTraceID() trace.TraceID {
	var id trace.TraceID
	for !id.IsValid() {
		binary.BigEndian.PutUint64(id[:8], rand.Uint64())
		binary.BigEndian.PutUint64(id[8:], rand.Uint64())
	}
	return id
}

func NewSpanID() trace.SpanID {
	var id trace.SpanID
	for !id.IsValid() {
		binary.BigEndian.PutUint64(id[:], rand.Uint64())
	}
	return id
}
