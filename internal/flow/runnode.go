package flow

import (
	"github.com/tianshu-ai/tianshu/internal/function"

	"context"
	"fmt"
	"sort"
)

// RunNode runs node id of the plan alone, as if each node in pinned had
// run and output pinned[node] (a node not pinned counts as not run, so
// paths into it give null), and returns the node's result (status,
// output, error, duration). Nothing else runs: this is an editor's
// single-node test run on upstream outputs it kept from an earlier run.
// Only top-level nodes can be run (not nodes inside foreach bodies). The
// error is the node's, as Run returns it, or wraps ErrBadInput for an
// unknown id.
func (p *Plan) RunNode(ctx context.Context, in Input, id string, pinned map[string]any) (NodeResult, error) {
	target := -1
	byID := make(map[string]int, len(p.nodes))
	for i := range p.nodes {
		byID[p.nodes[i].id] = i
		if p.nodes[i].id == id {
			target = i
		}
	}
	if target < 0 {
		return NodeResult{}, fmt.Errorf("%w: no node %q", ErrBadInput, id)
	}
	names := make([]string, 0, len(pinned))
	for name := range pinned {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if j, ok := byID[name]; !ok || j == target {
			return NodeResult{}, fmt.Errorf("%w: pinned output of %q: not another node of the flow", ErrBadInput, name)
		}
	}
	r := p.get()
	r.ctx = function.WithMemo(ctx, &r.memo)
	r.input = in
	r.input.Trace = true
	r.scope = in.Data
	for _, name := range names {
		s := &r.slots[byID[name]]
		s.out = pinned[name]
		s.state.Store(stOK)
	}
	s := &r.slots[target]
	s.state.Store(stRunning)
	r.exec(int32(target))
	r.wg.Wait()
	if r.cancel != nil {
		r.cancel()
	}
	n := &p.nodes[target]
	res := NodeResult{ID: n.id, Kind: n.kindName, Status: statusNames[s.state.Load()], Output: s.out, Duration: s.dur, Attempts: int(s.attempts)}
	if s.err != nil {
		res.Error = s.err.Error()
	}
	err := r.err
	p.put(r)
	return res, err
}
