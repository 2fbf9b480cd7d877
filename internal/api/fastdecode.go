package api

import (
	"reflect"
	"strconv"
	"strings"
)

// fastPlan decodes, in one pass and without encoding/json, the plain
// requests: those whose body names only fields that are strings, integers,
// booleans and Objects (InvokeFlow's are all such; DescribeApps' {"Limit":1}
// is one too), including the fields of embedded structs such as Paging.
// It takes only the plain case: keys spelt exactly as the fields' JSON
// names, each once, values of the fields' types, no NUL character, nothing
// after the object; an empty body is the empty object, as for
// decodeStrict. Anything else, malformed or merely unusual (a key in
// another case, an escaped key, a field of another type such as a list),
// makes it give up, and the request is decoded again by decodeStrict, so
// every error and every unusual spelling is handled exactly as for any
// other action.
type fastPlan struct {
	fields []fastField
}

type fastField struct {
	name  string
	index []int
	kind  fastKind
}

type fastKind uint8

const (
	fastString fastKind = iota
	fastInt
	fastBool
	fastObject
	// fastOther is a field the plan does not decode: a body that names it
	// goes to decodeStrict.
	fastOther
)

var objectFieldType = reflect.TypeFor[Object]()

// fastPlanOf returns the plan of struct type t, or nil when a field has
// options that change its decoding or two fields share a name (which
// encoding/json resolves by rules the plan does not repeat).
func fastPlanOf(t reflect.Type) *fastPlan {
	if t.Kind() != reflect.Struct {
		return nil
	}
	p := &fastPlan{}
	if !p.add(t, nil) || len(p.fields) > 64 {
		return nil
	}
	for i := range p.fields {
		for j := range i {
			if p.fields[i].name == p.fields[j].name {
				return nil
			}
		}
	}
	return p
}

// add adds the fields of struct type t, at index path at, and those of
// the structs it embeds.
func (p *fastPlan) add(t reflect.Type, at []int) bool {
	for i := range t.NumField() {
		f := t.Field(i)
		index := append(append([]int(nil), at...), i)
		if f.Anonymous {
			if f.Type.Kind() != reflect.Struct || f.Tag.Get("json") != "" || !p.add(f.Type, index) {
				return false
			}
			continue
		}
		if !f.IsExported() {
			return false
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || (opts != "" && opts != "omitempty") {
			return false
		}
		if name == "" {
			name = f.Name
		}
		ff := fastField{name: name, index: index, kind: fastOther}
		switch {
		case f.Type == objectFieldType:
			ff.kind = fastObject
		case f.Type.Kind() == reflect.String:
			ff.kind = fastString
		case f.Type.Kind() == reflect.Int || f.Type.Kind() == reflect.Int64:
			ff.kind = fastInt
		case f.Type.Kind() == reflect.Bool:
			ff.kind = fastBool
		}
		p.fields = append(p.fields, ff)
	}
	return true
}

// decode fills v (a zero struct of the plan's type) from body and reports
// whether it could; when not, v may be partly filled.
func (p *fastPlan) decode(body []byte, v reflect.Value) bool {
	d := objDecoder{b: body, strict: true}
	d.space()
	if d.i == len(body) {
		return true // an empty body is the empty object
	}
	if body[d.i] != '{' {
		return false
	}
	d.i++
	d.space()
	if d.i < len(body) && body[d.i] == '}' {
		d.i++
		return d.end()
	}
	var seen uint64
	for {
		f := p.key(&d)
		if f < 0 || seen&(1<<f) != 0 {
			return false
		}
		seen |= 1 << f
		d.space()
		if d.i >= len(body) || body[d.i] != ':' {
			return false
		}
		d.i++
		d.space()
		if !p.value(&d, &p.fields[f], v) {
			return false
		}
		d.space()
		if d.i >= len(body) {
			return false
		}
		c := body[d.i]
		d.i++
		if c == '}' {
			return d.end()
		}
		if c != ',' {
			return false
		}
		d.space()
	}
}

// end reports whether only white space follows.
func (d *objDecoder) end() bool {
	d.space()
	return d.i == len(d.b)
}

// key reads a key written plainly and returns its field's index, or -1.
func (p *fastPlan) key(d *objDecoder) int {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return -1
	}
	start := d.i + 1
	for j := start; j < len(d.b); j++ {
		c := d.b[j]
		if c == '"' {
			d.i = j + 1
			for i := range p.fields {
				if p.fields[i].name == string(d.b[start:j]) {
					return i
				}
			}
			return -1
		}
		if c == '\\' || c < 0x20 || c >= 0x80 {
			return -1
		}
	}
	return -1
}

func (p *fastPlan) value(d *objDecoder, f *fastField, v reflect.Value) bool {
	if d.i >= len(d.b) {
		return false
	}
	if d.b[d.i] == 'n' { // null leaves a field as it is, as encoding/json does
		return d.literal("null") == nil
	}
	if f.kind == fastOther {
		return false
	}
	fv := v.FieldByIndex(f.index)
	switch f.kind {
	case fastString:
		if d.b[d.i] != '"' {
			return false
		}
		s, err := d.str()
		if err != nil {
			return false
		}
		fv.SetString(s)
	case fastInt:
		start := d.i
		for d.i < len(d.b) && (d.b[d.i] == '-' || d.b[d.i] >= '0' && d.b[d.i] <= '9') {
			d.i++
		}
		s := d.b[start:d.i]
		if !validNumber(s) {
			return false
		}
		n, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil || fv.OverflowInt(n) {
			return false
		}
		fv.SetInt(n)
	case fastBool:
		switch {
		case d.literal("true") == nil:
			fv.SetBool(true)
		case d.literal("false") == nil:
			fv.SetBool(false)
		default:
			return false
		}
	case fastObject:
		if d.b[d.i] != '{' {
			return false
		}
		m, err := d.object()
		if err != nil {
			return false
		}
		fv.Set(reflect.ValueOf(Object(m)))
	}
	return true
}
