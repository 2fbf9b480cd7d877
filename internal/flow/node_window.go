package flow

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tianshu-ai/tianshu/internal/function"
)

func init() { builtinKinds = append(builtinKinds, kindWindow) }

func kindWindow() *Kind {
	return &Kind{
		Name: "window",
		Doc: "Counts items (or messages, without input items) per config.key value in tumbling windows of config.interval; " +
			"outputs {start, counts, total, closed}; with emit \"close\" the branch runs only when a window closes.",
		Category: CategoryStream,
		Inputs:   []Port{{Name: "items", Type: TypeList, Doc: "items to count by key; without it messages are counted"}},
		Outputs: []Port{
			{Name: "closed", Type: TypeObject, Doc: "the window that just closed ({start, counts, total}), or null"},
			{Name: "counts", Type: TypeObject, Doc: "counts per key in the current window"},
			{Name: "start", Type: TypeString, Doc: "the current window's start (RFC 3339)"},
			{Name: "total", Type: TypeInteger, Doc: "the count in the current window"},
		},
		Config: windowConfig{},
		Compile: func(b *Builder) Node {
			var cfg windowConfig
			if !b.Config(&cfg) {
				return nil
			}
			key, maxKeys, idle := cfg.streamCommon.compile(b, false)
			if cfg.Interval == "" {
				b.Errorf("config.interval", "missing interval duration")
			}
			iv := b.Duration("config.interval", cfg.Interval, time.Minute)
			if iv <= 0 {
				b.Errorf("config.interval", "must be positive")
				iv = time.Minute
			}
			switch cfg.Emit {
			case "", "every", "close":
			default:
				b.Errorf("config.emit", "unknown value %q; use every or close", cfg.Emit)
			}
			items := b.Arg("items")
			if key != nil && items < 0 {
				b.Errorf("config.key", "a key expression needs input items")
			}
			b.DeclareOutputs([]string{"closed", "counts", "start", "total"})
			return &windowNode{items: items, key: key, interval: iv, onClose: cfg.Emit == "close", maxKeys: maxKeys, idle: max(idle, 2*iv)}
		},
	}
}

type windowConfig struct {
	streamCommon
	Interval string `json:"interval" format:"duration" required:"true" example:"1m" doc:"the length of a tumbling window"`
	Emit     string `json:"emit" enum:"every|close" default:"every" doc:"every: run the successors for every message; close: only when a window closes"`
}

type windowNode struct {
	items    int
	key      *function.Expr
	interval time.Duration
	onClose  bool
	maxKeys  int
	idle     time.Duration
}

type countWindow struct {
	start  time.Time
	counts map[string]int64
	total  int64
}

func (w *countWindow) snapshot() map[string]any {
	counts := make(map[string]any, len(w.counts))
	for k, v := range w.counts {
		counts[k] = v
	}
	return map[string]any{"start": w.start.UTC().Format(time.RFC3339Nano), "counts": counts, "total": w.total}
}

type windowState struct {
	mu   sync.Mutex
	keys *keyed[*countWindow]
}

func (n *windowNode) Run(ctx context.Context, c *Call) (any, error) {
	var labels []string
	if n.items >= 0 {
		items, err := listArg(c, n.items, "items")
		if err != nil {
			return nil, err
		}
		labels = make([]string, len(items))
		if n.key != nil {
			for i, it := range items {
				if labels[i], err = n.key.EvalString(ctx, it); err != nil {
					return nil, fmt.Errorf("config.key: %w", err)
				}
			}
		}
	} else {
		labels = []string{""}
	}
	st := c.NodeState(func() any { return &windowState{keys: newKeyed[*countWindow](n.maxKeys, n.idle)} }).(*windowState)
	now := c.Time()
	start := now.Truncate(n.interval)
	st.mu.Lock()
	st.keys.expire(now, nil)
	w := st.keys.get(c.Key(), now, func() *countWindow { return &countWindow{start: start, counts: map[string]int64{}} }, nil)
	var closed any
	if start.After(w.start) {
		if w.total > 0 {
			closed = w.snapshot()
		}
		w.start, w.counts, w.total = start, map[string]int64{}, 0
	}
	for _, l := range labels {
		w.counts[l]++
		w.total++
	}
	out := w.snapshot()
	st.mu.Unlock()
	out["closed"] = closed
	if n.onClose && closed == nil {
		c.SelectNone()
	}
	return out, nil
}
