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
	// only spans of the projects (and tasks) its roles reach. With roles
	// in several processes, the spans every process holds.
	SpanSet []Span `json:"SpanSet"`
	// UnansweredProcesses names the processes that did not answer in
	// time: their spans may be missing.
	UnansweredProcesses []string `json:"UnansweredProcesses,omitempty"`
}

// RegisterActions registers DescribeTrace over r (nil: tracing in memory
// is off, and the action says so) and others, the platform's other
// processes (nil: none, or a bus that cannot ask them).
func RegisterActions(reg *api.Registry, r *Recent, others Asker) {
	api.Register(reg, api.Spec{Name: "DescribeTrace", Summary: "Read one recent trace (a message's path from its source through the flow's nodes and algorithm calls to the records written and each push delivery) from memory, by trace id or by record id: this process's and, with roles in several processes, every process's. Shows only the spans of projects and tasks the caller sees.",
		Permission: api.Permission{Resource: "task", Access: api.Read}},
		func(ctx context.Context, c *api.Caller, req *DescribeTraceRequest) (*DescribeTraceResponse, error) {
			return describeTrace(ctx, c, r, others, req)
		})
}

func describeTrace(ctx context.Context, c *api.Caller, r *Recent, others Asker, req *DescribeTraceRequest) (*DescribeTraceResponse, error) {
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
		id, _ = r.TraceOfRecord(req.RecordId)
	}
	var spans []Span
	var missing []string
	switch {
	case others != nil:
		spans, id, missing = gather(ctx, r, others, id, req.RecordId)
	case id != "":
		spans = r.Trace(id)
	}
	if id == "" {
		return nil, api.NotFound("trace of RecordId", req.RecordId)
	}
	var out []Span
	for _, s := range spans {
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
	return &DescribeTraceResponse{TraceId: id, SpanSet: out, UnansweredProcesses: missing}, nil
}
