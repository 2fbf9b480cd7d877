package push

import (
	"context"
	"encoding/json"
	"path"
	"slices"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/event"
	"github.com/tianshu-ai/tianshu/internal/function"
)

// matcher is a compiled Filter; safe for concurrent use.
type matcher struct {
	f    Filter
	expr *function.Expr
}

var exprVars = []string{"event", "type", "subject", "data"}

func compileFilter(f Filter) (*matcher, error) {
	for i, t := range f.Types {
		if _, err := path.Match(t, ""); err != nil {
			return nil, api.InvalidValue("Filter.Types", "[%d] %q: bad glob", i, t)
		}
	}
	m := &matcher{f: f}
	if f.Expression != "" {
		e, err := function.CompileExpr("filter", f.Expression, exprVars, function.Limits{})
		if err != nil {
			return nil, api.InvalidValue("Filter.Expression", "%v", err)
		}
		m.expr = e
	}
	return m, nil
}

// match reports whether the event JSON passes the filter. A filter that
// cannot be evaluated (bad JSON with filters set, an expression error) does
// not match; the error is returned for the subscription's last error.
func (m *matcher) match(ctx context.Context, data []byte) (bool, error) {
	f := m.f
	if len(f.TaskIds) == 0 && len(f.Types) == 0 && len(f.DeviceIds) == 0 && m.expr == nil {
		return true, nil
	}
	var ev event.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return false, err
	}
	if len(f.TaskIds) > 0 && !slices.Contains(f.TaskIds, ev.TaskID) {
		return false, nil
	}
	if len(f.DeviceIds) > 0 && !slices.Contains(f.DeviceIds, ev.Subject) {
		return false, nil
	}
	if len(f.Types) > 0 && !slices.ContainsFunc(f.Types, func(p string) bool {
		ok, _ := path.Match(p, ev.Type)
		return ok
	}) {
		return false, nil
	}
	if m.expr == nil {
		return true, nil
	}
	var whole map[string]any
	if err := json.Unmarshal(data, &whole); err != nil {
		return false, err
	}
	if ev.Data == nil {
		ev.Data = map[string]any{}
	}
	return m.expr.EvalBool(ctx, whole, ev.Type, ev.Subject, ev.Data)
}
