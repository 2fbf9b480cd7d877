package function

import (
	"errors"
	"math/bits"
	"strconv"
	"strings"

	sjson "go.starlark.net/lib/json"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// The memory budget. Starlark has no allocator hook, so the sandbox
// charges a call's budget where values are built: every guarded operator,
// method and builtin charges the size of the value it makes (before making
// it, when the size can be predicted), and every computation step charges
// stepCost for the small growth no guard sees (one appended element, one
// dict entry). The budget counts bytes allocated, not bytes live: garbage
// a call makes counts too, which keeps the accounting exact and cheap.
const (
	stepCost  = 16 // bytes charged per computation step
	strCost   = 32 // bytes of one string element of a list (header and interface)
	tupleCost = 56 // bytes of a small tuple in a list
	entryCost = 64 // bytes of one dict or set entry
)

// errStopped is returned by a guarded builtin when the call was already
// stopped (time, context); end reports the real cause.
var errStopped = errors.New("call stopped")

func workerOf(th *starlark.Thread) *worker {
	w, _ := th.Local(workerKey).(*worker)
	return w
}

// charge adds n bytes to the call's memory budget and fails when the
// budget is spent or the call was stopped.
func (e *env) charge(th *starlark.Thread, n int) error {
	w := workerOf(th)
	if w == nil {
		return nil
	}
	w.alloc += n
	if w.alloc+int(th.Steps)*stepCost > e.limits.MaxMemoryBytes {
		return w.limitErr(LimitMemory)
	}
	if w.hit.Load() != nil {
		return errStopped
	}
	return nil
}

// remaining returns the bytes left in the call's memory budget.
func (e *env) remaining(th *starlark.Thread) int {
	w := workerOf(th)
	if w == nil {
		return e.limits.MaxMemoryBytes
	}
	return max(e.limits.MaxMemoryBytes-w.alloc-int(th.Steps)*stepCost, 0)
}

// intBits returns the bit length of x without copying small ints.
func intBits(x starlark.Int) int {
	if i, ok := x.Int64(); ok {
		if i < 0 {
			i = -i
		}
		return bits.Len64(uint64(i))
	}
	return x.BigInt().BitLen()
}

func (e *env) intTooBig(th *starlark.Thread) error {
	if w := workerOf(th); w != nil {
		return w.limitErr(LimitIntSize)
	}
	return &LimitError{Limit: LimitIntSize, Max: strconv.Itoa(e.limits.MaxIntBits) + " bits"}
}

// checkInt refuses an integer result of op larger than MaxIntBits before
// it is computed, and charges its size.
func (e *env) checkInt(th *starlark.Thread, op syntax.Token, x, y starlark.Int) error {
	a, b := intBits(x), intBits(y)
	var n int
	switch op {
	case syntax.STAR:
		n = a + b
	case syntax.LTLT:
		s, ok := y.Int64()
		if !ok || s > int64(e.limits.MaxIntBits) {
			return e.intTooBig(th) // negative or huge counts fail in Starlark anyway
		}
		n = a + int(max(s, 0))
	default:
		n = max(a, b) + 1
	}
	if n > e.limits.MaxIntBits {
		return e.intTooBig(th)
	}
	if n > 64 {
		return e.charge(th, n/8)
	}
	return nil
}

// length returns the number of elements of v, or -1 when it has none.
func length(v starlark.Value) int {
	if s, ok := v.(starlark.String); ok {
		return len(s)
	}
	return starlark.Len(v)
}

// sized wraps a builtin that builds a container from its first argument
// (list, tuple, sorted, set, dict, reversed, enumerate, zip, bytes): it
// charges the predicted size first, or the actual one when the argument's
// length is unknown.
func (e *env) sized(fn *starlark.Builtin, unit int) starlark.Value {
	return starlark.NewBuiltin(fn.Name(), func(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
		n := -1
		for _, a := range args {
			if l := length(a); l >= 0 && (n < 0 || fn.Name() != "zip" || l < n) {
				n = l
			}
		}
		if n >= 0 {
			if err := e.charge(th, n*unit); err != nil {
				return nil, err
			}
		}
		v, err := starlark.Call(th, fn, args, kw)
		if err == nil && n < 0 {
			if l := length(v); l > 0 {
				err = e.charge(th, l*unit)
			}
		}
		return v, err
	})
}

// intFn is int() with a bound on the digits of a string argument: Go parses
// long decimal strings in quadratic time, so int("9"*1000000) would spend
// seconds inside one step.
func (e *env) intFn(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	if len(args) > 0 {
		if s, ok := args[0].(starlark.String); ok {
			base := 10
			if len(args) > 1 {
				if bv, err := starlark.AsInt32(args[1]); err == nil {
					base = bv
				}
			}
			if len(s) > maxDigits(string(s), base, e.limits.MaxIntBits) {
				return nil, e.intTooBig(th)
			}
		}
	}
	v, err := starlark.Call(th, starlark.Universe["int"], args, kw)
	if err != nil {
		return nil, err
	}
	if i, ok := v.(starlark.Int); ok && intBits(i) > e.limits.MaxIntBits {
		return nil, e.intTooBig(th)
	}
	return v, nil
}

// maxDigits is the longest string (with sign, prefix and slack) whose
// value in base can fit in maxBits bits.
func maxDigits(s string, base, maxBits int) int {
	if base == 0 {
		t := strings.TrimLeft(s, "+-")
		base = 10
		if len(t) > 1 && t[0] == '0' {
			switch t[1] {
			case 'x', 'X':
				base = 16
			case 'o', 'O':
				base = 8
			case 'b', 'B':
				base = 2
			}
		}
	}
	if base < 2 {
		base = 2
	}
	perDigit := bits.Len(uint(base)) - 1 // at least this many bits per digit
	return maxBits/perDigit + 4
}

// jsonDecode is json.decode with its result charged before it is built:
// the input's length plus, for every bracket, comma and colon, the value
// or element it makes; a number longer than MaxIntBits allows is refused
// because decoding it would take quadratic time.
func (e *env) jsonDecode(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	if len(args) > 0 {
		if s, ok := args[0].(starlark.String); ok {
			size, digits := jsonCost(string(s))
			if digits > maxDigits("", 10, e.limits.MaxIntBits) {
				return nil, e.intTooBig(th)
			}
			if err := e.charge(th, size); err != nil {
				return nil, err
			}
		}
	}
	return starlark.Call(th, sjson.Module.Members["decode"], args, kw)
}

// jsonCost estimates the bytes json.decode makes from s and the longest
// run of digits outside strings.
func jsonCost(s string) (size, longest int) {
	size = len(s)
	inStr, run := false, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if inStr {
			switch c {
			case '\\':
				i++
			case '"':
				inStr = false
			}
			continue
		}
		if c >= '0' && c <= '9' {
			run++
			longest = max(longest, run)
			continue
		}
		run = 0
		switch c {
		case '"':
			inStr = true
			size += strCost
		case '[':
			size += 64
		case '{':
			size += 160
		case ',':
			size += elemCost
		case ':':
			size += entryCost
		}
	}
	return size, longest
}

// slice is x[lo:hi:step] with the result charged first: slicing a list
// copies it, so a loop of l[1:] would otherwise copy megabytes a step.
func (e *env) slice(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
	if len(args) != 4 {
		return nil, errors.New("slice: internal error")
	}
	x, ok := args[0].(starlark.Sliceable)
	if !ok {
		return nil, errors.New("invalid slice operand " + args[0].Type())
	}
	n := x.Len()
	step := 1
	if args[3] != starlark.None {
		var err error
		if step, err = starlark.AsInt32(args[3]); err != nil {
			return nil, errors.New("invalid slice step: " + err.Error())
		}
		if step == 0 {
			return nil, errors.New("zero is not a valid slice step")
		}
	}
	var lo, hi int
	if step > 0 {
		lo, hi = 0, n
	} else {
		lo, hi = n-1, -1
	}
	if args[1] != starlark.None {
		i, err := sliceIndex(args[1], n, step)
		if err != nil {
			return nil, err
		}
		lo = i
	}
	if args[2] != starlark.None {
		i, err := sliceIndex(args[2], n, step)
		if err != nil {
			return nil, err
		}
		hi = i
	}
	var count int
	if step > 0 && hi > lo {
		count = (hi - lo + step - 1) / step
	} else if step < 0 && lo > hi {
		count = (lo - hi - step - 1) / -step
	}
	unit := elemCost
	switch x.(type) {
	case starlark.String, starlark.Bytes:
		unit = 1
		if step == 1 {
			count = 0 // a substring shares its string's memory
		}
	}
	if count > 0 {
		if err := e.charge(th, count*unit); err != nil {
			return nil, err
		}
	}
	if step > 0 && hi < lo {
		hi = lo
	} else if step < 0 && hi > lo {
		hi = lo
	}
	return x.Slice(lo, hi, step), nil
}

// sliceIndex resolves one slice bound as Python does: negative counts from
// the end, and out-of-range bounds clamp.
func sliceIndex(v starlark.Value, n, step int) (int, error) {
	i, err := starlark.AsInt32(v)
	if err != nil {
		return 0, errors.New("invalid slice index: " + err.Error())
	}
	if i < 0 {
		i += n
	}
	lo, hi := 0, n
	if step < 0 {
		lo, hi = -1, n-1
	}
	return min(max(i, lo), hi), nil
}
