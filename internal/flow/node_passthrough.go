package flow

import "context"

func init() { builtinKinds = append(builtinKinds, kindPassthrough) }

func kindPassthrough() *Kind {
	return &Kind{
		Name:       "passthrough",
		Doc:        "Outputs its mapped inputs as a map, or $input when it maps none.",
		Category:   CategoryUtility,
		MoreInputs: true,
		Config:     struct{}{},
		Compile: func(b *Builder) Node {
			b.Config(&struct{}{})
			return passthroughNode{}
		},
	}
}

type passthroughNode struct{}

func (passthroughNode) Run(_ context.Context, c *Call) (any, error) {
	if len(c.n.args) == 0 {
		return c.Input(), nil
	}
	return c.Args(), nil
}
