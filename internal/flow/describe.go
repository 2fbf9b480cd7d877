package flow

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Port types: the closed set of value types the engine moves between
// nodes. Node kinds declare their input ports and output fields with them,
// algorithm contracts are mapped onto them (internal/algorepo), and
// validation refuses a path whose producing field's type cannot feed the
// port it is mapped to (Compatible). An editor uses the same rule to
// decide which ports may be connected.
const (
	TypeAny     = "any"     // anything; connects to every type
	TypeImage   = "image"   // an encoded picture (a frame, an upload, a crop)
	TypeObjects = "objects" // a list of objects, each {box: [x, y, w, h], label, score, trackId, ...}
	TypeObject  = "object"  // one JSON object (an object of a detection, a record's data)
	TypeList    = "list"    // a list of anything
	TypeString  = "string"
	TypeNumber  = "number"
	TypeInteger = "integer"
	TypeBool    = "bool"
)

// PortTypes lists the port types, for docs and editors.
func PortTypes() []string {
	return []string{TypeAny, TypeImage, TypeObjects, TypeObject, TypeList, TypeString, TypeNumber, TypeInteger, TypeBool}
}

// family groups types that carry the same JSON shape: an integer is a
// number, and objects are a list (a list from a script may hold objects).
func family(t string) string {
	switch t {
	case TypeInteger:
		return TypeNumber
	case TypeObjects:
		return TypeList
	case "":
		return TypeAny
	}
	return t
}

// Compatible reports whether a value of type from may feed a port of type
// to: equal types, either side any (or undeclared), or the same family
// ({number, integer}, {list, objects}). Everything else, such as an image
// into an objects port or a string into an image port, is a miswiring.
func Compatible(from, to string) bool {
	f, t := family(from), family(to)
	return f == TypeAny || t == TypeAny || f == t
}

// Port is one input port or output field of a node kind; Items, for an
// algorithm's objects or list output, the fields its contract declares
// for each element.
type Port struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Required bool   `json:"required,omitempty"`
	Doc      string `json:"doc,omitempty"`
	Items    []Port `json:"items,omitempty"`
}

// Node kind categories, for grouping an editor's palette.
const (
	CategoryAlgorithm = "algorithm" // calls a model
	CategoryLogic     = "logic"     // scripts, branches, joins, loops, subflows
	CategoryStream    = "stream"    // stateful per device: track, best shot, dedup, throttle, window, zone
	CategorySink      = "sink"      // leaves the flow: store, publish
	CategoryUtility   = "utility"   // noop, passthrough
)

// ConfigSchema returns the JSON Schema (draft 2020-12 subset: type,
// properties, required, default, enum, minimum, maximum, items,
// minItems, maxItems, additionalProperties, description, examples) of the
// kind's config, derived from its Config struct by reflection, or nil when
// the kind declares none. Struct tags drive it:
//
//	json:"name"           the property name (embedded structs are flattened, as encoding/json does)
//	doc:"..."             description
//	default:"0.3"         the default Compile applies when the field is absent (JSON, or a bare string)
//	example:"[[0,0]]"     an example value (JSON, or a bare string)
//	enum:"a|b|c"          the allowed values
//	min:"0" max:"1"       numeric bounds (inclusive)
//	required:"true"       Compile refuses the config without it
//	format:"duration"     a hint for editors: duration, expression, script, flow
//	omit:"key"            on an embedded struct: leave out these of its fields
//	required:"key"        on an embedded struct: these of its fields are required here
func (k *Kind) ConfigSchema() map[string]any {
	if k.Config == nil {
		return nil
	}
	t := reflect.TypeOf(k.Config)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return structSchema(t)
}

func structSchema(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				walk(f.Type)
				// omit:"a|b" on an embedded struct hides fields this kind
				// refuses (stream kinds that partition by trackId take no key).
				for _, name := range strings.Split(f.Tag.Get("omit"), "|") {
					if name != "" {
						delete(props, name)
						required = slices.DeleteFunc(required, func(r string) bool { return r == name })
					}
				}
				// required:"a|b" on an embedded struct: this kind needs these.
				for _, name := range strings.Split(f.Tag.Get("required"), "|") {
					if _, ok := props[name]; ok {
						required = append(required, name)
					}
				}
				continue
			}
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			props[name] = fieldSchema(f)
			if f.Tag.Get("required") == "true" {
				required = append(required, name)
			}
		}
	}
	walk(t)
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

func fieldSchema(f reflect.StructField) map[string]any {
	s := typeSchema(f.Type)
	if d := f.Tag.Get("doc"); d != "" {
		s["description"] = d
	}
	if v, ok := f.Tag.Lookup("default"); ok {
		s["default"] = tagValue(v, f.Type)
	}
	if v, ok := f.Tag.Lookup("example"); ok {
		s["examples"] = []any{tagValue(v, f.Type)}
	}
	if v := f.Tag.Get("enum"); v != "" {
		var enum []any
		for _, e := range strings.Split(v, "|") {
			enum = append(enum, e)
		}
		s["enum"] = enum
	}
	for tag, key := range map[string]string{"min": "minimum", "max": "maximum"} {
		if v, ok := f.Tag.Lookup(tag); ok {
			s[key] = tagValue(v, f.Type)
		}
	}
	if v := f.Tag.Get("format"); v != "" {
		s["format"] = v
	}
	return s
}

// typeSchema describes a Go type as JSON Schema.
func typeSchema(t reflect.Type) map[string]any {
	switch t.Kind() {
	case reflect.Pointer:
		if t.Elem() == reflect.TypeOf(Spec{}) {
			return map[string]any{"type": "object", "format": "flow"}
		}
		return typeSchema(t.Elem())
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": typeSchema(t.Elem())}
	case reflect.Array:
		return map[string]any{"type": "array", "items": typeSchema(t.Elem()), "minItems": t.Len(), "maxItems": t.Len()}
	case reflect.Map:
		return map[string]any{"type": "object"}
	case reflect.Struct:
		return structSchema(t)
	}
	return map[string]any{} // any JSON value
}

// tagValue reads a default, example or bound: JSON when it parses (a
// number, a list), else the bare string (a duration such as 1s).
func tagValue(v string, t reflect.Type) any {
	if t.Kind() == reflect.String {
		return v
	}
	var out any
	if err := json.Unmarshal([]byte(v), &out); err != nil {
		panic(fmt.Sprintf("flow: struct tag value %q of a %s is not JSON: %v", v, t, err))
	}
	if f, ok := out.(float64); ok && (t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64) {
		return int64(f)
	}
	return out
}

// ContractPorts returns an algorithm contract's fields as ports.
func ContractPorts(fields []Field) []Port {
	out := make([]Port, len(fields))
	for i, f := range fields {
		out[i] = Port{Name: f.Name, Type: f.Type, Required: f.Required, Doc: f.Doc}
		if len(f.Items) > 0 {
			out[i].Items = ContractPorts(f.Items)
		}
	}
	return out
}
