package studio_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/studio"
)

// The flows of the InvokeFlow rows (bench/invoke_test.go; the
// first is also internal/app's TestNoErrorUnderLoad's): face-route, a
// function keeps the adults of a list of faces and a switch routes on how
// many; face-split, a foreach runs a function per face.
var invokeFlowFiles = map[string]string{
	"route": "../flow/testdata/face-route.json",
	"split": "../flow/testdata/face-split.json",
}

// BenchmarkInvokeFlow measures the InvokeFlow action on a 5-face payload as
// the gateway calls it once a request is authorized (decoding, the flow's
// lookup, the run, the answer's encoding), without HTTP or signatures.
func BenchmarkInvokeFlow(b *testing.B) {
	for _, name := range []string{"route", "split"} {
		b.Run(name, func(b *testing.B) {
			e := newEnv(b)
			ctx := context.Background()
			doc, err := os.ReadFile(invokeFlowFiles[name])
			if err != nil {
				b.Fatal(err)
			}
			f, err := e.s.Create(ctx, "", "", "", doc, "user:bench")
			if err != nil {
				b.Fatal(err)
			}
			faces := make([]map[string]any, 5)
			for i := range faces {
				faces[i] = map[string]any{"age": 10 + 5*i, "box": []int{i * 10, 20, 40, 40}}
			}
			body, _ := json.Marshal(map[string]any{"FlowId": f.ID, "Input": map[string]any{"faces": faces, "seq": "1"}})
			a, ok := e.reg.Lookup("InvokeFlow")
			if !ok {
				b.Fatal("no InvokeFlow")
			}
			b.ReportAllocs()
			for b.Loop() {
				resp, err := a.Call(ctx, &api.Caller{}, body)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := resp.(api.JSONAppender).AppendJSON(nil); err != nil { // as the gateway encodes it
					b.Fatal(err)
				}
			}
		})
	}
}

// InvokeFlow reuses a flow's row for a short while (flowCacheTTL): the
// replica that changes or deletes a flow runs the change at once, another
// replica on the same store within the bound.
func TestInvokeFlowFollowsChanges(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	other := &env{db: e.db, clk: e.clk, s: studio.New(e.db, studio.Options{Now: e.clk.now}), reg: api.NewRegistry()}
	studio.RegisterActions(other.reg, other.s)
	const doc = `{"name": "echo", "nodes": [{"id": "out", "kind": "passthrough", "inputs": {"y": "$input.x"}}]}`
	f, err := e.s.Create(ctx, "", "", "", []byte(doc), "user:alice")
	if err != nil {
		t.Fatal(err)
	}
	invoke := func(r *env) (int64, error) {
		var out studio.InvokeFlowResponse
		err := call(t, r, nil, "InvokeFlow", map[string]any{"FlowId": f.ID, "Input": map[string]any{"x": 1}}, &out)
		return out.Version, err
	}
	for _, r := range []*env{e, other} {
		if v, err := invoke(r); err != nil || v != 1 {
			t.Fatalf("InvokeFlow = version %d, %v; want 1", v, err)
		}
	}
	changed := strings.Replace(doc, `"echo"`, `"echo2"`, 1)
	if _, err := e.s.Modify(ctx, f.ID, nil, nil, []byte(changed), "", "user:alice"); err != nil {
		t.Fatal(err)
	}
	if v, err := invoke(e); err != nil || v != 2 {
		t.Fatalf("InvokeFlow on the replica that changed it = version %d, %v; want 2 at once", v, err)
	}
	e.clk.add(2 * time.Second)
	if v, err := invoke(other); err != nil || v != 2 {
		t.Fatalf("InvokeFlow on another replica after the bound = version %d, %v; want 2", v, err)
	}
	if err := e.s.Delete(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	_, err = invoke(e)
	wantCode(t, err, api.ResourceNotFound, "")
	e.clk.add(2 * time.Second)
	_, err = invoke(other)
	wantCode(t, err, api.ResourceNotFound, "")
}

// The answer InvokeFlow encodes itself is the one encoding/json writes.
func TestInvokeFlowResponseAppendJSON(t *testing.T) {
	for _, r := range []studio.InvokeFlowResponse{
		{},
		{FlowId: "flow-1", Version: 3, Output: api.ObjectOut{"a": []any{int64(1), 2.5, "<&>", nil, map[string]any{"b": true}}},
			NodeSet: []studio.NodeRun{}, RecordSet: []studio.CapturedRecord{}, EventSet: []studio.CapturedEvent{}, DurationUs: 12},
		{FlowId: "f\u00e9\"", Output: api.ObjectOut{},
			NodeSet:   []studio.NodeRun{{NodeId: "n", Kind: "function", Status: "ok", DurationUs: 4, Output: map[string]any{"x": "<y>"}}},
			RecordSet: []studio.CapturedRecord{{RecordId: "rec-1", Type: "face", Data: map[string]any{"k": 1}}},
			EventSet:  []studio.CapturedEvent{{Type: "t", Subject: "s", Data: map[string]any{}}}},
	} {
		var want bytes.Buffer
		e := json.NewEncoder(&want)
		e.SetEscapeHTML(false)
		if err := e.Encode(&r); err != nil {
			t.Fatal(err)
		}
		got, err := r.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		if w := strings.TrimSuffix(want.String(), "\n"); string(got) != w {
			t.Errorf("AppendJSON:\n got %s\nwant %s", got, w)
		}
	}
}
