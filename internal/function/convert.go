package function

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"sort"
	"time"

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

// toStarlark converts a Go value into a Starlark value, charging its
// approximate size to budget.
func toStarlark(v any, budget *int, depth int) (starlark.Value, error) {
	if depth < 0 {
		return nil, errDepth
	}
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
		if err := charge(budget, scalarCost); err != nil {
			return nil, err
		}
		d := starlark.NewDict(len(x))
		for k, e := range x {
			if err := setConverted(d, k, e, budget, depth-1); err != nil {
				return nil, err
			}
		}
		return d, nil
	case []any:
		if err := charge(budget, scalarCost); err != nil {
			return nil, err
		}
		elems := make([]starlark.Value, len(x))
		for i, e := range x {
			sv, err := toStarlark(e, budget, depth-1)
			if err != nil {
				return nil, err
			}
			elems[i] = sv
		}
		return starlark.NewList(elems), nil
	case []map[string]any:
		elems := make([]starlark.Value, len(x))
		for i, e := range x {
			sv, err := toStarlark(e, budget, depth-1)
			if err != nil {
				return nil, err
			}
			elems[i] = sv
		}
		return starlark.NewList(elems), charge(budget, scalarCost)
	case []string:
		elems := make([]starlark.Value, len(x))
		for i, e := range x {
			elems[i] = starlark.String(e)
			if err := charge(budget, len(e)+scalarCost); err != nil {
				return nil, err
			}
		}
		return starlark.NewList(elems), nil
	case []float64:
		elems := make([]starlark.Value, len(x))
		for i, e := range x {
			elems[i] = starlark.Float(e)
		}
		return starlark.NewList(elems), charge(budget, scalarCost*(len(x)+1))
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
			sv, err := toStarlark(rv.Index(i).Interface(), budget, depth-1)
			if err != nil {
				return nil, err
			}
			elems[i] = sv
		}
		return starlark.NewList(elems), charge(budget, scalarCost)
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			break
		}
		d := starlark.NewDict(rv.Len())
		it := rv.MapRange()
		for it.Next() {
			sv, err := toStarlark(it.Value().Interface(), budget, depth-1)
			if err != nil {
				return nil, err
			}
			k := it.Key().String()
			if err := charge(budget, len(k)); err != nil {
				return nil, err
			}
			_ = d.SetKey(starlark.String(k), sv)
		}
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

// fieldsToStarlark converts names[i]: values[i] into a dict as toStarlark
// converts the same map, keys in the order given.
func fieldsToStarlark(names []string, values []any, budget *int, depth int) (starlark.Value, error) {
	if depth < 0 {
		return nil, errDepth
	}
	if err := charge(budget, scalarCost); err != nil {
		return nil, err
	}
	d := starlark.NewDict(len(names))
	for i, k := range names {
		if err := setConverted(d, k, values[i], budget, depth-1); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// setConverted sets d[k] to e converted, charging both to budget.
func setConverted(d *starlark.Dict, k string, e any, budget *int, depth int) error {
	sv, err := toStarlark(e, budget, depth)
	if err != nil {
		return err
	}
	if err := charge(budget, len(k)); err != nil {
		return err
	}
	return d.SetKey(starlark.String(k), sv)
}

// fromStarlark converts a script's value back to plain Go values, charging
// its size to budget; depth also stops self-referencing lists and dicts.
func fromStarlark(v starlark.Value, budget *int, depth int) (any, error) {
	if depth < 0 {
		return nil, errDepth
	}
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
		out := make([]any, x.Len())
		for i := range out {
			e, err := fromStarlark(x.Index(i), budget, depth-1)
			if err != nil {
				return nil, err
			}
			out[i] = e
		}
		return out, charge(budget, scalarCost)
	case starlark.Tuple:
		out := make([]any, len(x))
		for i, el := range x {
			e, err := fromStarlark(el, budget, depth-1)
			if err != nil {
				return nil, err
			}
			out[i] = e
		}
		return out, charge(budget, scalarCost)
	case *starlark.Dict:
		out := make(map[string]any, x.Len())
		for _, kv := range x.Items() {
			k, ok := kv[0].(starlark.String)
			if !ok {
				return nil, fmt.Errorf("dict key %s is a %s; results need string keys", kv[0], kv[0].Type())
			}
			e, err := fromStarlark(kv[1], budget, depth-1)
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
			e, err := fromStarlark(el, budget, depth-1)
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

// ToStarlark converts a Go value the way Call converts its input; exported
// for callers that build their own predeclared values.
func ToStarlark(v any) (starlark.Value, error) {
	budget := math.MaxInt
	return toStarlark(v, &budget, DefaultLimits().MaxDepth)
}

// FromStarlark converts a Starlark value the way Call converts results.
func FromStarlark(v starlark.Value) (any, error) {
	budget := math.MaxInt
	return fromStarlark(v, &budget, DefaultLimits().MaxDepth)
}
