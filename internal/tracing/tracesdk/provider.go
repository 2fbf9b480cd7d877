// Package tracesdk turns tracing on: the OpenTelemetry SDK's tracer
// provider with Tianshu's sampler and span processor, the OTLP exporter
// (gRPC or HTTP), and the ring of recent traces DescribeTrace reads.
//
// Only the app imports it; instrumented packages see the trace API alone
// (internal/tracing), so the SDK and the exporters stay out of them.
//
// Sampling is decided per trace in two steps. The head sampler marks a
// share of traces sampled, by trace id, so every process agrees. While
// the ring of recent traces is on it records every span (the ring holds
// every trace); the tail processor then holds a trace's spans until its
// local root ends and exports them when the trace was sampled or any of
// its spans failed. With the ring off, sampled-out traces are not
// recorded at all (their cost is the nil-span path), and a failure in one
// is exported as a lone error span in its trace, under the span that
// failed: a head-sampling approximation of "keep failed traces". A trace
// that spans processes (a webhook delivery after the bus) is decided per
// process: the delivery's part follows the traceparent's sampled flag.
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
	tp     *sdktrace.TracerProvider
	recent *Recent
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
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(headSampler{ratio: sdktrace.TraceIDRatioBased(cfg.SampleRatio), recordAll: recent != nil}),
		sdktrace.WithSpanProcessor(proc),
		sdktrace.WithResource(res))
	if recent != nil {
		recent.register(o.Registerer)
	}
	return &Tracing{tp: tp, recent: recent}, nil
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
	return t.tp
}

// Recent is the ring of recent traces; nil when none is kept.
func (t *Tracing) Recent() *Recent {
	if t == nil {
		return nil
	}
	return t.recent
}

// Shutdown exports what is queued and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.tp == nil {
		return nil
	}
	return t.tp.Shutdown(ctx)
}

// headSampler marks a new trace sampled as ratio decides, and a
// continued one as its parent was (a remote parent's flag included), so
// all spans of a trace agree. With recordAll (the ring is on) it records
// the spans of sampled-out traces too, for the ring and for the tail
// processor's "keep failed traces"; without, it drops them, so a
// sampled-out message costs next to nothing, and a failure in it is
// exported as a lone error span (tracing.End, marked KeyForce).
type headSampler struct {
	ratio     sdktrace.Sampler
	recordAll bool
}

func (s headSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	psc := trace.SpanContextFromContext(p.ParentContext)
	var sampled bool
	switch {
	case psc.IsValid():
		sampled = psc.IsSampled()
	default:
		sampled = s.ratio.ShouldSample(p).Decision == sdktrace.RecordAndSample
	}
	if !sampled {
		for _, kv := range p.Attributes {
			if kv.Key == tracing.KeyForce {
				sampled = true
			}
		}
	}
	d := sdktrace.Drop
	switch {
	case sampled:
		d = sdktrace.RecordAndSample
	case s.recordAll:
		d = sdktrace.RecordOnly
	}
	return sdktrace.SamplingResult{Decision: d, Tracestate: psc.TraceState()}
}

func (s headSampler) Description() string { return "TianshuHead{" + s.ratio.Description() + "}" }
