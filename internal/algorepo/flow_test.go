package algorepo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/algorithm"
	"github.com/tianshu-ai/tianshu/internal/flow"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

func TestFlowContract(t *testing.T) {
	c := &algorithm.Contract{
		Inputs: []algorithm.Field{{Name: "image", Type: algorithm.TypeImage, Required: true}, {Name: "hint", Type: algorithm.TypeText}},
		Outputs: []algorithm.Field{{Name: "objects", Type: algorithm.TypeObjects, Items: []algorithm.Field{{Name: "label", Type: algorithm.TypeText}}},
			{Name: "vec", Type: algorithm.TypeEmbedding}, {Name: "raw", Type: algorithm.TypeJSON}},
	}
	fc := flowContract(c)
	// The fields of an element come along, their types mapped too.
	if items := fc.Outputs[0].Items; len(items) != 1 || items[0].Name != "label" || items[0].Type != "string" || fc.Outputs[1].Items != nil {
		t.Fatalf("items %+v", fc.Outputs)
	}
	got := []string{fc.Inputs[0].Type, fc.Inputs[1].Type, fc.Outputs[0].Type, fc.Outputs[1].Type, fc.Outputs[2].Type}
	want := []string{"image", "string", "objects", "list", "any"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("types %v, want %v", got, want)
		}
	}
	if !fc.Inputs[0].Required {
		t.Fatal("required lost")
	}
}

// TestFlowTypesCoverContractTypes keeps the mapping in step with the
// types a contract may declare: a type without a mapping would reach the
// flow engine as "" (any) and go unchecked.
func TestFlowTypesCoverContractTypes(t *testing.T) {
	for _, typ := range algorithm.Types() {
		if flowTypes[typ] == "" {
			t.Errorf("contract type %q has no flow type", typ)
		}
	}
	if len(flowTypes) != len(algorithm.Types()) {
		t.Errorf("flowTypes maps %d types, contracts declare %d", len(flowTypes), len(algorithm.Types()))
	}
}

func TestFlowErrorMatchesBothSentinels(t *testing.T) {
	cause := fmt.Errorf("%w %q: not running", algorithm.ErrUnknownAlgorithm, "alg-x")
	err := flowError(cause)
	if !errors.Is(err, flow.ErrUnknownAlgorithm) || !errors.Is(err, algorithm.ErrUnknownAlgorithm) || err.Error() != cause.Error() {
		t.Fatalf("flowError(%v) = %v", cause, err)
	}
	other := errors.New("other")
	if flowError(other) != other || flowError(nil) != nil {
		t.Fatal("flowError changed an error that is not about an unknown algorithm")
	}
}

// TestContract checks the flow engine's view of the repository: running
// builtins and stopped stored versions have contracts, unknown and other
// projects' algorithms are flow.ErrUnknownAlgorithm, and the lookup runs
// under the caller's ctx.
func TestContract(t *testing.T) {
	ctx := t.Context()
	m, err := algorithm.New(algorithm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	num := algorithm.Contract{Inputs: []algorithm.Field{{Name: "x", Type: algorithm.TypeNumber, Required: true}}, Outputs: []algorithm.Field{{Name: "y", Type: algorithm.TypeNumber}}}
	double := algorithm.Builtin{Contract: num, Func: func(_ context.Context, in map[string]any) (map[string]any, error) {
		x, _ := in["x"].(float64)
		return map[string]any{"y": 2 * x}, nil
	}}
	s := New(storetest.Open(t, "sqlite"), map[string]algorithm.Builtin{"double": double}, slog.New(slog.DiscardHandler), nil)
	if err := s.StartRuntime(ctx, m); err != nil {
		t.Fatal(err)
	}

	c, err := s.Contract(ctx, flow.AlgorithmRef{ID: BuiltinID("double")})
	if err != nil || len(c.Inputs) != 1 || c.Inputs[0].Type != "number" {
		t.Fatalf("builtin contract: %+v %v", c, err)
	}

	a, err := s.Create(ctx, "default", "stopped", "")
	if err != nil {
		t.Fatal(err)
	}
	def := algorithm.Version{Runtime: algorithm.RuntimeBuiltin, Package: "double",
		Contract: algorithm.Contract{Inputs: []algorithm.Field{{Name: "note", Type: algorithm.TypeText}}}}
	if _, err := s.CreateVersion(ctx, a.ID, "", def, false); err != nil {
		t.Fatal(err)
	}
	c, err = s.ForProject("default").Contract(ctx, flow.AlgorithmRef{ID: a.ID})
	if err != nil || len(c.Inputs) != 1 || c.Inputs[0].Type != "string" {
		t.Fatalf("stored version's contract: %+v %v", c, err)
	}

	for _, tc := range []struct {
		name string
		algs flow.Algorithms
		ref  flow.AlgorithmRef
	}{
		{"unknown id", s, flow.AlgorithmRef{ID: "alg-nope"}},
		{"unknown version", s, flow.AlgorithmRef{ID: a.ID, Version: "9"}},
		{"other project", s.ForProject("other"), flow.AlgorithmRef{ID: a.ID}},
	} {
		if _, err := tc.algs.Contract(ctx, tc.ref); !errors.Is(err, flow.ErrUnknownAlgorithm) {
			t.Errorf("%s: %v, want flow.ErrUnknownAlgorithm", tc.name, err)
		}
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	for _, algs := range []flow.Algorithms{s, s.ForProject("default")} {
		if _, err := algs.Contract(canceled, flow.AlgorithmRef{ID: a.ID}); !errors.Is(err, context.Canceled) {
			t.Errorf("%T with a canceled ctx: %v, want context.Canceled", algs, err)
		}
	}

	_, err = s.Invoke(ctx, flow.AlgorithmRef{ID: a.ID}, map[string]any{"note": "hi"})
	if !errors.Is(err, flow.ErrUnknownAlgorithm) || !errors.Is(err, algorithm.ErrUnknownAlgorithm) {
		t.Fatalf("invoking a stopped version: %v, want both unknown-algorithm sentinels", err)
	}
}

// Every flow type the mapping gives is a port type of the engine, so
// validation compares it with the ports it feeds.
func TestFlowTypesArePortTypes(t *testing.T) {
	for typ, ft := range flowTypes {
		if !slices.Contains(flow.PortTypes(), ft) {
			t.Errorf("contract type %q maps to %q, not a flow port type %v", typ, ft, flow.PortTypes())
		}
	}
}
