package tracesdk

import (
	"context"

	"go.opentelemetry.io/otel/trace"

	"github.com/tianshu-ai/tianshu/internal/api"
)

// DescribeTraceRequest is the request of DescribeTrace: one of TraceId and
// RecordId.
type DescribeTraceRequest struct {
	// TraceId is a W3C trace id: 32 lowercase hex digits (an event's
	// traceparent carries it).
	TraceId string `json:"TraceId" validate:"max=32"`
	// RecordId names the record whose writing the trace covers.
	RecordId string `json:"RecordId" validate:"max=64"`
}

// DescribeTraceResponse is the response of DescribeTrace.
type DescribeTraceResponse struct {
	TraceId string `json:"TraceId"`
	// SpanSet are the trace's spans this caller may see, by start time:
	// only spans of the projects (and tasks) its roles reach.
	SpanSet []Span `json:"SpanSet"`
}

// RegisterActions registers DescribeTrace over r (nil: tracing in memory
// is off, and the action says so).
func RegisterActions(reg *api.Registry, r *Recent) {
	api.Register(reg, api.Spec{Name: "DescribeTrace", Summary: "Read one recent trace (a message's path from its source through the flow's nodes and algorithm calls to the records written and each push delivery) from this process's memory, by trace id or by record id. Shows only the spans of projects and tasks the caller sees.",
		Permission: api.Permission{Resource: "task", Access: api.Read}},
		func(ctx context.Context, c *api.Caller, req *DescribeTraceRequest) (*DescribeTraceResponse, error) {
			return describeTrace(c, r, req)
		})
}

func describeTrace(c *api.Caller, r *Recent, req *DescribeTraceRequest) (*DescribeTraceResponse, error) {
	switch {
	case req.TraceId == "" && req.RecordId == "":
		return nil, api.Missing("TraceId")
	case req.TraceId != "" && req.RecordId != "":
		return nil, api.InvalidValue("RecordId", "give TraceId or RecordId, not both")
	}
	if req.TraceId != "" {
		if _, err := trace.TraceIDFromHex(req.TraceId); err != nil || len(req.TraceId) != 32 {
			return nil, api.InvalidValue("TraceId", "%q is not 32 lowercase hex digits", req.TraceId)
		}
	}
	if r == nil {
		return nil, api.Errorf(api.FailedOperation, "tracing in memory is off on this server: set --otel.recent-traces")
	}
	id, field := req.TraceId, "TraceId"
	if req.RecordId != "" {
		field = "RecordId"
		var ok bool
		if id, ok = r.TraceOfRecord(req.RecordId); !ok {
			return nil, api.NotFound("trace of RecordId", req.RecordId)
		}
	}
	var out []Span
	for _, s := range r.Trace(id) {
		switch {
		case s.ProjectId == "":
		case s.TaskId != "" && c.SeesTask(s.ProjectId, s.TaskId):
			out = append(out, s)
		case s.TaskId == "" && c.Sees(s.ProjectId):
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		if field == "RecordId" {
			return nil, api.NotFound("trace of RecordId", req.RecordId)
		}
		return nil, api.NotFound("TraceId", id)
	}
	return &DescribeTraceResponse{TraceId: id, SpanSet: out}, nil
}
