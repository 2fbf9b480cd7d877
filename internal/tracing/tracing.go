// Package tracing is the small surface of OpenTelemetry's trace API that
// instrumented packages use: a tracer from a provider that may be nil
// (tracing off), W3C traceparent in and out of a context, and the
// attribute keys every span of a project's work carries.
//
// It imports only the trace API (go.opentelemetry.io/otel/trace), never
// the SDK or an exporter: those live in tracing/tracesdk, which only the
// app wires in, so packages that start spans stay light.
package tracing

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tianshu-ai/tianshu/internal/event"
)

// Attribute keys of Tianshu's spans. Project and task are what
// DescribeTrace checks a caller's permissions against: a span without a
// project is never shown through the action API.
const (
	KeyProject   = attribute.Key("tianshu.project")
	KeyTask      = attribute.Key("tianshu.task")
	KeyDevice    = attribute.Key("tianshu.device")
	KeyMessage   = attribute.Key("tianshu.message")
	KeyRecord    = attribute.Key("tianshu.record_id")
	KeyEvent     = attribute.Key("tianshu.event_id")
	KeyFlow      = attribute.Key("tianshu.flow")
	KeyNode      = attribute.Key("tianshu.node")
	KeyNodeKind  = attribute.Key("tianshu.node_kind")
	KeyAlgorithm = attribute.Key("tianshu.algorithm")
	KeyProtocol  = attribute.Key("tianshu.protocol")
	KeyInstance  = attribute.Key("tianshu.instance")
	KeyBatchSize = attribute.Key("tianshu.batch_size")
	KeySource    = attribute.Key("tianshu.source")
	KeyAction    = attribute.Key("tianshu.action")
	KeySub       = attribute.Key("tianshu.subscription")
	// KeyForce marks a span the sampler records whatever its trace's
	// decision: the error span End makes for a failure in a sampled-out
	// trace.
	KeyForce = attribute.Key("tianshu.force")
)

// Tracer returns tp's tracer for the instrumented package name, or nil
// when tp is nil: callers test for nil and skip every span, which is what
// makes tracing cost nothing while it is off.
func Tracer(tp trace.TracerProvider, name string) trace.Tracer {
	if tp == nil {
		return nil
	}
	return tp.Tracer(name)
}

// Remote returns ctx carrying the span context of traceparent as a remote
// parent, so the next span started joins that trace. A missing or
// malformed traceparent leaves ctx as it is (a new trace starts).
func Remote(ctx context.Context, traceparent string) context.Context {
	sc, ok := SpanContext(traceparent)
	if !ok {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}

// SpanContext parses a W3C traceparent into a remote span context.
func SpanContext(traceparent string) (trace.SpanContext, bool) {
	tp, ok := event.ParseTraceParent(traceparent)
	if !ok {
		return trace.SpanContext{}, false
	}
	tid, err1 := trace.TraceIDFromHex(tp.TraceID)
	sid, err2 := trace.SpanIDFromHex(tp.SpanID)
	if err1 != nil || err2 != nil {
		return trace.SpanContext{}, false
	}
	var flags trace.TraceFlags
	if tp.Sampled {
		flags = trace.FlagsSampled
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags, Remote: true}), true
}

// TraceParent formats the span in ctx as a W3C traceparent; "" when ctx
// holds no valid span context.
func TraceParent(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	return event.TraceParent{TraceID: sc.TraceID().String(), SpanID: sc.SpanID().String(), Sampled: sc.IsSampled()}.String()
}

// End ends span, marking it failed with err's message when err is not
// nil. A span that is not recorded (its trace was sampled out) gets a
// child span "error" that is, so a failure is exported whatever the
// sampling: its trace id and parent name where it happened; a sampled-out
// Root makes its own span instead (Root.Finish).
func End(span trace.Span, err error) {
	if r, ok := span.(*Root); ok {
		r.Finish(err)
		return
	}
	if err != nil {
		if !span.IsRecording() && span.SpanContext().IsValid() {
			ctx := trace.ContextWithRemoteSpanContext(context.Background(), span.SpanContext())
			_, es := span.TracerProvider().Tracer("tianshu/errors").Start(ctx, "error", trace.WithAttributes(KeyForce.Bool(true)))
			es.RecordError(err)
			es.SetStatus(codes.Error, err.Error())
			es.End()
		}
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
