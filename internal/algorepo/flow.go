package algorepo

import (
	"context"
	"errors"

	"github.com/tianshu-ai/tianshu/internal/algorithm"
	"github.com/tianshu-ai/tianshu/internal/flow"
)

// This file adapts the algorithm runtime to the flow engine, which owns
// the interface (flow.Algorithms) and its types; internal/algorithm knows
// nothing of flows.

// flowTypes maps contract field types to the flow engine's field types.
var flowTypes = map[string]string{
	algorithm.TypeImage:     "image",
	algorithm.TypeObjects:   "objects",
	algorithm.TypeEmbedding: "list",
	algorithm.TypeText:      "string",
	algorithm.TypeJSON:      "any",
	algorithm.TypeNumber:    "number",
	algorithm.TypeInteger:   "integer",
	algorithm.TypeBool:      "bool",
	algorithm.TypeObject:    "object",
	algorithm.TypeList:      "list",
}

// flowContract converts a contract to the flow engine's form, mapping the
// algorithm types onto flow port types (embedding becomes list, text
// string, json any; objects stay objects, which validation tells apart
// from images and scalars).
func flowContract(c *algorithm.Contract) *flow.Contract {
	return &flow.Contract{Inputs: flowFields(c.Inputs), Outputs: flowFields(c.Outputs)}
}

// flowFields converts contract fields, and the fields of their items.
func flowFields(fields []algorithm.Field) []flow.Field {
	out := make([]flow.Field, len(fields))
	for i, f := range fields {
		out[i] = flow.Field{Name: f.Name, Type: flowTypes[f.Type], Required: f.Required, Doc: f.Doc}
		if len(f.Items) > 0 {
			out[i].Items = flowFields(f.Items)
		}
	}
	return out
}

// runtimeRef converts a flow reference to the runtime's.
func runtimeRef(ref flow.AlgorithmRef) algorithm.Ref {
	return algorithm.Ref{ID: ref.ID, Version: ref.Version}
}

// flowError makes a runtime error that wraps algorithm.ErrUnknownAlgorithm
// match flow.ErrUnknownAlgorithm too, so flow validation reports the node
// and API callers still see the runtime's sentinel and message.
func flowError(err error) error {
	if err != nil && errors.Is(err, algorithm.ErrUnknownAlgorithm) && !errors.Is(err, flow.ErrUnknownAlgorithm) {
		return unknownAlgorithm{err}
	}
	return err
}

// unknownAlgorithm is a runtime error that also matches
// flow.ErrUnknownAlgorithm; its message is the runtime error's.
type unknownAlgorithm struct{ err error }

func (e unknownAlgorithm) Error() string   { return e.err.Error() }
func (e unknownAlgorithm) Unwrap() []error { return []error{e.err, flow.ErrUnknownAlgorithm} }

// maxCatalog bounds the algorithms a palette lists: the builtins and a
// project's own, which quotas keep far below it.
const maxCatalog = 500

// Catalog returns the algorithms a flow of projectID may call (the
// builtins and its own), each with its current version's contract, for
// the flow editor's palette. An algorithm without a version yet comes
// without a contract; one whose contract cannot be read is left out.
func (s *Service) Catalog(ctx context.Context, projectID string) ([]flow.AlgorithmEntry, error) {
	algs, _, err := s.List(ctx, projectID, nil, nil, 0, maxCatalog)
	if err != nil {
		return nil, err
	}
	out := make([]flow.AlgorithmEntry, 0, len(algs))
	for _, a := range algs {
		e := flow.AlgorithmEntry{ID: a.ID, Name: a.Name, Description: a.Description, Version: a.CurrentVersion}
		if a.CurrentVersion != "" {
			c, err := s.Contract(ctx, flow.AlgorithmRef{ID: a.ID, Version: a.CurrentVersion})
			if err != nil {
				if ctx.Err() != nil {
					return nil, err
				}
				s.log.Warn("algorithm contract unreadable", "algorithm", a.ID, "version", a.CurrentVersion, "err", err)
				continue
			}
			e.Contract = c
		}
		out = append(out, e)
	}
	return out, nil
}
