package algorithm

import (
	"fmt"
	"slices"
)

// Field types of a contract. Objects are lists of
// {box: [x, y, w, h], label, score, attributes}; an embedding is a list of
// numbers; json is any JSON value.
const (
	TypeImage     = "image"
	TypeObjects   = "objects"
	TypeEmbedding = "embedding"
	TypeText      = "text"
	TypeJSON      = "json"
	TypeNumber    = "number"
	TypeInteger   = "integer"
	TypeBool      = "bool"
	TypeObject    = "object"
	TypeList      = "list"
)

// types lists the field types a contract may declare, in the order the
// validation message names them.
var types = []string{TypeImage, TypeObjects, TypeEmbedding, TypeText, TypeJSON, TypeNumber, TypeInteger, TypeBool, TypeObject, TypeList}

// Types returns the field types a contract may declare. Adapters that
// translate contracts for other components (algorepo, for the flow
// engine) check in their tests that they map every one.
func Types() []string { return slices.Clone(types) }

const maxFields = 64

// Contract declares what an algorithm version takes and returns, and
// whether it accepts batches (of at most MaxBatch items; 0: no limit).
type Contract struct {
	Inputs   []Field `json:"inputs"`
	Outputs  []Field `json:"outputs,omitempty"`
	Batch    bool    `json:"batch,omitempty"`
	MaxBatch int     `json:"maxBatch,omitempty"`
}

// Field is one input or output of a contract. Items, for an objects or
// list output, declares the fields of each element (a detector's per-face
// box, score, quality ...), so that an editor can offer them; one level,
// not checked against what the algorithm returns.
//
// Dim, for an embedding, is the number of values every answer carries
// (a 128-value face descriptor: 128): a wrong-dimension model is refused
// where the platform can see it (the tianshu-v1 package's metadata when
// an instance starts) and every answer of another length is refused, so a
// model swapped behind a version cannot mix dimensions in one index.
type Field struct {
	Name     string  `json:"name"`
	Type     string  `json:"type"`
	Required bool    `json:"required,omitempty"`
	Doc      string  `json:"doc,omitempty"`
	Dim      int     `json:"dim,omitempty"`
	Items    []Field `json:"items,omitempty"`
}

// MaxEmbeddingDim is the most values an embedding field may declare: what
// the data center stores and indexes beside a record.
const MaxEmbeddingDim = 2048

var namePattern = idPattern

func (c *Contract) validate(prefix string) error {
	if len(c.Inputs) == 0 {
		return &FieldError{Field: prefix + ".inputs", Msg: "declare at least one input"}
	}
	for _, part := range []struct {
		name   string
		fields []Field
	}{{"inputs", c.Inputs}, {"outputs", c.Outputs}} {
		if err := validateFields(prefix+"."+part.name, part.fields); err != nil {
			return err
		}
		for i, f := range part.fields {
			if len(f.Items) == 0 {
				continue
			}
			at := fmt.Sprintf("%s.%s[%d].items", prefix, part.name, i)
			if part.name != "outputs" || (f.Type != TypeObjects && f.Type != TypeList) {
				return &FieldError{Field: at, Msg: "only an output of type objects or list declares the fields of its items"}
			}
			if err := validateFields(at, f.Items); err != nil {
				return err
			}
			for j, item := range f.Items {
				if len(item.Items) > 0 {
					return &FieldError{Field: fmt.Sprintf("%s[%d].items", at, j), Msg: "items are declared one level deep"}
				}
			}
		}
	}
	if c.MaxBatch < 0 || c.MaxBatch > maxBatch {
		return &FieldError{Field: prefix + ".maxBatch", Msg: fmt.Sprintf("must be between 0 and %d", maxBatch)}
	}
	if c.MaxBatch > 0 && !c.Batch {
		return &FieldError{Field: prefix + ".maxBatch", Msg: "set batch to declare a maximum batch"}
	}
	return nil
}

// validateFields checks a list of fields at the path at: how many, their
// names (valid, not repeated) and types.
func validateFields(at string, fields []Field) error {
	if len(fields) > maxFields {
		return &FieldError{Field: at, Msg: fmt.Sprintf("at most %d fields", maxFields)}
	}
	seen := map[string]bool{}
	for i, f := range fields {
		at := fmt.Sprintf("%s[%d]", at, i)
		if !namePattern.MatchString(f.Name) {
			return &FieldError{Field: at + ".name", Msg: fmt.Sprintf("invalid name %q", f.Name)}
		}
		if seen[f.Name] {
			return &FieldError{Field: at + ".name", Msg: fmt.Sprintf("duplicate name %q", f.Name)}
		}
		seen[f.Name] = true
		if !slices.Contains(types, f.Type) {
			return &FieldError{Field: at + ".type", Msg: fmt.Sprintf("unknown type %q; use image, objects, embedding, text, json, number, integer, bool, object or list", f.Type)}
		}
		switch {
		case f.Dim != 0 && f.Type != TypeEmbedding:
			return &FieldError{Field: at + ".dim", Msg: "only an embedding declares a dimension"}
		case f.Dim < 0 || f.Dim > MaxEmbeddingDim:
			return &FieldError{Field: at + ".dim", Msg: fmt.Sprintf("must be between 1 and %d (0: not declared)", MaxEmbeddingDim)}
		}
	}
	return nil
}

// checkOutputs refuses an answer whose embedding outputs do not have the
// dimension the contract declares, or are not lists of numbers.
func (c *Contract) checkOutputs(out map[string]any) error {
	for _, f := range c.Outputs {
		if f.Type != TypeEmbedding || f.Dim == 0 {
			continue
		}
		v, ok := out[f.Name]
		if !ok || v == nil {
			continue // a missing output is the flow's concern, as for any type
		}
		l, ok := v.([]any)
		if !ok {
			return fmt.Errorf("output %s is a %T, not the list of %d numbers the contract declares", f.Name, v, f.Dim)
		}
		if len(l) != f.Dim {
			return fmt.Errorf("output %s has %d values; the contract declares an embedding of dim %d", f.Name, len(l), f.Dim)
		}
		for i, x := range l {
			if _, ok := x.(float64); !ok {
				return fmt.Errorf("output %s[%d] is a %T, not a number", f.Name, i, x)
			}
		}
	}
	return nil
}

// declaresDim reports whether an output declares an embedding's dimension.
func (c *Contract) declaresDim() bool {
	return slices.ContainsFunc(c.Outputs, func(f Field) bool { return f.Type == TypeEmbedding && f.Dim != 0 })
}

// checkMetadata compares the contract with the one a tianshu-v1 package
// declares at /v1/metadata: an embedding output both declare with
// different dimensions is a model that does not fit the version.
func (c *Contract) checkMetadata(md *Contract) error {
	for i, f := range c.Outputs {
		if f.Type != TypeEmbedding || f.Dim == 0 {
			continue
		}
		for _, g := range md.Outputs {
			if g.Name == f.Name && g.Dim != 0 && g.Dim != f.Dim {
				return &FieldError{Field: fmt.Sprintf("contract.outputs[%d].dim", i),
					Msg: fmt.Sprintf("the package's /v1/metadata declares output %s as an embedding of dim %d; the definition declares %d", f.Name, g.Dim, f.Dim)}
			}
		}
	}
	return nil
}

// clone returns a copy that shares no slices with c, so callers cannot
// change a running version's contract.
func (c *Contract) clone() *Contract {
	out := *c
	out.Inputs = cloneFields(c.Inputs)
	out.Outputs = cloneFields(c.Outputs)
	return &out
}

func cloneFields(fields []Field) []Field {
	out := slices.Clone(fields)
	for i := range out {
		out[i].Items = slices.Clone(out[i].Items)
	}
	return out
}
