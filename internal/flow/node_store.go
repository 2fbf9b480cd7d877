package flow

import "context"

func init() { builtinKinds = append(builtinKinds, kindStore) }

func kindStore() *Kind {
	return &Kind{
		Name:     "store",
		Doc:      "Stores the mapped inputs as a record of config.type through Sinks; outputs {recordId}.",
		Blocking: true,
		Category: CategorySink,
		// Every mapped input is a field of the record.
		MoreInputs: true,
		Outputs:    []Port{{Name: "recordId", Type: TypeString, Doc: "the stored record's id"}},
		Config:     sinkConfig{},
		Compile: func(b *Builder) Node {
			var cfg sinkConfig
			if !b.Config(&cfg) {
				return nil
			}
			if cfg.Type == "" {
				b.Errorf("config.type", "missing record type")
			}
			if len(b.ArgNames()) == 0 {
				b.Errorf("inputs", "a store node needs at least one mapped input (the record's fields)")
			}
			b.DeclareOutputs([]string{"recordId"})
			return &storeNode{typ: cfg.Type}
		},
	}
}

type storeNode struct{ typ string }

func (n *storeNode) Run(ctx context.Context, c *Call) (any, error) {
	s := c.Sinks()
	if s == nil {
		return nil, ErrNoSinks
	}
	id, err := s.Store(ctx, Record{Type: n.typ, Key: c.Key(), Time: c.Time(), Data: c.Args(), Origin: c.Origin()})
	if err != nil {
		return nil, err
	}
	return map[string]any{"recordId": id}, nil
}
