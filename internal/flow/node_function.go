package flow

import (
	"context"

	"github.com/tianshu-ai/tianshu/internal/function"
)

func init() { builtinKinds = append(builtinKinds, kindFunction) }

func kindFunction() *Kind {
	return &Kind{
		Name:     "function",
		Doc:      "Runs a Starlark script's main(input, params); input is the mapped inputs (or $input if none).",
		Category: CategoryLogic,
		// Every mapped input is a key of the script's input.
		MoreInputs: true,
		Config:     functionConfig{},
		Compile:    compileFunction,
	}
}

type functionConfig struct {
	Script string `json:"script" format:"script" required:"true" example:"def main(input, params):\n    return input" doc:"Starlark source defining main(input, params); its return value is the node's output"`
}

func compileFunction(b *Builder) Node {
	var cfg functionConfig
	if !b.Config(&cfg) {
		return nil
	}
	prog := b.Script("config.script", cfg.Script)
	if prog == nil {
		return nil
	}
	return &functionNode{prog: prog, names: b.ArgNames()}
}

type functionNode struct {
	prog  *function.Program
	names []string // of the mapped inputs, in their order
}

func (n *functionNode) Run(ctx context.Context, c *Call) (any, error) {
	// Script failures are deterministic: never retried (see retryable).
	if len(n.names) == 0 {
		return n.prog.Call(ctx, c.Input(), c.Params())
	}
	var buf [8]any
	values := buf[:0]
	for i := range n.names {
		values = append(values, c.Arg(i))
	}
	return n.prog.CallFields(ctx, n.names, values, c.Params())
}
