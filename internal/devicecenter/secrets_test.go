package devicecenter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/device"
	"github.com/tianshu-ai/tianshu/internal/devicecenter"
	"github.com/tianshu-ai/tianshu/internal/execpolicy"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

type secretsEnv struct {
	svc   *devicecenter.Service
	reg   *api.Registry
	logs  *testenv.LogBuffer
	admin *api.Caller
	view  *api.Caller
}

func newSecretsEnv(t *testing.T) *secretsEnv {
	t.Helper()
	db := storetest.Open(t, "sqlite")
	box, err := secrets.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// The adapter test runs /bin/true: the exec policy allows that one file.
	pol, err := execpolicy.New(execpolicy.Config{Allow: []string{"/bin/true"}, Limits: execpolicy.Default().Limits})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := device.NewRuntime(device.Options{Logger: log, Exec: pol})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	e := &secretsEnv{svc: devicecenter.New(db, box, rt, nil, log, time.Now), reg: api.NewRegistry(), logs: logs,
		admin: &api.Caller{AppID: "app-admin", ProjectID: "default", Role: api.RoleAdmin},
		view:  &api.Caller{AppID: "app-view", ProjectID: "default", Role: api.RoleViewer}}
	devicecenter.RegisterActions(e.reg, e.svc, nil)
	return e
}

// call runs an action as the gateway does and returns the response as JSON
// and the audit detail the gateway would record for the request.
func (e *secretsEnv) call(t *testing.T, c *api.Caller, action, body string) (resp string, detail string, err error) {
	t.Helper()
	a, ok := e.reg.Lookup(action)
	if !ok {
		t.Fatalf("no action %s", action)
	}
	r, err := a.Call(context.Background(), c, []byte(body))
	b, _ := json.Marshal(r)
	return string(b), api.RedactJSON([]byte(body), 2048), err
}

func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// A password inside a device URL (rtsp://user:pass@host, the usual camera
// form) is split out and sealed like a device password: it never comes back
// through DescribeDevices (admin or viewer), the audit detail, a probe's
// message, LastError or the logs, and the driver still gets it.
func TestURLCredentialsNeverComeBack(t *testing.T) {
	testenv.NeedCommand(t, "ffmpeg")
	e := newSecretsEnv(t)
	const pw = "url-secret-9731"
	addr := fmt.Sprintf("rtsp://cam-user:%s@127.0.0.1:%d/stream", pw, closedPort(t))
	body := `{"Name": "gate", "Driver": "rtsp", "Address": "` + addr + `"}`
	resp, detail, err := e.call(t, e.admin, "CreateDevice", body)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(detail, pw) {
		t.Errorf("CreateDevice audit detail carries the password: %s", detail)
	}
	var created devicecenter.CreateDeviceResponse
	_ = json.Unmarshal([]byte(resp), &created)

	d, err := e.svc.Get(context.Background(), created.DeviceId)
	if err != nil {
		t.Fatal(err)
	}
	if d.Config.Username != "cam-user" || d.Config.Password != pw || strings.Contains(d.Config.Address, pw) {
		t.Errorf("stored config: address %q user %q password set %v", d.Config.Address, d.Config.Username, d.Config.Password == pw)
	}

	probe, _, err := e.call(t, e.admin, "ProbeDevice", `{"DeviceId": "`+created.DeviceId+`"}`)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(probe, pw) || !strings.Contains(probe, "unreachable") {
		t.Errorf("ProbeDevice answer: %s", probe)
	}
	// Probing a configuration before saving it, credentials in the URL.
	probe, detail, err = e.call(t, e.admin, "ProbeDevice", `{"Device": {"Driver": "rtsp", "Address": "`+addr+`"}}`)
	if err != nil || strings.Contains(probe, pw) || strings.Contains(detail, pw) {
		t.Errorf("ProbeDevice of an unsaved device: %s %v (detail %s)", probe, err, detail)
	}

	for _, c := range []*api.Caller{e.admin, e.view} {
		list, _, err := e.call(t, c, "DescribeDevices", `{}`)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(list, pw) || !strings.Contains(list, `"HasPassword":true`) || !strings.Contains(list, "cam-user") {
			t.Errorf("DescribeDevices as %s: %s", c.Role, list)
		}
	}
	if strings.Contains(e.logs.String(), pw) {
		t.Errorf("logs carry the password:\n%s", e.logs.String())
	}

	// ModifyDevice with a URL carrying other credentials replaces them.
	const pw2 = "url-secret-2-5555"
	addr2 := strings.Replace(addr, pw, pw2, 1)
	_, detail, err = e.call(t, e.admin, "ModifyDevice", `{"DeviceId": "`+created.DeviceId+`", "Address": "`+addr2+`"}`)
	if err != nil || strings.Contains(detail, pw2) {
		t.Fatalf("ModifyDevice: %v (detail %s)", err, detail)
	}
	d, _ = e.svc.Get(context.Background(), created.DeviceId)
	if d.Config.Password != pw2 || strings.Contains(d.Config.Address, "@") {
		t.Errorf("after ModifyDevice: address %q", d.Config.Address)
	}
}

// Credentials in the URL and in Username/Password must agree.
func TestURLCredentialsConflict(t *testing.T) {
	e := newSecretsEnv(t)
	_, _, err := e.call(t, e.admin, "CreateDevice", `{"Name": "x", "Driver": "rtsp", "Address": "rtsp://a:b-pass@cam/x", "Username": "a", "Password": "other"}`)
	if ae, ok := api.AsError(err); !ok || ae.Code != api.InvalidParameterValue || !strings.HasPrefix(ae.Message, "Password") {
		t.Errorf("differing passwords: %v", err)
	}
	_, _, err = e.call(t, e.admin, "CreateDevice", `{"Name": "y", "Driver": "rtsp", "Address": "rtsp://a:b-pass@cam/x", "Username": "z"}`)
	if ae, ok := api.AsError(err); !ok || ae.Code != api.InvalidParameterValue || !strings.HasPrefix(ae.Message, "Username") {
		t.Errorf("differing user names: %v", err)
	}
	// The same credentials twice are fine.
	if _, _, err := e.call(t, e.admin, "CreateDevice", `{"Name": "z", "Driver": "rtsp", "Address": "rtsp://a:b-pass@cam/x", "Username": "a", "Password": "b-pass"}`); err != nil {
		t.Errorf("agreeing credentials: %v", err)
	}
}

// An adapter's env entry marked secret is write-only: DescribeDevices and
// the audit detail mask it, the driver gets it, and ModifyDevice keeps it
// when the client sends the mask back.
func TestAdapterSecretEnv(t *testing.T) {
	e := newSecretsEnv(t)
	const tok = "vendor-token-8642"
	opts := `{"command": "/bin/true", "env": ["PLAIN=visible", {"name": "VENDOR_TOKEN", "value": "` + tok + `", "secret": true}]}`
	resp, detail, err := e.call(t, e.admin, "CreateDevice", `{"Name": "ad", "Driver": "adapter", "Address": "cam-1", "Options": `+opts+`}`)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(detail, tok) {
		t.Errorf("audit detail carries the secret: %s", detail)
	}
	var created devicecenter.CreateDeviceResponse
	_ = json.Unmarshal([]byte(resp), &created)
	for _, c := range []*api.Caller{e.admin, e.view} {
		list, _, err := e.call(t, c, "DescribeDevices", `{}`)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(list, tok) || !strings.Contains(list, "PLAIN=visible") || !strings.Contains(list, "VENDOR_TOKEN") {
			t.Errorf("DescribeDevices as %s: %s", c.Role, list)
		}
	}
	// The client sends back what it read, the mask included: the secret stays.
	masked := `{"command": "/bin/true", "env": ["PLAIN=changed", {"name": "VENDOR_TOKEN", "value": "***", "secret": true}]}`
	if _, _, err := e.call(t, e.admin, "ModifyDevice", `{"DeviceId": "`+created.DeviceId+`", "Options": `+masked+`}`); err != nil {
		t.Fatal(err)
	}
	d, err := e.svc.Get(context.Background(), created.DeviceId)
	if err != nil {
		t.Fatal(err)
	}
	env := fmt.Sprint(d.Config.Options["env"])
	if !strings.Contains(env, tok) || !strings.Contains(env, "PLAIN=changed") {
		t.Errorf("after ModifyDevice env = %s", env)
	}
	if strings.Contains(e.logs.String(), tok) {
		t.Errorf("logs carry the secret:\n%s", e.logs.String())
	}
}
