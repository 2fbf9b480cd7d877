package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// checkJSON refuses what encoding/json lets through silently in a body it
// decoded without error: a key given twice in one object (it keeps the
// last) and a NUL character in any string, key or value (PostgreSQL cannot
// store one, so the backends would disagree). It walks the body once,
// alongside the request type t, so that keys of objects decoded into
// structs compare as encoding/json matches them (case-insensitively) and
// keys of free-form objects compare exactly. body must be valid JSON.
func checkJSON(body []byte, t reflect.Type) *Error {
	var path [8]pathPart
	s := jsonScan{b: body, path: path[:0]}
	s.skipSpace()
	return s.value(t)
}

// jsonScan walks a valid JSON text. path holds where it is, for the error
// only: building a path string costs nothing until something is refused.
type jsonScan struct {
	b    []byte
	i    int
	path []pathPart
}

type pathPart struct {
	key []byte // the raw key, escapes included; nil for an index
	idx int
}

const (
	dupKeyMsg  = "appears more than once in its object"
	nulCharMsg = "contains a NUL character (U+0000)"
)

func (s *jsonScan) skipSpace() { s.i = skipJSONSpace(s.b, s.i) }

// skipJSONSpace returns the index of the first byte at or after i in b
// that is not JSON white space.
func skipJSONSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// value checks the value at s.i, of Go type t (nil: free-form), and moves
// past it.
func (s *jsonScan) value(t reflect.Type) *Error {
	switch s.b[s.i] {
	case '{':
		return s.object(t)
	case '[':
		return s.array(t)
	case '"':
		_, nul := s.str()
		if nul {
			return InvalidValue(s.pathString(), nulCharMsg)
		}
		return nil
	}
	for s.i < len(s.b) { // a number, true, false or null
		switch s.b[s.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return nil
		}
		s.i++
	}
	return nil
}

// str moves past the string at s.i and returns its contents as written
// (escapes kept), and whether it holds an escaped NUL. A raw NUL byte is
// not valid JSON, so the decoder has refused it already.
func (s *jsonScan) str() (raw []byte, nul bool) {
	s.i++ // the opening quote
	start := s.i
	for {
		c := s.b[s.i]
		if c == '"' {
			raw = s.b[start:s.i]
			s.i++
			return raw, nul
		}
		if c == '\\' {
			if s.b[s.i+1] == 'u' && string(s.b[s.i+2:s.i+6]) == "0000" {
				nul = true
			}
			s.i += 2 // the escaped character; \uXXXX's digits are plain bytes
			continue
		}
		s.i++
	}
}

func (s *jsonScan) array(t reflect.Type) *Error {
	elem := elemType(t)
	s.i++
	s.skipSpace()
	if s.b[s.i] == ']' {
		s.i++
		return nil
	}
	s.path = append(s.path, pathPart{})
	for n := 0; ; n++ {
		s.path[len(s.path)-1].idx = n
		if err := s.value(elem); err != nil {
			return err
		}
		if s.end(']') {
			return nil
		}
	}
}

// end moves past what follows a member of an array or object: the closing
// bracket (it then leaves the member's path and reports true) or a comma.
func (s *jsonScan) end(closing byte) bool {
	s.skipSpace()
	c := s.b[s.i]
	s.i++
	s.skipSpace()
	if c == closing {
		s.path = s.path[:len(s.path)-1]
		return true
	}
	return false
}

// seenKeysInline is how many keys of one object are compared pairwise
// before a map takes over: request objects are small.
const seenKeysInline = 16

func (s *jsonScan) object(t reflect.Type) *Error {
	fields, fold := objectFields(t)
	s.i++
	s.skipSpace()
	if s.b[s.i] == '}' {
		s.i++
		return nil
	}
	var inline [seenKeysInline][]byte
	seen := inline[:0]
	var many map[string]struct{}
	s.path = append(s.path, pathPart{})
	for {
		raw, nul := s.str()
		if nul {
			s.path = s.path[:len(s.path)-1]
			return InvalidValue(s.pathString(), "a key %s", nulCharMsg)
		}
		s.path[len(s.path)-1].key = raw
		key := unescapeKey(raw)
		if dupKey(key, seen, many, fold) {
			return InvalidValue(s.pathString(), dupKeyMsg)
		}
		if len(seen) < seenKeysInline {
			seen = append(seen, key)
		} else {
			if many == nil {
				many = make(map[string]struct{}, 2*seenKeysInline)
			}
			many[foldKey(key, fold)] = struct{}{}
		}
		s.skipSpace()
		s.i++ // the colon
		s.skipSpace()
		var vt reflect.Type
		if c := s.b[s.i]; c == '{' || c == '[' {
			vt = fields.lookup(t, key)
		}
		if err := s.value(vt); err != nil {
			return err
		}
		if s.end('}') {
			return nil
		}
	}
}

func dupKey(key []byte, seen [][]byte, many map[string]struct{}, fold bool) bool {
	for _, k := range seen {
		if bytes.Equal(k, key) || (fold && bytes.EqualFold(k, key)) {
			return true
		}
	}
	if many != nil {
		_, ok := many[foldKey(key, fold)]
		return ok
	}
	return false
}

func foldKey(key []byte, fold bool) string {
	if fold {
		return strings.ToLower(string(key))
	}
	return string(key)
}

// unescapeKey returns a key's text; only keys with escapes are decoded.
func unescapeKey(raw []byte) []byte {
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw
	}
	var k string
	if err := json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &k); err != nil {
		return raw
	}
	return []byte(k)
}

// pathString names where the scan is as the validator names fields:
// Sources[0].DeviceId.
func (s *jsonScan) pathString() string {
	var b strings.Builder
	for i, p := range s.path {
		if p.key == nil {
			b.WriteString("[" + strconv.Itoa(p.idx) + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.Write(unescapeKey(p.key))
	}
	if b.Len() == 0 {
		return "body"
	}
	return b.String()
}

var rawMessageType = reflect.TypeFor[json.RawMessage]()

// concrete strips pointers; it returns nil for the types whose JSON is
// free-form here (interfaces, raw messages, types that decode themselves).
func concrete(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t == rawMessageType || t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	return t
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

func elemType(t reflect.Type) reflect.Type {
	t = concrete(t)
	if t == nil || (t.Kind() != reflect.Slice && t.Kind() != reflect.Array) {
		return nil
	}
	return t.Elem()
}

// structFields are a struct's JSON names and types, promoted fields of
// embedded structs included, as encoding/json sees them.
type structFields []structField

type structField struct {
	name string
	typ  reflect.Type
}

// lookup returns the type of the value of key in an object of type t: a
// struct's field (exact name first, then case-insensitively, as
// encoding/json matches), a map's element, or nil.
func (f structFields) lookup(t reflect.Type, key []byte) reflect.Type {
	t = concrete(t)
	if t == nil {
		return nil
	}
	if t.Kind() == reflect.Map {
		return t.Elem()
	}
	for _, sf := range f {
		if sf.name == string(key) {
			return sf.typ
		}
	}
	for _, sf := range f {
		if strings.EqualFold(sf.name, string(key)) {
			return sf.typ
		}
	}
	return nil
}

var fieldCache sync.Map // reflect.Type -> structFields

// objectFields returns the fields of t when it is a struct, and whether
// its keys compare case-insensitively (they do for structs only).
func objectFields(t reflect.Type) (structFields, bool) {
	t = concrete(t)
	if t == nil || t.Kind() != reflect.Struct {
		return nil, false
	}
	if f, ok := fieldCache.Load(t); ok {
		return f.(structFields), true
	}
	var f structFields
	collectFields(t, &f)
	fieldCache.Store(t, f)
	return f, true
}

func collectFields(t reflect.Type, out *structFields) {
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if sf.Anonymous && name == "" {
			if et := concrete(sf.Type); et != nil && et.Kind() == reflect.Struct {
				collectFields(et, out)
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		*out = append(*out, structField{name: name, typ: sf.Type})
	}
}
