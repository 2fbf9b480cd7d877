package function

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"sort"
	"sync"
	"time"
	"unsafe"

	stime "go.starlark.net/lib/time"
	"go.starlark.net/starlark"
)

var (
	errBudget = errors.New("size budget exceeded")
	errDepth  = errors.New("nesting too deep")
)

// Opaque carries a Go value the script cannot inspect (a decoded frame, an
// object handle) through a call unchanged: scripts may pass it along in
// their result, compare it for identity, and print its type, nothing more.
type Opaque struct{ V any }

// String names the Go type, never the contents.
func (o Opaque) String() string { return fmt.Sprintf("<%T>", o.V) }

// Type is "opaque".
func (o Opaque) Type() string { return "opaque" }

// Freeze does nothing: the script cannot change an opaque value.
func (o Opaque) Freeze() {}

// Truth is true, like any non-empty object.
func (o Opaque) Truth() starlark.Bool { return true }

// Hash refuses: opaque values cannot be dict keys.
func (o Opaque) Hash() (uint32, error) { return 0, errors.New("unhashable: opaque") }

const scalarCost = 8

func charge(budget *int, n int) error {
	*budget -= n
	if *budget < 0 {
		return errBudget
	}
	return nil
}

// toConv converts Go values into frozen Starlark values for one call,
// charging their approximate size to budget. With a memo, a container met
// before in the same message (the same map, or the same slice of the same
// length) is the value converted then: its size is charged again, so limits
// do not depend on which call converted it first.
type toConv struct {
	budget int
	memo   *Memo
	low    int // the lowest depth left reached so far (for a memo entry's height)
}

// keyCache boxes the keys it has seen last once: a list of records repeats
// the same few keys, and so do the messages of a flow.
type keyCache struct {
	keys [8]string
	kv   [8]starlark.Value
	next int
}

// key returns k as a Starlark string, boxed once per message (with a memo)
// for the keys it has seen last.
func (c *toConv) key(k string) starlark.Value {
	if c.memo == nil {
		return starlark.String(k)
	}
	kc := &c.memo.keys
	for i := range kc.keys {
		if kc.keys[i] == k && kc.kv[i] != nil {
			return kc.kv[i]
		}
	}
	v := starlark.Value(starlark.String(k))
	kc.keys[kc.next], kc.kv[kc.next] = k, v
	kc.next = (kc.next + 1) % len(kc.keys)
	return v
}

// value converts v with depth levels of nesting left.
func (c *toConv) value(v any, depth int) (starlark.Value, error) {
	if depth < 0 {
		return nil, errDepth
	}
	c.low = min(c.low, depth)
	budget := &c.budget
	switch x := v.(type) {
	case nil:
		return starlark.None, charge(budget, scalarCost)
	case starlark.Value:
		return x, charge(budget, scalarCost)
	case bool:
		return starlark.Bool(x), charge(budget, scalarCost)
	case string:
		return starlark.String(x), charge(budget, len(x)+scalarCost)
	case int:
		return starlark.MakeInt(x), charge(budget, scalarCost)
	case int64:
		return starlark.MakeInt64(x), charge(budget, scalarCost)
	case int32:
		return starlark.MakeInt64(int64(x)), charge(budget, scalarCost)
	case uint64:
		return starlark.MakeUint64(x), charge(budget, scalarCost)
	case uint32:
		return starlark.MakeUint64(uint64(x)), charge(budget, scalarCost)
	case float64:
		return starlark.Float(x), charge(budget, scalarCost)
	case float32:
		return starlark.Float(x), charge(budget, scalarCost)
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return starlark.MakeInt64(i), charge(budget, scalarCost)
		}
		f, err := x.Float64()
		if err != nil {
			return nil, err
		}
		return starlark.Float(f), charge(budget, scalarCost)
	case []byte:
		return starlark.Bytes(x), charge(budget, len(x)+scalarCost)
	case time.Time:
		return stime.Time(x), charge(budget, scalarCost)
	case time.Duration:
		return stime.Duration(x), charge(budget, scalarCost)
	case map[string]any:
		if len(x) == 0 || c.memo == nil {
			return c.dict(x, depth)
		}
		return c.memoized(mapKey(x), x, depth, func() (starlark.Value, error) { return c.dict(x, depth) })
	case []any:
		if len(x) == 0 || c.memo == nil {
			return c.list(x, depth)
		}
		return c.memoized(memoKey{p: unsafe.Pointer(&x[0]), n: len(x)}, x, depth, func() (starlark.Value, error) { return c.list(x, depth) })
	case []map[string]any:
		elems, err := convertElems(c, x, depth)
		if err != nil {
			return nil, err
		}
		return frozenList(elems), charge(budget, scalarCost)
	case []string:
		elems := make([]starlark.Value, len(x))
		for i, e := range x {
			elems[i] = starlark.String(e)
			if err := charge(budget, len(e)+scalarCost); err != nil {
				return nil, err
			}
		}
		return frozenList(elems), nil
	case []float64:
		elems := make([]starlark.Value, len(x))
		for i, e := range x {
			elems[i] = starlark.Float(e)
		}
		return frozenList(elems), charge(budget, scalarCost*(len(x)+1))
	}
	// Other slices and string-keyed maps (typed results from Go code) are
	// converted by reflection; anything else passes through opaque.
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Uint8 {
			break
		}
		elems := make([]starlark.Value, rv.Len())
		for i := range elems {
			sv, err := c.value(rv.Index(i).Interface(), depth-1)
			if err != nil {
				return nil, err
			}
			elems[i] = sv
		}
		return frozenList(elems), charge(budget, scalarCost)
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			break
		}
		d := starlark.NewDict(rv.Len())
		it := rv.MapRange()
		for it.Next() {
			sv, err := c.value(it.Value().Interface(), depth-1)
			if err != nil {
				return nil, err
			}
			k := it.Key().String()
			if err := charge(budget, len(k)); err != nil {
				return nil, err
			}
			_ = d.SetKey(starlark.String(k), sv)
		}
		d.Freeze()
		return d, charge(budget, scalarCost)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return starlark.MakeInt64(rv.Int()), charge(budget, scalarCost)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return starlark.MakeUint64(rv.Uint()), charge(budget, scalarCost)
	case reflect.Float32, reflect.Float64:
		return starlark.Float(rv.Float()), charge(budget, scalarCost)
	case reflect.String:
		return starlark.String(rv.String()), charge(budget, rv.Len()+scalarCost)
	case reflect.Bool:
		return starlark.Bool(rv.Bool()), charge(budget, scalarCost)
	}
	return Opaque{V: v}, charge(budget, scalarCost)
}

func (c *toConv) dict(x map[string]any, depth int) (starlark.Value, error) {
	if err := charge(&c.budget, scalarCost); err != nil {
		return nil, err
	}
	d := starlark.NewDict(len(x))
	for k, e := range x {
		if err := c.set(d, k, e, depth-1); err != nil {
			return nil, err
		}
	}
	d.Freeze()
	return d, nil
}

func (c *toConv) list(x []any, depth int) (starlark.Value, error) {
	if err := charge(&c.budget, scalarCost); err != nil {
		return nil, err
	}
	elems, err := convertElems(c, x, depth)
	if err != nil {
		return nil, err
	}
	return frozenList(elems), nil
}

// convertElems converts the elements of a list at depth.
func convertElems[T any](c *toConv, x []T, depth int) ([]starlark.Value, error) {
	elems := make([]starlark.Value, len(x))
	for i, e := range x {
		sv, err := c.value(e, depth-1)
		if err != nil {
			return nil, err
		}
		elems[i] = sv
	}
	return elems, nil
}

// memoized returns the memo's conversion of the container g under key, or
// converts it with conv and remembers it (and g as its Go value).
func (c *toConv) memoized(key memoKey, g any, depth int, conv func() (starlark.Value, error)) (starlark.Value, error) {
	if i, ok := c.memo.fwd[key]; ok {
		e := &c.memo.entries[i]
		if depth-e.height < 0 {
			return nil, errDepth
		}
		c.low = min(c.low, depth-e.height)
		return e.v, charge(&c.budget, e.cost)
	}
	before, low := c.budget, c.low
	c.low = depth
	v, err := conv()
	if err != nil {
		return nil, err
	}
	c.memo.add(key, memoEntry{v: v, g: g, cost: before - c.budget, height: depth - c.low})
	c.low = min(low, c.low)
	return v, nil
}

// fields converts names[i]: values[i] into a dict as value converts the
// same map, keys in the order given.
func (c *toConv) fields(names []string, values []any, depth int) (starlark.Value, error) {
	if depth < 0 {
		return nil, errDepth
	}
	if err := charge(&c.budget, scalarCost); err != nil {
		return nil, err
	}
	d := starlark.NewDict(len(names))
	for i, k := range names {
		if err := c.set(d, k, values[i], depth-1); err != nil {
			return nil, err
		}
	}
	d.Freeze()
	return d, nil
}

// set sets d[k] to e converted, charging both.
func (c *toConv) set(d *starlark.Dict, k string, e any, depth int) error {
	sv, err := c.value(e, depth)
	if err != nil {
		return err
	}
	if err := charge(&c.budget, len(k)); err != nil {
		return err
	}
	return d.SetKey(c.key(k), sv)
}

func frozenList(elems []starlark.Value) *starlark.List {
	l := starlark.NewList(elems)
	l.Freeze()
	return l
}

// fromConv converts a script's value back to Go values for one call. With a
// memo, a frozen dict or list that was converted from a Go value in the same
// message gives back that Go value (its size charged again): it cannot have
// changed, and nothing is copied.
type fromConv struct {
	budget *int
	memo   *Memo
}

func (c *fromConv) value(v starlark.Value, depth int) (any, error) {
	if depth < 0 {
		return nil, errDepth
	}
	budget := c.budget
	switch x := v.(type) {
	case starlark.NoneType:
		return nil, charge(budget, scalarCost)
	case starlark.Bool:
		return bool(x), charge(budget, scalarCost)
	case starlark.String:
		return string(x), charge(budget, len(x)+scalarCost)
	case starlark.Bytes:
		return []byte(x), charge(budget, len(x)+scalarCost)
	case starlark.Int:
		if i, ok := x.Int64(); ok {
			return i, charge(budget, scalarCost)
		}
		f, _ := new(big.Float).SetInt(x.BigInt()).Float64()
		if math.IsInf(f, 0) {
			return nil, errors.New("int too large to convert")
		}
		return f, charge(budget, scalarCost)
	case starlark.Float:
		return float64(x), charge(budget, scalarCost)
	case *starlark.List:
		if g, ok, err := c.known(x, depth); ok {
			return g, err
		}
		out := make([]any, x.Len())
		for i := range out {
			e, err := c.value(x.Index(i), depth-1)
			if err != nil {
				return nil, err
			}
			out[i] = e
		}
		return out, charge(budget, scalarCost)
	case starlark.Tuple:
		out := make([]any, len(x))
		for i, el := range x {
			e, err := c.value(el, depth-1)
			if err != nil {
				return nil, err
			}
			out[i] = e
		}
		return out, charge(budget, scalarCost)
	case *starlark.Dict:
		if g, ok, err := c.known(x, depth); ok {
			return g, err
		}
		out := make(map[string]any, x.Len())
		for _, kv := range x.Items() {
			k, ok := kv[0].(starlark.String)
			if !ok {
				return nil, fmt.Errorf("dict key %s is a %s; results need string keys", kv[0], kv[0].Type())
			}
			e, err := c.value(kv[1], depth-1)
			if err != nil {
				return nil, err
			}
			if err := charge(budget, len(k)); err != nil {
				return nil, err
			}
			out[string(k)] = e
		}
		return out, charge(budget, scalarCost)
	case *starlark.Set:
		out := make([]any, 0, x.Len())
		it := x.Iterate()
		defer it.Done()
		var el starlark.Value
		for it.Next(&el) {
			e, err := c.value(el, depth-1)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		sort.SliceStable(out, func(i, j int) bool { return fmt.Sprint(out[i]) < fmt.Sprint(out[j]) })
		return out, charge(budget, scalarCost)
	case stime.Time:
		return time.Time(x), charge(budget, scalarCost)
	case stime.Duration:
		return time.Duration(x), charge(budget, scalarCost)
	case Opaque:
		return x.V, charge(budget, scalarCost)
	}
	return nil, fmt.Errorf("cannot return a %s", v.Type())
}

// known returns the Go value that v was converted from in this message, if
// the memo has it.
func (c *fromConv) known(v starlark.Value, depth int) (any, bool, error) {
	if c.memo == nil {
		return nil, false, nil
	}
	i, ok := c.memo.back[v]
	if !ok {
		return nil, false, nil
	}
	e := &c.memo.entries[i]
	if depth-e.height < 0 {
		return nil, true, errDepth
	}
	return e.g, true, charge(c.budget, e.cost)
}

// Memo shares conversions between the script calls of one message (a flow
// run and the runs nested in it): a map or list of the message converted
// for one script is the same frozen Starlark value for the next, and a
// frozen value a script returns unchanged goes back as the Go value it came
// from. It relies on what flows already promise: a value between nodes is
// never changed in place (a node that adds a field makes a new map). A
// Memo is safe for concurrent use; Reset empties it for the next message.
type Memo struct {
	mu      sync.Mutex
	fwd     map[memoKey]int32
	back    map[starlark.Value]int32
	entries []memoEntry
	keys    keyCache
}

// memoKey names a Go container by identity: a map by its pointer, a slice
// by its first element's address and its length.
type memoKey struct {
	p unsafe.Pointer
	n int
}

func mapKey(m map[string]any) memoKey { return memoKey{p: reflect.ValueOf(m).UnsafePointer()} }

type memoEntry struct {
	v      starlark.Value // frozen
	g      any            // the Go value v was converted from; held, so no address is reused while the entry lives
	cost   int            // the budget its conversion charged
	height int            // its levels of nesting, for the depth limit
}

func (m *Memo) add(k memoKey, e memoEntry) {
	if m.fwd == nil {
		m.fwd = make(map[memoKey]int32)
		m.back = make(map[starlark.Value]int32)
	}
	i := int32(len(m.entries))
	m.entries = append(m.entries, e)
	m.fwd[k] = i
	m.back[e.v] = i
}

// Reset forgets every conversion, keeping the memory for the next message.
func (m *Memo) Reset() {
	clear(m.fwd)
	clear(m.back)
	clear(m.entries)
	m.entries = m.entries[:0]
}

type memoCtxKey struct{}

// WithMemo returns a context whose script calls (Program.Call, CallFields,
// Expr.Eval*) share m's conversions.
func WithMemo(ctx context.Context, m *Memo) context.Context {
	return context.WithValue(ctx, memoCtxKey{}, m)
}

func memoOf(ctx context.Context) *Memo {
	m, _ := ctx.Value(memoCtxKey{}).(*Memo)
	return m
}

// ToStarlark converts a Go value the way Call converts its input; exported
// for callers that build their own predeclared values.
func ToStarlark(v any) (starlark.Value, error) {
	c := toConv{budget: math.MaxInt}
	return c.value(v, DefaultLimits().MaxDepth)
}

// FromStarlark converts a Starlark value the way Call converts results.
func FromStarlark(v starlark.Value) (any, error) {
	budget := math.MaxInt
	return (&fromConv{budget: &budget}).value(v, DefaultLimits().MaxDepth)
}
