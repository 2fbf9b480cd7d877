package app_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/app"
	"github.com/tianshu-ai/tianshu/internal/app/apptest"
)

// hasMetric reports whether the platform's registry has a family named name.
func hasMetric(t *testing.T, e *apptest.Env, name string) bool {
	t.Helper()
	mfs, err := e.P.Metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return true
		}
	}
	return false
}

// TestAPITargetStartsNoAlgorithmInstance: an api replica serves the
// algorithm repository's actions but runs no algorithm: no runtime module,
// no instance, and a call that needs one says where to run it.
func TestAPITargetStartsNoAlgorithmInstance(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Args: []string{"--target", "api,bootstrap"}})
	for _, m := range []string{app.ModRuntime, app.ModWorker, app.ModScheduler, app.ModPush} {
		if e.P.Running(m) {
			t.Errorf("--target=api runs module %s", m)
		}
	}
	if !e.P.Running(app.ModAlgos) {
		t.Error("--target=api should run the algorithm repository")
	}
	if hasMetric(t, e, "tianshu_algorithm_instance_ready") {
		t.Error("--target=api started algorithm instances")
	}
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	algs := c.mustCall("DescribeAlgorithms", map[string]any{})
	if n, _ := algs["TotalCount"].(float64); n == 0 {
		t.Errorf("DescribeAlgorithms on an api replica lists no builtins: %v", algs)
	}
	if inst := c.mustCall("DescribeAlgorithmInstances", map[string]any{"AlgorithmId": "alg-face-detect"}); len(inst["InstanceSet"].([]any)) != 0 {
		t.Errorf("instances on an api replica: %v", inst)
	}
	if _, code := c.call("InvokeAlgorithm", map[string]any{"AlgorithmId": "alg-face-detect", "Image": pngImage(64, 48)}); code != "FailedOperation" {
		t.Errorf("InvokeAlgorithm on an api replica: code %q, want FailedOperation", code)
	}
}

// TestPushTargetStartsNoAlgorithmInstance: the message gateway alone runs
// neither the algorithm runtime nor the repository.
func TestPushTargetStartsNoAlgorithmInstance(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Args: []string{"--target", "push"}})
	for _, m := range []string{app.ModRuntime, app.ModAlgos, app.ModWorker, app.ModAPI} {
		if e.P.Running(m) {
			t.Errorf("--target=push runs module %s", m)
		}
	}
	if hasMetric(t, e, "tianshu_algorithm_instance_ready") {
		t.Error("--target=push started algorithm instances")
	}
}

// TestAllTargetRunsAlgorithmInstances is the contrast: the default target
// runs the builtins in its runtime.
func TestAllTargetRunsAlgorithmInstances(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	if !e.P.Running(app.ModRuntime) {
		t.Fatal("the default target runs no algorithm runtime")
	}
	if !hasMetric(t, e, "tianshu_algorithm_instance_ready") {
		t.Error("the default target has no algorithm instance")
	}
}

// TestModuleStates: every module of a started platform is Running and
// /readyz says ready; after Stop every one is Terminated.
func TestModuleStates(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	states := e.P.ModuleStates()
	for _, m := range []string{app.ModStore, app.ModAPI, app.ModWorker, app.ModRuntime, app.ModPush, app.ModAll} {
		if states[m] != app.StateRunning {
			t.Errorf("module %s is %s, want Running", m, states[m])
		}
	}
	resp, err := http.Get(e.Endpoint + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz: %s %s", resp.Status, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.P.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for m, s := range e.P.ModuleStates() {
		if s != app.StateTerminated {
			t.Errorf("after Stop, module %s is %s", m, s)
		}
	}
	if _, err := http.Get(e.Endpoint + "/readyz"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Logf("readyz after stop: %v", err)
	}
}
