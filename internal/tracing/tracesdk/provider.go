// Package tracesdk turns tracing on: Tianshu's own light tracer provider
// (span.go) with its head sampler and tail span processor, the OTLP
// exporters' clients (gRPC or HTTP), and the ring of recent traces
// DescribeTrace reads.
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
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/tianshu-ai/tianshu/internal/telemetry"
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

// Tracing is one process's tracing: nil provider when it is off.
type Tracing struct {
	provider *provider
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
	var client otlptrace.Client
	if cfg.Endpoint != "" {
		switch cfg.Protocol {
		case "http":
			client = otlptracehttp.NewClient(otlptracehttp.WithEndpointURL(httpTracesURL(cfg.Endpoint)))
		default:
			client = otlptracegrpc.NewClient(otlptracegrpc.WithEndpointURL(cfg.Endpoint))
		}
		if err := client.Start(context.Background()); err != nil {
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
	proc := newTail(client, protoResource(o.Service, o.Instance), recent, o.Logger, o.Registerer)
	if recent != nil {
		recent.register(o.Registerer)
	}
	return &Tracing{provider: &provider{tail: proc, ratio: cfg.SampleRatio}, recent: recent}, nil
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
	if t == nil || t.provider == nil {
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
	if t == nil || t.provider == nil {
		return nil
	}
	return t.provider.tail.ForceFlush(ctx)
}

// Shutdown exports what is queued and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.provider == nil {
		return nil
	}
	return t.provider.tail.Shutdown(ctx)
}
