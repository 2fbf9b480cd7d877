package flow

import "context"

func init() { builtinKinds = append(builtinKinds, kindNoop) }

func kindNoop() *Kind {
	return &Kind{
		Name:     "noop",
		Doc:      "Does nothing and outputs null; a placeholder and a benchmark baseline.",
		Category: CategoryUtility,
		Config:   struct{}{},
		Compile: func(b *Builder) Node {
			b.Config(&struct{}{})
			return noopNode{}
		},
	}
}

type noopNode struct{}

func (noopNode) Run(context.Context, *Call) (any, error) { return nil, nil }
