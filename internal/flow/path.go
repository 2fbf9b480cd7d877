package flow

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// Path is a parsed reference such as $detect.faces[0].box: a root (a node
// id, or input, params, item, index) followed by field and index steps.
// Paths are parsed once at compile time; resolving one is a few map and
// slice lookups.
type Path struct {
	Root  string
	Steps []Step
}

// Step is one field (.name or ["any key"]) or list index ([3], [-1] from
// the end) of a Path.
type Step struct {
	Key     string
	Index   int
	IsIndex bool
}

const maxPathSteps = 32

// ParsePath parses "$root.a[0]['b c']". Names are letters, digits, _ and -
// starting with a letter or _; other keys use the quoted form.
func ParsePath(s string) (Path, error) {
	if !strings.HasPrefix(s, "$") {
		return Path{}, fmt.Errorf("path %q must start with $", s)
	}
	i := 1
	name, n := scanName(s[i:])
	if n == 0 {
		return Path{}, fmt.Errorf("path %q: expected a node id, input, params, item or index after $", s)
	}
	p := Path{Root: name}
	i += n
	for i < len(s) {
		if len(p.Steps) == maxPathSteps {
			return Path{}, fmt.Errorf("path %q: more than %d steps", s, maxPathSteps)
		}
		switch s[i] {
		case '.':
			name, n := scanName(s[i+1:])
			if n == 0 {
				return Path{}, fmt.Errorf("path %q: expected a field name at offset %d", s, i+1)
			}
			p.Steps = append(p.Steps, Step{Key: name})
			i += 1 + n
		case '[':
			end, st, err := scanBracket(s, i)
			if err != nil {
				return Path{}, err
			}
			p.Steps = append(p.Steps, st)
			i = end
		default:
			return Path{}, fmt.Errorf("path %q: unexpected %q at offset %d", s, s[i], i)
		}
	}
	return p, nil
}

func scanName(s string) (string, int) {
	i := 0
	for i < len(s) {
		c := s[i]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (c >= '0' && c <= '9' || c == '-') {
			i++
			continue
		}
		break
	}
	return s[:i], i
}

func scanBracket(s string, i int) (int, Step, error) {
	j := i + 1
	if j < len(s) && (s[j] == '"' || s[j] == '\'') {
		q := s[j]
		k := j + 1
		var sb strings.Builder
		for k < len(s) && s[k] != q {
			if s[k] == '\\' && k+1 < len(s) {
				k++
			}
			sb.WriteByte(s[k])
			k++
		}
		if k >= len(s) {
			return 0, Step{}, fmt.Errorf("path %q: unterminated quoted key at offset %d", s, j)
		}
		if k+1 >= len(s) || s[k+1] != ']' {
			return 0, Step{}, fmt.Errorf("path %q: expected ] at offset %d", s, k+1)
		}
		return k + 2, Step{Key: sb.String()}, nil
	}
	end := strings.IndexByte(s[j:], ']')
	if end < 0 {
		return 0, Step{}, fmt.Errorf("path %q: missing ] after offset %d", s, i)
	}
	n, err := strconv.Atoi(s[j : j+end])
	if err != nil || s[j] == '+' || end > 9 {
		return 0, Step{}, fmt.Errorf("path %q: index %q is not an integer", s, s[j:j+end])
	}
	return j + end + 1, Step{Index: n, IsIndex: true}, nil
}

// String prints the path back in its canonical form.
func (p Path) String() string {
	var sb strings.Builder
	sb.WriteString("$" + p.Root)
	for _, st := range p.Steps {
		switch {
		case st.IsIndex:
			sb.WriteString("[" + strconv.Itoa(st.Index) + "]")
		case isName(st.Key):
			sb.WriteString("." + st.Key)
		default:
			// The parser's escape rule: a backslash makes the next byte literal.
			sb.WriteString(`["`)
			for i := 0; i < len(st.Key); i++ {
				if c := st.Key[i]; c == '"' || c == '\\' {
					sb.WriteByte('\\')
				}
				sb.WriteByte(st.Key[i])
			}
			sb.WriteString(`"]`)
		}
	}
	return sb.String()
}

func isName(s string) bool {
	_, n := scanName(s)
	return n == len(s) && n > 0
}

// walk follows steps from v. A missing field, an index out of range, or a
// step into a scalar gives nil: data between nodes is loosely shaped (an
// algorithm may omit an empty list), and validation has already checked
// what can be checked statically.
func walk(v any, steps []Step) any {
	for _, st := range steps {
		if v == nil {
			return nil
		}
		if st.IsIndex {
			switch x := v.(type) {
			case []any:
				i := st.Index
				if i < 0 {
					i += len(x)
				}
				if i < 0 || i >= len(x) {
					return nil
				}
				v = x[i]
			case []map[string]any:
				i := st.Index
				if i < 0 {
					i += len(x)
				}
				if i < 0 || i >= len(x) {
					return nil
				}
				v = x[i]
			default:
				v = reflectIndex(v, st.Index)
			}
			continue
		}
		switch x := v.(type) {
		case map[string]any:
			v = x[st.Key]
		default:
			v = reflectKey(v, st.Key)
		}
	}
	return v
}

func reflectIndex(v any, i int) any {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return nil
	}
	if i < 0 {
		i += rv.Len()
	}
	if i < 0 || i >= rv.Len() {
		return nil
	}
	return rv.Index(i).Interface()
}

func reflectKey(v any, k string) any {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Map || rv.Type().Key().Kind() != reflect.String {
		return nil
	}
	e := rv.MapIndex(reflect.ValueOf(k).Convert(rv.Type().Key()))
	if !e.IsValid() {
		return nil
	}
	return e.Interface()
}
