package task

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tianshu-ai/tianshu/internal/bus"
)

// Message is one unit of work from a source: a frame, an uploaded picture,
// a bus message.
type Message struct {
	// ID is stable across redeliveries (frame sequence, bus sequence), so
	// event ids derived from it are stable and consumers can deduplicate.
	ID   string
	Key  string // partitions stream state: the device id
	Time time.Time
	Data map[string]any
	// TraceParent is the W3C trace context the message arrived with (a
	// CloudEvent from another task); empty starts a new trace.
	TraceParent string
	// Ack is called once the flow and its sinks finished with the message
	// (err nil) or gave up on it; sources that need acknowledgement (the
	// bus) set it, others leave it nil.
	Ack func(err error)
}

// Emit hands a message to the task's flow. For back-pressured sources it
// blocks while the task is busy; for live sources it never blocks and the
// newest message replaces an older one still waiting.
type Emit func(ctx context.Context, m Message) error

// ErrSourceDone is returned by a batch source (uploads) that has delivered
// everything: the task then ends Completed.
var ErrSourceDone = errors.New("task: source finished")

// Source produces messages for a task until ctx ends.
type Source interface {
	// Run emits messages until ctx is cancelled, the source fails (it is
	// restarted with backoff), or it returns ErrSourceDone.
	Run(ctx context.Context, emit Emit) error
	// Live reports whether stale messages should be dropped rather than
	// queued (latest-frame-wins for cameras, SourceSpec.DropPolicy
	// "latest").
	Live() bool
}

// SourceEnv is what a source factory gets about the task it serves.
type SourceEnv struct {
	TaskID, ProjectID, NodeID string
	Bus                       bus.Bus
	// Index is the source's position in the task's Sources.
	Index int
	// Position is the checkpoint this source saved last, on any worker and
	// in any earlier run of the task; empty when it never saved one. Its
	// format is the source's own.
	Position string
	// SavePosition records the source's progress: the position up to which
	// every message was acknowledged, so a resumed source loses nothing.
	// It does not block: the worker writes the newest position about once
	// a second (its reconcile interval) and when the task stops, and only
	// while it still owns the task (same node and placement epoch). A
	// source must only ever save positions that move forward.
	SavePosition func(ctx context.Context, pos string) error
}

// SourceFactory builds the source for one SourceSpec of a task.
type SourceFactory func(ctx context.Context, spec SourceSpec, env SourceEnv) (Source, error)

// TopicSource consumes a bus topic (another task's output, a data
// channel) with a durable consumer per task, so a restarted or moved task
// resumes where it stopped and nothing is dropped.
type TopicSource struct {
	Bus     bus.Bus
	Topic   string
	Durable string
}

// NewTopicSource is the SourceFactory for type "topic".
func NewTopicSource(_ context.Context, spec SourceSpec, env SourceEnv) (Source, error) {
	if env.Bus == nil {
		return nil, errors.New("topic source: no bus in this process")
	}
	if err := bus.ValidateTopic(spec.Id); err != nil {
		return nil, err
	}
	return &TopicSource{Bus: env.Bus, Topic: spec.Id, Durable: env.TaskID}, nil
}

// Live implements Source: bus messages are never dropped.
func (s *TopicSource) Live() bool { return false }

// Run implements Source.
func (s *TopicSource) Run(ctx context.Context, emit Emit) error {
	sub, err := s.Bus.Subscribe(ctx, s.Topic, s.Durable, bus.SubscribeOptions{MaxInFlight: 4, AckWait: 10 * time.Second},
		func(hctx context.Context, bm bus.Message) error {
			data, err := decodeJSONObject(bm.Data)
			if err != nil {
				return nil // a message that is not a JSON object can never succeed: drop it
			}
			done := make(chan error, 1)
			m := Message{ID: fmt.Sprintf("%s-%d", s.Topic, bm.Seq), Key: bm.Key, Time: bm.Time, Data: data,
				TraceParent: bm.Header[HeaderTraceParent], Ack: func(err error) { done <- err }}
			if err := emit(hctx, m); err != nil {
				return err
			}
			select {
			case err := <-done:
				return err
			case <-hctx.Done():
				return hctx.Err()
			}
		})
	if err != nil {
		return err
	}
	<-ctx.Done()
	return sub.Stop()
}
