// Package tracesdk turns tracing on: the OpenTelemetry SDK's tracer
// provider with Tianshu's sampler and span processor, the OTLP exporter
// (gRPC or HTTP), and the ring of recent traces DescribeTrace reads.
//
// Only the app imports it; instrumented packages see the trace API alone
// (internal/tracing), so the SDK and the exporters stay out of them.
//
// Sampling is decided per trace, at its head: a share of new traces is
// sampled, by trace id, so every process agrees, and a continued trace
// follows its parent's flag. A sampled-out trace records nothing: a
// task's message starts no span at all (tracing.Root), and when
// something in it fails, its root span and the failing span are made
// then, with their real start times and ids, and kept whatever the
// sampling (KeyForce). The tail processor holds a trace's spans until
// its local root ends and hands them to the ring of recent traces and the
// exporter together. A trace that spans processes (a webhook delivery
// after the bus) is decided per process: the delivery's part follows the
// traceparent's sampled flag.
package tracesdk

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/tianshu-ai/tianshu/internal/telemetry"
	"github.com/tianshu-ai/tianshu/internal/tracing"
)

// Options are the collaborators of New.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Service and Instance name this process in the spans' resource
	// (service.name, service.instance.id).
	Service, Instance string
	// Process names this process in the spans DescribeTrace shows (its
	// name and targets); default Instance.
	Process string
}

// Tracing is one process's tracing: nil Provider when it is off.
type Tracing struct {
	tp       *sdktrace.TracerProvider
	provider provider
	recent   *Recent
}

// New builds tracing for cfg. With cfg not Enabled it returns a Tracing
// whose Provider is nil, and nothing runs.
func New(cfg telemetry.TraceConfig, o Options) (*Tracing, error) {
	if !cfg.Enabled() {
		return &Tracing{}, nil
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Service == "" {
		o.Service = "tianshu"
	}
	var exp sdktrace.SpanExporter
	if cfg.Endpoint != "" {
		var err error
		ctx := context.Background()
		switch cfg.Protocol {
		case "http":
			exp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(httpTracesURL(cfg.Endpoint)))
		default:
			exp, err = otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(cfg.Endpoint))
		}
		if err != nil {
			return nil, fmt.Errorf("otel.endpoint: %w", err)
		}
	}
	var recent *Recent
	if cfg.RecentTraces > 0 {
		if o.Process == "" {
			o.Process = o.Instance
		}
		recent = NewRecent(cfg.RecentTraces, cfg.RecentBytes, o.Process)
	}
	proc := newTail(exp, recent, o.Logger, o.Registerer)
	res := resource.NewSchemaless(attribute.String("service.name", o.Service), attribute.String("service.instance.id", o.Instance))
	sampler := headSampler{ratio: cfg.SampleRatio}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sampler),
		sdktrace.WithIDGenerator(idGenerator{}),
		sdktrace.WithSpanProcessor(proc),
		sdktrace.WithResource(res))
	if recent != nil {
		recent.register(o.Registerer)
	}
	return &Tracing{tp: tp, provider: provider{tp, sampler}, recent: recent}, nil
}

// httpTracesURL adds OTLP/HTTP's default path, /v1/traces, to an
// endpoint URL without one (the exporter would post to / otherwise).
func httpTracesURL(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || strings.Trim(u.Path, "/") != "" {
		return endpoint
	}
	u.Path = "/v1/traces"
	return u.String()
}

// Provider is the tracer provider instrumented packages take; nil when
// tracing is off (they then start no span at all).
func (t *Tracing) Provider() trace.TracerProvider {
	if t == nil || t.tp == nil {
		return nil
	}
	return t.provider
}

// Recent is the ring of recent traces; nil when none is kept.
func (t *Tracing) Recent() *Recent {
	if t == nil {
		return nil
	}
	return t.recent
}

// ForceFlush exports the traces that have ended and returns once the
// exporter has.
func (t *Tracing) ForceFlush(ctx context.Context) error {
	if t == nil || t.tp == nil {
		return nil
	}
	return t.tp.ForceFlush(ctx)
}

// Shutdown exports what is queued and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.tp == nil {
		return nil
	}
	return t.tp.Shutdown(ctx)
}

// provider is the SDK's tracer provider whose tracers also take the head
// decision for a new trace before any span starts (tracing.HeadSampler).
type provider struct {
	*sdktrace.TracerProvider
	s headSampler
}

func (p provider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return tracer{p.TracerProvider.Tracer(name, opts...), p.s}
}

type tracer struct {
	trace.Tracer
	s headSampler
}

// SampleNew implements tracing.HeadSampler.
func (t tracer) SampleNew(id trace.TraceID) bool { return tracing.Sampled(id, t.s.ratio) }

// idGenerator is the SDK's: random ids, or those a tracing.Root chose for
// its span (the trace id it sampled on, the span id its events carry).
type idGenerator struct{}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if t, s, ok := tracing.PresetIDs(ctx); ok {
		return t, s
	}
	return tracing.NewTraceID(), tracing.NewSpanID()
}

func (idGenerator) NewSpanID(ctx context.Context, id trace.TraceID) trace.SpanID {
	if t, s, ok := tracing.PresetIDs(ctx); ok && t == id {
		return s
	}
	return tracing.NewSpanID()
}

// headSampler marks a new trace sampled as ratio decides (by trace id,
// tracing.Sampled), and a continued one as its parent was (a remote
// parent's flag included), so all spans of a trace agree; a span marked
// KeyForce (a failure in a sampled-out trace, made after the fact) is
// sampled whatever the trace's decision. A sampled-out span is dropped:
// not recorded at all.
type headSampler struct {
	ratio float64
}

func (s headSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	psc := trace.SpanContextFromContext(p.ParentContext)
	var sampled bool
	switch {
	case psc.IsValid():
		sampled = psc.IsSampled()
	default:
		sampled = tracing.Sampled(p.TraceID, s.ratio)
	}
	if !sampled {
		for _, kv := range p.Attributes {
			if kv.Key == tracing.KeyForce {
				sampled = true
			}
		}
	}
	d := sdktrace.Drop
	if sampled {
		d = sdktrace.RecordAndSample
	}
	return sdktrace.SamplingResult{Decision: d, Tracestate: psc.TraceState()}
}

func (s headSampler) Description() string { return fmt.Sprintf("TianshuHead{%g}", s.ratio) }
