package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/api"
)

type rawRequest struct {
	Name string          `json:"Name"`
	Doc  json.RawMessage `json:"Doc"`
	List []*innerPart    `json:"List"`
}

func callRaw(t *testing.T, body string) error {
	t.Helper()
	reg := api.NewRegistry()
	api.Register(reg, api.Spec{Name: "RawThing", Summary: "Raw.", Permission: api.Permission{Resource: "thing", Access: api.Write}},
		func(_ context.Context, _ *api.Caller, _ *rawRequest) (*struct{}, error) { return &struct{}{}, nil })
	a, _ := reg.Lookup("RawThing")
	_, err := a.Call(context.Background(), platformAdmin, []byte(body))
	return err
}

// A key given twice in one object is refused wherever it sits: encoding/json
// would keep the last silently, and a signature or an audit entry could then
// show a value other than the one acted on.
func TestDuplicateKeysRefused(t *testing.T) {
	const dup = "appears more than once in its object"
	for _, c := range []struct{ body, msg string }{
		{`{"Name": "a", "Name": "b"}`, "Name: " + dup},
		// Struct fields match case-insensitively: these name one field.
		{`{"Name": "a", "name": "b"}`, "name: " + dup},
		{`{"Name": "a", "N\u0061me": "b"}`, "Name: " + dup},
		{`{"Name": "a", "Inner": {"Id": "x", "Id": "y"}}`, "Inner.Id: " + dup},
		{`{"Name": "a", "Filters": [{"Name": "x", "Values": ["v"]}, {"Name": "y", "Values": ["v"], "Values": ["w"]}]}`, "Filters[1].Values: " + dup},
		{`{"Name": "a", "Free": {"k": 1, "k": 2}}`, "Free.k: " + dup},
		{`{"Name": "a", "Free": {"x": [1, {"y": {"z": 1}, "y": 2}]}}`, "Free.x[1].y: " + dup},
	} {
		_, err := callEcho(t, platformAdmin, c.body)
		wantAPIError(t, err, api.InvalidParameterValue, c.msg)
	}
	for _, c := range []struct{ body, msg string }{
		{`{"Doc": {"a": 1, "b": {"c": 1, "c": 1}}}`, "Doc.b.c: " + dup},
		{`{"List": [{"Id": "a"}, {"Id": "a", "ID": "b"}]}`, "List[1].ID: " + dup},
	} {
		wantAPIError(t, callRaw(t, c.body), api.InvalidParameterValue, c.msg)
	}
	// Free-form objects keep JSON's case-sensitive keys; the same key in
	// sibling objects is no duplicate.
	for _, body := range []string{
		`{"Name": "a", "Free": {"k": 1, "K": 2}}`,
		`{"Name": "a", "Free": {"x": {"k": 1}, "y": {"k": 1}}, "Filters": [{"Name": "x", "Values": ["v"]}, {"Name": "x", "Values": ["v"]}]}`,
	} {
		if _, err := callEcho(t, platformAdmin, body); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
	if err := callRaw(t, `{"Doc": {"a": {"a": 1}, "A": [{"a": 1}, {"a": 1}]}}`); err != nil {
		t.Errorf("raw document: %v", err)
	}
}

// NUL is refused in every string, keys included, before any backend sees
// it: PostgreSQL cannot store it, and the others would store what the
// first refuses.
func TestNULRefused(t *testing.T) {
	const nul = "contains a NUL character (U+0000)"
	for _, c := range []struct{ body, msg string }{
		{`{"Name": "a\u0000"}`, "Name: " + nul},
		{`{"Name": "a", "Note": "\u0000b"}`, "Note: " + nul},
		{`{"Name": "a", "Tags": ["ok", "x\u0000"]}`, "Tags[1]: " + nul},
		{`{"Name": "a", "Filters": [{"Name": "x", "Values": ["v\u0000"]}]}`, "Filters[0].Values[0]: " + nul},
		{`{"Name": "a", "Free": {"x": [{"y": "\u0000"}]}}`, "Free.x[0].y: " + nul},
		{`{"Name": "a", "Free": {"k\u0000": 1}}`, `Free: a key contains a NUL character (U+0000)`},
	} {
		_, err := callEcho(t, platformAdmin, c.body)
		wantAPIError(t, err, api.InvalidParameterValue, c.msg)
	}
	wantAPIError(t, callRaw(t, `{"Doc": {"a": ["\u0000"]}}`), api.InvalidParameterValue, "Doc.a[0]: "+nul)
	// An escaped backslash followed by "u0000" is six characters, not NUL;
	// other control characters are ordinary text.
	for _, body := range []string{`{"Name": "a\\u0000"}`, `{"Name": "a\u0001\n"}`, `{"Name": "` + strings.Repeat(`\\`, 3) + `"}`} {
		if _, err := callEcho(t, platformAdmin, body); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
}
