package function

import (
	"errors"

	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// posError is a compile error whose position was worked out here (a
// load statement, a reserved name, an expression's error mapped from its
// wrapper back to the user's text); the message stays as it was.
type posError struct {
	err       error
	line, col int
}

func (e *posError) Error() string { return e.err.Error() }
func (e *posError) Unwrap() error { return e.err }

// Position answers the 1-based line and column in the script's (or
// expression's) own text where err happened: a syntax error, an undefined
// name or another resolve error, a refused load or reserved name, and, for
// a script's run-time failure, the innermost frame of the script in
// Starlark's backtrace. It answers 0, 0 when err carries no position (a
// limit, a missing main, a wrong result type). An editor marks the place
// with it.
func Position(err error) (line, col int) {
	var pe *posError
	if errors.As(err, &pe) {
		return pe.line, pe.col
	}
	var se syntax.Error
	if errors.As(err, &se) {
		return int(se.Pos.Line), int(se.Pos.Col)
	}
	var rl resolve.ErrorList
	if errors.As(err, &rl) && len(rl) > 0 {
		return int(rl[0].Pos.Line), int(rl[0].Pos.Col)
	}
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		// Innermost first: a builtin's frame (len, fail) has no place in
		// the script; the script's frame that called it does.
		for i := range len(ee.CallStack) {
			f := ee.CallStack.At(i)
			if f.Pos.Line > 0 && f.Pos.Filename() != "<builtin>" {
				return int(f.Pos.Line), int(f.Pos.Col)
			}
		}
	}
	return 0, 0
}

func at(err error, pos syntax.Position) error {
	return &posError{err: err, line: int(pos.Line), col: int(pos.Col)}
}
