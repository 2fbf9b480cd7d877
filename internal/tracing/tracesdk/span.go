package tracesdk

import (
	"context"
	"reflect"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/tianshu-ai/tianshu/internal/tracing"
)

// Tianshu records its own spans instead of the OpenTelemetry SDK's: a
// span is one small struct holding what the ring of recent traces and the
// OTLP export read (ids, name, kind, times, attributes, error events,
// status), ended into the tail processor as it is. The SDK's span keeps
// far more (limits, links, a snapshot made at End, its processors'
// registry) and cost about 6 µs and 1.3 KB of garbage per span in
// BenchmarkMessageSpans, which is what a recorded message paid per node.
// The export uses the OTLP exporters' own clients (otlptrace.Client) with
// the protocol's types, so what a collector receives is unchanged.

// provider is the tracer provider of a Tracing that is on.
type provider struct {
	embedded.TracerProvider
	tail  *tail
	ratio float64
}

// Tracer returns the tracer named name (the spans' instrumentation scope).
func (p *provider) Tracer(name string, _ ...trace.TracerOption) trace.Tracer {
	return &tracer{p: p, scope: name}
}

type tracer struct {
	embedded.Tracer
	p     *provider
	scope string
}

// SampleNew implements tracing.HeadSampler.
func (t *tracer) SampleNew(id trace.TraceID) bool { return tracing.Sampled(id, t.p.ratio) }

// Start implements trace.Tracer. The trace is decided at its head: a new
// trace by its id and the ratio (tracing.Sampled), a continued one as its
// parent was (a remote parent's flag included), so all spans of a trace
// agree; a span marked tracing.KeyForce (a failure in a sampled-out
// trace, made after the fact) is recorded whatever the decision. A
// sampled-out span records nothing: it only carries its ids.
func (t *tracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	cfg := trace.NewSpanStartConfig(opts...)
	var psc trace.SpanContext
	if !cfg.NewRoot() {
		psc = trace.SpanContextFromContext(ctx)
	}
	var tid trace.TraceID
	var sid trace.SpanID
	if ptid, psid, ok := tracing.PresetIDs(ctx); ok && (!psc.IsValid() || ptid == psc.TraceID()) {
		tid, sid = ptid, psid
	} else {
		if psc.IsValid() {
			tid = psc.TraceID()
		} else {
			tid = tracing.NewTraceID()
		}
		sid = tracing.NewSpanID()
	}
	sampled := tracing.Sampled(tid, t.p.ratio)
	if psc.IsValid() {
		sampled = psc.IsSampled()
	}
	attrs := cfg.Attributes()
	if !sampled && !hasForce(attrs) {
		sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceState: psc.TraceState()})
		s := unrecorded{sc: sc, p: t.p}
		return trace.ContextWithSpan(ctx, s), s
	}
	s := &span{t: t, name: name, kind: cfg.SpanKind(), parent: psc, attrs: attrs,
		sc: trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, TraceState: psc.TraceState()})}
	if s.start = cfg.Timestamp(); s.start.IsZero() {
		s.start = time.Now()
	}
	return trace.ContextWithSpan(ctx, s), s
}

func hasForce(attrs []attribute.KeyValue) bool {
	for _, kv := range attrs {
		if kv.Key == tracing.KeyForce {
			return true
		}
	}
	return false
}

// unrecorded is a sampled-out span: its context and its provider (where
// tracing.End makes the span of its failure), nothing else.
type unrecorded struct {
	noop.Span
	sc trace.SpanContext
	p  *provider
}

func (u unrecorded) SpanContext() trace.SpanContext { return u.sc }

func (u unrecorded) TracerProvider() trace.TracerProvider { return u.p }

// span is a recorded span. Its fields are set under mu until End; after
// End only the tail processor, the ring and the exporter read them.
type span struct {
	embedded.Span
	t      *tracer
	sc     trace.SpanContext
	parent trace.SpanContext
	kind   trace.SpanKind

	mu         sync.Mutex
	name       string
	start, end time.Time
	attrs      []attribute.KeyValue
	events     []event
	status     codes.Code
	desc       string
	ended      bool
}

// event is a span event (a recorded error is one named "exception").
type event struct {
	name  string
	time  time.Time
	attrs []attribute.KeyValue
}

// Attribute keys of a recorded error, the OpenTelemetry semantic
// conventions' (what the SDK's RecordError writes).
const (
	keyExceptionType    = attribute.Key("exception.type")
	keyExceptionMessage = attribute.Key("exception.message")
)

func (s *span) SpanContext() trace.SpanContext { return s.sc }

func (s *span) IsRecording() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.ended
}

// End ends the span and hands it to the tail processor; a second End does
// nothing.
func (s *span) End(opts ...trace.SpanEndOption) {
	end := time.Time{}
	if len(opts) > 0 {
		cfg := trace.NewSpanEndConfig(opts...)
		end = cfg.Timestamp()
	}
	if end.IsZero() {
		end = time.Now()
	}
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended, s.end = true, end
	s.mu.Unlock()
	s.t.p.tail.onEnd(s)
}

func (s *span) AddEvent(name string, opts ...trace.EventOption) {
	cfg := trace.NewEventConfig(opts...)
	s.addEvent(event{name: name, time: cfg.Timestamp(), attrs: cfg.Attributes()})
}

func (s *span) addEvent(e event) {
	if e.time.IsZero() {
		e.time = time.Now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended && len(s.events) < maxEvents {
		s.events = append(s.events, e)
	}
}

// maxEvents bounds a span's events (the SDK's default limit is 128).
const maxEvents = 32

// AddLink is accepted and not recorded: Tianshu's spans link nothing.
func (s *span) AddLink(trace.Link) {}

func (s *span) RecordError(err error, opts ...trace.EventOption) {
	if err == nil {
		return
	}
	cfg := trace.NewEventConfig(opts...)
	attrs := append([]attribute.KeyValue{keyExceptionType.String(typeName(err)), keyExceptionMessage.String(err.Error())}, cfg.Attributes()...)
	s.addEvent(event{name: "exception", time: cfg.Timestamp(), attrs: attrs})
}

// SetStatus follows the API's rules: Ok is final, Error replaces Unset,
// and only Error keeps a description.
func (s *span) SetStatus(code codes.Code, desc string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || s.status > code {
		return
	}
	if code != codes.Error {
		desc = ""
	}
	s.status, s.desc = code, desc
}

func (s *span) SetName(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.name = name
	}
}

// SetAttributes adds kv; a key set again keeps its last value when the
// span is read (attributes()).
func (s *span) SetAttributes(kv ...attribute.KeyValue) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended && len(s.attrs)+len(kv) <= maxAttributes {
		s.attrs = append(s.attrs, kv...)
	}
}

// maxAttributes bounds a span's attributes (the SDK's default limit is 128).
const maxAttributes = 128

func (s *span) TracerProvider() trace.TracerProvider { return s.t.p }

// attributes are the span's attributes, each key once with its last value
// (call after End).
func (s *span) attributes() []attribute.KeyValue {
	a := s.attrs
	for i := 1; i < len(a); i++ {
		for j := range i {
			if a[j].Key == a[i].Key {
				return dedupe(a)
			}
		}
	}
	return a
}

func dedupe(a []attribute.KeyValue) []attribute.KeyValue {
	out := make([]attribute.KeyValue, 0, len(a))
	at := make(map[attribute.Key]int, len(a))
	for _, kv := range a {
		if i, ok := at[kv.Key]; ok {
			out[i] = kv
			continue
		}
		at[kv.Key] = len(out)
		out = append(out, kv)
	}
	return out
}

func (s *span) attr(k attribute.Key) (attribute.Value, bool) {
	for i := len(s.attrs) - 1; i >= 0; i-- {
		if s.attrs[i].Key == k {
			return s.attrs[i].Value, true
		}
	}
	return attribute.Value{}, false
}

// root says whether the span is its process's root of the trace: no
// parent, or a parent in another process.
func (s *span) root() bool { return !s.parent.IsValid() || s.parent.IsRemote() }

// typeName names err's type as the SDK's RecordError does: package path
// and name, or the type's text for an unnamed one (a pointer).
func typeName(err error) string {
	t := reflect.TypeOf(err)
	if t.PkgPath() == "" && t.Name() == "" {
		return t.String()
	}
	return t.PkgPath() + "." + t.Name()
}
