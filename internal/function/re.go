package function

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// The re module wraps Go's regexp (RE2 syntax, linear time in the input),
// so no pattern can make a script hang on backtracking. It offers the
// Python re functions scripts most often need, returning plain values
// instead of match objects:
//
//	re.match(p, s)           groups [whole, g1, ...] of a match at the start, or None
//	re.search(p, s)          the same for the first match anywhere
//	re.findall(p, s)         all matches: strings, or the group(s) when p has groups
//	re.sub(p, repl, s, n=0)  replace; \1 and \g<name> in repl refer to groups
//	re.split(p, s, n=0)      split around matches
const (
	maxPatternBytes = 4 << 10
	maxCachedRegexp = 256
)

type reModule struct {
	env   *env
	mu    sync.Mutex
	cache map[string]*regexp.Regexp
}

func newReModule(e *env) *starlarkstruct.Module {
	m := &reModule{env: e, cache: map[string]*regexp.Regexp{}}
	return &starlarkstruct.Module{Name: "re", Members: starlark.StringDict{
		"match":   starlark.NewBuiltin("re.match", m.match),
		"search":  starlark.NewBuiltin("re.search", m.search),
		"findall": starlark.NewBuiltin("re.findall", m.findall),
		"sub":     starlark.NewBuiltin("re.sub", m.sub),
		"split":   starlark.NewBuiltin("re.split", m.split),
	}}
}

func (m *reModule) compile(p string) (*regexp.Regexp, error) {
	if len(p) > maxPatternBytes {
		return nil, fmt.Errorf("pattern longer than %d bytes", maxPatternBytes)
	}
	m.mu.Lock()
	re, ok := m.cache[p]
	m.mu.Unlock()
	if ok {
		return re, nil
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if len(m.cache) < maxCachedRegexp {
		m.cache[p] = re
	}
	m.mu.Unlock()
	return re, nil
}

func groups(s string, idx []int) starlark.Value {
	if idx == nil {
		return starlark.None
	}
	out := make([]starlark.Value, len(idx)/2)
	for i := range out {
		if idx[2*i] < 0 {
			out[i] = starlark.None
		} else {
			out[i] = starlark.String(s[idx[2*i]:idx[2*i+1]])
		}
	}
	return starlark.NewList(out)
}

func (m *reModule) match(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	var p, s string
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kw, 2, &p, &s); err != nil {
		return nil, err
	}
	re, err := m.compile(`^(?:` + p + `)`)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name(), err)
	}
	return groups(s, re.FindStringSubmatchIndex(s)), nil
}

func (m *reModule) search(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	var p, s string
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kw, 2, &p, &s); err != nil {
		return nil, err
	}
	re, err := m.compile(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name(), err)
	}
	return groups(s, re.FindStringSubmatchIndex(s)), nil
}

func (m *reModule) findall(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	var p, s string
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kw, 2, &p, &s); err != nil {
		return nil, err
	}
	re, err := m.compile(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name(), err)
	}
	n := m.env.remaining(th)/strCost + 1
	all := re.FindAllStringSubmatch(s, n)
	if err := m.env.charge(th, len(all)*strCost*max(1, re.NumSubexp())); err != nil {
		return nil, err
	}
	out := make([]starlark.Value, len(all))
	for i, g := range all {
		switch len(g) {
		case 1:
			out[i] = starlark.String(g[0])
		case 2:
			out[i] = starlark.String(g[1])
		default:
			t := make(starlark.Tuple, len(g)-1)
			for j := range t {
				t[j] = starlark.String(g[j+1])
			}
			out[i] = t
		}
	}
	return starlark.NewList(out), nil
}

// pyRepl turns a Python replacement (\1, \g<name>) into Go's ($1, ${name}),
// escaping literal dollars.
func pyRepl(r string) string {
	var sb strings.Builder
	for i := 0; i < len(r); i++ {
		c := r[i]
		switch {
		case c == '$':
			sb.WriteString("$$")
		case c == '\\' && i+1 < len(r) && r[i+1] >= '0' && r[i+1] <= '9':
			j := i + 1
			for j < len(r) && r[j] >= '0' && r[j] <= '9' {
				j++
			}
			sb.WriteString("${" + r[i+1:j] + "}")
			i = j - 1
		case c == '\\' && strings.HasPrefix(r[i:], `\g<`):
			end := strings.IndexByte(r[i:], '>')
			if end < 0 {
				sb.WriteByte(c)
				continue
			}
			sb.WriteString("${" + r[i+3:i+end] + "}")
			i += end
		case c == '\\' && i+1 < len(r) && r[i+1] == '\\':
			sb.WriteByte('\\')
			i++
		default:
			sb.WriteByte(c)
		}
	}
	return sb.String()
}

func (m *reModule) sub(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	var p, repl, s string
	count := 0
	if err := starlark.UnpackArgs(b.Name(), args, kw, "pattern", &p, "repl", &repl, "string", &s, "count?", &count); err != nil {
		return nil, err
	}
	re, err := m.compile(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name(), err)
	}
	n := -1
	if count > 0 {
		n = count
	}
	matches := re.FindAllStringSubmatchIndex(s, n)
	tmpl := pyRepl(repl)
	// Predict the size first: each replacement is at most the template
	// with every group reference expanded to the whole input.
	if len(s)+len(matches)*(len(tmpl)+strings.Count(tmpl, "$")*len(s)) > m.env.limits.MaxValueBytes {
		// Cheap prediction failed; build and measure exactly, piece by piece.
		size := len(s)
		for _, mi := range matches {
			size += len(re.ExpandString(nil, tmpl, s, mi)) - (mi[1] - mi[0])
			if size > m.env.limits.MaxValueBytes {
				return nil, m.env.tooBig(th)
			}
		}
	}
	var out []byte
	last := 0
	for _, mi := range matches {
		out = append(out, s[last:mi[0]]...)
		out = re.ExpandString(out, tmpl, s, mi)
		last = mi[1]
	}
	out = append(out, s[last:]...)
	if err := m.env.charge(th, len(out)); err != nil {
		return nil, err
	}
	return starlark.String(out), nil
}

func (m *reModule) split(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	var p, s string
	maxsplit := 0
	if err := starlark.UnpackArgs(b.Name(), args, kw, "pattern", &p, "string", &s, "maxsplit?", &maxsplit); err != nil {
		return nil, err
	}
	re, err := m.compile(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name(), err)
	}
	n := -1
	if maxsplit > 0 {
		n = maxsplit + 1
	}
	if limit := m.env.remaining(th)/strCost + 1; n < 0 || n > limit {
		n = limit
	}
	parts := re.Split(s, n)
	if err := m.env.charge(th, len(parts)*strCost); err != nil {
		return nil, err
	}
	out := make([]starlark.Value, len(parts))
	for i, x := range parts {
		out[i] = starlark.String(x)
	}
	return starlark.NewList(out), nil
}
