package flow

import (
	"context"
	"fmt"
)

func init() { builtinKinds = append(builtinKinds, kindPublish) }

func kindPublish() *Kind {
	return &Kind{
		Name:     "publish",
		Doc:      "Publishes the mapped inputs as an event of config.type through Sinks; input subject, if mapped, is the event subject.",
		Blocking: true,
		Category: CategorySink,
		Inputs:   []Port{{Name: "subject", Type: TypeString, Doc: "the event's subject; default: the message key (the device)"}},
		// The other mapped inputs are the event's data.
		MoreInputs: true,
		Outputs:    []Port{{Name: "published", Type: TypeBool, Doc: "true once the event is on the bus"}},
		Config:     sinkConfig{},
		Compile: func(b *Builder) Node {
			var cfg sinkConfig
			if !b.Config(&cfg) {
				return nil
			}
			if cfg.Type == "" {
				b.Errorf("config.type", "missing event type")
			}
			b.DeclareOutputs([]string{"published"})
			return &publishNode{typ: cfg.Type, subject: b.Arg("subject")}
		},
	}
}

// sinkConfig is the config of store and publish nodes.
type sinkConfig struct {
	Type string `json:"type" required:"true" example:"face" doc:"the record type (store) or event type (publish), e.g. face or tianshu.face.captured"`
}

type publishNode struct {
	typ     string
	subject int
}

func (n *publishNode) Run(ctx context.Context, c *Call) (any, error) {
	s := c.Sinks()
	if s == nil {
		return nil, ErrNoSinks
	}
	data := c.Args()
	subject := c.Key()
	if n.subject >= 0 {
		subject = fmt.Sprint(data["subject"])
		delete(data, "subject")
	}
	if err := s.Publish(ctx, Event{Type: n.typ, Subject: subject, Time: c.Time(), Data: data, Origin: c.Origin()}); err != nil {
		return nil, err
	}
	return map[string]any{"published": true}, nil
}
