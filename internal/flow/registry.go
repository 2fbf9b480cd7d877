package flow

import (
	"context"
	"fmt"
	"sort"
)

// Node is a compiled node, ready to run once per message. Run must be safe
// for concurrent calls (many messages are in flight on one plan) and must
// honour ctx. Its result becomes the node's output, addressed by paths
// ($id.field); a map[string]any is the usual shape.
type Node interface {
	Run(ctx context.Context, c *Call) (any, error)
}

// NodeFunc adapts a function to Node.
type NodeFunc func(ctx context.Context, c *Call) (any, error)

// Run calls f.
func (f NodeFunc) Run(ctx context.Context, c *Call) (any, error) { return f(ctx, c) }

// Kind describes a node kind, the unit of extension: each built-in kind
// lives in its own node_<name>.go file, and callers may register more
// (sources, HTTP sinks) on their own Registry.
type Kind struct {
	// Name is what documents write in "kind".
	Name string
	// Doc is one line for the editor's palette and generated docs.
	Doc string
	// Blocking marks kinds that wait on I/O (algorithms, sinks): in a
	// fan-out each gets its own goroutine. Other kinds are cheap CPU work
	// and run inline, one after another, which costs far less than a
	// goroutine.
	Blocking bool
	// Edges, when set, returns successor ids implied by the config (switch
	// case targets), so authors need not repeat them as edges.
	Edges func(config map[string]any) []string
	// Category groups the kind in an editor's palette (CategoryLogic, ...).
	Category string
	// Inputs are the input ports the kind reads by name (Builder.Arg,
	// RequireArg); the Required ones it refuses to compile without. Their
	// types are checked against what feeds them (Compatible).
	Inputs []Port
	// MoreInputs says the kind also takes mapped inputs of any other name
	// (a script's input, a record's fields, a subflow's $input).
	MoreInputs bool
	// Outputs are the fields of the node's output, which paths into it
	// ($id.field) are checked against; nil: the output's shape is not
	// fixed (a script's result, a join's predecessors).
	Outputs []Port
	// FromContract says the ports come from the algorithm version the
	// config names (its contract), not from Inputs and Outputs.
	FromContract bool
	// Config is a zero value of the struct Compile decodes the config
	// into (Builder.Config); ConfigSchema derives its JSON Schema from it.
	Config any
	// Compile checks the node (config, inputs) and returns its runnable
	// form. Problems are reported through b.Errorf, and as many as can be
	// found; the returned Node is ignored when any was reported.
	Compile func(b *Builder) Node
}

// Registry maps kind names to kinds. It is built per use (NewRegistry),
// never global, so tests and embedders can add kinds freely.
type Registry struct {
	kinds map[string]*Kind
}

// builtinKinds are the constructors of the built-in kinds. Each
// node_<name>.go file appends its own from init, so adding a kind is one new
// file. The table is written only during package initialisation and never
// exported; every Registry gets fresh Kinds from it.
var builtinKinds []func() *Kind

// NewRegistry returns a registry holding every built-in kind.
func NewRegistry() *Registry {
	r := &Registry{kinds: map[string]*Kind{}}
	kinds := make([]*Kind, len(builtinKinds))
	for i, newKind := range builtinKinds {
		kinds[i] = newKind()
	}
	// By name, so that which of two clashing kinds panics does not depend
	// on the order files are initialised in.
	sort.SliceStable(kinds, func(i, j int) bool { return kinds[i].Name < kinds[j].Name })
	for _, k := range kinds {
		r.Register(k)
	}
	return r
}

// Register adds a kind; it panics on a duplicate or incomplete kind,
// which is a programming error.
func (r *Registry) Register(k *Kind) {
	if k.Name == "" || k.Compile == nil {
		panic("flow: kind needs a name and a Compile function")
	}
	if _, dup := r.kinds[k.Name]; dup {
		panic(fmt.Sprintf("flow: kind %q registered twice", k.Name))
	}
	r.kinds[k.Name] = k
}

// Lookup returns the kind named name.
func (r *Registry) Lookup(name string) (*Kind, bool) {
	k, ok := r.kinds[name]
	return k, ok
}

// Kinds returns the registered kinds sorted by name.
func (r *Registry) Kinds() []*Kind {
	out := make([]*Kind, 0, len(r.kinds))
	for _, k := range r.kinds {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
