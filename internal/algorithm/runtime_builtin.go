package algorithm

import (
	"context"
	"errors"
	"fmt"
)

// Func is a builtin algorithm: Go code called in process with the inputs
// map. It must honour ctx and may be called concurrently.
type Func func(ctx context.Context, inputs map[string]any) (map[string]any, error)

// BatchFunc is a builtin's batched form: one result or error per item.
type BatchFunc func(ctx context.Context, items []map[string]any) ([]map[string]any, []error)

// Builtin is a Go-native algorithm registered with Manager.RegisterBuiltin.
// A version with runtime "builtin" names it in Package (default: the
// version's AlgorithmID).
type Builtin struct {
	Func  Func
	Batch BatchFunc // optional; used when the version micro-batches
	// Contract is the builtin's own contract, for callers that create its
	// version definition (the Manager itself uses the Version's).
	Contract Contract
}

// builtinError marks a failure of the builtin itself: deterministic, never
// retried, no fault of any instance.
type builtinError struct{ err error }

func (e *builtinError) Error() string { return e.err.Error() }
func (e *builtinError) Unwrap() error { return e.err }

// builtinProto calls a builtin directly; there is no wire.
type builtinProto struct{}

func (builtinProto) infer(ctx context.Context, in *instance, inputs map[string]any) (map[string]any, error) {
	out, err := in.builtin.Func(ctx, inputs)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, err
		}
		return nil, &builtinError{err}
	}
	return out, nil
}

func (builtinProto) inferBatch(ctx context.Context, in *instance, items []map[string]any) ([]itemResult, error) {
	if in.builtin.Batch == nil {
		res := make([]itemResult, len(items))
		for i, item := range items {
			res[i].out, res[i].err = builtinProto{}.infer(ctx, in, item)
		}
		return res, nil
	}
	outs, errs := in.builtin.Batch(ctx, items)
	if len(outs) != len(items) || (errs != nil && len(errs) != len(items)) {
		return nil, &builtinError{fmt.Errorf("batch of %d returned %d results", len(items), len(outs))}
	}
	res := make([]itemResult, len(items))
	for i := range items {
		res[i].out = outs[i]
		if errs != nil && errs[i] != nil {
			res[i].err = &builtinError{errs[i]}
		}
	}
	return res, nil
}

func (builtinProto) health(context.Context, *instance) error { return errNoHealthCheck }
