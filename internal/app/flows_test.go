package app_test

import (
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
)

// A flow with a script, a switch, a foreach, a join-free fan-out and sinks,
// driven through the official SDK as an application would.
const scoreFlow = `{
  "name": "score-people",
  "inputs": {"people": {"type": "list", "required": true}},
  "parameters": {"minAge": {"type": "integer", "default": 18}},
  "nodes": [
    {"id": "shape", "kind": "function", "inputs": {"people": "$input.people"},
     "config": {"script": "def main(input, params):\n    return {\"adults\": [p for p in input[\"people\"] if p[\"age\"] >= params[\"minAge\"]]}"}},
    {"id": "any", "kind": "switch", "inputs": {"n": "$shape.adults"},
     "config": {"cases": [{"when": "len(n) > 0", "next": "each"}], "default": "none"}},
    {"id": "each", "kind": "foreach", "inputs": {"items": "$shape.adults"},
     "config": {"body": {"nodes": [{"id": "greet", "kind": "function", "inputs": {"name": "$item.name"},
        "config": {"script": "def main(input, params):\n    return {\"text\": \"hello \" + input[\"name\"]}"}}],
        "output": {"greeting": "$greet.text"}}}},
    {"id": "save", "kind": "store", "config": {"type": "greeting"}, "inputs": {"results": "$each.results"}},
    {"id": "tell", "kind": "publish", "config": {"type": "tianshu.greeting"}, "inputs": {"count": "$each.results"}},
    {"id": "none", "kind": "noop"}
  ],
  "edges": [{"from": "shape", "to": "any"}, {"from": "each", "to": "save"}, {"from": "each", "to": "tell"}],
  "output": {"results": "$each.results", "record": "$save.recordId"}
}`

func TestFlowActions(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)

	// Validation names every problem by node and field.
	bad := `{"nodes": [
	  {"id": "a", "kind": "function", "config": {"script": "def main(input, params):\n  return {"}, "next": ["b"]},
	  {"id": "b", "kind": "teleport", "next": ["a"]},
	  {"id": "c", "kind": "passthrough", "inputs": {"x": "$nowhere.y"}}]}`
	v := c.mustCall("ValidateFlow", map[string]any{"Document": bad})
	if v["Valid"] != false {
		t.Fatalf("ValidateFlow accepted a broken document: %v", v)
	}
	seen := map[string]bool{}
	for _, x := range v["ErrorSet"].([]any) {
		seen[x.(map[string]any)["NodeId"].(string)] = true
	}
	for _, n := range []string{"a", "b", "c"} {
		if !seen[n] {
			t.Errorf("ValidateFlow did not name node %s: %v", n, v["ErrorSet"])
		}
	}
	if _, code := c.call("CreateFlow", map[string]any{"Document": bad}); code != "InvalidParameterValue" {
		t.Fatalf("CreateFlow of a broken document: %q", code)
	}
	if r := c.mustCall("DescribeFlows", nil); r["TotalCount"].(float64) != 0 {
		t.Fatalf("a refused flow was stored: %v", r)
	}

	r := c.mustCall("CreateFlow", map[string]any{"Document": scoreFlow, "Description": "demo"})
	id := r["FlowId"].(string)
	if r["Version"].(float64) != 1 || !strings.HasPrefix(id, "flow-") {
		t.Fatalf("CreateFlow = %v", r)
	}
	if _, code := c.call("CreateFlow", map[string]any{"Document": scoreFlow}); code != "ResourceInUse" {
		t.Errorf("duplicate name: %q", code)
	}

	run := c.mustCall("InvokeFlow", map[string]any{"FlowId": id, "Trace": true,
		"Input": map[string]any{"people": []any{map[string]any{"name": "Ada", "age": 36}, map[string]any{"name": "Tim", "age": 9}}}})
	results := run["Output"].(map[string]any)["results"].([]any)
	if len(results) != 1 || results[0].(map[string]any)["greeting"] != "hello Ada" {
		t.Fatalf("InvokeFlow output %v", run["Output"])
	}
	if len(run["RecordSet"].([]any)) != 1 || len(run["EventSet"].([]any)) != 1 {
		t.Errorf("captured sinks: %v %v", run["RecordSet"], run["EventSet"])
	}
	if len(run["NodeSet"].([]any)) < 5 {
		t.Errorf("traced nodes: %v", run["NodeSet"])
	}
	// Parameters make the flow a template.
	run = c.mustCall("InvokeFlow", map[string]any{"FlowId": id, "Parameters": map[string]any{"minAge": 5},
		"Input": map[string]any{"people": []any{map[string]any{"name": "Tim", "age": 9}}}})
	if len(run["Output"].(map[string]any)["results"].([]any)) != 1 {
		t.Errorf("minAge 5: %v", run["Output"])
	}
	if _, code := c.call("InvokeFlow", map[string]any{"FlowId": id, "Input": map[string]any{}}); code != "InvalidParameterValue" {
		t.Errorf("missing required input: %q", code)
	}

	// A change makes a new version; an identical document does not; old
	// versions stay as they were.
	doc2 := strings.Replace(scoreFlow, "hello ", "hi ", 1)
	if r := c.mustCall("ModifyFlow", map[string]any{"FlowId": id, "Document": doc2, "Comment": "shorter"}); r["Version"].(float64) != 2 {
		t.Fatalf("ModifyFlow = %v", r)
	}
	if r := c.mustCall("ModifyFlow", map[string]any{"FlowId": id, "Document": doc2}); r["Version"].(float64) != 2 {
		t.Fatalf("identical ModifyFlow = %v", r)
	}
	v1 := c.mustCall("DescribeFlowVersion", map[string]any{"FlowId": id, "Version": 1})
	if !strings.Contains(toJSON(v1["Document"]), "hello ") {
		t.Errorf("version 1 changed: %v", v1["Document"])
	}
	if r := c.mustCall("DescribeFlowVersions", map[string]any{"FlowId": id}); r["TotalCount"].(float64) != 2 {
		t.Errorf("DescribeFlowVersions = %v", r)
	}
	run = c.mustCall("InvokeFlow", map[string]any{"FlowId": id, "Version": 1,
		"Input": map[string]any{"people": []any{map[string]any{"name": "Ada", "age": 36}}}})
	if toJSON(run["Output"]) != `{"record":"rec-invoke-1","results":[{"greeting":"hello Ada"}]}` {
		t.Errorf("version 1 run: %s", toJSON(run["Output"]))
	}

	// YAML is accepted.
	yamlDoc := "name: tiny\nnodes:\n  - id: echo\n    kind: passthrough\n    inputs: {x: $input.x}\noutput: {x: $echo.x}\n"
	y := c.mustCall("CreateFlow", map[string]any{"Document": yamlDoc})
	if run := c.mustCall("InvokeFlow", map[string]any{"FlowId": y["FlowId"], "Input": map[string]any{"x": 7}}); toJSON(run["Output"]) != `{"x":7}` {
		t.Errorf("yaml flow output %s", toJSON(run["Output"]))
	}

	// A runaway script stops with a clear error and the flow keeps serving.
	loop := `{"name": "loop", "nodes": [{"id": "spin", "kind": "function",
	  "config": {"script": "def main(input, params):\n    n = 0\n    for i in range(100000000):\n        n += i\n    return {\"n\": n}"}}]}`
	l := c.mustCall("CreateFlow", map[string]any{"Document": loop})
	if _, code := c.call("InvokeFlow", map[string]any{"FlowId": l["FlowId"]}); code != "LimitExceeded" {
		t.Errorf("runaway script: %q", code)
	}

	if r := c.mustCall("DescribeFlows", map[string]any{"Filters": []any{map[string]any{"Name": "Name", "Values": []string{"tiny"}}}}); r["TotalCount"].(float64) != 1 {
		t.Errorf("filter by name: %v", r)
	}
	c.mustCall("DeleteFlow", map[string]any{"FlowId": id})
	if _, code := c.call("DescribeFlowVersion", map[string]any{"FlowId": id}); code != "ResourceNotFound" {
		t.Errorf("deleted flow: %q", code)
	}
}
