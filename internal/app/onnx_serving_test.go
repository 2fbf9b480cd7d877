package app_test

import (
	"encoding/base64"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tcerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"

	"github.com/tianshu-ai/tianshu/internal/algorithm/algotest"
	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// callError calls an action that must fail and returns its error code and
// message.
func (s *sdk) callError(action string, params map[string]any) (code, msg string) {
	s.t.Helper()
	req := tchttp.NewCommonRequest(api.Service, api.Version, action)
	if err := req.SetActionParameters(params); err != nil {
		s.t.Fatal(err)
	}
	s.spaceRepeat(action, params)
	err := s.client.Send(req, tchttp.NewCommonResponse())
	var se *tcerr.TencentCloudSDKError
	if !errors.As(err, &se) {
		s.t.Fatalf("%s succeeded (%v); want an error", action, err)
	}
	return se.GetCode(), se.GetMessage()
}

// An ONNX file uploaded over tus, a serving runtime's name and a
// descriptor are an algorithm with no code written: InvokeAlgorithm and a
// flow on a task use it. A file that is not ONNX, a descriptor that does
// not match the model, and a bad descriptor field are refused naming the
// field, the tensor and its shape.
func TestONNXModelFileAlgorithm(t *testing.T) {
	models := algotest.ONNXModels(t)
	c, upload := servingPlatform(t)
	yolo, err := os.ReadFile(filepath.Join(models, "yolo.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	algID := c.mustCall("CreateAlgorithm", map[string]any{"Name": "tiny-yolo"})["AlgorithmId"].(string)
	descriptor := func() map[string]any {
		return map[string]any{"serving": map[string]any{"runtime": "onnx-cpu",
			"input":  map[string]any{"width": 32, "height": 32, "layout": "NCHW", "channels": "RGB", "mean": []float64{0, 0, 0}, "std": []float64{1, 1, 1}},
			"output": map[string]any{"kind": "detection", "format": "yolov8", "labels": []string{"person", "car"}, "confidence": 0.25, "iou": 0.45}}}
	}

	// Refusals, each naming what is wrong.
	notONNX := upload("photo.onnx", pngImage(16, 16))
	code, msg := c.callError("CreateAlgorithmVersion", map[string]any{"AlgorithmId": algID, "Definition": descriptor(), "ModelUploadId": notONNX})
	if code != "InvalidParameterValue" || !strings.Contains(msg, "ModelUploadId: the file is not an ONNX model") {
		t.Errorf("not ONNX: %s %s", code, msg)
	}
	up := upload("yolo.onnx", yolo)
	d := descriptor()
	d["serving"].(map[string]any)["input"].(map[string]any)["height"] = 64
	code, msg = c.callError("CreateAlgorithmVersion", map[string]any{"AlgorithmId": algID, "Definition": d, "ModelUploadId": up})
	if code != "InvalidParameterValue" || !strings.Contains(msg, `Definition.serving.input: the model's input "images" float32 [1,3,32,32] does not match the descriptor's NCHW [1 3 64 32]`) {
		t.Errorf("shape mismatch: %s %s", code, msg)
	}
	// A model named by its blob key (another project's upload, say) instead
	// of an upload of the caller's is refused, with or without an upload.
	for _, withUpload := range []bool{false, true} {
		d = descriptor()
		d["serving"].(map[string]any)["model"] = "uploads/other-project/model.onnx"
		req := map[string]any{"AlgorithmId": algID, "Definition": d}
		if withUpload {
			req["ModelUploadId"] = up
		}
		code, msg = c.callError("CreateAlgorithmVersion", req)
		if code != "InvalidParameterValue" || !strings.Contains(msg, "Definition.serving.model: is set by the platform from ModelUploadId") {
			t.Errorf("a model named by key (upload %v): %s %s", withUpload, code, msg)
		}
	}
	d = descriptor()
	d["serving"].(map[string]any)["output"].(map[string]any)["format"] = "ssd"
	code, msg = c.callError("CreateAlgorithmVersion", map[string]any{"AlgorithmId": algID, "Definition": d, "ModelUploadId": up})
	if code != "InvalidParameterValue" || !strings.Contains(msg, `Definition.serving.output.format: unknown format "ssd"`) {
		t.Errorf("bad format: %s %s", code, msg)
	}
	code, msg = c.callError("CreateAlgorithmVersion", map[string]any{"AlgorithmId": algID, "Definition": descriptor()})
	if code != "MissingParameter" || !strings.Contains(msg, "ModelUploadId") {
		t.Errorf("no model: %s %s", code, msg)
	}

	// The model file becomes version 1.
	if r := c.mustCall("CreateAlgorithmVersion", map[string]any{"AlgorithmId": algID, "Definition": descriptor(), "ModelUploadId": up, "Start": true}); r["Version"] != "1" {
		t.Fatalf("CreateAlgorithmVersion = %v", r)
	}
	vs := c.mustCall("DescribeAlgorithmVersions", map[string]any{"AlgorithmId": algID})
	def := toJSON(vs["VersionSet"].([]any)[0].(map[string]any)["Definition"])
	for _, want := range []string{`"runtime":"process"`, `"protocol":"oip-v2"`, `"tensor":"images"`, `"tensor":"output0"`, `"type":"objects"`} {
		if !strings.Contains(def, want) {
			t.Errorf("stored definition lacks %s: %s", want, def)
		}
	}
	t0 := time.Now()
	testenv.Eventually(t, 60*time.Second, "onnx instance ready", func() bool {
		is := c.mustCall("DescribeAlgorithmInstances", map[string]any{"AlgorithmId": algID})["InstanceSet"].([]any)
		return len(is) == 1 && is[0].(map[string]any)["Status"] == "ready"
	})
	t.Logf("ready after %s", time.Since(t0))

	// make_onnx.py's detector: person at (10,10) 8×8 and car at (24,24)
	// 6×6 in the 32×32 input; a 64×48 picture scales them by 2 and 1.5.
	out := c.mustCall("InvokeAlgorithm", map[string]any{"AlgorithmId": algID, "Image": base64.StdEncoding.EncodeToString(pngImage(64, 48))})
	objs, _ := out["Outputs"].(map[string]any)["objects"].([]any)
	if len(objs) != 2 {
		t.Fatalf("InvokeAlgorithm = %v", out)
	}
	want := []struct {
		label string
		score float64
		box   []float64
	}{{"person", 0.9, []float64{12, 9, 16, 12}}, {"car", 0.7, []float64{42, 31.5, 12, 9}}}
	for i, w := range want {
		o := objs[i].(map[string]any)
		box, _ := o["box"].([]any)
		ok := o["label"] == w.label && o["score"] == w.score && len(box) == 4
		for j := 0; ok && j < 4; j++ {
			ok = math.Abs(box[j].(float64)-w.box[j]) < 0.01
		}
		if !ok {
			t.Errorf("object %d = %v, want %s %v %v", i, o, w.label, w.score, w.box)
		}
	}

	// A flow on a task: an uploaded picture goes through the model and
	// the detections are stored as a record.
	doc := `{"name": "onnx-detect", "nodes": [
	  {"id": "det", "kind": "algorithm", "config": {"algorithm": "` + algID + `"}, "inputs": {"image": "$input.image"}},
	  {"id": "save", "kind": "store", "config": {"type": "detections"}, "inputs": {"objects": "$det.objects"}}],
	  "edges": [{"from": "det", "to": "save"}]}`
	if v := c.mustCall("ValidateFlow", map[string]any{"Document": doc}); v["Valid"] != true {
		t.Fatalf("flow with the model-file algorithm: %v", v)
	}
	flowID := c.mustCall("CreateFlow", map[string]any{"Document": doc})["FlowId"].(string)
	tok := c.mustCall("CreateUploadToken", map[string]any{})
	pic := tusUpload(t, tok["Endpoint"].(string), tok["Token"].(string), "shot.png", pngImage(64, 48))
	data := toJSON(uploadTaskRecord(t, c, "onnx", flowID, pic)["Data"])
	if !strings.Contains(data, `"label":"person"`) || !strings.Contains(data, `"label":"car"`) {
		t.Errorf("record data %s", data)
	}
}

// servingPlatform starts a platform with the repository's serving runtimes
// and returns an admin client and a function uploading a file over tus.
func servingPlatform(t *testing.T) (*sdk, func(name string, body []byte) string) {
	servingDir, allow := algotest.ServingDir(t)
	e := apptest.Start(t, apptest.Options{Args: []string{"--exec.allow", strings.Join(allow, ","), "--worker.serving-dir", servingDir}})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	return c, func(name string, body []byte) string {
		tok := c.mustCall("CreateUploadToken", map[string]any{})
		return tusUploadType(t, tok["Endpoint"].(string), tok["Token"].(string), name, "application/octet-stream", body)
	}
}
