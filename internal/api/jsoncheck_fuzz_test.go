package api

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzCheckJSON checks that checkJSON, given any valid JSON text and a
// request type or a free-form one, answers without panicking.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a": 1, "a": 2}`, `{"a": ["\u0000"]}`, `{"a": {"b": [1, {"c": "\\u0000"}]}}`, `[1, "x", null]`, `"s"`, `{"N\u0061me": 1, "Name": 2}`} {
		f.Add([]byte(s))
	}
	free := reflect.TypeFor[any]()
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) {
			return
		}
		_ = checkJSON(body, reflect.TypeFor[*benchTask]())
		_ = checkJSON(body, free)
	})
}
