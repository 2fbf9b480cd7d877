package flow

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tianshu-ai/tianshu/internal/function"
)

func init() { builtinKinds = append(builtinKinds, kindThrottle) }

func kindThrottle() *Kind {
	return &Kind{
		Name: "throttle",
		Doc: "Lets at most config.limit per config.interval through, per key: items of input items (outputs {items}), " +
			"or, without items, the message itself (outputs {passed}); stops the branch when nothing passes.",
		Category: CategoryStream,
		Inputs:   []Port{{Name: "items", Type: TypeList, Doc: "items to let through; without it the message itself is throttled"}},
		Outputs: []Port{
			{Name: "items", Type: TypeList, Doc: "the items let through (with input items)"},
			{Name: "passed", Type: TypeBool, Doc: "whether the message passed (without input items)"},
		},
		Config: throttleConfig{},
		Compile: func(b *Builder) Node {
			var cfg throttleConfig
			if !b.Config(&cfg) {
				return nil
			}
			key, maxKeys, _ := cfg.streamCommon.compile(b, false)
			if cfg.Limit < 1 {
				b.Errorf("config.limit", "must be at least 1, got %d", cfg.Limit)
			}
			if cfg.Interval == "" {
				b.Errorf("config.interval", "missing interval duration")
			}
			iv := b.Duration("config.interval", cfg.Interval, time.Second)
			items := b.Arg("items")
			if key != nil && items < 0 {
				b.Errorf("config.key", "a key expression needs input items")
			}
			b.DeclareOutputs([]string{"items", "passed"})
			return &throttleNode{items: items, key: key, limit: cfg.Limit, interval: iv, maxKeys: maxKeys}
		},
	}
}

type throttleConfig struct {
	streamCommon
	Limit    int    `json:"limit" required:"true" min:"1" example:"10" doc:"how many pass per interval and key"`
	Interval string `json:"interval" format:"duration" required:"true" example:"1s" doc:"the length of a rate window"`
}

type throttleNode struct {
	items    int
	key      *function.Expr
	limit    int
	interval time.Duration
	maxKeys  int
}

type rateWindow struct {
	start time.Time
	count int
}

type throttleState struct {
	mu   sync.Mutex
	keys *keyed[*rateWindow]
}

func (n *throttleNode) allow(st *throttleState, key string, now time.Time) bool {
	w := st.keys.get(key, now, func() *rateWindow { return &rateWindow{start: now} }, nil)
	if now.Sub(w.start) >= n.interval || now.Before(w.start) {
		w.start, w.count = now, 0
	}
	if w.count >= n.limit {
		return false
	}
	w.count++
	return true
}

func (n *throttleNode) Run(ctx context.Context, c *Call) (any, error) {
	st := c.NodeState(func() any { return &throttleState{keys: newKeyed[*rateWindow](n.maxKeys, 2*n.interval)} }).(*throttleState)
	now := c.Time()
	if n.items < 0 {
		st.mu.Lock()
		st.keys.expire(now, nil)
		ok := n.allow(st, c.Key(), now)
		st.mu.Unlock()
		if !ok {
			c.SelectNone()
		}
		return map[string]any{"passed": ok}, nil
	}
	items, err := listArg(c, n.items, "items")
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(items))
	for i, it := range items {
		if keys[i], err = itemKey(ctx, c, n.key, it); err != nil {
			return nil, fmt.Errorf("config.key: %w", err)
		}
	}
	out := make([]any, 0, len(items))
	st.mu.Lock()
	st.keys.expire(now, nil)
	for i, it := range items {
		if n.allow(st, keys[i], now) {
			out = append(out, it)
		}
	}
	st.mu.Unlock()
	if len(out) == 0 {
		c.SelectNone()
	}
	return map[string]any{"items": out}, nil
}
