package flow

import (
	"errors"
	"fmt"
	"strings"
)

// Error is one validation problem, located by node id (empty for the
// document itself; "outer/inner" inside a foreach or subflow body), the
// field inside that node ("config.cases[1].when", "inputs.image") and,
// when the problem is a connection, the edge: an edge of the document, or
// the data dependency from a node whose output a path reads to the node
// that reads it, its ends named like Node. An editor pins each problem on
// the node or edge it names. Line and Column (1-based) place a script's or
// expression's problem inside the field's text; they are 0 for any other
// problem.
type Error struct {
	Node   string
	Edge   *EdgeSpec
	Field  string
	Msg    string
	Line   int
	Column int
}

// Error formats as `node "det": config.algorithm: unknown algorithm "x"`,
// with `edge "a" -> "b": ` after the node for edge problems.
func (e *Error) Error() string {
	var sb strings.Builder
	if e.Node != "" {
		fmt.Fprintf(&sb, "node %q: ", e.Node)
	}
	if e.Edge != nil {
		fmt.Fprintf(&sb, "edge %q -> %q: ", e.Edge.From, e.Edge.To)
	}
	if e.Field != "" {
		sb.WriteString(e.Field)
		sb.WriteString(": ")
	}
	sb.WriteString(e.Msg)
	return sb.String()
}

// Errors is every problem found in one document. Compile and Validate
// return all of them at once so an editor can mark every node in one pass.
type Errors []*Error

// Error joins the messages, one per line.
func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// NodeError is a node's failure at run time. Run returns it when the
// node's onError is "fail"; traces carry it for every failed node.
type NodeError struct {
	Node string // id, "outer/inner" inside bodies
	Kind string
	Err  error
}

// Error names the node and its kind before the cause.
func (e *NodeError) Error() string {
	return fmt.Sprintf("node %q (%s): %v", e.Node, e.Kind, e.Err)
}

// Unwrap returns the cause, so errors.As finds a *function.LimitError.
func (e *NodeError) Unwrap() error { return e.Err }

// PanicError is a panic inside a node, turned into that node's error so
// one bad node never takes the worker down.
type PanicError struct {
	Value any
	Stack []byte
}

// Error reports the panic value; the stack is kept for logs.
func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// TimeoutError reports that a node ran past its own timeout (not the
// message's deadline, which is reported as the context's error).
type TimeoutError struct {
	Timeout string
}

// Error names the timeout.
func (e *TimeoutError) Error() string { return "timed out after " + e.Timeout }

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as not worth retrying (bad input, a deterministic
// script failure); node retry policies skip such errors.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// Sentinel errors callers match with errors.Is.
var (
	// ErrUnknownAlgorithm is what Algorithms.Contract returns for an
	// algorithm (or version) that does not exist; validation reports it.
	ErrUnknownAlgorithm = errors.New("unknown algorithm")
	// ErrUnknownZone is what Zones.Zone returns for a device without a
	// zone of that name (or a device the flow's project does not have).
	ErrUnknownZone = errors.New("unknown zone")
	// ErrUnknownFlow is what Flows.Flow returns for a missing flow version.
	ErrUnknownFlow = errors.New("unknown flow")
	// ErrBadInput means the message lacks a required input; the caller
	// should reject the message, not retry it.
	ErrBadInput = errors.New("bad input")
	// ErrNoSinks means a store or publish node ran without Input.Sinks.
	ErrNoSinks = errors.New("no sinks configured for this run")
)
