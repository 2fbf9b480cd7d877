package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Object is a free-form JSON object of a request or response (a flow's
// input and output, parameters) that is decoded and encoded in one pass,
// without reflection. It holds what Normalize leaves: numbers are int64
// when integral and float64 otherwise (±Inf when out of range), never
// json.Number; objects are map[string]any and arrays []any.
//
// Decoding runs inside the strict decoder, which has checked the JSON's
// syntax already, and checkJSON refuses duplicate keys and NUL characters
// in it as in any free-form field. A value other than an object or null is
// refused as encoding/json refuses it for a map.
type Object map[string]any

var objectType = reflect.TypeFor[map[string]any]()

// UnmarshalJSON decodes a JSON object (null leaves o unchanged).
func (o *Object) UnmarshalJSON(b []byte) error {
	d := objDecoder{b: b}
	d.space()
	if d.i >= len(b) {
		return errors.New("empty value")
	}
	switch b[d.i] {
	case '{':
		m, err := d.object()
		if err != nil {
			return err
		}
		*o = m
		return nil
	case 'n':
		return nil
	case '[':
		return &json.UnmarshalTypeError{Value: "array", Type: objectType}
	case '"':
		return &json.UnmarshalTypeError{Value: "string", Type: objectType}
	case 't', 'f':
		return &json.UnmarshalTypeError{Value: "bool", Type: objectType}
	}
	return &json.UnmarshalTypeError{Value: "number", Type: objectType}
}

// objDecoder reads valid JSON (the caller's decoder checked it); it still
// refuses what it does not expect rather than run past the end.
type objDecoder struct {
	b    []byte
	i    int
	keys []string // keys seen so far, reused: objects of a list repeat them
	// strict refuses what checkJSON would (a key twice in one object, a
	// NUL character) and raw control characters, for a body that no other
	// decoder has checked (see fastPlan).
	strict bool
}

var errObjSyntax = errors.New("malformed JSON in a free-form object")

func (d *objDecoder) space() { d.i = skipJSONSpace(d.b, d.i) }

func (d *objDecoder) value() (any, error) {
	if d.i >= len(d.b) {
		return nil, errObjSyntax
	}
	switch c := d.b[d.i]; {
	case c == '{':
		m, err := d.object()
		return m, err
	case c == '[':
		return d.array()
	case c == '"':
		return d.str()
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	}
	return d.number()
}

func (d *objDecoder) literal(s string) error {
	if len(d.b)-d.i < len(s) || string(d.b[d.i:d.i+len(s)]) != s {
		return errObjSyntax
	}
	d.i += len(s)
	return nil
}

func (d *objDecoder) object() (map[string]any, error) {
	d.i++ // {
	d.space()
	m := make(map[string]any)
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return m, nil
	}
	for {
		if d.i >= len(d.b) || d.b[d.i] != '"' {
			return nil, errObjSyntax
		}
		k, err := d.key()
		if err != nil {
			return nil, err
		}
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return nil, errObjSyntax
		}
		d.i++
		d.space()
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		if d.strict {
			if _, dup := m[k]; dup {
				return nil, errObjSyntax
			}
		}
		m[k] = v
		d.space()
		if d.i >= len(d.b) {
			return nil, errObjSyntax
		}
		c := d.b[d.i]
		d.i++
		if c == '}' {
			return m, nil
		}
		if c != ',' {
			return nil, errObjSyntax
		}
		d.space()
	}
}

func (d *objDecoder) array() ([]any, error) {
	d.i++ // [
	d.space()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		return []any{}, nil
	}
	var buf [8]any // small lists are built here, then copied once
	l := buf[:0]
	for {
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		l = append(l, v)
		d.space()
		if d.i >= len(d.b) {
			return nil, errObjSyntax
		}
		c := d.b[d.i]
		d.i++
		if c == ']' {
			return append([]any(nil), l...), nil
		}
		if c != ',' {
			return nil, errObjSyntax
		}
		d.space()
	}
}

// maxKeys bounds the keys remembered for reuse.
const maxKeys = 32

// key reads an object key, reusing an equal key read before.
func (d *objDecoder) key() (string, error) {
	if end := d.i + 1; end < len(d.b) {
		for _, k := range d.keys {
			if e := end + len(k); e < len(d.b) && d.b[e] == '"' && string(d.b[end:e]) == k {
				d.i = e + 1
				return k, nil
			}
		}
	}
	raw := d.i
	k, err := d.str()
	if err == nil && len(d.keys) < maxKeys && d.i-raw == len(k)+2 { // as written: no escapes
		d.keys = append(d.keys, k)
	}
	return k, err
}

// str reads a string. Plain ASCII or valid UTF-8 without escapes is
// copied as it is; anything else is left to encoding/json, so escapes and
// invalid UTF-8 (replaced by U+FFFD) come out exactly as elsewhere.
func (d *objDecoder) str() (string, error) {
	start := d.i
	d.i++ // "
	plain, ascii := true, true
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			raw := d.b[start+1 : d.i]
			d.i++
			if plain && (ascii || utf8.Valid(raw)) {
				return string(raw), nil
			}
			var s string
			if err := json.Unmarshal(d.b[start:d.i], &s); err != nil {
				return "", err
			}
			return s, nil
		case c == '\\':
			plain = false
			if d.strict && d.i+5 < len(d.b) && string(d.b[d.i+1:d.i+6]) == "u0000" {
				return "", errObjSyntax
			}
			d.i += 2
			continue
		case c < 0x20:
			return "", errObjSyntax // not JSON
		case c >= utf8.RuneSelf:
			ascii = false
		}
		d.i++
	}
	return "", errObjSyntax
}

// number reads a number as Normalize converts a json.Number: int64 when
// it parses as one, float64 otherwise.
func (d *objDecoder) number() (any, error) {
	start := d.i
	integral := true
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c >= '0' && c <= '9' || c == '-' {
			d.i++
			continue
		}
		if c == '.' || c == 'e' || c == 'E' || c == '+' {
			integral = false
			d.i++
			continue
		}
		break
	}
	s := d.b[start:d.i]
	if !validNumber(s) {
		return nil, errObjSyntax
	}
	if integral {
		if n, ok := smallInt(s); ok {
			return n, nil
		}
		if n, err := strconv.ParseInt(string(s), 10, 64); err == nil {
			return n, nil
		}
	}
	f, err := strconv.ParseFloat(string(s), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, err
	}
	return f, nil
}

// validNumber reports whether s is a JSON number:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func validNumber(s []byte) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// smallInt parses up to 18 digits with an optional minus without
// allocating.
func smallInt(s []byte) (int64, bool) {
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// MarshalJSON encodes o as ObjectOut does.
func (o Object) MarshalJSON() ([]byte, error) { return ObjectOut(o).MarshalJSON() }

// ObjectOut is a free-form object of a response (a flow's output) that is
// encoded without reflection. It decodes as a plain map[string]any does
// (numbers float64), so clients decoding an answer see no difference.
type ObjectOut map[string]any

// MarshalJSON encodes o as encoding/json would, keys sorted, without
// reflection for the types a decoded object or a script's result holds
// (other values are left to encoding/json). The caller's encoder applies
// its own HTML escaping to what this returns.
func (o ObjectOut) MarshalJSON() ([]byte, error) {
	if o == nil {
		return []byte("null"), nil
	}
	return appendJSON(make([]byte, 0, 256), map[string]any(o))
}

// appendJSON appends v's JSON encoding to b.
func appendJSON(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case string:
		return appendString(b, x), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case float64:
		return appendFloat(b, x)
	case map[string]any:
		if x == nil {
			return append(b, "null"...), nil
		}
		var inline [16]string
		keys := inline[:0]
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendJSON(b, x[k]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case []any:
		if x == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendJSON(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	}
	return appendMarshal(b, v)
}

// appendMarshal appends v as encoding/json encodes it without HTML
// escaping: the caller's encoder escapes what it returns, or not.
func appendMarshal(b []byte, v any) ([]byte, error) {
	var buf bytes.Buffer
	e := json.NewEncoder(&buf)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...), nil
}

// appendFloat formats f as encoding/json does (ES6 number form).
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, &json.UnsupportedValueError{Value: reflect.ValueOf(f), Str: strconv.FormatFloat(f, 'g', -1, 64)}
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 → e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

const hexDigits = "0123456789abcdef"

// appendString quotes s as encoding/json does without HTML escaping:
// control characters, quote and backslash escaped, invalid UTF-8 as
// U+FFFD, U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
