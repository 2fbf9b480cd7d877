package app_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/algorithm/algotest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// A model that runs out of memory: resources.addressSpaceMB is each replica's
// address space (RLIMIT_AS, under the operator's --exec.rlimit-as). A
// call whose output needs more than that fails with FailedOperation and
// ONNX Runtime's allocation error (the runtime answers 507, not the 400 of
// a bad input) and the instance stays up; a limit too small for the
// runtime to start at all leaves the instance restarting with back-off and
// the reason in LastError and its log lines. An algorithm beside them
// answers throughout.
func TestServingOutOfMemory(t *testing.T) {
	c, upload := servingPlatform(t)
	descriptor := func(memoryMB int) map[string]any {
		return map[string]any{"resources": map[string]any{"addressSpaceMB": memoryMB},
			"serving": map[string]any{"runtime": "onnx-cpu", "input": map[string]any{"width": 8, "height": 8},
				"output": map[string]any{"kind": "classification", "topK": 1}}}
	}
	onboard := func(name string, model []byte, memoryMB int) string {
		id := c.mustCall("CreateAlgorithm", map[string]any{"Name": name})["AlgorithmId"].(string)
		c.mustCall("CreateAlgorithmVersion", map[string]any{"AlgorithmId": id, "Definition": descriptor(memoryMB),
			"ModelUploadId": upload(name+".onnx", model), "Start": true})
		return id
	}
	instance := func(id string) map[string]any {
		is := c.mustCall("DescribeAlgorithmInstances", map[string]any{"AlgorithmId": id})["InstanceSet"].([]any)
		if len(is) != 1 {
			return nil
		}
		return is[0].(map[string]any)
	}
	ready := func(id string) {
		t.Helper()
		testenv.Eventually(t, 90*time.Second, id+" ready", func() bool {
			i := instance(id)
			return i != nil && i["Status"] == "ready"
		})
	}
	image := base64.StdEncoding.EncodeToString(pngImage(16, 16))

	tiny := onboard("tiny", algotest.TinyClassifier(), 0)
	// 300 M classes: 1.2 GB for the output alone, over the 1 GiB limit.
	hungry := onboard("hungry", algotest.HungryClassifier(300_000_000), 1024)
	ready(tiny)
	ready(hungry)

	code, msg := c.callError("InvokeAlgorithm", map[string]any{"AlgorithmId": hungry, "Image": image})
	t.Logf("out of memory: %s %s", code, msg)
	if code != "FailedOperation" || !strings.Contains(msg, "instance answered 507: out of memory: ") || !strings.Contains(msg, "Failed to allocate memory") {
		t.Errorf("InvokeAlgorithm on the hungry model: %s %s; want FailedOperation with ONNX Runtime's allocation error", code, msg)
	}
	if i := instance(hungry); i["Status"] != "ready" || i["Restarts"] != float64(0) {
		t.Errorf("hungry instance after the call: %v", i)
	}
	if out := c.mustCall("InvokeAlgorithm", map[string]any{"AlgorithmId": tiny, "Image": image}); out["Outputs"].(map[string]any)["label"] == nil {
		t.Errorf("tiny beside it: %v", out)
	}

	// 64 MiB: the runtime cannot start; the instance restarts with back-off.
	starved := onboard("starved", algotest.TinyClassifier(), 64)
	testenv.Eventually(t, 120*time.Second, "starved restarts", func() bool {
		i := instance(starved)
		return i != nil && i["Restarts"].(float64) >= 2 && i["LastError"] != ""
	})
	i := instance(starved)
	t.Logf("starved: %v %v %v", i["Status"], i["LastError"], i["LogLines"])
	if i["Status"] == "ready" {
		t.Errorf("starved instance is ready under 64 MiB: %v", i)
	}
	if out := c.mustCall("InvokeAlgorithm", map[string]any{"AlgorithmId": tiny, "Image": image}); out["Outputs"].(map[string]any)["label"] == nil {
		t.Errorf("tiny beside it: %v", out)
	}
}
