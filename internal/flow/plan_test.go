package flow

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

const faceFlow = `{
  "name": "face-structuring",
  "inputs": {"image": {"type": "image", "required": true}},
  "parameters": {"minScore": {"type": "number", "default": 0.15}},
  "nodes": [
    {"id": "detect", "kind": "algorithm", "config": {"algorithm": "alg-detect"}, "inputs": {"image": "$input.image"}, "next": ["faces"]},
    {"id": "faces", "kind": "foreach", "inputs": {"items": "$detect.faces", "min": "$params.minScore"}, "config": {"concurrency": 4, "body": {
      "nodes": [
        {"id": "gate", "kind": "switch", "inputs": {"face": "$item", "min": "$input.min"},
         "config": {"cases": [{"when": "face['score'] >= min", "next": "attr"}]}},
        {"id": "attr", "kind": "algorithm", "config": {"algorithm": "alg-attr"}, "inputs": {"face": "$item"}},
        {"id": "shape", "kind": "function", "inputs": {"age": "$attr.age", "i": "$index"},
         "config": {"script": "def main(input, params):\n    return {'age': input['age'], 'i': input['i'], 'min': params['minScore']}"}}
      ],
      "edges": [{"from": "attr", "to": "shape"}],
      "output": {"face": "$shape"}
    }}},
    {"id": "store", "kind": "store", "config": {"type": "face"}, "inputs": {"faces": "$faces.results"}}
  ],
  "edges": [{"from": "faces", "to": "store"}],
  "output": {"faces": "$faces.results", "record": "$store.recordId"}
}`

func TestFaceFlow(t *testing.T) {
	p := compileDoc(t, faceFlow, testOptions())
	sinks := &fakeSinks{}
	res := runMsg(t, p, Input{Data: map[string]any{"image": "abcd"}, Sinks: sinks, Trace: true})
	want := []any{
		map[string]any{"face": nil},
		map[string]any{"face": nil},
		map[string]any{"face": map[string]any{"age": int64(22), "i": int64(2), "min": 0.15}},
		map[string]any{"face": map[string]any{"age": int64(23), "i": int64(3), "min": 0.15}},
	}
	if got := res.Output["faces"]; !reflect.DeepEqual(got, want) {
		t.Fatalf("faces = %#v\nwant %#v", got, want)
	}
	if res.Output["record"] != "rec-1" || len(sinks.records) != 1 || sinks.records[0].Type != "face" {
		t.Fatalf("record = %v, sinks = %+v", res.Output["record"], sinks.records)
	}
	if s := statuses(res); s != "detect=ok faces=ok store=ok" {
		t.Fatalf("statuses: %s", s)
	}
	// Parameters override defaults.
	res = runMsg(t, p, Input{Data: map[string]any{"image": "abcd"}, Params: map[string]any{"minScore": 0.3}, Sinks: sinks})
	if f := res.Output["faces"].([]any); f[2].(map[string]any)["face"] != nil || f[3] == nil {
		t.Fatalf("with minScore 0.3: %v", f)
	}
	if _, err := p.Run(context.Background(), Input{Data: map[string]any{}}); !errors.Is(err, ErrBadInput) {
		t.Fatalf("missing input: %v", err)
	}
}
