package app_test

import (
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
)

// TestRunningProgramsIsAPlatformPrivilege: an admin of a project cannot
// create, change or probe a device that runs a program on the server, nor
// an algorithm version that does; the refusal names the field. A platform
// admin passes this check (the exec policy then decides which programs).
func TestRunningProgramsIsAPlatformPrivilege(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	admin := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	prj := admin.mustCall("CreateProject", map[string]any{"Name": "tenant"})["ProjectId"].(string)
	appID := admin.mustCall("CreateApp", map[string]any{"ProjectId": prj, "Name": "tenant-admin", "Role": "admin"})["AppId"].(string)
	k := admin.mustCall("CreateAppKey", map[string]any{"AppId": appID})
	tenant := newSDK(t, e.Host, k["SecretId"].(string), k["SecretKey"].(string))

	const denied = "AuthFailure.UnauthorizedOperation"
	adapter := map[string]any{"Name": "vendor", "Driver": "adapter", "Address": "cam-1", "Options": map[string]any{"command": "/bin/sh"}}
	ownFFmpeg := map[string]any{"Name": "replay", "Driver": "replay", "Address": "/srv/media/x", "Options": map[string]any{"ffmpeg": "/bin/sh"}}
	for name, req := range map[string]map[string]any{"adapter": adapter, "own ffmpeg": ownFFmpeg} {
		if _, code := tenant.call("CreateDevice", req); code != denied {
			t.Errorf("CreateDevice (%s) by a project admin: %q, want %s", name, code, denied)
		}
		spec := map[string]any{}
		for k, v := range req {
			if k != "Name" {
				spec[k] = v
			}
		}
		if _, code := tenant.call("ProbeDevice", map[string]any{"Device": spec}); code != denied {
			t.Errorf("ProbeDevice (%s, unsaved) by a project admin: %q, want %s", name, code, denied)
		}
	}
	// A plain device the tenant may change, but not into one that runs a program.
	dev := tenant.mustCall("CreateDevice", map[string]any{"Name": "snap", "Driver": "http-snapshot", "Address": "http://127.0.0.1:9/x.jpg"})["DeviceId"].(string)
	if _, code := tenant.call("ModifyDevice", map[string]any{"DeviceId": dev, "Options": map[string]any{"ffmpeg": "/bin/sh"}}); code != denied {
		t.Errorf("ModifyDevice adding Options.ffmpeg by a project admin: %q, want %s", code, denied)
	}
	alg := tenant.mustCall("CreateAlgorithm", map[string]any{"Name": "vendor-model"})["AlgorithmId"].(string)
	def := map[string]any{"runtime": "process", "protocol": "tianshu-v1",
		"contract": map[string]any{"inputs": []any{map[string]any{"name": "image", "type": "image", "required": true}}}}
	if _, code := tenant.call("CreateAlgorithmVersion", map[string]any{"AlgorithmId": alg, "Definition": def}); code != denied {
		t.Errorf("CreateAlgorithmVersion (process) by a project admin: %q, want %s", code, denied)
	}
	// The platform admin passes the privilege check; the exec policy (no
	// directory allowed here) then refuses the program itself.
	adapter["ProjectId"] = prj
	if _, code := admin.call("CreateDevice", adapter); code == denied || !strings.HasPrefix(code, "InvalidParameter") {
		t.Errorf("CreateDevice (adapter) by the platform admin: %q, want the exec policy's InvalidParameterValue", code)
	}
}
