package flow

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
)

func init() { builtinKinds = append(builtinKinds, kindForeach) }

func kindForeach() *Kind {
	return &Kind{
		Name:     "foreach",
		Doc:      "Runs config.body once per element of input items ($item, $index); outputs {results: [...]} in input order.",
		Blocking: true,
		Category: CategoryLogic,
		Inputs:   []Port{{Name: "items", Type: TypeList, Required: true, Doc: "the list to run the body for, one element ($item) at a time"}},
		// The other mapped inputs are the body's $input.
		MoreInputs: true,
		Outputs:    []Port{{Name: "results", Type: TypeList, Doc: "the body's output per element, in input order"}},
		Config:     foreachConfig{},
		Compile:    compileForeach,
	}
}

type foreachConfig struct {
	Body        *Spec `json:"body" required:"true" example:"{\"nodes\": [{\"id\": \"each\", \"kind\": \"passthrough\"}], \"output\": {\"item\": \"$item\"}}" doc:"the flow run per element: nodes, edges, output; it sees $item, $index and the mapped inputs as $input"`
	Concurrency int   `json:"concurrency" min:"0" max:"256" default:"4" doc:"elements run at once (0: 4)"`
	MaxItems    int   `json:"maxItems" default:"10000" doc:"more elements than this fail the node (0: 10000)"`
	SkipFailed  bool  `json:"skipFailed" default:"false" doc:"leave a failed element's result null instead of failing the node"`
}

func compileForeach(b *Builder) Node {
	var cfg foreachConfig
	if !b.Config(&cfg) {
		return nil
	}
	items := b.RequireArg("items")
	if cfg.Body == nil {
		b.Errorf("config.body", "missing body (a flow with nodes, edges and output)")
		return nil
	}
	normalizeSpec(cfg.Body)
	if cfg.Concurrency < 0 || cfg.Concurrency > 256 {
		b.Errorf("config.concurrency", "must be between 1 and 256, got %d", cfg.Concurrency)
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 4
	}
	if cfg.MaxItems <= 0 {
		cfg.MaxItems = 10000
	}
	body := b.Body("config.body", cfg.Body, true)
	if body == nil || items < 0 {
		return nil
	}
	b.DeclareOutputs([]string{"results"})
	return &foreachNode{body: body, items: items, conc: cfg.Concurrency, max: cfg.MaxItems, skip: cfg.SkipFailed,
		parallel: cfg.Concurrency > 1 && body.anyBlocking()}
}

func (p *Plan) anyBlocking() bool {
	for i := range p.nodes {
		if p.nodes[i].blocking {
			return true
		}
	}
	return false
}

type foreachNode struct {
	body     *Plan
	items    int
	conc     int
	max      int
	skip     bool
	parallel bool // only bodies that wait on I/O are worth goroutines
}

// toList accepts any slice; nil is an empty list.
func toList(v any) ([]any, bool) {
	switch x := v.(type) {
	case nil:
		return nil, true
	case []any:
		return x, true
	case []map[string]any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = e
		}
		return out, true
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return nil, false
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out, true
}

func (n *foreachNode) Run(ctx context.Context, c *Call) (any, error) {
	raw := c.Arg(n.items)
	items, ok := toList(raw)
	if !ok {
		return nil, Permanent(fmt.Errorf("input items is a %T, not a list", raw))
	}
	if len(items) > n.max {
		return nil, Permanent(fmt.Errorf("%d items; the limit is %d (config.maxItems)", len(items), n.max))
	}
	scope := c.Args()
	results := make([]any, len(items))
	if !n.parallel || len(items) < 2 {
		for i, it := range items {
			out, err := c.RunBody(ctx, n.body, scope, it, i)
			if err != nil {
				if n.skip {
					continue
				}
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
			results[i] = out
		}
		return map[string]any{"results": results}, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		errOnce  sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	work := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= len(items) || ctx.Err() != nil {
				return
			}
			out, err := c.RunBody(ctx, n.body, scope, items[i], i)
			if err != nil {
				if n.skip {
					continue
				}
				errOnce.Do(func() { firstErr = fmt.Errorf("item %d: %w", i, err) })
				cancel()
				return
			}
			results[i] = out
		}
	}
	workers := min(n.conc, len(items))
	wg.Add(workers - 1)
	for range workers - 1 {
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return map[string]any{"results": results}, nil
}
