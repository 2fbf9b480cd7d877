package flow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// Spec is a flow document; see the package documentation for its format.
// Foreach bodies reuse it (without name, inputs and parameters).
type Spec struct {
	Name        string               `json:"name,omitempty"`
	Description string               `json:"description,omitempty"`
	Inputs      map[string]InputSpec `json:"inputs,omitempty"`
	Parameters  map[string]ParamSpec `json:"parameters,omitempty"`
	Nodes       []NodeSpec           `json:"nodes"`
	Edges       []EdgeSpec           `json:"edges,omitempty"`
	Output      map[string]any       `json:"output,omitempty"`
}

// InputSpec declares one field of the message ($input.<name>). When a flow
// declares inputs, paths into $input must name one of them.
type InputSpec struct {
	Type        string `json:"type,omitempty"`
	Required    bool   `json:"required,omitempty"`
	Description string `json:"description,omitempty"`
}

// ParamSpec declares one template parameter ($params.<name>): a flow with
// parameters is a template, and each task supplies its own values.
type ParamSpec struct {
	Type        string `json:"type,omitempty"`
	Default     any    `json:"default,omitempty"`
	Required    bool   `json:"required,omitempty"`
	Description string `json:"description,omitempty"`
}

// NodeSpec is one node of the graph.
type NodeSpec struct {
	ID          string         `json:"id"`
	Kind        string         `json:"kind"`
	Description string         `json:"description,omitempty"`
	Inputs      map[string]any `json:"inputs,omitempty"`
	Config      map[string]any `json:"config,omitempty"`
	Next        []string       `json:"next,omitempty"`
	Timeout     string         `json:"timeout,omitempty"`
	Retry       *RetrySpec     `json:"retry,omitempty"`
	OnError     string         `json:"onError,omitempty"`
	ErrorNext   string         `json:"errorNext,omitempty"`
}

// RetrySpec retries a failed node Max more times, waiting Backoff, then
// twice as long, and so on (capped at 10 s).
type RetrySpec struct {
	Max     int    `json:"max"`
	Backoff string `json:"backoff,omitempty"`
}

// EdgeSpec is one edge; NodeSpec.Next is the same thing written on the
// source node.
type EdgeSpec struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Limits are the documented bounds on a flow document. A zero field takes
// its default from DefaultLimits.
type Limits struct {
	MaxDocumentBytes int // 1 MiB
	MaxNodes         int // 500, counting nodes of nested bodies and subflows
	MaxEdges         int // 2000
	MaxDepth         int // 8 levels of foreach/subflow nesting
	MaxScriptBytes   int // 64 KiB per script or expression
	MaxIDBytes       int // 64
	MaxValueDepth    int // 32 levels of nesting in literal values
}

// DefaultLimits returns the documented defaults.
func DefaultLimits() Limits {
	return Limits{MaxDocumentBytes: 1 << 20, MaxNodes: 500, MaxEdges: 2000, MaxDepth: 8, MaxScriptBytes: 64 << 10, MaxIDBytes: 64, MaxValueDepth: 32}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	def := func(v *int, dv int) {
		if *v <= 0 {
			*v = dv
		}
	}
	def(&l.MaxDocumentBytes, d.MaxDocumentBytes)
	def(&l.MaxNodes, d.MaxNodes)
	def(&l.MaxEdges, d.MaxEdges)
	def(&l.MaxDepth, d.MaxDepth)
	def(&l.MaxScriptBytes, d.MaxScriptBytes)
	def(&l.MaxIDBytes, d.MaxIDBytes)
	def(&l.MaxValueDepth, d.MaxValueDepth)
	return l
}

// Parse decodes a flow document, JSON or YAML (anything not starting with
// '{' is read as YAML, which is converted to JSON first so both spellings
// decode identically). Unknown fields are errors. Whole numbers become
// int64 and others float64. Parse checks only the size limit and the
// syntax; Compile and Validate check everything else.
func Parse(data []byte, limits Limits) (*Spec, error) {
	limits = limits.withDefaults()
	if len(data) > limits.MaxDocumentBytes {
		return nil, fmt.Errorf("document is %d bytes; the limit is %d", len(data), limits.MaxDocumentBytes)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("empty document")
	}
	if trimmed[0] != '{' {
		var doc any
		if err := yaml.Unmarshal(trimmed, &doc); err != nil {
			return nil, fmt.Errorf("yaml: %w", err)
		}
		doc, err := yamlToJSON(doc, 0, limits.MaxValueDepth+8)
		if err != nil {
			return nil, err
		}
		if trimmed, err = json.Marshal(doc); err != nil {
			return nil, fmt.Errorf("yaml: %w", err)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	var s Spec
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("json: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("json: trailing data after the document")
	}
	normalizeSpec(&s)
	return &s, nil
}

func yamlToJSON(v any, depth, max int) (any, error) {
	if depth > max {
		return nil, fmt.Errorf("yaml: nesting deeper than %d", max)
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			c, err := yamlToJSON(e, depth+1, max)
			if err != nil {
				return nil, err
			}
			x[k] = c
		}
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			c, err := yamlToJSON(e, depth+1, max)
			if err != nil {
				return nil, err
			}
			m[fmt.Sprint(k)] = c
		}
		return m, nil
	case []any:
		for i, e := range x {
			c, err := yamlToJSON(e, depth+1, max)
			if err != nil {
				return nil, err
			}
			x[i] = c
		}
	case time.Time:
		return x.Format(time.RFC3339Nano), nil
	}
	return v, nil
}

func normalizeSpec(s *Spec) {
	for k, p := range s.Parameters {
		p.Default = normalize(p.Default)
		s.Parameters[k] = p
	}
	for i := range s.Nodes {
		n := &s.Nodes[i]
		for k, v := range n.Inputs {
			n.Inputs[k] = normalize(v)
		}
		for k, v := range n.Config {
			n.Config[k] = normalize(v)
		}
	}
	for k, v := range s.Output {
		s.Output[k] = normalize(v)
	}
}

// normalize turns json.Number into int64 or float64, recursively.
func normalize(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
	}
	return v
}

// decodeInto re-decodes a generic value (a node's config) into a typed
// struct, refusing unknown fields, so each kind declares its config as a Go
// struct.
func decodeInto(v any, dst any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	return dec.Decode(dst)
}
