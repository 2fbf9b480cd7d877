package flow

import (
	"context"
	"fmt"
	"time"
)

func init() { builtinKinds = append(builtinKinds, kindJoin) }

func kindJoin() *Kind {
	return &Kind{
		Name:     "join",
		Doc:      "Merges branches: waits for all, any, or n of them (timeout: the node's timeout); outputs {predecessor id: output}.",
		Category: CategoryLogic,
		Config:   joinConfig{},
		Compile: func(b *Builder) Node {
			var cfg joinConfig
			if !b.Config(&cfg) {
				return nil
			}
			in := b.Inputs()
			if in < 2 {
				b.Errorf("", "a join needs at least two incoming edges, has %d", in)
			}
			n := &joinNode{mode: cfg.Mode, total: in, wait: b.Timeout()}
			switch cfg.Mode {
			case "", "all":
				n.mode = "all"
				n.need = 0
			case "any":
				n.need = 1
			case "n":
				if cfg.N < 1 || cfg.N > in {
					b.Errorf("config.n", "must be between 1 and the number of incoming edges (%d), got %d", in, cfg.N)
				}
				n.need = cfg.N
			default:
				b.Errorf("config.mode", "unknown mode %q; use all, any or n", cfg.Mode)
			}
			b.WaitFor(n.need, n.wait)
			return n
		},
	}
}

type joinConfig struct {
	Mode string `json:"mode" enum:"all|any|n" default:"all" doc:"wait for all taken branches, any one, or n of them"`
	N    int    `json:"n" doc:"with mode n: how many branches to wait for"`
}

type joinNode struct {
	mode  string
	need  int
	total int
	wait  time.Duration
}

func (n *joinNode) Run(_ context.Context, c *Call) (any, error) {
	got := c.Arrived()
	need := n.need
	if need == 0 {
		need = 1 // "all" of the branches that were taken; at least one was
	}
	if c.TimedOut() {
		return got, fmt.Errorf("join (%s) timed out after %s with %d of %d branches", n.mode, n.wait, len(got), n.total)
	}
	if len(got) < need {
		return got, fmt.Errorf("join (%s) needs %d branches, only %d succeeded", n.mode, need, len(got))
	}
	return got, nil
}
