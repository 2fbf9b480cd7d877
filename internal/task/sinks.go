package task

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/tianshu-ai/tianshu/internal/event"
	"github.com/tianshu-ai/tianshu/internal/flow"
	"github.com/tianshu-ai/tianshu/internal/pipeline"
	"github.com/tianshu-ai/tianshu/internal/tracing"
)

// messageSinks implements flow.Sinks for one message: the ids it makes
// derive from the message id and the output's origin (its node and foreach
// item), so a redelivered message produces the same id for the same output
// however its concurrent items are ordered. That is what makes publishing
// after storing one promise: a rerun after a failed store or publish writes
// the records the store lacks, the store drops those it has, and the bus
// drops the events it has while taking the ones it lacks.
type messageSinks struct {
	r   *runner
	msg *pipeline.Message
	// count numbers outputs handed without an origin (a Sinks caller that
	// is not a flow node); their ids are stable only when the order is.
	count atomic.Int64
	// failed is set when a sink could not write: the message is then handed
	// back for redelivery instead of acknowledged, so nothing is lost.
	failed atomic.Bool

	traceOnce sync.Once
	trace     string
}

func (s *messageSinks) id(kind, origin string) string {
	if origin == "" {
		origin = "#" + strconv.FormatInt(s.count.Add(1), 10)
	}
	return event.TaskEventID(s.r.task.ID, s.msg.ID, kind, origin)
}

// Store implements flow.Sinks.
func (s *messageSinks) Store(ctx context.Context, rec flow.Record) (string, error) {
	if s.r.records == nil {
		return "", fmt.Errorf("store node: this process has no record store")
	}
	var span tracing.Sub
	if s.r.ot != nil {
		ctx, span = tracing.Child(ctx, s.r.ot, "records.write", time.Now(), trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(tracing.KeyProject.String(s.r.task.ProjectID), tracing.KeyTask.String(s.r.task.ID)))
	}
	id, err := s.r.records.StoreRecord(ctx, pipeline.Record{ProjectID: s.r.task.ProjectID, TaskID: s.r.task.ID, DeviceID: s.msg.Key,
		Type: rec.Type, Time: rec.Time, Data: rec.Data, EventID: s.id("rec", rec.Origin)})
	span.SetAttributes(tracing.KeyRecord.String(id))
	span.End(err)
	if err != nil {
		s.failed.Store(true)
		return "", err
	}
	s.r.stats.records.Add(1)
	return id, nil
}

// CropURL implements flow.CropSigner where the task's record store signs
// crops (pipeline.RecordCrops), and answers "" where it does not.
func (s *messageSinks) CropURL(ctx context.Context, recordID string) (string, error) {
	if rc, ok := s.r.records.(pipeline.RecordCrops); ok {
		return rc.CropURL(ctx, recordID)
	}
	return "", nil
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
	ce := event.New(s.id("evt", ev.Origin), event.TaskSource(s.r.task.ID), ev.Type, ev.Subject, t, ev.Data)
	ce.TaskID, ce.ProjectID = s.r.task.ID, s.r.task.ProjectID
	var span tracing.Sub
	if s.r.ot != nil && trace.SpanContextFromContext(ctx).IsValid() {
		// The event's traceparent is this span's: a subscriber's
		// delivery continues the trace under it.
		ctx, span = tracing.Child(ctx, s.r.ot, "bus.publish", time.Now(), trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(tracing.KeyProject.String(s.r.task.ProjectID), tracing.KeyTask.String(s.r.task.ID), tracing.KeyEvent.String(ce.ID)))
		ce.TraceParent = tracing.TraceParent(ctx)
	} else {
		ce.TraceParent = event.ChildOf(s.traceID())
	}
	err := s.publish(ctx, ev.Subject, &ce)
	span.End(err)
	return err
}

func (s *messageSinks) publish(ctx context.Context, subject string, ce *event.Event) error {
	b, err := ce.Marshal()
	if err != nil {
		return err
	}
	_, err = s.r.bus.Publish(ctx, event.Topic(s.r.task.ProjectID), subject, b, ce.Headers())
	if err != nil {
		s.failed.Store(true)
		return err
	}
	s.r.stats.events.Add(1)
	return nil
}

// traceID is the message's trace: the one it arrived with, or a new one,
// so every event a message causes shares its trace from source to
// subscriber.
func (s *messageSinks) traceID() string {
	s.traceOnce.Do(func() { s.trace = event.TraceIDOf(s.msg.TraceParent) })
	return s.trace
}

func decodeJSONObject(b []byte) (map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}
