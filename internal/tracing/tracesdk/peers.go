package tracesdk

import (
	"context"
	"encoding/json"
	"sort"
	"time"

	"github.com/tianshu-ai/tianshu/internal/peers"
)

// PeersTopic is the peers topic (internal/peers) on which processes ask
// each other for the spans of a trace.
const PeersTopic = "trace"

// Asker asks the platform's other processes (a *peers.Peers): spans a
// trace's other parts recorded there (a worker's message, a push
// process's delivery) join this process's own.
type Asker interface {
	Ask(ctx context.Context, q any) (answers []peers.Answer, missing []string, err error)
}

// traceQuestion asks for one trace's spans, by trace id or by the record
// its writing covers.
type traceQuestion struct {
	TraceId  string `json:"t,omitempty"`
	RecordId string `json:"r,omitempty"`
}

// Answer answers another process's question (peers.Answerer) with this
// process's spans of the trace it names, unfiltered: the asker checks
// its caller's permissions.
func (r *Recent) Answer(_ context.Context, question json.RawMessage) []json.RawMessage {
	var q traceQuestion
	if json.Unmarshal(question, &q) != nil {
		return nil
	}
	id := q.TraceId
	if id == "" && q.RecordId != "" {
		id, _ = r.TraceOfRecord(q.RecordId)
	}
	if id == "" {
		return nil
	}
	var out []json.RawMessage
	for _, s := range r.Trace(id) {
		if b, err := json.Marshal(s); err == nil {
			out = append(out, b)
		}
	}
	return out
}

// gather adds to this process's spans of the trace asked (by id, or by
// record when id is "") what the other processes hold of it; it returns
// the trace id (learned from a peer when this process does not know the
// record) and the processes that did not answer in time.
func gather(ctx context.Context, r *Recent, others Asker, id, recordID string) ([]Span, string, []string) {
	var local []Span
	if id != "" {
		local = r.Trace(id)
	}
	q := traceQuestion{TraceId: id}
	if id == "" {
		q.RecordId = recordID
	}
	answers, missing, err := others.Ask(ctx, q)
	if err != nil {
		return local, id, nil
	}
	remote := spansOf(answers)
	if id == "" && len(remote) > 0 {
		// The record's trace was found elsewhere: this process's part of
		// it (a delivery), and, when more than the one process that
		// wrote it answered, theirs by its id.
		id = remote[0].TraceId
		local = r.Trace(id)
		if len(answers) > 1 {
			if again, miss, err := others.Ask(ctx, traceQuestion{TraceId: id}); err == nil {
				remote, missing = append(remote, spansOf(again)...), miss
			}
		}
	}
	seen := make(map[string]bool, len(local))
	for _, s := range local {
		seen[s.SpanId] = true
	}
	out := local
	for _, s := range remote {
		if s.TraceId != id || seen[s.SpanId] {
			continue
		}
		seen[s.SpanId] = true
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	return out, id, missing
}

func spansOf(answers []peers.Answer) []Span {
	var out []Span
	for _, a := range answers {
		for _, it := range a.Items {
			var s Span
			if json.Unmarshal(it, &s) != nil || s.SpanId == "" {
				continue
			}
			s.start, _ = time.Parse(time.RFC3339Nano, s.StartTime)
			if s.Process == "" {
				s.Process = a.Peer
			}
			out = append(out, s)
		}
	}
	return out
}
