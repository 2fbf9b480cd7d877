package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tianshu-ai/tianshu/internal/function"
)

// Options configure Compile. Every field is optional: with none set, only
// algorithm and subflow nodes are refused (no Algorithms, no Flows).
type Options struct {
	// Registry holds the node kinds; nil means NewRegistry().
	Registry *Registry
	// Algorithms invokes algorithm nodes and checks their contracts.
	Algorithms Algorithms
	// Flows resolves subflow nodes.
	Flows Flows
	// Zones resolves zone nodes that name a device's zone; nil refuses
	// them at run time.
	Zones Zones
	// Watchlists matches faces for match nodes; nil refuses them.
	Watchlists Watchlists
	// Metrics, when set, receives per-node metrics. Timing every node costs
	// two clock reads per node.
	Metrics *Metrics
	// Tracer, when set, opens a span per node.
	Tracer Tracer
	// Limits bound the document; zero fields take DefaultLimits.
	Limits Limits
	// FunctionLimits bound every script and expression call.
	FunctionLimits function.Limits
	// CheckScripts compiles function scripts without running their
	// top-level code (function.Check): for validation on behalf of a caller
	// who may only read, whose request must not spend the server's CPU and
	// memory. The plan it gives cannot run function nodes.
	CheckScripts bool
	// Logger receives warnings (a retry, a recovered panic); nil discards.
	Logger *slog.Logger
}

// Compile validates spec and compiles it into a Plan. The error, when not
// nil, is an Errors listing every problem found. ctx bounds the lookups
// made while compiling (algorithm contracts), not the plan's runs.
func Compile(ctx context.Context, spec *Spec, opts Options) (*Plan, error) {
	c := newCompiler(ctx, opts, spec.Name)
	p := c.compileFlow(spec, "", 0, scope{params: spec.Parameters, inputs: spec.Inputs})
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	return p, nil
}

// Validate returns every problem in spec, or nil when it compiles. ctx
// bounds the lookups made while validating, as for Compile.
func Validate(ctx context.Context, spec *Spec, opts Options) Errors {
	c := newCompiler(ctx, opts, spec.Name)
	c.compileFlow(spec, "", 0, scope{params: spec.Parameters, inputs: spec.Inputs})
	return c.errs
}

type compiler struct {
	ctx   context.Context
	opts  Options
	reg   *Registry
	lim   Limits
	errs  Errors
	nodes int
	flow  string
	stack []FlowRef
}

func newCompiler(ctx context.Context, opts Options, name string) *compiler {
	reg := opts.Registry
	if reg == nil {
		reg = NewRegistry()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	lim := opts.Limits.withDefaults()
	if opts.FunctionLimits.MaxSourceBytes == 0 {
		opts.FunctionLimits.MaxSourceBytes = lim.MaxScriptBytes
	}
	return &compiler{ctx: ctx, opts: opts, reg: reg, lim: lim, flow: name}
}

// scope is what paths of one (possibly nested) flow may refer to besides
// its own ancestor nodes.
type scope struct {
	params map[string]ParamSpec
	inputs map[string]InputSpec
	item   bool // foreach body: $item and $index exist
}

var reserved = map[string]bool{"input": true, "params": true, "item": true, "index": true}

const (
	onErrorFail = iota
	onErrorSkip
	onErrorRoute
)

func (c *compiler) errf(node, field, format string, args ...any) {
	c.errs = append(c.errs, &Error{Node: node, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// edgeErrf reports a problem of the edge from -> to, named like nodes
// ("outer/inner" inside bodies).
func (c *compiler) edgeErrf(node, from, to, field, format string, args ...any) {
	c.errs = append(c.errs, &Error{Node: node, Edge: &EdgeSpec{From: from, To: to}, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (c *compiler) compileFlow(spec *Spec, prefix string, depth int, sc scope) *Plan {
	where := strings.TrimSuffix(prefix, "/")
	if depth > c.lim.MaxDepth {
		c.errf(where, "", "nesting is deeper than %d levels of foreach/subflow bodies", c.lim.MaxDepth)
		return nil
	}
	if c.nodes+len(spec.Nodes) > c.lim.MaxNodes {
		c.errf(where, "nodes", "%d nodes in all; the limit is %d", c.nodes+len(spec.Nodes), c.lim.MaxNodes)
		return nil
	}
	c.nodes += len(spec.Nodes)
	if len(spec.Nodes) == 0 {
		c.errf(where, "nodes", "a flow needs at least one node")
		return nil
	}
	p := &Plan{project: -1, name: c.flow, prefix: prefix, nodes: make([]node, len(spec.Nodes)), hasItem: sc.item,
		metrics: c.opts.Metrics, tracer: c.opts.Tracer, log: c.opts.Logger, params: sc.params}
	p.timed = c.opts.Metrics != nil
	if c.opts.Metrics != nil && depth == 0 {
		p.msgOK = c.opts.Metrics.messages.WithLabelValues(c.flow, "ok")
		p.msgFailed = c.opts.Metrics.messages.WithLabelValues(c.flow, "failed")
	}
	for _, name := range sortedKeys(sc.params) {
		ps := sc.params[name]
		if ps.Default != nil {
			if p.paramDefaults == nil {
				p.paramDefaults = map[string]any{}
			}
			p.paramDefaults[name] = ps.Default
		}
		if !checkType(ps.Type, ps.Default) {
			c.errf(where, "parameters."+name+".default", "%v is not a %s", ps.Default, ps.Type)
		}
		if !knownType(ps.Type) {
			c.errf(where, "parameters."+name+".type", "unknown type %q; use %s", ps.Type, strings.Join(typeNames, ", "))
		}
		if ps.Required {
			p.requiredParams = append(p.requiredParams, name)
		}
	}
	sort.Strings(p.requiredParams)
	if depth == 0 {
		for _, name := range sortedKeys(sc.inputs) {
			is := sc.inputs[name]
			if is.Required {
				p.requiredInputs = append(p.requiredInputs, name)
			}
			if !knownType(is.Type) {
				c.errf(where, "inputs."+name+".type", "unknown type %q; use %s", is.Type, strings.Join(typeNames, ", "))
			}
		}
		sort.Strings(p.requiredInputs)
	}

	// Ids and kinds.
	index := make(map[string]int, len(spec.Nodes))
	valid := make([]bool, len(spec.Nodes))
	for i := range spec.Nodes {
		ns := &spec.Nodes[i]
		n := &p.nodes[i]
		n.id = ns.ID
		n.path = prefix + ns.ID
		n.kindName = ns.Kind
		label := n.path
		switch {
		case ns.ID == "":
			c.errf(where, fmt.Sprintf("nodes[%d].id", i), "missing id")
			continue
		case len(ns.ID) > c.lim.MaxIDBytes:
			c.errf(where, fmt.Sprintf("nodes[%d].id", i), "id longer than %d bytes", c.lim.MaxIDBytes)
			continue
		case !isName(ns.ID):
			c.errf(label, "id", "ids are letters, digits, _ and -, starting with a letter or _")
			continue
		case reserved[ns.ID]:
			c.errf(label, "id", "%q is reserved for paths ($%s)", ns.ID, ns.ID)
			continue
		}
		if _, dup := index[ns.ID]; dup {
			c.errf(label, "id", "duplicate id")
			continue
		}
		index[ns.ID] = i
		valid[i] = true
		k, ok := c.reg.Lookup(ns.Kind)
		if !ok {
			names := []string{}
			for _, k := range c.reg.Kinds() {
				names = append(names, k.Name)
			}
			if ns.Kind == "" {
				c.errf(label, "kind", "missing kind; known: %s", strings.Join(names, ", "))
			} else {
				c.errf(label, "kind", "unknown kind %q; known: %s", ns.Kind, strings.Join(names, ", "))
			}
			continue
		}
		n.kind = k
		n.blocking = k.Blocking
	}

	// Edges.
	type rawEdge struct {
		from, to int
		onErr    bool
	}
	var edges []rawEdge
	seen := map[[2]int]bool{}
	add := func(from, to int, onErr bool) {
		key := [2]int{from, to}
		if onErr {
			key[0] = -from - 1
		}
		if seen[key] {
			return
		}
		seen[key] = true
		edges = append(edges, rawEdge{from, to, onErr})
	}
	lookup := func(node, field, id string) (int, bool) {
		i, ok := index[id]
		if !ok {
			if id == "" {
				c.errf(node, field, "missing node id")
			} else {
				c.errf(node, field, "unknown node %q", id)
			}
		}
		return i, ok
	}
	for i, e := range spec.Edges {
		errsBefore := len(c.errs)
		f, ok1 := lookup(where, fmt.Sprintf("edges[%d].from", i), e.From)
		t, ok2 := lookup(where, fmt.Sprintf("edges[%d].to", i), e.To)
		if ok1 && ok2 {
			add(f, t, false)
		}
		for _, err := range c.errs[errsBefore:] {
			err.Edge = &EdgeSpec{From: prefix + e.From, To: prefix + e.To}
		}
	}
	for i := range spec.Nodes {
		ns := &spec.Nodes[i]
		if !valid[i] {
			continue
		}
		label := prefix + ns.ID
		for j, to := range ns.Next {
			if t, ok := lookup(label, fmt.Sprintf("next[%d]", j), to); ok {
				add(i, t, false)
			}
		}
		if k := p.nodes[i].kind; k != nil && k.Edges != nil {
			for _, to := range k.Edges(ns.Config) {
				if t, ok := index[to]; ok {
					add(i, t, false)
				} // unknown targets are reported by the kind's Compile, with the exact field
			}
		}
		if ns.ErrorNext != "" {
			if t, ok := lookup(label, "errorNext", ns.ErrorNext); ok {
				add(i, t, true)
			}
		}
	}
	if len(edges) > c.lim.MaxEdges {
		c.errf(where, "edges", "%d edges; the limit is %d", len(edges), c.lim.MaxEdges)
		return nil
	}
	for _, e := range edges {
		p.nodes[e.from].out = append(p.nodes[e.from].out, edge{to: int32(e.to), onErr: e.onErr})
		p.nodes[e.to].in = append(p.nodes[e.to].in, int32(e.from))
		p.nodes[e.to].inDeg++
	}

	// Cycles, order, ancestors.
	order, cyclic := topoOrder(p.nodes)
	for _, comp := range cycles(p.nodes) {
		ids := make([]string, len(comp)+1)
		for j, k := range comp {
			ids[j] = p.nodes[k].id
		}
		ids[len(comp)] = ids[0]
		c.errf(p.nodes[comp[0]].path, "edges", "cycle: %s", strings.Join(ids, " -> "))
	}
	var anc []bitset
	if !cyclic {
		anc = make([]bitset, len(p.nodes))
		for _, i := range order {
			anc[i] = newBitset(len(p.nodes))
		}
		for _, i := range order {
			for _, e := range p.nodes[i].out {
				anc[e.to].or(anc[i])
				anc[e.to].set(int(i))
			}
		}
	}
	p.order = order
	for i := range p.nodes {
		if p.nodes[i].inDeg == 0 {
			p.sources = append(p.sources, int32(i))
		}
	}

	// Nodes, in order so that referenced nodes declare their outputs first.
	for _, i := range order {
		if !valid[i] || p.nodes[i].kind == nil {
			continue
		}
		c.compileNode(p, int(i), &spec.Nodes[i], anc, index, depth, sc)
	}

	// Output.
	names := sortedKeys(spec.Output)
	for _, name := range names {
		v := c.compileValue(p, spec.Output[name], -1, nil, index, sc, where, "output."+name, 0)
		p.output = append(p.output, outField{name: name, v: v})
	}
	p.project = projectedNode(p.output)
	return p
}

// projectedNode returns the node whose output the fields repeat key for
// key, or -1.
func projectedNode(fields []outField) int32 {
	node := int32(-1)
	for _, o := range fields {
		cp := o.v.path
		if cp == nil || cp.root != rootNode || len(cp.steps) != 1 || cp.steps[0].IsIndex || cp.steps[0].Key != o.name || (node >= 0 && cp.node != node) {
			return -1
		}
		node = cp.node
	}
	return node
}

func (c *compiler) compileNode(p *Plan, i int, ns *NodeSpec, anc []bitset, index map[string]int, depth int, sc scope) {
	n := &p.nodes[i]
	label := n.path
	if ns.Timeout != "" {
		d, err := time.ParseDuration(ns.Timeout)
		switch {
		case err != nil:
			c.errf(label, "timeout", "bad duration %q (use Go syntax: 500ms, 2s, 1m)", ns.Timeout)
		case d <= 0 || d > time.Hour:
			c.errf(label, "timeout", "must be between 0 and 1h, got %s", ns.Timeout)
		default:
			n.timeout = d
			n.timeoutStr = ns.Timeout
		}
	}
	if ns.Retry != nil {
		if ns.Retry.Max < 0 || ns.Retry.Max > 10 {
			c.errf(label, "retry.max", "must be between 0 and 10, got %d", ns.Retry.Max)
		} else {
			n.retries = ns.Retry.Max
		}
		if ns.Retry.Backoff != "" {
			d, err := time.ParseDuration(ns.Retry.Backoff)
			if err != nil || d < 0 || d > time.Minute {
				c.errf(label, "retry.backoff", "bad duration %q (0 to 1m, Go syntax)", ns.Retry.Backoff)
			} else {
				n.backoff = d
			}
		}
	}
	switch ns.OnError {
	case "", "fail":
		n.onError = onErrorFail
		if ns.ErrorNext != "" {
			if ns.OnError == "" {
				n.onError = onErrorRoute
			} else {
				c.errf(label, "errorNext", "set, but onError is %q; use onError \"route\"", ns.OnError)
			}
		}
	case "skip":
		n.onError = onErrorSkip
		if ns.ErrorNext != "" {
			c.errf(label, "errorNext", "set, but onError is \"skip\"; use onError \"route\"")
		}
	case "route":
		n.onError = onErrorRoute
		if ns.ErrorNext == "" {
			c.errf(label, "onError", "\"route\" needs errorNext, the node to run on error")
		}
	default:
		c.errf(label, "onError", "unknown value %q; use fail, skip or route", ns.OnError)
	}
	var ancestors bitset
	if anc != nil {
		ancestors = anc[i]
	}
	for _, name := range sortedKeys(ns.Inputs) {
		if !isName(name) {
			c.errf(label, "inputs."+name, "input names are letters, digits, _ and -")
			continue
		}
		v := c.compileValue(p, ns.Inputs[name], i, ancestors, index, sc, label, "inputs."+name, 0)
		n.args = append(n.args, arg{name: name, v: v})
	}
	n.m = c.opts.Metrics.forNode(c.flow, n.path, n.kindName)
	n.inPorts = n.kind.Inputs
	if n.kind.Outputs != nil {
		n.outPorts = n.kind.Outputs
		n.outputs = make([]string, len(n.kind.Outputs))
		for j, o := range n.kind.Outputs {
			n.outputs[j] = o.Name
		}
		slices.Sort(n.outputs)
	}
	b := &Builder{c: c, p: p, n: n, spec: ns, depth: depth, sc: sc, index: index}
	errsBefore := len(c.errs)
	impl := n.kind.Compile(b)
	if len(c.errs) == errsBefore && impl == nil {
		c.errf(label, "", "kind %q compiled to nothing", n.kindName)
	}
	n.impl = impl
	c.checkArgTypes(p, n, sc)
}

// checkArgTypes refuses a mapped input whose value cannot have the type of
// the port it feeds: a path to a typed output field ($detect.faces) or to
// a declared flow input ($input.image), or a literal. A path into a
// node's output names the data edge from that node, so an editor marks the
// wire. Paths deeper than one field, and untyped ports, are not checked.
func (c *compiler) checkArgTypes(p *Plan, n *node, sc scope) {
	for _, a := range n.args {
		want := portType(n.inPorts, a.name)
		if want == "" || want == TypeAny {
			continue
		}
		field := "inputs." + a.name
		if !a.v.dynamic() {
			// Algorithm nodes check their literals against the contract
			// themselves, naming the algorithm.
			if !n.kind.FromContract && !checkType(want, a.v.lit) {
				c.errf(n.path, field, "literal %v is not %s, which input %q takes", a.v.lit, article(want), a.name)
			}
			continue
		}
		cp := a.v.path
		if cp == nil || len(cp.steps) != 1 || cp.steps[0].IsIndex {
			continue
		}
		key := cp.steps[0].Key
		switch cp.root {
		case rootNode:
			from := &p.nodes[cp.node]
			if got := portType(from.outPorts, key); got != "" && !Compatible(got, want) {
				c.edgeErrf(n.path, from.path, n.path, field, "%s is %s, but input %q takes %s", cp.src, article(got), a.name, article(want))
			}
		case rootInput:
			if is, ok := sc.inputs[key]; ok && is.Type != "" && !Compatible(is.Type, want) {
				c.errf(n.path, field, "%s is declared %s, but input %q takes %s", cp.src, article(is.Type), a.name, article(want))
			}
		}
	}
}

// portType returns the type of the port named name, "" if none.
func portType(ports []Port, name string) string {
	for _, pt := range ports {
		if pt.Name == name {
			if pt.Type == "" {
				return TypeAny
			}
			return pt.Type
		}
	}
	return ""
}

// article names a type for messages: "an image", "a list of objects".
func article(t string) string {
	switch t {
	case TypeImage, TypeInteger, TypeObject:
		return "an " + t
	case TypeObjects:
		return "a list of objects"
	case TypeAny:
		return "anything"
	}
	return "a " + t
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// compileValue compiles an input or output value: a "$path" string, a
// literal, or a list/map mixing both. Literals stay as they are, so a node
// whose inputs are all literal costs nothing per message to map.
func (c *compiler) compileValue(p *Plan, v any, from int, anc bitset, index map[string]int, sc scope, label, field string, depth int) value {
	if depth > c.lim.MaxValueDepth {
		c.errf(label, field, "value nested deeper than %d levels", c.lim.MaxValueDepth)
		return value{}
	}
	switch x := v.(type) {
	case string:
		if strings.HasPrefix(x, "$$") {
			return value{lit: x[1:]}
		}
		if !strings.HasPrefix(x, "$") {
			return value{lit: x}
		}
		path, err := ParsePath(x)
		if err != nil {
			c.errf(label, field, "%v", err)
			return value{}
		}
		cp, ok := c.checkPath(p, path, from, anc, index, sc, label, field)
		if !ok {
			return value{}
		}
		return value{path: cp}
	case []any:
		out := value{list: make([]value, len(x)), lit: x}
		dynamic := false
		for i, e := range x {
			out.list[i] = c.compileValue(p, e, from, anc, index, sc, label, fmt.Sprintf("%s[%d]", field, i), depth+1)
			dynamic = dynamic || out.list[i].dynamic()
		}
		if !dynamic {
			lits := make([]any, len(x))
			for i := range out.list {
				lits[i] = out.list[i].lit
			}
			return value{lit: lits}
		}
		out.lit = nil
		return out
	case map[string]any:
		out := value{isMap: true}
		dynamic := false
		for _, k := range sortedKeys(x) {
			e := c.compileValue(p, x[k], from, anc, index, sc, label, field+"."+k, depth+1)
			out.keys = append(out.keys, k)
			out.list = append(out.list, e)
			dynamic = dynamic || e.dynamic()
		}
		if !dynamic {
			lits := make(map[string]any, len(x))
			for i, k := range out.keys {
				lits[k] = out.list[i].lit
			}
			return value{lit: lits}
		}
		return out
	}
	return value{lit: v}
}

func (c *compiler) checkPath(p *Plan, path Path, from int, anc bitset, index map[string]int, sc scope, label, field string) (*cpath, bool) {
	cp := &cpath{steps: path.Steps, src: path.String()}
	switch path.Root {
	case "input":
		cp.root = rootInput
		if len(sc.inputs) > 0 && len(path.Steps) > 0 && !path.Steps[0].IsIndex {
			if _, ok := sc.inputs[path.Steps[0].Key]; !ok {
				c.errf(label, field, "%s: input %q is not declared in inputs", path, path.Steps[0].Key)
				return nil, false
			}
		}
	case "params":
		cp.root = rootParams
		if len(path.Steps) > 0 {
			st := path.Steps[0]
			if st.IsIndex {
				c.errf(label, field, "%s: params are named, not indexed", path)
				return nil, false
			}
			if _, ok := sc.params[st.Key]; !ok {
				c.errf(label, field, "%s: unknown parameter %q; declare it in parameters", path, st.Key)
				return nil, false
			}
			cp.root = rootParam
			cp.param = st.Key
			cp.steps = path.Steps[1:]
		}
	case "item", "index":
		if !sc.item {
			c.errf(label, field, "%s: $%s exists only inside a foreach body", path, path.Root)
			return nil, false
		}
		cp.root = rootItem
		if path.Root == "index" {
			cp.root = rootIndex
			if len(path.Steps) > 0 {
				c.errf(label, field, "%s: $index is a number", path)
				return nil, false
			}
		}
	default:
		j, ok := index[path.Root]
		if !ok {
			c.errf(label, field, "%s: unknown node %q", path, path.Root)
			return nil, false
		}
		if from >= 0 && anc != nil && !anc.has(j) {
			if j == from {
				c.errf(label, field, "%s: a node cannot read its own output", path)
			} else {
				c.errf(label, field, "%s: node %q is not an ancestor of this node, so its output may not exist yet; add an edge", path, path.Root)
			}
			return nil, false
		}
		if outs := p.nodes[j].outputs; outs != nil && len(path.Steps) > 0 && !path.Steps[0].IsIndex {
			if !slices.Contains(outs, path.Steps[0].Key) {
				c.errf(label, field, "%s: node %q has no output %q; it has %s", path, path.Root, path.Steps[0].Key, strings.Join(outs, ", "))
				return nil, false
			}
		}
		cp.root = rootNode
		cp.node = int32(j)
	}
	return cp, true
}

// topoOrder returns Kahn's order; cyclic reports whether some nodes were
// left out, in which case the order is document order.
func topoOrder(nodes []node) ([]int32, bool) {
	indeg := make([]int32, len(nodes))
	for i := range nodes {
		indeg[i] = nodes[i].inDeg
	}
	order := make([]int32, 0, len(nodes))
	for i := range nodes {
		if indeg[i] == 0 {
			order = append(order, int32(i))
		}
	}
	for k := 0; k < len(order); k++ {
		for _, e := range nodes[order[k]].out {
			indeg[e.to]--
			if indeg[e.to] == 0 {
				order = append(order, e.to)
			}
		}
	}
	if len(order) < len(nodes) {
		order = order[:0]
		for i := range nodes {
			order = append(order, int32(i))
		}
		return order, true
	}
	return order, false
}

// cycles returns the strongly connected components that contain a cycle
// (Tarjan), each rotated to start at its first node in document order.
func cycles(nodes []node) [][]int {
	idx := make([]int, len(nodes))
	low := make([]int, len(nodes))
	on := make([]bool, len(nodes))
	for i := range idx {
		idx[i] = -1
	}
	var stack []int
	var out [][]int
	next := 0
	var visit func(v int)
	visit = func(v int) {
		idx[v], low[v] = next, next
		next++
		stack = append(stack, v)
		on[v] = true
		for _, e := range nodes[v].out {
			w := int(e.to)
			if idx[w] < 0 {
				visit(w)
				low[v] = min(low[v], low[w])
			} else if on[w] {
				low[v] = min(low[v], idx[w])
			}
		}
		if low[v] == idx[v] {
			var comp []int
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				on[w] = false
				comp = append(comp, w)
				if w == v {
					break
				}
			}
			self := false
			for _, e := range nodes[v].out {
				self = self || int(e.to) == v
			}
			if len(comp) > 1 || self {
				// Order the members along the cycle, starting at the
				// lowest index, so the message reads a -> b -> a.
				start := slices.Min(comp)
				out = append(out, cyclePath(nodes, comp, start))
			}
		}
	}
	for i := range nodes {
		if idx[i] < 0 {
			visit(i)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// cyclePath finds a cycle through start inside comp by breadth-first search.
func cyclePath(nodes []node, comp []int, start int) []int {
	in := map[int]bool{}
	for _, v := range comp {
		in[v] = true
	}
	prev := map[int]int{}
	queue := []int{start}
	visited := map[int]bool{}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, e := range nodes[v].out {
			w := int(e.to)
			if !in[w] {
				continue
			}
			if w == start {
				path := []int{v}
				for v != start {
					v = prev[v]
					path = append(path, v)
				}
				slices.Reverse(path)
				return path
			}
			if !visited[w] {
				visited[w] = true
				prev[w] = v
				queue = append(queue, w)
			}
		}
	}
	return comp
}

type bitset []uint64

func newBitset(n int) bitset    { return make(bitset, (n+63)/64) }
func (b bitset) set(i int)      { b[i/64] |= 1 << (i % 64) }
func (b bitset) has(i int) bool { return b[i/64]&(1<<(i%64)) != 0 }
func (b bitset) or(o bitset) {
	for i := range b {
		b[i] |= o[i]
	}
}

var typeNames = []string{"any", "string", "number", "integer", "bool", "object", "list", "objects", "image"}

func knownType(t string) bool { return t == "" || slices.Contains(typeNames, t) }

// checkType reports whether a literal fits a declared type; nil fits all
// (absent), and image accepts anything (frames are opaque Go values).
func checkType(t string, v any) bool {
	if v == nil {
		return true
	}
	switch t {
	case "string":
		_, ok := v.(string)
		return ok
	case "number":
		switch v.(type) {
		case int64, float64, int:
			return true
		}
		return false
	case "integer":
		switch x := v.(type) {
		case int64, int:
			return true
		case float64:
			return x == float64(int64(x))
		}
		return false
	case "bool":
		_, ok := v.(bool)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "list", "objects":
		_, ok := v.([]any)
		return ok
	}
	return true
}

// Builder is what a Kind's Compile sees: the node's document, ways to read
// and check its config and inputs, and error reporting that names the node.
type Builder struct {
	c     *compiler
	p     *Plan
	n     *node
	spec  *NodeSpec
	depth int
	sc    scope
	index map[string]int
	// asked, when not nil, collects the input names the kind looked up:
	// the descriptor test checks them against the kind's Inputs.
	asked map[string]bool
}

// ID returns the node's id.
func (b *Builder) ID() string { return b.n.id }

// Spec returns the node's document.
func (b *Builder) Spec() *NodeSpec { return b.spec }

// Errorf reports a problem in field of this node ("" for the node itself).
func (b *Builder) Errorf(field, format string, args ...any) {
	b.c.errf(b.n.path, field, format, args...)
}

// Failed reports whether any problem has been reported for this node so far.
func (b *Builder) Failed() bool {
	for _, e := range b.c.errs {
		if e.Node == b.n.path {
			return true
		}
	}
	return false
}

// Config decodes the node's config into dst (a pointer to a struct with
// json tags), reporting unknown fields and type mismatches.
func (b *Builder) Config(dst any) bool {
	if b.spec.Config == nil {
		return true
	}
	if err := decodeInto(b.spec.Config, dst); err != nil {
		b.Errorf(configField(err), "%s", strings.TrimPrefix(err.Error(), "json: "))
		return false
	}
	return true
}

// configField is the config field a decoding error is about, so an
// editor shows it next to that field of its form: config.<name> for an
// unknown field or a value of the wrong type, else config.
func configField(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return "config." + te.Field
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if n, err := strconv.Unquote(name); err == nil && !strings.ContainsAny(n, ".[") {
			return "config." + n
		}
	}
	return "config"
}

// Arg returns the position of the mapped input name (for Call.Arg), or -1.
func (b *Builder) Arg(name string) int {
	if b.asked != nil {
		b.asked[name] = true
	}
	for i, a := range b.n.args {
		if a.name == name {
			return i
		}
	}
	return -1
}

// RequireArg is Arg, reporting a missing input as an error.
func (b *Builder) RequireArg(name string) int {
	i := b.Arg(name)
	if i < 0 {
		if _, mapped := b.spec.Inputs[name]; !mapped {
			b.Errorf("inputs."+name, "required input is missing")
		}
	}
	return i
}

// ArgNames returns the mapped input names in Call.Arg order.
func (b *Builder) ArgNames() []string {
	out := make([]string, len(b.n.args))
	for i, a := range b.n.args {
		out[i] = a.name
	}
	return out
}

// Literal returns the value of input name when it is a literal.
func (b *Builder) Literal(name string) (any, bool) {
	i := b.Arg(name)
	if i < 0 || b.n.args[i].v.dynamic() {
		return nil, false
	}
	return b.n.args[i].v.lit, true
}

// Duration parses a duration field, reporting bad values; "" gives def.
func (b *Builder) Duration(field, s string, def time.Duration) time.Duration {
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		b.Errorf(field, "bad duration %q (use Go syntax: 500ms, 2s, 1m)", s)
		return def
	}
	return d
}

// Timeout returns the node's own timeout (0 if none).
func (b *Builder) Timeout() time.Duration { return b.n.timeout }

// Successor resolves id to one of this node's successors, for kinds that
// choose where to go (Call.SelectOnly). It reports unknown ids.
func (b *Builder) Successor(field, id string) int {
	j, ok := b.index[id]
	if !ok {
		b.Errorf(field, "unknown node %q", id)
		return -1
	}
	for _, e := range b.n.out {
		if int(e.to) == j && !e.onErr {
			return j
		}
	}
	b.Errorf(field, "node %q is not a successor of this node", id)
	return -1
}

// Successors returns the ids of this node's normal (non-error) successors.
func (b *Builder) Successors() []string {
	var out []string
	for _, e := range b.n.out {
		if !e.onErr {
			out = append(out, b.p.nodes[e.to].id)
		}
	}
	return out
}

// WaitFor lets the node run once need of its incoming edges are active,
// without waiting for the rest (need 0: wait for all), and, when wait is
// positive, after wait even if fewer arrived (Call.TimedOut tells).
// This is what join is built on.
func (b *Builder) WaitFor(need int, wait time.Duration) {
	b.n.need = int32(need)
	b.n.wait = wait
	if wait > 0 {
		b.n.timeout = 0 // the timeout is the wait, not a deadline on Run
	}
}

// Inputs returns the number of incoming edges of this node.
func (b *Builder) Inputs() int { return int(b.n.inDeg) }

// DeclareOutputs lists the output fields this node produces; paths into
// it ($id.field) are then checked against the list. A kind with Outputs
// need not call it: they are declared before its Compile runs.
func (b *Builder) DeclareOutputs(names []string) {
	if names == nil {
		names = []string{}
	}
	b.n.outputs = names
}

// DeclarePorts sets this node's typed input ports and output fields, for a
// kind whose ports depend on its config (an algorithm's contract): paths
// into the node are checked against the outputs, and what feeds each
// input against its type.
func (b *Builder) DeclarePorts(inputs, outputs []Port) {
	b.n.inPorts = inputs
	if outputs != nil {
		b.n.outPorts = outputs
		names := make([]string, len(outputs))
		for i, o := range outputs {
			names[i] = o.Name
		}
		slices.Sort(names)
		b.DeclareOutputs(names)
	}
}

// Script compiles a function script, reporting errors on field.
func (b *Builder) Script(field, src string) *function.Program {
	if src == "" {
		b.Errorf(field, "missing script")
		return nil
	}
	var p *function.Program
	var err error
	if b.c.opts.CheckScripts {
		p, err = function.Check(b.n.path, src, b.c.opts.FunctionLimits)
	} else {
		p, err = function.CompileContext(b.c.ctx, b.n.path, src, b.c.opts.FunctionLimits)
	}
	if err != nil {
		b.scriptErr(field, err)
		return nil
	}
	return p
}

// scriptErr reports a script's or expression's compile error on field,
// placed at its line and column when it has one.
func (b *Builder) scriptErr(field string, err error) {
	line, col := function.Position(err)
	b.c.errs = append(b.c.errs, &Error{Node: b.n.path, Field: field, Msg: err.Error(), Line: line, Column: col})
}

// Expr compiles an expression over vars, reporting errors on field.
func (b *Builder) Expr(field, src string, vars []string) *function.Expr {
	if src == "" {
		b.Errorf(field, "missing expression")
		return nil
	}
	e, err := function.CompileExpr(b.n.path, src, vars, b.c.opts.FunctionLimits)
	if err != nil {
		b.scriptErr(field, err)
		return nil
	}
	return e
}

// Zones returns the device zones, or nil if none were given.
func (b *Builder) Zones() Zones { return b.c.opts.Zones }

// Watchlists returns the watchlist matcher, or nil if none was given.
func (b *Builder) Watchlists() Watchlists { return b.c.opts.Watchlists }

// Algorithms returns the algorithm interface, or nil if none was given.
func (b *Builder) Algorithms() Algorithms { return b.c.opts.Algorithms }

// Context returns the context Compile or Validate was called with; pass
// it to lookups made while compiling, such as Algorithms().Contract.
func (b *Builder) Context() context.Context { return b.c.ctx }

// Body compiles a nested flow (a foreach body) whose $input is this node's
// mapped inputs and, when item is true, which sees $item and $index.
func (b *Builder) Body(field string, spec *Spec, item bool) *Plan {
	errsBefore := len(b.c.errs)
	sc := scope{params: b.sc.params, item: item}
	p := b.c.compileFlow(spec, b.n.path+"/", b.depth+1, sc)
	for _, e := range b.c.errs[errsBefore:] {
		if e.Node == b.n.path && e.Field != "" {
			e.Field = field + "." + e.Field
		} else if e.Node == b.n.path {
			e.Field = field
		}
	}
	if len(b.c.errs) > errsBefore {
		return nil
	}
	return p
}

// Subflow resolves and compiles another flow version as a nested flow,
// refusing reference loops.
func (b *Builder) Subflow(field string, ref FlowRef) *Plan {
	if b.c.opts.Flows == nil {
		b.Errorf(field, "subflows are not available here (no flow lookup configured)")
		return nil
	}
	for _, r := range b.c.stack {
		if r == ref {
			b.Errorf(field, "flow %s version %q includes itself", ref.ID, ref.Version)
			return nil
		}
	}
	spec, err := b.c.opts.Flows.Flow(ref)
	if err != nil {
		if errors.Is(err, ErrUnknownFlow) {
			b.Errorf(field, "unknown flow %s version %q", ref.ID, ref.Version)
		} else {
			b.Errorf(field, "flow %s: %v", ref.ID, err)
		}
		return nil
	}
	b.c.stack = append(b.c.stack, ref)
	defer func() { b.c.stack = b.c.stack[:len(b.c.stack)-1] }()
	errsBefore := len(b.c.errs)
	p := b.c.compileFlow(spec, b.n.path+"/", b.depth+1, scope{params: spec.Parameters, inputs: spec.Inputs})
	if len(b.c.errs) > errsBefore {
		return nil
	}
	return p
}
