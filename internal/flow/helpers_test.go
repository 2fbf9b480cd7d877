package flow

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeAlgos is an in-process Algorithms: each algorithm is a Go function.
type fakeAlgos struct {
	fns       map[string]func(ctx context.Context, in map[string]any) (map[string]any, error)
	contracts map[string]*Contract
	calls     atomic.Int64
}

func newFakeAlgos() *fakeAlgos {
	a := &fakeAlgos{fns: map[string]func(context.Context, map[string]any) (map[string]any, error){}, contracts: map[string]*Contract{}}
	a.add("alg-detect", &Contract{
		Inputs:  []Field{{Name: "image", Type: "image", Required: true}, {Name: "minSize", Type: "number"}},
		Outputs: []Field{{Name: "faces", Type: "list"}},
	}, func(_ context.Context, in map[string]any) (map[string]any, error) {
		n, _ := in["image"].(string)
		faces := []any{}
		for i := range len(n) {
			faces = append(faces, map[string]any{"box": []any{float64(10 * i), 0.0, 10.0, 10.0}, "score": float64(i) / 10})
		}
		return map[string]any{"faces": faces}, nil
	})
	a.add("alg-attr", &Contract{
		Inputs:  []Field{{Name: "face", Type: "object", Required: true}},
		Outputs: []Field{{Name: "age", Type: "integer"}},
	}, func(_ context.Context, in map[string]any) (map[string]any, error) {
		f := in["face"].(map[string]any)
		return map[string]any{"age": int64(20 + 10*f["score"].(float64))}, nil
	})
	a.add("alg-echo", &Contract{}, func(_ context.Context, in map[string]any) (map[string]any, error) { return in, nil })
	return a
}

func (a *fakeAlgos) add(id string, c *Contract, fn func(context.Context, map[string]any) (map[string]any, error)) {
	a.fns[id] = fn
	a.contracts[id] = c
}

func (a *fakeAlgos) Invoke(ctx context.Context, ref AlgorithmRef, in map[string]any) (map[string]any, error) {
	a.calls.Add(1)
	fn, ok := a.fns[ref.ID]
	if !ok {
		return nil, ErrUnknownAlgorithm
	}
	return fn(ctx, in)
}

func (a *fakeAlgos) Contract(ctx context.Context, ref AlgorithmRef) (*Contract, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, ok := a.contracts[ref.ID]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownAlgorithm, ref.ID)
	}
	return c, nil
}

type fakeSinks struct {
	mu      sync.Mutex
	records []Record
	events  []Event
}

func (s *fakeSinks) Store(_ context.Context, r Record) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records = append(s.records, r)
	return fmt.Sprintf("rec-%d", len(s.records)), nil
}

func (s *fakeSinks) Publish(_ context.Context, e Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
	return nil
}

type fakeFlows map[string]string

func (f fakeFlows) Flow(ref FlowRef) (*Spec, error) {
	doc, ok := f[ref.ID+"@"+ref.Version]
	if !ok {
		return nil, ErrUnknownFlow
	}
	return Parse([]byte(doc), Limits{})
}

func testOptions() Options {
	return Options{Algorithms: newFakeAlgos()}
}

func compileDoc(t testing.TB, doc string, opts Options) *Plan {
	t.Helper()
	spec, err := Parse([]byte(doc), Limits{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	p, err := Compile(t.Context(), spec, opts)
	if err != nil {
		t.Fatalf("Compile:\n%v", err)
	}
	return p
}

func validateDoc(t testing.TB, doc string, opts Options) Errors {
	t.Helper()
	spec, err := Parse([]byte(doc), Limits{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return Validate(t.Context(), spec, opts)
}

func runMsg(t testing.TB, p *Plan, in Input) Result {
	t.Helper()
	res, err := p.Run(context.Background(), in)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

func statuses(res Result) string {
	var parts []string
	for _, n := range res.Nodes {
		parts = append(parts, n.ID+"="+string(n.Status))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

var _ = errors.New
