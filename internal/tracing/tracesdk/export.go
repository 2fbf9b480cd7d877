package tracesdk

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// The OTLP span flags that say whether the parent is remote (the
// protocol's SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK and
// SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK).
const (
	flagHasIsRemote = 0x100
	flagIsRemote    = 0x200
)

// resourceSpans is spans as one OTLP export request's payload: the
// process's resource, one scope per tracer name.
func resourceSpans(res *resourcepb.Resource, spans []*span) []*tracepb.ResourceSpans {
	var scopes []*tracepb.ScopeSpans
	at := map[string]*tracepb.ScopeSpans{}
	for _, s := range spans {
		ss := at[s.t.scope]
		if ss == nil {
			ss = &tracepb.ScopeSpans{Scope: &commonpb.InstrumentationScope{Name: s.t.scope}}
			at[s.t.scope] = ss
			scopes = append(scopes, ss)
		}
		ss.Spans = append(ss.Spans, protoSpan(s))
	}
	return []*tracepb.ResourceSpans{{Resource: res, ScopeSpans: scopes}}
}

func protoSpan(s *span) *tracepb.Span {
	tid, sid := s.sc.TraceID(), s.sc.SpanID()
	kind := s.kind
	if kind == trace.SpanKindUnspecified {
		kind = trace.SpanKindInternal
	}
	p := &tracepb.Span{
		TraceId:           tid[:],
		SpanId:            sid[:],
		TraceState:        s.sc.TraceState().String(),
		Name:              s.name,
		Kind:              tracepb.Span_SpanKind(kind),
		StartTimeUnixNano: uint64(s.start.UnixNano()),
		EndTimeUnixNano:   uint64(s.end.UnixNano()),
		Attributes:        protoAttributes(s.attributes()),
		Flags:             uint32(s.sc.TraceFlags()) | flagHasIsRemote,
		Status:            &tracepb.Status{},
	}
	if s.parent.IsValid() {
		psid := s.parent.SpanID()
		p.ParentSpanId = psid[:]
		if s.parent.IsRemote() {
			p.Flags |= flagIsRemote
		}
	}
	switch s.status {
	case codes.Error:
		p.Status.Code, p.Status.Message = tracepb.Status_STATUS_CODE_ERROR, s.desc
	case codes.Ok:
		p.Status.Code = tracepb.Status_STATUS_CODE_OK
	}
	for _, e := range s.events {
		p.Events = append(p.Events, &tracepb.Span_Event{TimeUnixNano: uint64(e.time.UnixNano()), Name: e.name, Attributes: protoAttributes(e.attrs)})
	}
	return p
}

func protoAttributes(attrs []attribute.KeyValue) []*commonpb.KeyValue {
	if len(attrs) == 0 {
		return nil
	}
	out := make([]*commonpb.KeyValue, len(attrs))
	for i, kv := range attrs {
		out[i] = &commonpb.KeyValue{Key: string(kv.Key), Value: protoValue(kv.Value)}
	}
	return out
}

func protoValue(v attribute.Value) *commonpb.AnyValue {
	switch v.Type() {
	case attribute.BOOL:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: v.AsBool()}}
	case attribute.INT64:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v.AsInt64()}}
	case attribute.FLOAT64:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: v.AsFloat64()}}
	case attribute.STRING:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v.AsString()}}
	case attribute.BOOLSLICE:
		return array(v.AsBoolSlice(), func(b bool) *commonpb.AnyValue { return protoValue(attribute.BoolValue(b)) })
	case attribute.INT64SLICE:
		return array(v.AsInt64Slice(), func(n int64) *commonpb.AnyValue { return protoValue(attribute.Int64Value(n)) })
	case attribute.FLOAT64SLICE:
		return array(v.AsFloat64Slice(), func(f float64) *commonpb.AnyValue { return protoValue(attribute.Float64Value(f)) })
	case attribute.STRINGSLICE:
		return array(v.AsStringSlice(), func(s string) *commonpb.AnyValue { return protoValue(attribute.StringValue(s)) })
	}
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v.String()}}
}

func array[T any](vs []T, one func(T) *commonpb.AnyValue) *commonpb.AnyValue {
	a := &commonpb.ArrayValue{Values: make([]*commonpb.AnyValue, len(vs))}
	for i, v := range vs {
		a.Values[i] = one(v)
	}
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: a}}
}

// protoResource is the process's resource: service.name and
// service.instance.id.
func protoResource(service, instance string) *resourcepb.Resource {
	return &resourcepb.Resource{Attributes: protoAttributes([]attribute.KeyValue{
		attribute.String("service.name", service), attribute.String("service.instance.id", instance)})}
}
