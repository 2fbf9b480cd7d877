package algorithm

import (
	"fmt"

	"github.com/tianshu-ai/tianshu/internal/flow"
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

// flowTypes maps contract types to the flow engine's field types.
var flowTypes = map[string]string{
	TypeImage:     "image",
	TypeObjects:   "list",
	TypeEmbedding: "list",
	TypeText:      "string",
	TypeJSON:      "any",
	TypeNumber:    "number",
	TypeInteger:   "integer",
	TypeBool:      "bool",
	TypeObject:    "object",
	TypeList:      "list",
}

const maxFields = 64

// Contract declares what an algorithm version takes and returns, and
// whether it accepts batches (of at most MaxBatch items; 0: no limit).
type Contract struct {
	Inputs   []Field `json:"inputs"`
	Outputs  []Field `json:"outputs,omitempty"`
	Batch    bool    `json:"batch,omitempty"`
	MaxBatch int     `json:"maxBatch,omitempty"`
}

// Field is one input or output of a contract.
type Field struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Required bool   `json:"required,omitempty"`
	Doc      string `json:"doc,omitempty"`
}

var namePattern = idPattern

func (c *Contract) validate(prefix string) error {
	if len(c.Inputs) == 0 {
		return &FieldError{Field: prefix + ".inputs", Msg: "declare at least one input"}
	}
	for _, part := range []struct {
		name   string
		fields []Field
	}{{"inputs", c.Inputs}, {"outputs", c.Outputs}} {
		if len(part.fields) > maxFields {
			return &FieldError{Field: prefix + "." + part.name, Msg: fmt.Sprintf("at most %d fields", maxFields)}
		}
		seen := map[string]bool{}
		for i, f := range part.fields {
			at := fmt.Sprintf("%s.%s[%d]", prefix, part.name, i)
			if !namePattern.MatchString(f.Name) {
				return &FieldError{Field: at + ".name", Msg: fmt.Sprintf("invalid name %q", f.Name)}
			}
			if seen[f.Name] {
				return &FieldError{Field: at + ".name", Msg: fmt.Sprintf("duplicate name %q", f.Name)}
			}
			seen[f.Name] = true
			if _, ok := flowTypes[f.Type]; !ok {
				return &FieldError{Field: at + ".type", Msg: fmt.Sprintf("unknown type %q; use image, objects, embedding, text, json, number, integer, bool, object or list", f.Type)}
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

// Flow converts the contract to the flow engine's form, mapping the
// algorithm types onto flow field types (objects and embedding become
// list, text string, json any).
func (c *Contract) Flow() *flow.Contract {
	fc := &flow.Contract{
		Inputs:  make([]flow.Field, len(c.Inputs)),
		Outputs: make([]flow.Field, len(c.Outputs)),
	}
	for i, f := range c.Inputs {
		fc.Inputs[i] = flow.Field{Name: f.Name, Type: flowTypes[f.Type], Required: f.Required}
	}
	for i, f := range c.Outputs {
		fc.Outputs[i] = flow.Field{Name: f.Name, Type: flowTypes[f.Type], Required: f.Required}
	}
	return fc
}
