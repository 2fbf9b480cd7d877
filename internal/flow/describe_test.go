package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
)

// describeOptions are compile options under which every kind's examples
// compile: the algorithm and the subflow the schemas give as examples
// exist.
func describeOptions(reg *Registry) Options {
	algos := newFakeAlgos()
	algos.add("alg-face-detect", &Contract{
		Inputs:  []Field{{Name: "image", Type: TypeImage, Required: true, Doc: "the picture"}, {Name: "minSize", Type: TypeInteger}},
		Outputs: []Field{{Name: "faces", Type: TypeObjects}},
	}, func(context.Context, map[string]any) (map[string]any, error) {
		return map[string]any{"faces": []any{}}, nil
	})
	return Options{Registry: reg, Algorithms: algos, Watchlists: fakeWatchlists{},
		Flows: fakeFlows{"flow-example@": `{"nodes": [{"id": "inner", "kind": "noop"}]}`}}
}

// exampleConfig is a config built from the schema: each property's
// default, else its example.
func exampleConfig(schema map[string]any) map[string]any {
	cfg := map[string]any{}
	for name, p := range schema["properties"].(map[string]any) {
		ps := p.(map[string]any)
		if v, ok := ps["default"]; ok {
			cfg[name] = v
		} else if ex, ok := ps["examples"].([]any); ok {
			cfg[name] = ex[0]
		}
	}
	return cfg
}

// compileKind compiles a document in which node "n" of kind k, fed by two
// noop nodes (a join needs two) and followed by "after" when its config
// names it, has the given config and inputs. It returns the errors and, if
// it compiled, the node; asked collects the inputs the kind looked up.
func compileKind(t *testing.T, kind string, cfg map[string]any, inputs map[string]any, asked map[string]bool) (Errors, *node) {
	t.Helper()
	reg := NewRegistry()
	k, _ := reg.Lookup(kind)
	orig := k.Compile
	k.Compile = func(b *Builder) Node {
		b.asked = asked
		return orig(b)
	}
	doc := map[string]any{
		"nodes": []any{
			map[string]any{"id": "p1", "kind": "noop", "next": []any{"n"}},
			map[string]any{"id": "p2", "kind": "noop", "next": []any{"n"}},
			map[string]any{"id": "n", "kind": kind, "config": cfg, "inputs": inputs},
			map[string]any{"id": "after", "kind": "noop"},
		},
	}
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := Parse(data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(t.Context(), spec, describeOptions(reg))
	if err != nil {
		return err.(Errors), nil
	}
	for i := range p.nodes {
		if p.nodes[i].id == "n" {
			return nil, &p.nodes[i]
		}
	}
	t.Fatal("node n not in the plan")
	return nil, nil
}

// hasError reports whether errs has one on node n whose field is field or
// inside it.
func hasError(errs Errors, field string) bool {
	for _, e := range errs {
		if e.Node == "n" && (e.Field == field || strings.HasPrefix(e.Field, field+".") || strings.HasPrefix(e.Field, field+"[")) {
			return true
		}
	}
	return false
}

// TestKindDescriptors walks every registered kind: each declares a doc, a
// category, documented ports of known types and a documented config
// schema, and the schema agrees with what Compile accepts: the defaults
// and examples compile, an unknown field, a missing required field, a
// value outside an enum or outside the bounds are refused, and Compile
// looks up no input and requires none that the descriptor does not
// declare, and declares the outputs the descriptor lists.
func TestKindDescriptors(t *testing.T) {
	categories := []string{CategoryAlgorithm, CategoryLogic, CategoryStream, CategorySink, CategoryUtility}
	for _, k := range NewRegistry().Kinds() {
		t.Run(k.Name, func(t *testing.T) {
			if k.Doc == "" || !slices.Contains(categories, k.Category) {
				t.Errorf("doc %q, category %q; want a doc and one of %v", k.Doc, k.Category, categories)
			}
			for _, p := range append(slices.Clone(k.Inputs), k.Outputs...) {
				if p.Name == "" || p.Doc == "" || !slices.Contains(PortTypes(), p.Type) {
					t.Errorf("port %+v: want a name, a doc and one of the types %v", p, PortTypes())
				}
			}
			schema := k.ConfigSchema()
			if schema == nil {
				t.Fatal("no Config: a kind without config declares struct{}{}")
			}
			if _, err := json.Marshal(schema); err != nil {
				t.Fatalf("schema does not encode: %v", err)
			}
			props := schema["properties"].(map[string]any)
			for name, p := range props {
				if p.(map[string]any)["description"] == nil {
					t.Errorf("config.%s has no doc tag", name)
				}
			}

			// What to map: every declared input port (for an algorithm,
			// the example algorithm's contract), from $input.
			ports := k.Inputs
			if k.FromContract {
				c, _ := describeOptions(nil).Algorithms.Contract(t.Context(), AlgorithmRef{ID: "alg-face-detect"})
				ports = ContractPorts(c.Inputs)
			}
			inputs := map[string]any{}
			for _, p := range ports {
				inputs[p.Name] = "$input." + p.Name
			}
			if k.MoreInputs {
				inputs["extra"] = "$input.extra" // a store needs a field
			}
			cfg := exampleConfig(schema)

			asked := map[string]bool{}
			errs, n := compileKind(t, k.Name, cfg, inputs, asked)
			if errs != nil {
				t.Fatalf("the schema's defaults and examples %v do not compile:\n%v", cfg, errs)
			}
			if !k.FromContract {
				for name := range asked {
					if portType(k.Inputs, name) == "" {
						t.Errorf("Compile looks up input %q, which the descriptor does not declare", name)
					}
				}
				var want []string
				for _, o := range k.Outputs {
					want = append(want, o.Name)
				}
				sort.Strings(want)
				got := slices.Clone(n.outputs)
				sort.Strings(got)
				if !slices.Equal(got, want) {
					t.Errorf("the node declares outputs %v, the descriptor %v", got, want)
				}
			}

			// Inputs: compiled with none mapped, the kind refuses exactly
			// the required ports.
			errs, _ = compileKind(t, k.Name, cfg, nil, nil)
			var missing, required []string
			for _, e := range errs {
				if name, ok := strings.CutPrefix(e.Field, "inputs."); ok && e.Node == "n" && e.Msg == "required input is missing" {
					missing = append(missing, name)
				}
			}
			for _, p := range ports {
				if p.Required {
					required = append(required, p.Name)
				}
			}
			sort.Strings(missing)
			sort.Strings(required)
			if !slices.Equal(missing, required) {
				t.Errorf("without inputs Compile requires %v; the descriptor declares %v required", missing, required)
			}

			with := func(name string, v any) map[string]any {
				c := map[string]any{}
				for k, x := range cfg {
					c[k] = x
				}
				if v == nil {
					delete(c, name)
				} else {
					c[name] = v
				}
				return c
			}
			if errs, _ := compileKind(t, k.Name, with("noSuchField", true), inputs, nil); !hasError(errs, "config") {
				t.Errorf("an unknown config field compiled: %v", errs)
			}
			if req, _ := schema["required"].([]string); len(req) > 0 {
				for _, name := range req {
					if errs, _ := compileKind(t, k.Name, with(name, nil), inputs, nil); !hasError(errs, "config."+name) && !hasError(errs, "config") {
						t.Errorf("config without required %s compiled: %v", name, errs)
					}
				}
			}
			for name, p := range props {
				ps := p.(map[string]any)
				if ps["enum"] != nil {
					if errs, _ := compileKind(t, k.Name, with(name, "not-an-option"), inputs, nil); !hasError(errs, "config."+name) {
						t.Errorf("config.%s outside its enum compiled: %v", name, errs)
					}
				}
				for bound, delta := range map[string]float64{"minimum": -1, "maximum": 1} {
					b, ok := ps[bound]
					if !ok {
						continue
					}
					v, _ := num(b)
					if errs, _ := compileKind(t, k.Name, with(name, v+delta), inputs, nil); !hasError(errs, "config."+name) && !hasError(errs, "config") {
						t.Errorf("config.%s = %v, past its %s %v, compiled: %v", name, v+delta, bound, b, errs)
					}
				}
			}
		})
	}
}

// A path whose producing field's type cannot feed the port it is mapped
// to is refused at validation, naming the edge; compatible types and
// untyped outputs pass.
func TestValidateChecksPortTypes(t *testing.T) {
	doc := `{
	  "inputs": {"image": {"type": "image"}, "label": {"type": "string"}},
	  "nodes": [
	    {"id": "detect", "kind": "algorithm", "config": {"algorithm": "alg-face-detect"}, "inputs": {"image": "$input.image"}},
	    {"id": "track", "kind": "track", "inputs": {"objects": "$detect.faces"}},
	    {"id": "wrong", "kind": "zone", "config": {"polygon": [[0,0],[1,0],[1,1]]}, "inputs": {"objects": "$track.active"}},
	    {"id": "again", "kind": "algorithm", "config": {"algorithm": "alg-face-detect"}, "inputs": {"image": "$track.objects"}},
	    {"id": "fromInput", "kind": "zone", "config": {"polygon": [[0,0],[1,0],[1,1]]}, "inputs": {"objects": "$input.label"}},
	    {"id": "literal", "kind": "zone", "config": {"polygon": [[0,0],[1,0],[1,1]]}, "inputs": {"objects": 5}},
	    {"id": "fine", "kind": "zone", "config": {"polygon": [[0,0],[1,0],[1,1]]}, "inputs": {"objects": "$track.objects"}},
	    {"id": "script", "kind": "function", "config": {"script": "def main(input, params):\n    return input"}},
	    {"id": "untyped", "kind": "zone", "config": {"polygon": [[0,0],[1,0],[1,1]]}, "inputs": {"objects": "$script.anything"}}
	  ],
	  "edges": [{"from": "detect", "to": "track"}, {"from": "track", "to": "wrong"}, {"from": "track", "to": "again"},
	            {"from": "track", "to": "fine"}, {"from": "script", "to": "untyped"}]
	}`
	spec, err := Parse([]byte(doc), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range Validate(t.Context(), spec, describeOptions(nil)) {
		edge := ""
		if e.Edge != nil {
			edge = e.Edge.From + "->" + e.Edge.To
		}
		got = append(got, fmt.Sprintf("%s|%s|%s|%s", e.Node, edge, e.Field, e.Msg))
	}
	want := []string{
		`wrong|track->wrong|inputs.objects|$track.active is an integer, but input "objects" takes a list of objects`,
		`again|track->again|inputs.image|$track.objects is a list of objects, but input "image" takes an image`,
		`fromInput||inputs.objects|$input.label is declared a string, but input "objects" takes a list of objects`,
		`literal||inputs.objects|literal 5 is not a list of objects, which input "objects" takes`,
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("errors\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCompatible(t *testing.T) {
	for _, c := range []struct {
		from, to string
		ok       bool
	}{
		{TypeAny, TypeImage, true}, {TypeImage, TypeAny, true}, {"", TypeObjects, true},
		{TypeInteger, TypeNumber, true}, {TypeNumber, TypeInteger, true},
		{TypeObjects, TypeList, true}, {TypeList, TypeObjects, true},
		{TypeImage, TypeObjects, false}, {TypeString, TypeImage, false}, {TypeObject, TypeObjects, false}, {TypeBool, TypeNumber, false},
	} {
		if got := Compatible(c.from, c.to); got != c.ok {
			t.Errorf("Compatible(%q, %q) = %v", c.from, c.to, got)
		}
	}
}

// RunNode runs one node on pinned upstream outputs and nothing else: the
// algorithm upstream is not called again, a node downstream does not run.
func TestRunNodeWithPinnedInputs(t *testing.T) {
	opts := testOptions()
	algos := opts.Algorithms.(*fakeAlgos)
	p := compileDoc(t, `{"nodes": [
	  {"id": "detect", "kind": "algorithm", "config": {"algorithm": "alg-detect"}, "inputs": {"image": "$input.image"}, "next": ["track"]},
	  {"id": "track", "kind": "track", "inputs": {"objects": "$detect.faces"}, "next": ["keep"]},
	  {"id": "keep", "kind": "zone", "config": {"polygon": [[0,0],[100,0],[100,100],[0,100]]}, "inputs": {"objects": "$track.objects"}}
	]}`, opts)
	pinned := map[string]any{"detect": map[string]any{"faces": []any{
		map[string]any{"box": []any{1.0, 2.0, 3.0, 4.0}}, map[string]any{"box": []any{50.0, 50.0, 3.0, 4.0}}}}}
	res, err := p.RunNode(t.Context(), Input{Data: map[string]any{}}, "track", pinned)
	if err != nil {
		t.Fatal(err)
	}
	objs, _ := res.Output.(map[string]any)["objects"].([]any)
	if res.ID != "track" || res.Status != StatusOK || len(objs) != 2 || objs[1].(map[string]any)["trackId"] != int64(2) || algos.calls.Load() != 0 {
		t.Errorf("RunNode = %+v (algorithm calls %d)", res, algos.calls.Load())
	}
	// A failing node reports its error; an unknown id or pin is bad input.
	res, err = p.RunNode(t.Context(), Input{}, "keep", map[string]any{"track": map[string]any{"objects": "not a list"}})
	if err == nil || res.Status != StatusFailed || !strings.Contains(res.Error, "not a list") {
		t.Errorf("RunNode on a bad pin = %+v, %v", res, err)
	}
	for _, c := range []struct {
		id     string
		pinned map[string]any
	}{{"ghost", nil}, {"track", map[string]any{"ghost": 1}}, {"track", map[string]any{"track": 1}}} {
		if _, err := p.RunNode(t.Context(), Input{}, c.id, c.pinned); !errors.Is(err, ErrBadInput) {
			t.Errorf("RunNode(%q, %v) = %v; want ErrBadInput", c.id, c.pinned, err)
		}
	}
}

// Inside a foreach body, a miswiring names its edge by node paths, as
// NodeId names the node.
func TestPortTypeErrorInBody(t *testing.T) {
	errs := validateDoc(t, `{"nodes": [{"id": "each", "kind": "foreach", "inputs": {"items": "$input.list"}, "config": {"body": {
	  "nodes": [{"id": "t", "kind": "track", "inputs": {"objects": "$item"}, "next": ["z"]},
	            {"id": "z", "kind": "zone", "config": {"polygon": [[0,0],[1,0],[1,1]]}, "inputs": {"objects": "$t.active"}}]}}}]}`, testOptions())
	if len(errs) != 1 || errs[0].Node != "each/z" || errs[0].Edge == nil || *errs[0].Edge != (EdgeSpec{From: "each/t", To: "each/z"}) {
		t.Fatalf("errors %v", errs)
	}
}

// A config that does not decode names the field, so an editor shows the
// error beside it.
func TestConfigDecodeErrorsNameTheField(t *testing.T) {
	for doc, field := range map[string]string{
		`{"nodes": [{"id": "n", "kind": "track", "config": {"iou": "high"}, "inputs": {"objects": []}}]}`:    "config.iou",
		`{"nodes": [{"id": "n", "kind": "track", "config": {"iuo": 0.5}, "inputs": {"objects": []}}]}`:       "config.iuo",
		`{"nodes": [{"id": "n", "kind": "switch", "config": {"cases": [{"when": 1}]}, "inputs": {"a": 1}}]}`: "config.cases.when",
	} {
		errs := validateDoc(t, doc, testOptions())
		if len(errs) != 1 || errs[0].Field != field {
			t.Errorf("%s: errors %v; want one on %s", doc, errs, field)
		}
	}
}
