package app_test

import (
	"encoding/base64"
	"os"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
)

// The built-in algorithms need no download and no GPU: a real photo's face
// is found with its quality, cropped, and masked through the action API.
func TestBuiltinVisionAlgorithms(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	photo, err := os.ReadFile("../vision/cascade/testdata/astronaut.png")
	if err != nil {
		t.Fatal(err)
	}
	img := base64.StdEncoding.EncodeToString(photo)
	algs := c.mustCall("DescribeAlgorithms", map[string]any{"Filters": []any{map[string]any{"Name": "Name", "Values": []string{"face-detect", "face-quality", "image-ops", "motion"}}}})
	if algs["TotalCount"].(float64) != 4 {
		t.Fatalf("builtins: %v", algs)
	}
	out := c.mustCall("InvokeAlgorithm", map[string]any{"AlgorithmId": "alg-face-detect", "Image": img})["Outputs"].(map[string]any)
	faces := out["faces"].([]any)
	if len(faces) != 1 {
		t.Fatalf("faces in astronaut.png: %v", faces)
	}
	f := faces[0].(map[string]any)
	// The contract declares every field of a face, for the editor's Item node.
	declared := map[string]bool{}
	for _, a := range c.mustCall("DescribeFlowNodeKinds", map[string]any{})["AlgorithmSet"].([]any) {
		if a := a.(map[string]any); a["AlgorithmId"] == "alg-face-detect" {
			for _, it := range a["Outputs"].([]any)[0].(map[string]any)["Items"].([]any) {
				declared[it.(map[string]any)["Name"].(string)] = true
			}
		}
	}
	for k := range f {
		if !declared[k] {
			t.Errorf("a face's field %q is not declared in the contract's items %v", k, declared)
		}
	}
	box := f["box"].([]any)
	if box[0].(float64) < 150 || box[0].(float64) > 200 || f["score"].(float64) <= 0 {
		t.Fatalf("face %v", f)
	}
	q := c.mustCall("InvokeAlgorithm", map[string]any{"AlgorithmId": "alg-face-quality", "Image": img, "Inputs": map[string]any{"box": box}})["Outputs"].(map[string]any)
	if q["score"].(float64) <= 0 || q["sharpness"].(float64) <= 0 {
		t.Fatalf("quality %v", q)
	}
	crop := c.mustCall("InvokeAlgorithm", map[string]any{"AlgorithmId": "alg-image-ops", "Image": img,
		"Inputs": map[string]any{"op": "crop", "box": box, "margin": 0.2}})["Outputs"].(map[string]any)
	if crop["width"].(float64) < 95 || crop["image"] == nil {
		t.Fatalf("crop %v", crop["width"])
	}
	if _, code := c.call("InvokeAlgorithm", map[string]any{"AlgorithmId": "alg-face-detect", "Image": base64.StdEncoding.EncodeToString(photo[:200])}); code != "InvalidParameterValue" {
		t.Errorf("truncated image: %q", code)
	}
	if _, code := c.call("DeleteAlgorithm", map[string]any{"AlgorithmId": "alg-face-detect"}); code != "InvalidParameterValue" {
		t.Errorf("deleting a builtin: %q", code)
	}
}
