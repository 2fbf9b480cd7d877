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
	return &functionNode{prog: prog}
}

type functionNode struct{ prog *function.Program }

func (n *functionNode) Run(ctx context.Context, c *Call) (any, error) {
	var in any
	if len(c.n.args) == 0 {
		in = c.Input()
	} else {
		in = c.Args()
	}
	// Script failures are deterministic: never retried (see retryable).
	return n.prog.Call(ctx, in, c.Params())
}
