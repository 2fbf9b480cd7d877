package task

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tianshu-ai/tianshu/internal/bus"
	"github.com/tianshu-ai/tianshu/internal/flow"
)

// CloudEvent is a CloudEvents 1.0 event in its JSON form: what every task
// publishes, on the bus and on the wire to subscribers.
type CloudEvent struct {
	SpecVersion     string         `json:"specversion"`
	ID              string         `json:"id"`
	Source          string         `json:"source"`
	Type            string         `json:"type"`
	Subject         string         `json:"subject,omitempty"`
	Time            string         `json:"time"`
	DataContentType string         `json:"datacontenttype"`
	TraceParent     string         `json:"traceparent,omitempty"`
	TaskID          string         `json:"taskid"`
	ProjectID       string         `json:"projectid"`
	Data            map[string]any `json:"data"`
}

// EventsTopic is the bus topic a project's task events go to.
func EventsTopic(projectID string) string { return "events." + projectID }

// RecordStore keeps records; the data center implements it. Store returns
// once the record is durably written.
type RecordStore interface {
	StoreRecord(ctx context.Context, r StoredRecord) (string, error)
}

// StoredRecord is a record with its task context.
type StoredRecord struct {
	ProjectID, TaskID, DeviceID, Type string
	Time                              time.Time
	Data                              map[string]any
	// EventID is stable across redeliveries of the same message, so the
	// store can deduplicate.
	EventID string
}

// messageSinks implements flow.Sinks for one message: ids it makes are
// derived from the message id and a per-message counter, so a redelivered
// message produces the same ids.
type messageSinks struct {
	r     *runner
	msg   *Message
	count atomic.Int64
	// failed is set when a sink could not write: the message is then handed
	// back for redelivery instead of acknowledged, so nothing is lost.
	failed atomic.Bool

	traceOnce sync.Once
	trace     string
}

func (s *messageSinks) nextID(kind string) string {
	return fmt.Sprintf("%s:%s:%s-%d", s.r.task.ID, s.msg.ID, kind, s.count.Add(1))
}

// Store implements flow.Sinks.
func (s *messageSinks) Store(ctx context.Context, rec flow.Record) (string, error) {
	if s.r.records == nil {
		return "", fmt.Errorf("store node: this process has no record store")
	}
	id, err := s.r.records.StoreRecord(ctx, StoredRecord{ProjectID: s.r.task.ProjectID, TaskID: s.r.task.ID, DeviceID: s.msg.Key,
		Type: rec.Type, Time: rec.Time, Data: rec.Data, EventID: s.nextID("rec")})
	if err != nil {
		s.failed.Store(true)
		return "", err
	}
	s.r.stats.records.Add(1)
	return id, nil
}

// Publish implements flow.Sinks: a CloudEvent on the project's events topic,
// keyed by subject so order per device holds.
func (s *messageSinks) Publish(ctx context.Context, ev flow.Event) error {
	if s.r.bus == nil {
		return fmt.Errorf("publish node: this process has no bus")
	}
	t := ev.Time
	if t.IsZero() {
		t = s.msg.Time
	}
	ce := CloudEvent{SpecVersion: "1.0", ID: s.nextID("evt"), Source: "/tianshu/tasks/" + s.r.task.ID, Type: ev.Type,
		Subject: ev.Subject, Time: t.UTC().Format(time.RFC3339Nano), DataContentType: "application/json",
		TraceParent: childSpan(s.traceID()), TaskID: s.r.task.ID, ProjectID: s.r.task.ProjectID, Data: ev.Data}
	b, err := json.Marshal(ce)
	if err != nil {
		return err
	}
	_, err = s.r.bus.Publish(ctx, EventsTopic(s.r.task.ProjectID), ev.Subject, b, map[string]string{bus.HeaderID: ce.ID, HeaderTraceParent: ce.TraceParent})
	if err != nil {
		s.failed.Store(true)
		return err
	}
	s.r.stats.events.Add(1)
	return nil
}

// HeaderTraceParent carries the W3C trace context on the bus, beside the
// CloudEvent's own traceparent attribute.
const HeaderTraceParent = "traceparent"

// traceID is the message's trace: the one it arrived with, or a new one,
// so every event a message causes shares its trace from source to
// subscriber.
func (s *messageSinks) traceID() string {
	s.traceOnce.Do(func() {
		if p := s.msg.TraceParent; len(p) == 55 && p[2] == '-' && p[35] == '-' {
			s.trace = p[3:35]
			return
		}
		s.trace = randomHex(16)
	})
	return s.trace
}

// childSpan returns a traceparent for a new span of trace.
func childSpan(trace string) string { return "00-" + trace + "-" + randomHex(8) + "-01" }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func decodeJSONObject(b []byte) (map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}
