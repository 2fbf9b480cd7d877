package task

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tianshu-ai/tianshu/internal/bus"
	"github.com/tianshu-ai/tianshu/internal/event"
	"github.com/tianshu-ai/tianshu/internal/pipeline"
)

// TopicSource consumes a bus topic (another task's output, a data
// channel) with a durable consumer per task, so a restarted or moved task
// resumes where it stopped and nothing is dropped.
type TopicSource struct {
	Bus     bus.Bus
	Topic   string
	Durable string
}

// NewTopicSource is the SourceFactory for type "topic".
func NewTopicSource(_ context.Context, spec pipeline.SourceSpec, env pipeline.SourceEnv) (pipeline.Source, error) {
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
func (s *TopicSource) Run(ctx context.Context, emit pipeline.Emit) error {
	sub, err := s.Bus.Subscribe(ctx, s.Topic, s.Durable, bus.SubscribeOptions{MaxInFlight: 4, AckWait: 10 * time.Second},
		func(hctx context.Context, bm bus.Message) error {
			data, err := decodeJSONObject(bm.Data)
			if err != nil {
				return nil // a message that is not a JSON object can never succeed: drop it
			}
			done := make(chan error, 1)
			m := pipeline.Message{ID: fmt.Sprintf("%s-%d", s.Topic, bm.Seq), Key: bm.Key, Time: bm.Time, Data: data,
				TraceParent: bm.Header[event.HeaderTraceParent], Ack: func(err error) { done <- err }}
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
