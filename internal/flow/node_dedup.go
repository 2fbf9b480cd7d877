package flow

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tianshu-ai/tianshu/internal/function"
)

func init() { builtinKinds = append(builtinKinds, kindDedup) }

func kindDedup() *Kind {
	return &Kind{
		Name:     "dedup",
		Doc:      "Drops items whose config.key was already seen within config.window; outputs {items}, and stops the branch when none is left.",
		Category: CategoryStream,
		Inputs:   []Port{{Name: "items", Type: TypeList, Required: true, Doc: "the items to deduplicate"}},
		Outputs:  []Port{{Name: "items", Type: TypeList, Doc: "the items not seen within the window"}},
		Config:   dedupConfig{},
		Compile: func(b *Builder) Node {
			var cfg dedupConfig
			if !b.Config(&cfg) {
				return nil
			}
			key, maxKeys, _ := cfg.streamCommon.compile(b, true)
			if cfg.Window == "" {
				b.Errorf("config.window", "missing window duration")
			}
			w := b.Duration("config.window", cfg.Window, time.Minute)
			switch cfg.Scope {
			case "", "device", "task":
			default:
				b.Errorf("config.scope", "unknown scope %q; use device or task", cfg.Scope)
			}
			b.DeclareOutputs([]string{"items"})
			return &dedupNode{items: b.RequireArg("items"), key: key, window: w, maxKeys: maxKeys, task: cfg.Scope == "task"}
		},
	}
}

type dedupConfig struct {
	streamCommon `required:"key"`
	Window       string `json:"window" format:"duration" required:"true" example:"1m" doc:"how long a key stays seen"`
	Scope        string `json:"scope" enum:"device|task" default:"device" doc:"device: keys are seen per device (message key); task: across all the task's devices, so a key such as a camera group's name spans cameras"`
}

type dedupNode struct {
	items   int
	key     *function.Expr
	window  time.Duration
	maxKeys int
	// task: keys are not partitioned by the message key (the device).
	task bool
}

type dedupState struct {
	mu   sync.Mutex
	seen *keyed[time.Time]
}

func (n *dedupNode) Run(ctx context.Context, c *Call) (any, error) {
	items, err := listArg(c, n.items, "items")
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(items))
	for i, it := range items {
		if n.task {
			keys[i], err = n.key.EvalString(ctx, it)
		} else {
			keys[i], err = itemKey(ctx, c, n.key, it)
		}
		if err != nil {
			return nil, fmt.Errorf("config.key: %w", err)
		}
	}
	st := c.NodeState(func() any { return &dedupState{seen: newKeyed[time.Time](n.maxKeys, n.window)} }).(*dedupState)
	now := c.Time()
	out := make([]any, 0, len(items))
	st.mu.Lock()
	st.seen.expire(now, nil)
	for i, it := range items {
		if _, ok := st.seen.m[keys[i]]; ok {
			continue // seen within the window (expire dropped older ones)
		}
		st.seen.get(keys[i], now, func() time.Time { return now }, nil)
		out = append(out, it)
	}
	st.mu.Unlock()
	if len(out) == 0 {
		c.SelectNone()
	}
	return map[string]any{"items": out}, nil
}
