package app_test

import (
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// movingSquare writes a clip as a folder of PNG frames: a 40×40 square with
// 10 px vertical stripes crosses a 320×240 grey scene from left to right,
// 10 px a frame. The stripes make the whole square change from one frame to
// the next, so frame differencing sees one moving blob, not two edges.
func movingSquare(t *testing.T, dir string) {
	t.Helper()
	for i := range 28 {
		img := image.NewGray(image.Rect(0, 0, 320, 240))
		for p := range img.Pix {
			img.Pix[p] = 100 + uint8(p%5)
		}
		x0 := 10 + 10*i
		for y := 100; y < 140; y++ {
			for x := x0; x < x0+40; x++ {
				v := uint8(20)
				if ((x-x0)/10)%2 == 0 {
					v = 235
				}
				img.SetGray(x, y, color.Gray{Y: v})
			}
		}
		f, err := os.Create(filepath.Join(dir, "f"+string(rune('a'+i/10))+string(rune('0'+i%10))+".png"))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		_ = f.Close()
	}
}

// clip writes the moving square into a new folder name under media.
func clip(t *testing.T, media, name string) string {
	t.Helper()
	d := filepath.Join(media, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	movingSquare(t, d)
	return d
}

// templateTask runs an example flow over a replay device of the moving
// square with the given zones and returns a function listing the task's
// records of one type (their Data as JSON).
func templateTask(t *testing.T, c *sdk, dir, name string, zones []any) (taskID string, records func(typ string) []string) {
	t.Helper()
	doc, err := os.ReadFile("../../examples/flows/" + name + ".json")
	if err != nil {
		t.Fatal(err)
	}
	devID := c.mustCall("CreateDevice", map[string]any{"Name": name + "-" + filepath.Base(dir), "Driver": "replay", "Address": dir, "Fps": 10,
		"Zones": zones})["DeviceId"].(string)
	flowID := c.mustCall("CreateFlow", map[string]any{"Name": name + "-" + filepath.Base(dir), "Document": string(doc)})["FlowId"].(string)
	taskID = c.mustCall("CreateTask", map[string]any{"Name": name + "-" + filepath.Base(dir), "FlowId": flowID, "Start": true,
		"Sources": []any{map[string]any{"Type": "device", "Id": devID}}})["TaskId"].(string)
	return taskID, func(typ string) []string {
		r := c.mustCall("DescribeRecords", map[string]any{"TaskIds": []string{taskID}, "Types": []string{typ}, "Limit": 100})
		var out []string
		for _, rec := range r["RecordSet"].([]any) {
			out = append(out, toJSON(rec.(map[string]any)["Data"]))
		}
		return out
	}
}

// The square crosses the right half: entering a zone there is an
// intrusion; a zone in the top strip, where nothing moves, sees none.
func TestTemplateZoneIntrusion(t *testing.T) {
	media := t.TempDir()
	e := apptest.Start(t, apptest.Options{Args: []string{"--media.root", media}})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	hit, miss := clip(t, media, "hit"), clip(t, media, "miss")
	zone := func(pts [][2]float64) []any {
		return []any{map[string]any{"Name": "intrusion", "Kind": "polygon", "Points": pts}}
	}
	hitTask, hits := templateTask(t, c, hit, "zone-intrusion", zone([][2]float64{{0.6, 0}, {1, 0}, {1, 1}, {0.6, 1}}))
	missTask, misses := templateTask(t, c, miss, "zone-intrusion", zone([][2]float64{{0, 0}, {1, 0}, {1, 0.2}, {0, 0.2}}))
	testenv.Eventually(t, 60*time.Second, "an intrusion record", func() bool { return len(hits("intrusion")) > 0 })
	if got := hits("intrusion")[0]; !strings.Contains(got, `"Zone":"intrusion"`) || !strings.Contains(got, `"TrackId":`) || !strings.Contains(got, `"Image":`) {
		t.Errorf("intrusion record: %.400s", got)
	}
	// The other task has seen the square pass too: at least as many frames.
	testenv.Eventually(t, 60*time.Second, "the miss task past a full pass", func() bool {
		s := c.mustCall("DescribeTaskStats", map[string]any{"TaskId": missTask})
		return s["Completed"].(float64) >= 30
	})
	if got := misses("intrusion"); len(got) != 0 {
		t.Errorf("intrusion in a zone nothing entered: %v", got)
	}
	for _, id := range []string{hitTask, missTask} {
		if s := c.mustCall("DescribeTaskStats", map[string]any{"TaskId": id}); s["Failed"].(float64) != 0 {
			t.Errorf("task %s: messages failed: %v", id, toJSON(s))
		}
		c.mustCall("StopTask", map[string]any{"TaskId": id})
	}
}

// The square crosses a vertical line left to right once a pass: crossing
// records say "right" (the engine's side of the line's start → end), and a
// window count record counts them by direction.
func TestTemplateLineCrossingCount(t *testing.T) {
	media := t.TempDir()
	e := apptest.Start(t, apptest.Options{Args: []string{"--media.root", media}})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	movingSquare(t, media)
	line := []any{map[string]any{"Name": "count-line", "Kind": "line", "Points": [][2]float64{{0.5, 0.1}, {0.5, 0.9}}}}
	taskID, records := templateTask(t, c, media, "line-crossing-count", line)
	testenv.Eventually(t, 60*time.Second, "a crossing record", func() bool { return len(records("line-crossing")) > 0 })
	for _, r := range records("line-crossing") {
		if !strings.Contains(r, `"Direction":"right"`) {
			t.Errorf("crossing the wrong way: %s", r)
		}
	}
	testenv.Eventually(t, 90*time.Second, "a line-count record of a closed window", func() bool { return len(records("line-count")) > 0 })
	got := records("line-count")[0]
	if !strings.Contains(got, `"Counts":{"right":`) || strings.Contains(got, `"left"`) {
		t.Errorf("line-count record: %s", got)
	}
	if s := c.mustCall("DescribeTaskStats", map[string]any{"TaskId": taskID}); s["Failed"].(float64) != 0 {
		t.Errorf("messages failed: %v", toJSON(s))
	}
	c.mustCall("StopTask", map[string]any{"TaskId": taskID})
}

// Occupancy: a zone over the square's path counts one object; a zone in
// the top strip counts none.
func TestTemplateZoneOccupancy(t *testing.T) {
	media := t.TempDir()
	e := apptest.Start(t, apptest.Options{Args: []string{"--media.root", media}})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	path, top := clip(t, media, "path"), clip(t, media, "top")
	zone := func(pts [][2]float64) []any {
		return []any{map[string]any{"Name": "occupancy", "Kind": "polygon", "Points": pts}}
	}
	pathTask, onPath := templateTask(t, c, path, "zone-occupancy", zone([][2]float64{{0, 0.3}, {1, 0.3}, {1, 0.7}, {0, 0.7}}))
	topTask, onTop := templateTask(t, c, top, "zone-occupancy", zone([][2]float64{{0, 0}, {1, 0}, {1, 0.2}, {0, 0.2}}))
	testenv.Eventually(t, 60*time.Second, "occupancy records with one object", func() bool {
		for _, r := range onPath("occupancy") {
			if strings.Contains(r, `"Count":1`) {
				return true
			}
		}
		return false
	})
	testenv.Eventually(t, 60*time.Second, "an occupancy record of the empty zone", func() bool { return len(onTop("occupancy")) > 0 })
	for _, r := range onTop("occupancy") {
		if !strings.Contains(r, `"Count":0`) {
			t.Errorf("occupancy of a zone nothing entered: %s", r)
		}
	}
	for _, id := range []string{pathTask, topTask} {
		if s := c.mustCall("DescribeTaskStats", map[string]any{"TaskId": id}); s["Failed"].(float64) != 0 {
			t.Errorf("task %s: messages failed: %v", id, toJSON(s))
		}
		c.mustCall("StopTask", map[string]any{"TaskId": id})
	}
}

// The gallery lists every shipped template with its parameters and zones,
// to a viewer too; CreateFlow starts from one by name, and refuses an
// unknown name or a name with a Document, naming the field.
func TestFlowTemplates(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	vid := c.mustCall("CreateApp", map[string]any{"Name": "gallery", "Role": "viewer"})["AppId"].(string)
	vk := c.mustCall("CreateAppKey", map[string]any{"AppId": vid})
	v := newSDK(t, e.Host, vk["SecretId"].(string), vk["SecretKey"].(string))
	r := v.mustCall("DescribeFlowTemplates", map[string]any{})
	if r["TotalCount"].(float64) < 4 {
		t.Fatalf("templates: %.600s", toJSON(r))
	}
	all := toJSON(r["TemplateSet"])
	for _, want := range []string{`"Name":"face-structuring"`, `"Name":"zone-intrusion"`, `"Name":"line-crossing-count"`, `"Name":"zone-occupancy"`,
		`"Zones":[{"Kind":"line","Name":"count-line"}]`, `{"Default":25,"Description":"grey-level change (1-255) that counts as motion","Name":"threshold","Type":"integer"}`} {
		if !strings.Contains(all, want) {
			t.Errorf("templates lack %s: %.2000s", want, all)
		}
	}
	if got := toJSON(c.mustCall("DescribeFlowTemplates", map[string]any{"Category": "counting"})["TemplateSet"]); strings.Contains(got, "zone-intrusion") || !strings.Contains(got, "zone-occupancy") {
		t.Errorf("category counting: %.400s", got)
	}
	for _, tpl := range r["TemplateSet"].([]any) {
		name := tpl.(map[string]any)["Name"].(string)
		if algs, _ := tpl.(map[string]any)["Algorithms"].([]any); len(algs) > 0 {
			continue // needs an algorithm of the user's: TestOCRModelFilesAndTextReadingTemplate
		}
		id := c.mustCall("CreateFlow", map[string]any{"Name": "from-" + name, "TemplateName": name})["FlowId"].(string)
		got := c.mustCall("DescribeFlowVersion", map[string]any{"FlowId": id, "Version": 1})
		if !strings.Contains(toJSON(got), `"name":"`+name+`"`) {
			t.Errorf("flow from template %s: %.300s", name, toJSON(got))
		}
	}
	// The face templates' optional descriptor: mapped, the best shots are
	// described by it (an unknown algorithm is refused when the flow
	// compiles, naming it); a placeholder a template lacks is refused.
	for _, name := range []string{"face-structuring", "face-bestshot-group"} {
		got := signedRaw(t, e, apptest.AdminSecretID, apptest.AdminSecretKey, "CreateFlow", map[string]any{"TemplateName": name,
			"TemplateAlgorithms": map[string]string{"alg-face-descriptor": "alg-nope"}})
		if !strings.Contains(got, `node \"keep/embed\": config.algorithm: unknown algorithm \"alg-nope\"`) {
			t.Errorf("%s with an unknown descriptor: %s", name, got)
		}
	}
	if got := signedRaw(t, e, apptest.AdminSecretID, apptest.AdminSecretKey, "CreateFlow", map[string]any{"TemplateName": "zone-occupancy",
		"TemplateAlgorithms": map[string]string{"alg-face-descriptor": "alg-x"}}); !strings.Contains(got, "TemplateAlgorithms") {
		t.Errorf("a placeholder the template lacks: %s", got)
	}
	for body, field := range map[string]string{
		`{"TemplateName": "nope"}`:                                      "TemplateName",
		`{"TemplateName": "zone-occupancy", "Document": {"nodes": []}}`: "TemplateName",
		`{"Name": "empty"}`:                                             "Document",
	} {
		var req map[string]any
		_ = json.Unmarshal([]byte(body), &req)
		if got := signedRaw(t, e, apptest.AdminSecretID, apptest.AdminSecretKey, "CreateFlow", req); !strings.Contains(got, field) {
			t.Errorf("CreateFlow %s: %s, want an error naming %s", body, got, field)
		}
	}
	if got := signedRaw(t, e, vk["SecretId"].(string), vk["SecretKey"].(string), "CreateFlow", map[string]any{"TemplateName": "zone-occupancy"}); !strings.Contains(got, "AuthFailure") {
		t.Errorf("a viewer created a flow: %s", got)
	}
}

// Three cameras replay the bundled demo photos in one task: two of group
// lobby, one of group gate. Per camera the photos give several best shots a
// pass; deduplicated per group, lobby and gate store one each. The test
// widens the template's 10 s window to an hour so that the count does not
// depend on how fast this machine runs; the flow is otherwise the template.
func TestTemplateFaceBestShotGroup(t *testing.T) {
	media := t.TempDir()
	e := apptest.Start(t, apptest.Options{Args: []string{"--media.root", media}})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	photos, err := filepath.Glob("../../examples/demo/photos/*.jpg")
	if err != nil || len(photos) == 0 {
		t.Fatalf("demo photos: %v %v", photos, err)
	}
	for _, p := range photos {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(media, filepath.Base(p)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	doc, err := os.ReadFile("../../examples/flows/face-bestshot-group.json")
	if err != nil {
		t.Fatal(err)
	}
	wide := strings.Replace(string(doc), `"window": "10s"`, `"window": "1h"`, 1)
	if wide == string(doc) {
		t.Fatal("the template's dedup window moved")
	}
	var sources []any
	devGroup := map[string]string{}
	for _, d := range []struct{ name, group string }{{"lobby-a", "lobby"}, {"lobby-b", "lobby"}, {"gate", "gate"}} {
		id := c.mustCall("CreateDevice", map[string]any{"Name": d.name, "Group": d.group, "Driver": "replay", "Address": media, "Fps": 4})["DeviceId"].(string)
		devGroup[id] = d.group
		sources = append(sources, map[string]any{"Type": "device", "Id": id})
	}
	flowID := c.mustCall("CreateFlow", map[string]any{"Name": "best-per-group", "Document": wide})["FlowId"].(string)
	taskID := c.mustCall("CreateTask", map[string]any{"Name": "best-per-group", "FlowId": flowID, "Start": true, "Sources": sources})["TaskId"].(string)
	perGroup := func() map[string]int {
		r := c.mustCall("DescribeRecords", map[string]any{"TaskIds": []string{taskID}, "Types": []string{"face"}, "Limit": 100})
		n := map[string]int{}
		for _, rec := range r["RecordSet"].([]any) {
			d := rec.(map[string]any)["Data"].(map[string]any)
			if d["Group"] != devGroup[d["Device"].(string)] {
				t.Errorf("record of device %v says group %v", d["Device"], d["Group"])
			}
			// The best shot is cropped from the frame it was found in.
			if crop, _ := d["Crop"].(map[string]any); crop == nil || crop["ObjectKey"] == "" {
				t.Errorf("record without a crop: %s", toJSON(d))
			}
			n[d["Group"].(string)]++
		}
		return n
	}
	testenv.Eventually(t, 90*time.Second, "a best shot of each group", func() bool {
		n := perGroup()
		return n["lobby"] > 0 && n["gate"] > 0
	})
	// Two more passes over the photos on every camera: nothing more is kept.
	start := c.mustCall("DescribeTaskStats", map[string]any{"TaskId": taskID})["Completed"].(float64)
	testenv.Eventually(t, 90*time.Second, "two more passes", func() bool {
		return c.mustCall("DescribeTaskStats", map[string]any{"TaskId": taskID})["Completed"].(float64) >= start+float64(3*2*len(photos))
	})
	if n := perGroup(); n["lobby"] != 1 || n["gate"] != 1 {
		t.Errorf("best shots per group: %v, want lobby 1 and gate 1", n)
	}
	if s := c.mustCall("DescribeTaskStats", map[string]any{"TaskId": taskID}); s["Failed"].(float64) != 0 {
		t.Errorf("messages failed: %v", toJSON(s))
	}
	c.mustCall("StopTask", map[string]any{"TaskId": taskID})
}
