package app_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// testRunFlow finds faces with the built-in detector, follows them, and
// crops the first one from the frame a passthrough node hands on: a
// picture in, pictures and objects out.
const testRunFlow = `{"name": "test-run",
  "inputs": {"image": {"type": "image", "required": true}, "upload": {"type": "string"}},
  "nodes": [
    {"id": "frame", "kind": "passthrough", "inputs": {"image": "$input.image"}},
    {"id": "detect", "kind": "algorithm", "config": {"algorithm": "alg-face-detect"}, "inputs": {"image": "$input.image"}},
    {"id": "track", "kind": "track", "inputs": {"objects": "$detect.faces"}},
    {"id": "crop", "kind": "algorithm", "config": {"algorithm": "alg-image-ops"},
     "inputs": {"image": "$frame.image", "op": "crop", "box": "$detect.faces[0].box", "margin": 0.2}}
  ],
  "edges": [{"from": "detect", "to": "track"}, {"from": "frame", "to": "crop"}, {"from": "detect", "to": "crop"}]}`

func fetch(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return b
}

func nodesByID(t *testing.T, run map[string]any) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, n := range run["NodeSet"].([]any) {
		m := n.(map[string]any)
		out[m["NodeId"].(string)] = m
	}
	return out
}

// RunFlowTest runs an unsaved flow on a bundled photo (uploaded with tus),
// on a camera's current snapshot and on a stored record's picture, through
// the signed action API with the real built-in detector; outputs come
// with every node's timing and pictures as signed URLs; one node runs
// alone on the outputs pinned from the first run.
func TestRunFlowTestOnPictures(t *testing.T) {
	photo, err := os.ReadFile("../vision/cascade/testdata/astronaut.png")
	if err != nil {
		t.Fatal(err)
	}
	e := apptest.Start(t, apptest.Options{})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	tok := c.mustCall("CreateUploadToken", map[string]any{})
	uploadID := tusUpload(t, tok["Endpoint"].(string), tok["Token"].(string), "astronaut.png", photo)

	run := c.mustCall("RunFlowTest", map[string]any{"Document": testRunFlow, "UploadId": uploadID})
	if run["RunError"] != "" {
		t.Fatalf("run failed: %v", run["RunError"])
	}
	nodes := nodesByID(t, run)
	if len(nodes) != 4 {
		t.Fatalf("nodes %v", run["NodeSet"])
	}
	for id, n := range nodes {
		if n["Status"] != "ok" || n["DurationUs"] == nil {
			t.Errorf("node %s: %v", id, n)
		}
	}
	faces := nodes["detect"]["Output"].(map[string]any)["faces"].([]any)
	if len(faces) != 1 {
		t.Fatalf("faces in astronaut.png: %v", faces)
	}
	if box := faces[0].(map[string]any)["box"].([]any); box[0].(float64) < 150 || box[0].(float64) > 200 {
		t.Errorf("face box %v", box)
	}
	if objs := nodes["track"]["Output"].(map[string]any)["objects"].([]any); objs[0].(map[string]any)["trackId"].(float64) != 1 {
		t.Errorf("track %v", objs)
	}
	frame := nodes["frame"]["Output"].(map[string]any)["image"].(map[string]any)
	if frame["ContentType"] != "image/png" || !bytes.Equal(fetch(t, frame["ObjectUrl"].(string)), photo) {
		t.Errorf("frame reference %v does not serve the photo", frame)
	}
	if in := run["Input"].(map[string]any); in["upload"] != uploadID || in["image"].(map[string]any)["ObjectKey"] != frame["ObjectKey"] {
		t.Errorf("the run's input %v", in)
	}
	crop := nodes["crop"]["Output"].(map[string]any)["image"].(map[string]any)
	if b := fetch(t, crop["ObjectUrl"].(string)); len(b) == 0 || crop["Size"].(float64) != float64(len(b)) {
		t.Errorf("crop reference %v", crop)
	}

	// One node alone, on the outputs pinned from that run: the frame's
	// picture reference is read back, the detector does not run again.
	pinned := map[string]any{"frame": nodes["frame"]["Output"], "detect": nodes["detect"]["Output"]}
	one := c.mustCall("RunFlowTest", map[string]any{"Document": testRunFlow, "NodeId": "crop", "PinnedOutputs": pinned})
	only := nodesByID(t, one)
	if len(only) != 1 || only["crop"]["Status"] != "ok" || one["RunError"] != "" {
		t.Fatalf("single-node run: %v", one)
	}
	if got := only["crop"]["Output"].(map[string]any)["image"].(map[string]any); got["ObjectKey"] != crop["ObjectKey"] {
		t.Errorf("the pinned run cropped %v, the full run %v", got, crop)
	}
	// The detector alone, on the message of the whole run: its picture
	// reference is read back from Input (the editor's "Run this node").
	det := nodesByID(t, c.mustCall("RunFlowTest", map[string]any{"Document": testRunFlow, "NodeId": "detect", "Input": run["Input"]}))["detect"]
	if faces := det["Output"].(map[string]any)["faces"].([]any); len(faces) != 1 {
		t.Errorf("detect alone on the run's input: %v", det)
	}
	if _, code := c.call("RunFlowTest", map[string]any{"Document": testRunFlow, "NodeId": "ghost"}); code != "InvalidParameterValue" {
		t.Errorf("unknown NodeId: %q", code)
	}
	if _, code := c.call("RunFlowTest", map[string]any{"Document": testRunFlow, "UploadId": uploadID, "DeviceId": "dev-x"}); code != "InvalidParameterValue" {
		t.Errorf("two pictures: %q", code)
	}
	if _, code := c.call("RunFlowTest", map[string]any{"Document": testRunFlow, "UploadId": "up-none"}); code != "ResourceNotFound" {
		t.Errorf("unknown upload: %q", code)
	}
	if _, code := c.call("RunFlowTest", map[string]any{"Document": testRunFlow}); code != "InvalidParameterValue" {
		t.Errorf("no picture for a flow that requires one: %q", code)
	}
	if _, code := c.call("RunFlowTest", map[string]any{"Document": strings.Replace(testRunFlow, `"$detect.faces"`, `"$input.image"`, 1), "UploadId": uploadID}); code != "InvalidParameterValue" {
		t.Errorf("a miswired document: %q", code)
	}

	// A camera's current snapshot: the demo camera's JPEG of the same photo.
	shot, err := os.ReadFile("../../examples/demo/photos/1-astronaut.jpg")
	if err != nil {
		t.Fatal(err)
	}
	cam := cameraEmulator(t, "admin", "pw", shot)
	devID := c.mustCall("CreateDevice", map[string]any{"Name": "desk", "Driver": "http-snapshot", "Address": cam.URL + "/snap.jpg",
		"Username": "admin", "Password": "pw"})["DeviceId"].(string)
	run = c.mustCall("RunFlowTest", map[string]any{"Document": testRunFlow, "DeviceId": devID})
	if faces := nodesByID(t, run)["detect"]["Output"].(map[string]any)["faces"].([]any); len(faces) != 1 || run["RunError"] != "" {
		t.Errorf("snapshot run: %v", run)
	}

	// A stored record's picture: a store node keeps the photo, and a test
	// run reads it back from the record.
	keep := `{"name": "keep", "nodes": [{"id": "save", "kind": "store", "config": {"type": "picture"}, "inputs": {"image": "$input.image"}}]}`
	flowID := c.mustCall("CreateFlow", map[string]any{"Document": keep})["FlowId"].(string)
	taskID := c.mustCall("CreateTask", map[string]any{"Name": "archive", "FlowId": flowID, "Start": true,
		"Sources": []any{map[string]any{"Type": "upload", "Id": uploadID}}})["TaskId"].(string)
	var recID string
	testenv.Eventually(t, 60*time.Second, "a record of the task", func() bool {
		recs := c.mustCall("DescribeRecords", map[string]any{"TaskIds": []string{taskID}})["RecordSet"].([]any)
		if len(recs) > 0 {
			recID = recs[0].(map[string]any)["RecordId"].(string)
		}
		return recID != ""
	})
	run = c.mustCall("RunFlowTest", map[string]any{"Document": testRunFlow, "RecordId": recID})
	if faces := nodesByID(t, run)["detect"]["Output"].(map[string]any)["faces"].([]any); len(faces) != 1 || run["RunError"] != "" {
		t.Errorf("record run: %v", run)
	}
	// A saved flow runs by id too, and sinks are captured, not written.
	run = c.mustCall("RunFlowTest", map[string]any{"FlowId": flowID, "UploadId": uploadID})
	if recs := run["RecordSet"].([]any); len(recs) != 1 || recs[0].(map[string]any)["Data"].(map[string]any)["image"].(map[string]any)["ObjectUrl"] == nil {
		t.Errorf("captured record %v", run["RecordSet"])
	}

	// A viewer may not run tests; an app of another project reaches none
	// of this project's pictures.
	vid := c.mustCall("CreateApp", map[string]any{"Name": "wall", "Role": "viewer"})["AppId"].(string)
	vk := c.mustCall("CreateAppKey", map[string]any{"AppId": vid})
	viewer := newSDK(t, e.Host, vk["SecretId"].(string), vk["SecretKey"].(string))
	if _, code := viewer.call("RunFlowTest", map[string]any{"Document": testRunFlow, "UploadId": uploadID}); code != "AuthFailure.UnauthorizedOperation" {
		t.Errorf("viewer: %q", code)
	}
	prj := c.mustCall("CreateProject", map[string]any{"Name": "other"})["ProjectId"].(string)
	oid := c.mustCall("CreateApp", map[string]any{"Name": "other", "ProjectId": prj, "Role": "admin"})["AppId"].(string)
	ok := c.mustCall("CreateAppKey", map[string]any{"AppId": oid})
	other := newSDK(t, e.Host, ok["SecretId"].(string), ok["SecretKey"].(string))
	for field, id := range map[string]string{"UploadId": uploadID, "DeviceId": devID, "RecordId": recID} {
		if _, code := other.call("RunFlowTest", map[string]any{"Document": testRunFlow, field: id}); code != "ResourceNotFound" {
			t.Errorf("%s of another project: %q", field, code)
		}
	}
}

// videoFlow follows faces and keeps each person's best shot until the
// track ends: a record comes out only when the tracker's memory carries
// from frame to frame.
const videoFlow = `{"name": "video-test-run",
  "inputs": {"image": {"type": "image", "required": true}, "frame": {"type": "integer"}},
  "nodes": [
    {"id": "detect", "kind": "algorithm", "config": {"algorithm": "alg-face-detect"}, "inputs": {"image": "$input.image"}},
    {"id": "track", "kind": "track", "inputs": {"objects": "$detect.faces"}, "config": {"maxAge": "500ms"}},
    {"id": "best", "kind": "bestshot", "inputs": {"objects": "$track.objects", "ended": "$track.ended"}, "config": {"score": "item[\"score\"]", "maxAge": "500ms"}},
    {"id": "keep", "kind": "store", "config": {"type": "face"}, "inputs": {"TrackId": "$best.best[0].trackId", "Frame": "$input.frame"}}
  ],
  "edges": [{"from": "detect", "to": "track"}, {"from": "track", "to": "best"}, {"from": "best", "to": "keep"}]}`

// makeVideo encodes an MP4 with ffmpeg from args (inputs and filters).
func makeVideo(t *testing.T, args ...string) []byte {
	t.Helper()
	bin := testenv.NeedCommand(t, "ffmpeg")
	out := t.TempDir() + "/v.mp4"
	cmd := exec.Command(bin, append(append([]string{"-y", "-loglevel", "error"}, args...), "-pix_fmt", "yuv420p", out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A short video runs through the flow frame by frame, as one stream: the
// demo photo for a second, then two seconds of black; the face is
// followed across frames and, once it is gone, its best shot is stored
// (captured). A long video is cut at 50 frames.
func TestRunFlowTestOnVideo(t *testing.T) {
	video := makeVideo(t, "-loop", "1", "-t", "1", "-i", "../../examples/demo/photos/1-astronaut.jpg",
		"-f", "lavfi", "-t", "2", "-i", "color=black:s=512x512:r=10",
		"-filter_complex", "[0:v]scale=512:512,fps=10,format=yuv420p[a];[1:v]format=yuv420p[b];[a][b]concat=n=2:v=1[v]", "-map", "[v]")
	e := apptest.Start(t, apptest.Options{})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	tok := c.mustCall("CreateUploadToken", map[string]any{})
	uploadID := tusUploadType(t, tok["Endpoint"].(string), tok["Token"].(string), "face.mp4", "video/mp4", video)

	run := c.mustCall("RunFlowTest", map[string]any{"Document": videoFlow, "UploadId": uploadID})
	if run["RunError"] != "" {
		t.Fatalf("run failed: %v", run["RunError"])
	}
	frames := run["FrameSet"].([]any)
	if len(frames) < 10 || len(frames) > 20 {
		t.Fatalf("3 s at 5 frames a second: %d frames", len(frames))
	}
	faces := func(f any) int {
		m := f.(map[string]any)
		return len(nodesByID(t, m)["detect"]["Output"].(map[string]any)["faces"].([]any))
	}
	first, lastF := frames[0].(map[string]any), frames[len(frames)-1].(map[string]any)
	if faces(first) != 1 || faces(lastF) != 0 {
		t.Errorf("faces in the first and last frames: %d, %d", faces(first), faces(lastF))
	}
	if first["Frame"].(float64) != 1 || first["Input"].(map[string]any)["image"].(map[string]any)["ObjectUrl"] == nil {
		t.Errorf("first frame %v", first)
	}
	if second := frames[1].(map[string]any); second["TimeMs"].(float64) != 200 {
		t.Errorf("the second frame's time: %v", second["TimeMs"])
	}
	recs := run["RecordSet"].([]any)
	if len(recs) != 1 || recs[0].(map[string]any)["Data"].(map[string]any)["TrackId"].(float64) != 1 {
		t.Errorf("one best shot once the track ended (state carried across frames): %v", recs)
	}
	if n := len(run["NodeSet"].([]any)); n == 0 {
		t.Errorf("the last frame's nodes: %v", run["NodeSet"])
	}

	long := makeVideo(t, "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=12")
	longID := tusUploadType(t, tok["Endpoint"].(string), tok["Token"].(string), "long.mp4", "video/mp4", long)
	run = c.mustCall("RunFlowTest", map[string]any{"Document": videoFlow, "UploadId": longID})
	if n := len(run["FrameSet"].([]any)); n != 50 || run["RunError"] != "" {
		t.Errorf("a 12 s video: %d frames (want 50), %v", n, run["RunError"])
	}
	// One node alone runs on one picture, not on a video.
	if _, code := c.call("RunFlowTest", map[string]any{"Document": videoFlow, "UploadId": longID, "NodeId": "detect"}); code != "InvalidParameterValue" {
		t.Errorf("a node alone on a video: %q", code)
	}
	// Not a video at all: refused, naming the upload.
	junk := tusUploadType(t, tok["Endpoint"].(string), tok["Token"].(string), "junk.mp4", "video/mp4", []byte("not a video"))
	if _, code := c.call("RunFlowTest", map[string]any{"Document": videoFlow, "UploadId": junk}); code != "InvalidParameterValue" {
		t.Errorf("a broken video: %q", code)
	}
}
