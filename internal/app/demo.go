package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/tianshu-ai/tianshu/examples"
	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/push"
)

// The demo (`tianshu serve --demo`) is the quickstart: on first start it
// creates project "demo" with a replay camera over bundled photos, the
// face-structuring flow on the built-in algorithms, a running task, an app
// with a key pair and an SSE subscription, all through the same actions a
// user would call. Later starts find them and create nothing again.

// demoMarker is the settings row that remembers what the demo created.
const demoMarker = "demo.setup"

// DemoProject is the demo's project id.
const DemoProject = "demo"

// DemoFile is where the demo app's credentials are kept (mode 0600).
const DemoFile = "demo-credentials.json"

// Demo is what the demo consists of.
type Demo struct {
	Endpoint       string `json:"Endpoint"`
	ProjectId      string `json:"ProjectId"`
	DeviceId       string `json:"DeviceId"`
	FlowId         string `json:"FlowId"`
	TaskId         string `json:"TaskId"`
	AppId          string `json:"AppId"`
	SecretId       string `json:"SecretId"`
	SecretKey      string `json:"SecretKey,omitempty"`
	SubscriptionId string `json:"SubscriptionId"`
}

// SetupDemo creates the demo on first start and returns it; on later starts
// it returns what exists.
func (p *Platform) SetupDemo(ctx context.Context) (*Demo, error) {
	if p.Registry == nil || p.Push == nil || p.Devices == nil {
		return nil, errors.New("demo: needs the api, push and device modules (--target=all or control)")
	}
	photos := filepath.Join(p.cfg.DataDir, "demo", "photos")
	if err := writePhotos(photos); err != nil {
		return nil, err
	}
	var saved string
	if err := p.DB.QueryRow(ctx, "SELECT value FROM settings WHERE name = ?", demoMarker).Scan(&saved); err == nil {
		var d Demo
		if err := json.Unmarshal([]byte(saved), &d); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		if b, err := os.ReadFile(filepath.Join(p.cfg.DataDir, DemoFile)); err == nil {
			_ = json.Unmarshal(b, &d)
		}
		d.Endpoint = p.BaseURL()
		// The task may have been stopped by hand; the demo runs it again.
		if _, err := p.call(ctx, "", "StartTask", map[string]any{"TaskId": d.TaskId}); err != nil {
			p.log.Warn("demo task not restarted", "task", d.TaskId, "err", err)
		}
		return &d, nil
	}
	if _, err := p.Projects.Create(ctx, DemoProject, "demo", "The face structuring quickstart."); err != nil {
		if e, ok := api.AsError(err); !ok || e.Code != api.ResourceInUse {
			return nil, err
		}
	}
	d := &Demo{Endpoint: p.BaseURL(), ProjectId: DemoProject}
	r, err := p.call(ctx, "", "CreateDevice", map[string]any{"ProjectId": DemoProject, "Name": "demo-camera", "Driver": "replay",
		"Address": photos, "Fps": 2, "Description": "Replays the bundled photos as a camera would send frames."})
	if err != nil {
		return nil, err
	}
	d.DeviceId = r["DeviceId"].(string)
	doc, err := fs.ReadFile(examples.FS, "flows/face-structuring.json")
	if err != nil {
		return nil, err
	}
	if r, err = p.call(ctx, "", "CreateFlow", map[string]any{"ProjectId": DemoProject, "Document": json.RawMessage(doc)}); err != nil {
		return nil, err
	}
	d.FlowId = r["FlowId"].(string)
	if r, err = p.call(ctx, "", "CreateApp", map[string]any{"ProjectId": DemoProject, "Name": "demo-viewer", "Role": "viewer",
		"Description": "Reads the demo's records and events."}); err != nil {
		return nil, err
	}
	d.AppId = r["AppId"].(string)
	if r, err = p.call(ctx, "", "CreateAppKey", map[string]any{"AppId": d.AppId}); err != nil {
		return nil, err
	}
	d.SecretId, d.SecretKey = r["SecretId"].(string), r["SecretKey"].(string)
	// The subscription belongs to the demo app, so its key opens the stream.
	if r, err = p.call(ctx, d.AppId, "CreateSubscription", map[string]any{"ProjectId": DemoProject, "Name": "demo-faces",
		"Channel": map[string]any{"Type": "sse"}, "Filter": map[string]any{"Types": []string{"tianshu.face.captured"}}}); err != nil {
		return nil, err
	}
	d.SubscriptionId = r["SubscriptionId"].(string)
	if r, err = p.call(ctx, "", "CreateTask", map[string]any{"ProjectId": DemoProject, "Name": "demo-face-structuring", "FlowId": d.FlowId,
		"Sources": []any{map[string]any{"Type": "device", "Id": d.DeviceId}}, "Start": true}); err != nil {
		return nil, err
	}
	d.TaskId = r["TaskId"].(string)

	creds, _ := json.MarshalIndent(d, "", "  ")
	if err := writeCredentials0600(filepath.Join(p.cfg.DataDir, DemoFile), creds); err != nil {
		return nil, err
	}
	public := *d
	public.SecretKey = ""
	b, _ := json.Marshal(public)
	if _, err := p.DB.Exec(ctx, "INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?)", demoMarker, string(b), p.now().UnixMilli()); err != nil {
		return nil, err
	}
	p.log.Info("demo created", "project", DemoProject, "device", d.DeviceId, "flow", d.FlowId, "task", d.TaskId, "app", d.AppId)
	return d, nil
}

// call runs an action in-process as the platform itself (an admin of every
// project), optionally on behalf of an app that will own what is created.
func (p *Platform) call(ctx context.Context, appID, action string, req any) (map[string]any, error) {
	a, ok := p.Registry.Lookup(action)
	if !ok {
		return nil, fmt.Errorf("demo: no action %s", action)
	}
	body, _ := json.Marshal(req)
	c := &api.Caller{Role: api.RoleAdmin, AppID: appID, ProjectID: DemoProject, UserName: "demo-setup", Action: action}
	resp, err := a.Call(ctx, c, body)
	if err != nil {
		return nil, fmt.Errorf("demo: %s: %w", action, err)
	}
	b, _ := json.Marshal(resp)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m, nil
}

func writePhotos(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	entries, err := fs.ReadDir(examples.FS, "demo/photos")
	if err != nil {
		return err
	}
	for _, e := range entries {
		dst := filepath.Join(dir, e.Name())
		if e.Name() == "NOTICE" {
			dst = filepath.Join(filepath.Dir(dir), "PHOTOS-NOTICE")
		}
		if _, err := os.Stat(dst); err == nil {
			continue
		}
		src, err := examples.FS.Open("demo/photos/" + e.Name())
		if err != nil {
			return err
		}
		f, err := os.Create(dst)
		if err != nil {
			src.Close()
			return err
		}
		_, err = io.Copy(f, src)
		src.Close()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func writeCredentials0600(path string, b []byte) error {
	return os.WriteFile(path, append(b, '\n'), 0o600)
}

// DemoInstructions is what `serve --demo` prints once it is up. program
// is how the binary was invoked (bin/tianshu under `make run`), so that
// every command line runs as printed, from the directory it started in.
func DemoInstructions(d *Demo, dataDir, program string, now time.Time) string {
	exp := now.Add(24 * time.Hour).Unix()
	sse := fmt.Sprintf("%s%s?subscription=%s&secret_id=%s&expires=%d&signature=%s", d.Endpoint, push.SSEPath, d.SubscriptionId, d.SecretId, exp,
		push.SignStream(d.SecretKey, d.SubscriptionId, exp))
	return fmt.Sprintf(`
Tianshu is running at %[1]s with the face structuring demo (project %[2]q).
A replay camera (%[3]s) feeds task %[4]s: faces are detected, scored and cropped,
followed across frames, and the best shot of each person is stored and pushed.

Open the web console at %[1]s/ and sign in as admin with the Password in
%[10]s (written on the first start).

See the stored faces (the demo app's key is in %[5]s):

  export TIANSHU_ENDPOINT=%[1]s TIANSHU_SECRET_ID=%[6]s TIANSHU_SECRET_KEY=%[7]s
  %[8]s ctl DescribeRecords --ProjectId %[2]s --Types '["face"]' --Limit 5
  %[8]s ctl DescribeTaskStats --TaskId %[4]s

Download the newest best shot (the first signed URL of the record: its crop) to face.jpg:

  curl -so face.jpg "$(%[8]s ctl DescribeRecords --ProjectId %[2]s --Types '["face"]' --Limit 1 | sed -n 's/^ *"\(http[^"]*\)".*/\1/p' | head -1)"

Watch them arrive (Server-Sent Events; the URL is signed for 24 hours):

  curl -N '%[9]s'

`, d.Endpoint, d.ProjectId, d.DeviceId, d.TaskId, filepath.Join(dataDir, DemoFile), d.SecretId, d.SecretKey, program, sse,
		filepath.Join(dataDir, CredentialsFile))
}
