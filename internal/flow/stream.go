package flow

import (
	"context"
	"fmt"
	"time"

	"github.com/tianshu-ai/tianshu/internal/function"
)

// Helpers shared by the stream kinds (track, bestshot, dedup, throttle,
// window, zone). Stream state is partitioned by Input.Key (the device) and,
// where a node has one, by its key expression over each item; every
// partition is bounded (maxKeys, least recently used evicted) and dropped
// when idle.
//
// Stream nodes assume the messages of one partition arrive in time order;
// a task that runs several messages of one device concurrently should
// expect the same reordering it would see from the network.

type streamCommon struct {
	Key     string `json:"key" format:"expression" example:"item[\"label\"]" doc:"Starlark expression over item giving the partition key within the device, e.g. item[\"label\"]"`
	MaxKeys int    `json:"maxKeys" min:"0" max:"1000000" default:"10000" doc:"most partitions kept; the least recently used is evicted (0: 10000)"`
	Idle    string `json:"idle" format:"duration" default:"1m" doc:"a partition unseen this long is dropped"`
}

const defaultIdle = time.Minute

func (s *streamCommon) compile(b *Builder, keyRequired bool) (key *function.Expr, maxKeys int, idle time.Duration) {
	if s.Key != "" {
		key = b.Expr("config.key", s.Key, []string{"item"})
	} else if keyRequired {
		b.Errorf("config.key", "missing key expression (over item, e.g. item[\"label\"])")
	}
	if s.MaxKeys < 0 || s.MaxKeys > 1_000_000 {
		b.Errorf("config.maxKeys", "must be between 1 and 1000000, got %d", s.MaxKeys)
	}
	maxKeys = s.MaxKeys
	if maxKeys == 0 {
		maxKeys = 10000
	}
	idle = b.Duration("config.idle", s.Idle, defaultIdle)
	return key, maxKeys, idle
}

// itemKey is the partition key of one item: the message key plus the key
// expression's value, if the node has one.
func itemKey(ctx context.Context, c *Call, e *function.Expr, item any) (string, error) {
	if e == nil {
		return c.Key(), nil
	}
	k, err := e.EvalString(ctx, item)
	if err != nil {
		return "", err
	}
	return c.Key() + "\x00" + k, nil
}

// listArg reads a list input; nil is empty.
func listArg(c *Call, i int, name string) ([]any, error) {
	v := c.Arg(i)
	l, ok := toList(v)
	if !ok {
		return nil, Permanent(fmt.Errorf("input %s is a %T, not a list", name, v))
	}
	return l, nil
}

// with returns a copy of item (a map) with extra fields; other items are
// wrapped as {"value": item, ...}. Inputs are shared with other nodes, so
// they are never modified in place.
func with(item any, kv ...any) map[string]any {
	var out map[string]any
	if m, ok := item.(map[string]any); ok {
		out = make(map[string]any, len(m)+len(kv)/2)
		for k, v := range m {
			out[k] = v
		}
	} else {
		out = map[string]any{"value": item}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func num(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case float32:
		return float64(x), true
	case int32:
		return float64(x), true
	}
	return 0, false
}

// boxOf reads item["box"] as [x, y, w, h].
func boxOf(item any) ([4]float64, bool) {
	var b [4]float64
	m, ok := item.(map[string]any)
	if !ok {
		return b, false
	}
	l, ok := toList(m["box"])
	if !ok || len(l) != 4 {
		return b, false
	}
	for i := range 4 {
		if b[i], ok = num(l[i]); !ok {
			return b, false
		}
	}
	return b, true
}

func iou(a, b [4]float64) float64 {
	x1, y1 := max(a[0], b[0]), max(a[1], b[1])
	x2, y2 := min(a[0]+a[2], b[0]+b[2]), min(a[1]+a[3], b[1]+b[3])
	if x2 <= x1 || y2 <= y1 {
		return 0
	}
	inter := (x2 - x1) * (y2 - y1)
	union := a[2]*a[3] + b[2]*b[3] - inter
	if union <= 0 {
		return 0
	}
	return inter / union
}

func trackIDOf(item any) (int64, bool) {
	m, ok := item.(map[string]any)
	if !ok {
		return 0, false
	}
	switch x := m["trackId"].(type) {
	case int64:
		return x, true
	case float64:
		return int64(x), true
	case int:
		return int64(x), true
	}
	return 0, false
}
