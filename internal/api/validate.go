package api

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Request fields are checked from a `validate` struct tag, so that every
// action states its limits where its fields are declared:
//
//	Name string `json:"Name" validate:"required,max=64"`
//	Role string `json:"Role" validate:"oneof=admin viewer"`
//	Limit int   `json:"Limit" validate:"min=0,max=100"`
//
// max and min bound a string's length in characters, a slice's length, or a
// number's value. Every string field without a max gets DefaultMaxString, and
// every slice DefaultMaxItems: no input is unbounded. A plain string field
// that is empty counts as absent and is checked only by required; a pointer
// field set to "" is present and must meet min and oneof too.
const (
	DefaultMaxString = 4096
	DefaultMaxItems  = 100
)

type fieldRule struct {
	index    int
	name     string
	required bool
	hasMin   bool
	min      float64
	max      float64
	oneof    []string
	elem     *structRules // for structs and slices of structs
	embedded bool         // an anonymous struct: its fields are the parent's
}

type structRules struct {
	fields []fieldRule
}

// validators caches the rules per request type.
type validators struct {
	mu sync.Mutex
	m  map[reflect.Type]*structRules
}

func (v *validators) rules(t reflect.Type) *structRules {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil {
		v.m = map[reflect.Type]*structRules{}
	}
	return v.build(t)
}

func (v *validators) build(t reflect.Type) *structRules {
	if r, ok := v.m[t]; ok {
		return r
	}
	r := &structRules{}
	v.m[t] = r
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := f.Name
		if j := f.Tag.Get("json"); j != "" {
			if n, _, _ := strings.Cut(j, ","); n == "-" {
				continue
			} else if n != "" {
				name = n
			}
		}
		fr := fieldRule{index: i, name: name, max: -1, embedded: f.Anonymous && f.Type.Kind() == reflect.Struct}
		for _, rule := range strings.Split(f.Tag.Get("validate"), ",") {
			k, val, _ := strings.Cut(rule, "=")
			switch k {
			case "required":
				fr.required = true
			case "max":
				fr.max, _ = strconv.ParseFloat(val, 64)
			case "min":
				fr.hasMin = true
				fr.min, _ = strconv.ParseFloat(val, 64)
			case "oneof":
				fr.oneof = strings.Fields(val)
			}
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch ft.Kind() {
		case reflect.String:
			if fr.max < 0 {
				fr.max = DefaultMaxString
			}
		case reflect.Slice:
			// Raw JSON and bytes are bounded by the body limit unless the
			// field sets max (in bytes).
			if fr.max < 0 && ft.Elem().Kind() != reflect.Uint8 {
				fr.max = DefaultMaxItems
			}
			if et := ft.Elem(); et.Kind() == reflect.Struct {
				fr.elem = v.build(et)
			}
		case reflect.Struct:
			fr.elem = v.build(ft)
		}
		r.fields = append(r.fields, fr)
	}
	return r
}

// validate checks v (a struct value) against r, naming the first bad field
// by its JSON path.
func (r *structRules) validate(prefix string, v reflect.Value) *Error {
	for _, f := range r.fields {
		fv := v.Field(f.index)
		path := prefix + f.name
		// A pointer field is absent when nil; a plain one cannot tell absent
		// from empty, so only a present value is held to min and oneof.
		present := false
		if fv.Kind() == reflect.Pointer {
			if fv.IsNil() {
				if f.required {
					return Missing(path)
				}
				continue
			}
			fv, present = fv.Elem(), true
		}
		switch fv.Kind() {
		case reflect.String:
			s := fv.String()
			if s == "" && f.required {
				return Missing(path)
			}
			if s == "" && !present {
				continue
			}
			if !utf8.ValidString(s) {
				return InvalidValue(path, "not valid UTF-8")
			}
			n := utf8.RuneCountInString(s)
			if f.max >= 0 && float64(n) > f.max {
				return InvalidValue(path, "%d characters; at most %g allowed", n, f.max)
			}
			if f.hasMin && float64(n) < f.min {
				return InvalidValue(path, "%d characters; at least %g required", n, f.min)
			}
			if len(f.oneof) > 0 && !contains(f.oneof, s) {
				return InvalidValue(path, "%q is not one of %s", s, strings.Join(f.oneof, ", "))
			}
		case reflect.Slice:
			n := fv.Len()
			if n == 0 && f.required {
				return Missing(path)
			}
			if f.max >= 0 && float64(n) > f.max {
				return InvalidValue(path, "%d items; at most %g allowed", n, f.max)
			}
			if fv.Type().Elem().Kind() == reflect.Uint8 {
				continue
			}
			for i := 0; i < n; i++ {
				ev := fv.Index(i)
				ep := indexPath(path, i)
				switch {
				case f.elem != nil:
					if err := f.elem.validate(ep+".", ev); err != nil {
						return err
					}
				case ev.Kind() == reflect.String:
					if ev.Len() > DefaultMaxString {
						return InvalidValue(ep, "longer than %d bytes", DefaultMaxString)
					}
					if len(f.oneof) > 0 && !contains(f.oneof, ev.String()) {
						return InvalidValue(ep, "%q is not one of %s", ev.String(), strings.Join(f.oneof, ", "))
					}
				}
			}
		case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint64, reflect.Float64, reflect.Float32:
			var x float64
			if fv.CanInt() {
				x = float64(fv.Int())
			} else if fv.CanUint() {
				x = float64(fv.Uint())
			} else {
				x = fv.Float()
			}
			if f.required && x == 0 {
				return Missing(path)
			}
			if f.max >= 0 && x > f.max {
				return InvalidValue(path, "%g is more than the maximum %g", x, f.max)
			}
			if f.hasMin && x < f.min {
				return InvalidValue(path, "%g is less than the minimum %g", x, f.min)
			}
		case reflect.Struct:
			if f.elem != nil {
				sub := path + "."
				if f.embedded {
					sub = prefix
				}
				if err := f.elem.validate(sub, fv); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// indexPath names item i of the list at path, as the client sent it.
func indexPath(path string, i int) string {
	return fmt.Sprintf("%s[%d]", path, i)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
