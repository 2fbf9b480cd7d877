package flow

import (
	"context"
	"fmt"

	"github.com/tianshu-ai/tianshu/internal/function"
)

func init() { builtinKinds = append(builtinKinds, kindSwitch) }

func kindSwitch() *Kind {
	return &Kind{
		Name:     "switch",
		Doc:      "Runs the successor of the first case whose expression is true, else the default (or none).",
		Category: CategoryLogic,
		// Mapped inputs are variables of the case expressions.
		MoreInputs: true,
		Outputs: []Port{
			{Name: "case", Type: TypeInteger, Doc: "the index of the case taken; -1: the default or none"},
			{Name: "next", Type: TypeString, Doc: "the id of the successor that runs"},
		},
		Config:  switchConfig{},
		Edges:   switchEdges,
		Compile: compileSwitch,
	}
}

type switchCase struct {
	When string `json:"when" format:"expression" required:"true" doc:"Starlark expression over the mapped inputs and params"`
	Next string `json:"next" required:"true" doc:"the id of the node to run when it is true"`
}

type switchConfig struct {
	Cases   []switchCase `json:"cases" required:"true" example:"[{\"when\": \"True\", \"next\": \"after\"}]" doc:"tried in order; the first true one wins"`
	Default string       `json:"default" doc:"the id of the node to run when no case is true; empty: none"`
}

// switchEdges makes case targets successors without separate edges.
func switchEdges(config map[string]any) []string {
	var cfg switchConfig
	if decodeInto(config, &cfg) != nil {
		return nil
	}
	var out []string
	for _, c := range cfg.Cases {
		if c.Next != "" {
			out = append(out, c.Next)
		}
	}
	if cfg.Default != "" {
		out = append(out, cfg.Default)
	}
	return out
}

func compileSwitch(b *Builder) Node {
	var cfg switchConfig
	if !b.Config(&cfg) {
		return nil
	}
	if len(cfg.Cases) == 0 {
		b.Errorf("config.cases", "a switch needs at least one case")
	}
	// Expressions see the mapped inputs by name, and params.
	vars := append(b.ArgNames(), "params")
	n := &switchNode{def: -1}
	targets := map[string]bool{}
	for i, c := range cfg.Cases {
		field := fmt.Sprintf("config.cases[%d]", i)
		e := b.Expr(field+".when", c.When, vars)
		if c.Next == "" {
			b.Errorf(field+".next", "missing target node")
			continue
		}
		t := b.Successor(field+".next", c.Next)
		targets[c.Next] = true
		n.cases = append(n.cases, caseNode{expr: e, target: t, next: c.Next})
	}
	if cfg.Default != "" {
		n.def = b.Successor("config.default", cfg.Default)
		targets[cfg.Default] = true
	}
	for _, s := range b.Successors() {
		if !targets[s] {
			b.Errorf("next", "edge to %q is never taken: it is not a case or default target", s)
		}
	}
	n.nargs = len(vars)
	return n
}

type caseNode struct {
	expr   *function.Expr
	target int
	next   string
}

type switchNode struct {
	cases []caseNode
	def   int
	nargs int
}

func (n *switchNode) Run(ctx context.Context, c *Call) (any, error) {
	args := make([]any, n.nargs)
	for i := range n.nargs - 1 {
		args[i] = c.Arg(i)
	}
	args[n.nargs-1] = c.Params()
	for i, cs := range n.cases {
		ok, err := cs.expr.EvalBool(ctx, args...)
		if err != nil {
			return nil, fmt.Errorf("cases[%d]: %w", i, err)
		}
		if ok {
			c.SelectOnly(cs.target)
			return map[string]any{"case": int64(i), "next": cs.next}, nil
		}
	}
	if n.def >= 0 {
		c.SelectOnly(n.def)
		return map[string]any{"case": int64(-1), "next": c.r.p.nodes[n.def].id}, nil
	}
	c.SelectNone()
	return map[string]any{"case": int64(-1)}, nil
}
