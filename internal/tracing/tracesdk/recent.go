package tracesdk

import (
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/tianshu-ai/tianshu/internal/telemetry"
	"github.com/tianshu-ai/tianshu/internal/tracing"
)

// Span is one span as DescribeTrace returns it.
type Span struct {
	TraceId      string `json:"TraceId"`
	SpanId       string `json:"SpanId"`
	ParentSpanId string `json:"ParentSpanId"`
	Name         string `json:"Name"`
	// StartTime and EndTime are RFC 3339 with nanoseconds; DurationUs is
	// their difference in microseconds.
	StartTime  string `json:"StartTime"`
	EndTime    string `json:"EndTime"`
	DurationUs int64  `json:"DurationUs"`
	// Status is ok, error or unset; StatusMessage the error's message.
	Status        string            `json:"Status"`
	StatusMessage string            `json:"StatusMessage,omitempty"`
	ProjectId     string            `json:"ProjectId"`
	TaskId        string            `json:"TaskId,omitempty"`
	Attributes    map[string]string `json:"Attributes"`
	// Process names the process that recorded the span (its
	// --worker.name or host, and its targets), where the platform's roles
	// run in several.
	Process string `json:"Process,omitempty"`

	start time.Time
}

// spanBytes is what a span holds in memory besides its name, status and
// attributes.
const spanBytes = 320

// maxSpansPerTrace bounds one trace in the ring.
const maxSpansPerTrace = 1000

// Recent is a bounded ring of the process's recent traces: at most
// maxTraces traces and about maxBytes of spans; the oldest trace goes
// first. A trace's spans may arrive in several parts (the message's, then
// each delivery's): they join one entry while it is still in the ring.
//
// Failed traces (a span with an error status) go last: while they are at
// most a quarter of the ring, the oldest trace that did not fail is
// evicted before them, so the trace of a node error a task's page lists
// outlives the many good messages that follow it.
type Recent struct {
	// process names this process in its spans (Span.Process).
	process   string
	mu        sync.Mutex
	maxTraces int
	maxBytes  int64
	bytes     int64
	traces    map[string]*entry
	// order and failed are trace ids, oldest first: of the traces that
	// have not failed, and of those that have. An id of a trace that
	// failed after it was queued in order stays there and is skipped.
	order       []string
	failed      []string
	failedBytes int64
	records     map[string]string
}

// entry is one trace: its parts as the SDK ended them. They are turned
// into Spans only when read (DescribeTrace is rare, messages are not).
type entry struct {
	parts   []part
	nspans  int
	bytes   int64
	records []string
	failed  bool
}

// part is the spans of one piece of work (a task's message, a
// subscription's delivery, an action), with the project and task of
// those of its spans that name one: the others (a flow node's, an
// algorithm call's) belong to them.
type part struct {
	spans         []*span
	project, task string
}

// failedShare is the part of the ring's bounds failed traces may hold
// before they are evicted like the others: 1/failedShare.
const failedShare = 4

// NewRecent returns a ring of at most maxTraces traces and maxBytes;
// process names this process in its spans.
func NewRecent(maxTraces int, maxBytes int64, process string) *Recent {
	return &Recent{process: process, maxTraces: maxTraces, maxBytes: maxBytes, traces: map[string]*entry{}, records: map[string]string{}}
}

func (r *Recent) register(reg prometheus.Registerer) {
	telemetry.MustRegister(reg, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tianshu_trace_recent_traces",
		Help: "Traces held in memory for DescribeTrace."}, func() float64 {
		r.mu.Lock()
		defer r.mu.Unlock()
		return float64(len(r.traces))
	}))
	telemetry.MustRegister(reg, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tianshu_trace_recent_bytes",
		Help: "Approximate size of the traces held in memory for DescribeTrace."}, func() float64 {
		r.mu.Lock()
		defer r.mu.Unlock()
		return float64(r.bytes)
	}))
}

// add takes the spans of one finished part of a trace: the spans of one
// process under one local root. A part none of whose spans names a
// project is not kept.
func (r *Recent) add(spans []*span) {
	if len(spans) == 0 {
		return
	}
	var size int64
	var recs []string
	failed := false
	p := part{spans: spans}
	found := false
	for _, s := range spans {
		size += sizeOf(s)
		failed = failed || s.status == codes.Error
		for _, kv := range s.attrs {
			switch kv.Key {
			case tracing.KeyRecord:
				recs = append(recs, kv.Value.AsString())
			case tracing.KeyProject:
				if !found {
					p.project, found = kv.Value.AsString(), true
					p.task = taskOf(s)
				}
			}
		}
	}
	if !found {
		// No span names a project (the lone error span of a sampled-out
		// action): DescribeTrace would never show it, so it takes no room.
		return
	}
	id := spans[0].sc.TraceID().String()
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.traces[id]
	if e == nil {
		e = &entry{}
		r.traces[id] = e
		r.order = append(r.order, id)
	}
	if room := maxSpansPerTrace - e.nspans; len(p.spans) > room {
		p.spans = p.spans[:max(0, room)]
	}
	e.parts = append(e.parts, p)
	e.nspans += len(p.spans)
	e.bytes += size
	r.bytes += size
	if e.failed {
		r.failedBytes += size
	}
	for _, rec := range recs {
		e.records = append(e.records, rec)
		r.records[rec] = id
	}
	if failed && !e.failed {
		e.failed = true
		r.failed = append(r.failed, id)
		r.failedBytes += e.bytes
	}
	for len(r.traces) > 1 && (len(r.traces) > r.maxTraces || r.bytes > r.maxBytes) {
		r.evictLocked()
	}
}

// evictLocked forgets one trace: the oldest that did not fail, unless
// failed traces hold more than their share of the ring or no other is
// left.
func (r *Recent) evictLocked() {
	overShare := len(r.failed) > max(1, r.maxTraces/failedShare) || r.failedBytes > r.maxBytes/failedShare
	for !overShare && len(r.order) > 0 {
		id := r.order[0]
		r.order[0] = ""
		r.order = r.order[1:]
		if e := r.traces[id]; e != nil && !e.failed {
			r.forgetLocked(id, e)
			return
		}
	}
	if len(r.failed) > 0 {
		id := r.failed[0]
		r.failed[0] = ""
		r.failed = r.failed[1:]
		r.forgetLocked(id, r.traces[id])
	}
}

func (r *Recent) forgetLocked(id string, e *entry) {
	delete(r.traces, id)
	r.bytes -= e.bytes
	if e.failed {
		r.failedBytes -= e.bytes
	}
	for _, rec := range e.records {
		if r.records[rec] == id {
			delete(r.records, rec)
		}
	}
}

// Trace returns trace id's spans ordered by start time, or nil.
func (r *Recent) Trace(id string) []Span {
	r.mu.Lock()
	e := r.traces[id]
	var parts []part
	if e != nil {
		parts = append(parts, e.parts...)
	}
	r.mu.Unlock()
	var out []Span
	for _, p := range parts {
		for _, s := range p.spans {
			sp, _ := convert(s)
			if sp.ProjectId == "" {
				sp.ProjectId, sp.TaskId = p.project, p.task
			}
			sp.Process = r.process
			out = append(out, sp)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	return out
}

func taskOf(s *span) string {
	v, _ := s.attr(tracing.KeyTask)
	return v.AsString()
}

// sizeOf estimates what span s holds in memory.
func sizeOf(s *span) int64 {
	n := int64(spanBytes + len(s.name) + len(s.desc))
	for _, kv := range s.attrs {
		v := 16
		if kv.Value.Type() == attribute.STRING {
			v = len(kv.Value.AsString())
		}
		n += int64(len(kv.Key)+v) + 48
	}
	return n
}

// TraceOfRecord returns the trace id of the trace that wrote record id
// while it is still in the ring.
func (r *Recent) TraceOfRecord(id string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.records[id]
	return t, ok
}

// convert copies s into a Span and estimates its size in memory.
func convert(s *span) (Span, int64) {
	sp := Span{TraceId: s.sc.TraceID().String(), SpanId: s.sc.SpanID().String(), Name: s.name,
		StartTime: s.start.UTC().Format(time.RFC3339Nano), EndTime: s.end.UTC().Format(time.RFC3339Nano),
		DurationUs: s.end.Sub(s.start).Microseconds(), Status: "unset", start: s.start}
	if s.parent.IsValid() {
		sp.ParentSpanId = s.parent.SpanID().String()
	}
	switch s.status {
	case codes.Ok:
		sp.Status = "ok"
	case codes.Error:
		sp.Status, sp.StatusMessage = "error", s.desc
	}
	attrs := s.attributes()
	sp.Attributes = make(map[string]string, len(attrs))
	size := int64(spanBytes + len(sp.Name) + len(sp.StatusMessage))
	for _, kv := range attrs {
		v := kv.Value.String()
		switch kv.Key {
		case tracing.KeyProject:
			sp.ProjectId = v
		case tracing.KeyTask:
			sp.TaskId = v
		}
		sp.Attributes[string(kv.Key)] = v
		size += int64(len(kv.Key)+len(v)) + 48
	}
	return sp, size
}
