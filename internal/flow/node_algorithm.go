package flow

import (
	"context"
	"errors"
	"sort"
)

func init() { builtinKinds = append(builtinKinds, kindAlgorithm) }

func kindAlgorithm() *Kind {
	return &Kind{
		Name:     "algorithm",
		Doc:      "Calls an algorithm version with the mapped inputs; outputs its result.",
		Blocking: true,
		Category: CategoryAlgorithm,
		// The ports are the contract's: DescribeFlowNodeKinds lists each
		// algorithm of the project with them.
		FromContract: true,
		Config:       algorithmConfig{},
		Compile:      compileAlgorithm,
	}
}

type algorithmConfig struct {
	Algorithm string `json:"algorithm" required:"true" example:"alg-face-detect" doc:"the algorithm's id"`
	Version   string `json:"version" doc:"the version to call; empty: the algorithm's current version"`
}

func compileAlgorithm(b *Builder) Node {
	var cfg algorithmConfig
	if !b.Config(&cfg) {
		return nil
	}
	if cfg.Algorithm == "" {
		b.Errorf("config.algorithm", "missing algorithm id")
		return nil
	}
	algos := b.Algorithms()
	if algos == nil {
		b.Errorf("config.algorithm", "algorithms are not available here")
		return nil
	}
	ref := AlgorithmRef{ID: cfg.Algorithm, Version: cfg.Version}
	contract, err := algos.Contract(b.Context(), ref)
	if err != nil {
		if errors.Is(err, ErrUnknownAlgorithm) {
			if ref.Version != "" {
				b.Errorf("config.algorithm", "unknown algorithm %q version %q", ref.ID, ref.Version)
			} else {
				b.Errorf("config.algorithm", "unknown algorithm %q", ref.ID)
			}
		} else {
			b.Errorf("config.algorithm", "%v", err)
		}
		return nil
	}
	if contract != nil {
		declared := map[string]Field{}
		for _, f := range contract.Inputs {
			declared[f.Name] = f
			if f.Required {
				b.RequireArg(f.Name)
			}
		}
		if len(contract.Inputs) > 0 {
			names := b.ArgNames()
			sort.Strings(names)
			for _, name := range names {
				f, ok := declared[name]
				if !ok {
					known := make([]string, 0, len(declared))
					for k := range declared {
						known = append(known, k)
					}
					sort.Strings(known)
					b.Errorf("inputs."+name, "algorithm %s has no input %q; it takes %v", ref.ID, name, known)
					continue
				}
				if lit, ok := b.Literal(name); ok && !checkType(f.Type, lit) {
					b.Errorf("inputs."+name, "literal %v is not a %s, as algorithm %s declares", lit, f.Type, ref.ID)
				}
			}
		}
		var outs []Port
		if len(contract.Outputs) > 0 {
			outs = ContractPorts(contract.Outputs)
		}
		b.DeclarePorts(ContractPorts(contract.Inputs), outs)
	}
	n := &algorithmNode{algos: algos, ref: ref}
	if ra, ok := algos.(RoutedAlgorithms); ok && ref.Version == "" {
		n.routed = ra
	}
	return n
}

type algorithmNode struct {
	algos  Algorithms
	ref    AlgorithmRef
	routed RoutedAlgorithms // set when the version is the algorithm's to pick
}

func (n *algorithmNode) Run(ctx context.Context, c *Call) (any, error) {
	var out map[string]any
	var err error
	if n.routed != nil {
		out, err = n.routed.InvokeFor(ctx, n.ref, c.route(), c.Args())
	} else {
		out, err = n.algos.Invoke(ctx, n.ref, c.Args())
	}
	if err != nil || out == nil {
		return nil, err
	}
	return out, nil
}
