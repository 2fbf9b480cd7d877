package studio

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/blob"
	"github.com/tianshu-ai/tianshu/internal/flow"
	"github.com/tianshu-ai/tianshu/internal/function"
	"github.com/tianshu-ai/tianshu/internal/media"
)

// TestImages fetches the picture of a test run on a caller's behalf. Each
// method answers ResourceNotFound naming field when the resource is not in
// projectID or not within the caller's reach (a role narrowed to some
// devices or tasks), and refuses pictures larger than max bytes. The data
// center and the device center implement it; the app wires them.
type TestImages interface {
	UploadImage(ctx context.Context, c *api.Caller, projectID, uploadID, field string, max int64) (media.Image, error)
	DeviceSnapshot(ctx context.Context, c *api.Caller, projectID, deviceID, field string, max int64) (media.Image, error)
	RecordImage(ctx context.Context, c *api.Caller, projectID, recordID, field string, max int64) (media.Image, error)
	// UploadVideo decodes a completed video upload of projectID (at most
	// lim.MaxBytes) at lim.FPS frames a second, calling fn for each frame
	// in order until the video ends or fn fails (its error is returned).
	// It answers false, with nothing decoded, when the upload is not a
	// video.
	UploadVideo(ctx context.Context, c *api.Caller, projectID, uploadID, field string, lim VideoLimits, fn func(media.Frame) error) (bool, error)
}

// VideoLimits bound the decoding of a test run's video.
type VideoLimits struct {
	MaxBytes int64
	FPS      float64
}

// Bounds of a test run (docs/flows.md, Test runs).
const (
	maxTestImageBytes   = 16 << 20 // the input picture, and each pinned picture read back
	maxTestInputBytes   = 1 << 20  // Input and Parameters, as JSON
	maxTestPinnedBytes  = 4 << 20  // PinnedOutputs, as JSON
	maxTestNodeOutput   = 1 << 20  // one node's output in the response, as JSON
	maxTestTotalOutput  = 8 << 20  // every node's output together
	maxTestImages       = 32       // pictures stored per run
	maxTestVideoImages  = 256      // pictures stored per video run (each frame, and its crops)
	maxTestVideoBytes   = 64 << 20 // an uploaded video
	maxTestVideoFrames  = 50       // frames run from a video
	testVideoFPS        = 5        // frames a second sampled from a video
	maxTestStoredBytes  = 64 << 20 // their bytes
	defaultTestTimeout  = 30 * time.Second
	testObjectTTL       = time.Hour // how long the pictures' URLs, and the pictures, last
	testObjectPrefixFmt = "flowtests/%s/"
)

// RunFlowTestRequest is the request of RunFlowTest.
type RunFlowTestRequest struct {
	// ProjectId is the project the flow runs in (its algorithms, devices,
	// records); default: the caller's project, else default.
	ProjectId string `json:"ProjectId" validate:"max=64"`
	// Document is the flow to run, saved or not: a JSON object, or a
	// string holding JSON or YAML. Without it, FlowId (and Version) name a
	// saved version.
	Document json.RawMessage `json:"Document"`
	FlowId   string          `json:"FlowId" validate:"max=64"`
	Version  int64           `json:"Version" validate:"min=0"`
	// At most one of UploadId (a completed picture upload), DeviceId (the
	// device's current snapshot) and RecordId (the first picture of a
	// stored record) becomes $input.image, with $input.upload, device or
	// record set to the id.
	UploadId string `json:"UploadId" validate:"max=64"`
	DeviceId string `json:"DeviceId" validate:"max=64"`
	RecordId string `json:"RecordId" validate:"max=64"`
	// Input holds the message's other fields ($input); at most 1 MiB.
	// Picture references of this project's test runs in it (an earlier
	// run's Input) are read back as pictures.
	Input map[string]any `json:"Input"`
	// Parameters are the template parameters ($params).
	Parameters map[string]any `json:"Parameters"`
	// NodeId runs that node alone, on PinnedOutputs (node id -> output,
	// as an earlier run returned them; picture references are read back),
	// without running the rest. At most 4 MiB.
	NodeId        string         `json:"NodeId" validate:"max=64"`
	PinnedOutputs map[string]any `json:"PinnedOutputs"`
	// TimeoutMs bounds the run (default 30000, at most 120000).
	TimeoutMs int `json:"TimeoutMs" validate:"min=0,max=120000"`
}

// RunFlowTestResponse is the response of RunFlowTest: every node's
// output and timing, pictures replaced by references
// {"ObjectUrl", "ObjectKey", "ContentType", "Size"} whose signed URL lasts
// an hour. A run that fails still answers, with RunError set and the nodes
// as far as they got. Sinks are captured, not written.
type RunFlowTestResponse struct {
	// Input is the message the flow ran on ($input), its picture as a
	// reference: what the console draws a node's boxes over when the
	// node's own output holds no picture.
	Input     map[string]any   `json:"Input"`
	Output    map[string]any   `json:"Output"`
	NodeSet   []NodeRun        `json:"NodeSet"`
	RecordSet []CapturedRecord `json:"RecordSet"`
	EventSet  []CapturedEvent  `json:"EventSet"`
	// RunError is why the run failed; empty when it succeeded. (Not
	// "Error": API 3.0 clients read Response.Error as the call's failure.)
	RunError   string `json:"RunError"`
	DurationUs int64  `json:"DurationUs"`
	// FrameSet holds each frame's run when UploadId names a video: the
	// flow ran over its frames in order as one stream (tracks, best shots
	// and dedup carry from frame to frame). Input, Output and NodeSet are
	// then the last frame's; RecordSet and EventSet hold every frame's.
	FrameSet []TestFrame `json:"FrameSet,omitempty"`
}

// TestFrame is one video frame's run in a test run.
type TestFrame struct {
	// Frame counts the frames run, from 1.
	Frame int `json:"Frame"`
	// TimeMs is the frame's time from the start of the video.
	TimeMs     int64          `json:"TimeMs"`
	Input      map[string]any `json:"Input"`
	NodeSet    []NodeRun      `json:"NodeSet"`
	RunError   string         `json:"RunError"`
	DurationUs int64          `json:"DurationUs"`
}

func registerTestRunAction(reg *api.Registry, s *Service) {
	api.Register(reg, api.Spec{Name: "RunFlowTest", Summary: "Run a flow document (saved or not) once on one picture (an upload, a device's current snapshot or a stored record's) and return every node's output and timing, pictures as signed URLs; with NodeId, run that node alone on pinned upstream outputs. Sinks are captured, not written.", Permission: flowWrite, Invoke: true},
		func(ctx context.Context, c *api.Caller, r *RunFlowTestRequest) (*RunFlowTestResponse, error) {
			return s.RunTest(ctx, c, r)
		})
}

// RunTest runs a test run for caller c.
func (s *Service) RunTest(ctx context.Context, c *api.Caller, r *RunFlowTestRequest) (*RunFlowTestResponse, error) {
	project := projectOf(c, r.ProjectId)
	if !c.Sees(project) {
		return nil, api.NotFound("ProjectId", project)
	}
	if err := jsonWithin("Input", r.Input, maxTestInputBytes); err != nil {
		return nil, err
	}
	if err := jsonWithin("Parameters", r.Parameters, maxTestInputBytes); err != nil {
		return nil, err
	}
	if err := jsonWithin("PinnedOutputs", r.PinnedOutputs, maxTestPinnedBytes); err != nil {
		return nil, err
	}
	if r.NodeId == "" && len(r.PinnedOutputs) > 0 {
		return nil, api.InvalidValue("PinnedOutputs", "pinned outputs need NodeId, the node to run alone")
	}
	doc, err := s.testDocument(ctx, c, project, r)
	if err != nil {
		return nil, err
	}
	spec, err := flow.Parse(doc, flow.Limits{})
	if err != nil {
		return nil, api.InvalidValue("Document", "%v", err)
	}
	opts := s.options(ctx, project)
	// Unsaved documents name their flows and nodes freely: their runs stay
	// out of the per-node metrics, whose labels would grow without bound.
	opts.Metrics = nil
	plan, err := flow.Compile(ctx, spec, opts)
	if err != nil {
		return nil, apiError(&ValidationError{Errs: err.(flow.Errors)})
	}
	params := api.NormalizeMap(r.Parameters)
	if err := plan.CheckParams(params); err != nil {
		return nil, api.InvalidValue("Parameters", "%v", err)
	}
	// The input may hold picture references an earlier run answered (its
	// Input, for a node run alone on the message of a whole run).
	in0, err := s.readRefs(ctx, project, api.NormalizeMap(r.Input), "Input")
	if err != nil {
		return nil, err
	}
	data, _ := in0.(map[string]any)
	if data == nil {
		data = map[string]any{}
	}
	timeout := defaultTestTimeout
	if r.TimeoutMs > 0 {
		timeout = time.Duration(r.TimeoutMs) * time.Millisecond
	}
	// A video runs frame by frame; a node alone runs on one picture.
	if r.UploadId != "" && r.NodeId == "" && s.o.TestImages != nil {
		if out, ok, err := s.runTestVideo(ctx, c, project, plan, r, data, params, timeout); ok || err != nil {
			return out, err
		}
	}
	key, err := s.testPicture(ctx, c, project, r, data)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sinks := &captureSinks{}
	in := flow.Input{Data: data, Params: params, Sinks: sinks, Trace: true, Key: key, Time: s.o.Now()}
	start := time.Now()
	var res flow.Result
	var runErr error
	if r.NodeId != "" {
		pinned, err := s.readPinned(ctx, project, api.NormalizeMap(r.PinnedOutputs))
		if err != nil {
			return nil, err
		}
		var nr flow.NodeResult
		nr, runErr = plan.RunNode(ctx, in, r.NodeId, pinned)
		if errors.Is(runErr, flow.ErrBadInput) {
			return nil, api.InvalidValue("NodeId", "%v", runErr)
		}
		res = flow.Result{Output: map[string]any{}, Nodes: []flow.NodeResult{nr}}
		if nr.Status == flow.StatusOK {
			res.Output[nr.ID] = nr.Output
		}
	} else {
		res, runErr = plan.Run(ctx, in)
		if errors.Is(runErr, flow.ErrBadInput) {
			return nil, api.InvalidValue("Input", "%v", runErr)
		}
	}
	out := &RunFlowTestResponse{DurationUs: time.Since(start).Microseconds(), NodeSet: make([]NodeRun, 0, len(res.Nodes)),
		RecordSet: sinks.records, EventSet: sinks.events}
	out.RunError = runError(runErr, timeout)
	// Pictures are stored after the run, under a context of their own: a
	// run that used up its time still shows what it produced.
	pctx, pcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer pcancel()
	pics := &testPictures{s: s, project: project, seen: map[string]map[string]any{}, max: maxTestImages}
	budget := maxTestTotalOutput
	out.NodeSet, budget = pics.nodeRuns(pctx, res.Nodes, budget)
	out.Input, _ = pics.message(pctx, data, budget)
	outMap, _ := bounded(pics.replace(pctx, anyMap(res.Output), 0), maxTestNodeOutput)
	out.Output, _ = outMap.(map[string]any)
	if out.Output == nil {
		out.Output = map[string]any{"Truncated": true}
	}
	s.finishTest(pctx, pics, out, r.NodeId)
	return out, nil
}

// runError says why a test run failed; "" when it did not.
func runError(err error, timeout time.Duration) string {
	var le *function.LimitError
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("the test run exceeded %s", timeout)
	case errors.As(err, &le):
		return "limit exceeded: " + err.Error()
	}
	return err.Error()
}

// nodeRuns turns the engine's node results into the answer's, pictures
// stored and replaced by references, within what is left of budget.
func (tp *testPictures) nodeRuns(ctx context.Context, nodes []flow.NodeResult, budget int) ([]NodeRun, int) {
	out := make([]NodeRun, 0, len(nodes))
	for _, n := range nodes {
		nr := NodeRun{NodeId: n.ID, Kind: n.Kind, Status: string(n.Status), DurationUs: n.Duration.Microseconds(), Attempts: n.Attempts, Error: n.Error,
			Line: n.Line, Column: n.Column}
		nr.Output, budget = bounded(tp.replace(ctx, n.Output, 0), budget)
		out = append(out, nr)
	}
	return out, budget
}

// message is a run's input message with its pictures as references.
func (tp *testPictures) message(ctx context.Context, data map[string]any, budget int) (map[string]any, int) {
	v, budget := bounded(tp.replace(ctx, data, 0), min(budget, maxTestNodeOutput))
	m, _ := v.(map[string]any)
	return m, budget
}

// finishTest replaces the pictures of the captured records and events,
// sweeps old test pictures and logs the run.
func (s *Service) finishTest(ctx context.Context, pics *testPictures, out *RunFlowTestResponse, node string) {
	for i := range out.RecordSet {
		d, _ := bounded(pics.replace(ctx, anyMap(out.RecordSet[i].Data), 0), maxTestNodeOutput)
		out.RecordSet[i].Data, _ = d.(map[string]any)
	}
	for i := range out.EventSet {
		d, _ := bounded(pics.replace(ctx, anyMap(out.EventSet[i].Data), 0), maxTestNodeOutput)
		out.EventSet[i].Data, _ = d.(map[string]any)
	}
	if out.RecordSet == nil {
		out.RecordSet = []CapturedRecord{}
	}
	if out.EventSet == nil {
		out.EventSet = []CapturedEvent{}
	}
	s.sweepTestObjects(ctx, pics.project)
	s.o.Logger.Info("flow test run", "project", pics.project, "node", node, "nodes", len(out.NodeSet), "frames", len(out.FrameSet),
		"failed", out.RunError != "", "duration_us", out.DurationUs, "pictures", len(pics.seen))
}

func anyMap(m map[string]any) any {
	if m == nil {
		return nil
	}
	return m
}

// jsonWithin refuses a request field whose JSON is larger than max.
func jsonWithin(field string, v any, max int) error {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return api.InvalidValue(field, "%v", err)
	}
	if len(b) > max {
		return api.Errorf(api.LimitExceeded, "%s: %d bytes of JSON; the limit is %d", field, len(b), max)
	}
	return nil
}

// testDocument returns the document to run: the request's, or a saved
// version the caller may see.
func (s *Service) testDocument(ctx context.Context, c *api.Caller, project string, r *RunFlowTestRequest) ([]byte, error) {
	if len(r.Document) > 0 {
		if r.FlowId != "" {
			return nil, api.InvalidValue("FlowId", "give either Document or FlowId, not both")
		}
		return document(r.Document)
	}
	if r.FlowId == "" {
		return nil, api.Missing("Document or FlowId")
	}
	if err := s.visible(ctx, c, r.FlowId); err != nil {
		return nil, err
	}
	v, err := s.GetVersion(ctx, r.FlowId, r.Version)
	if err != nil {
		return nil, err
	}
	if v.ProjectID != project {
		return nil, api.InvalidValue("ProjectId", "flow %s belongs to project %s", r.FlowId, v.ProjectID)
	}
	return v.Document, nil
}

// testPicture fetches the picture the request names into data["image"]
// and returns the message key (the device, upload or record id).
func (s *Service) testPicture(ctx context.Context, c *api.Caller, project string, r *RunFlowTestRequest, data map[string]any) (string, error) {
	var given []string
	for _, f := range []struct{ name, id string }{{"UploadId", r.UploadId}, {"DeviceId", r.DeviceId}, {"RecordId", r.RecordId}} {
		if f.id != "" {
			given = append(given, f.name)
		}
	}
	if len(given) == 0 {
		return "test", nil
	}
	if len(given) > 1 {
		return "", api.InvalidValue(given[1], "give one of UploadId, DeviceId and RecordId, not %s", strings.Join(given, " and "))
	}
	if s.o.TestImages == nil {
		return "", api.Errorf(api.ResourceUnavailable, "%s: test runs on stored pictures are not available on this platform", given[0])
	}
	var img media.Image
	var err error
	var id, field string
	switch {
	case r.UploadId != "":
		id, field = r.UploadId, "upload"
		img, err = s.o.TestImages.UploadImage(ctx, c, project, r.UploadId, "UploadId", maxTestImageBytes)
	case r.DeviceId != "":
		id, field = r.DeviceId, "device"
		img, err = s.o.TestImages.DeviceSnapshot(ctx, c, project, r.DeviceId, "DeviceId", maxTestImageBytes)
	default:
		id, field = r.RecordId, "record"
		img, err = s.o.TestImages.RecordImage(ctx, c, project, r.RecordId, "RecordId", maxTestImageBytes)
	}
	if err != nil {
		return "", err
	}
	data["image"] = img
	if _, set := data[field]; !set {
		data[field] = id
	}
	return id, nil
}

// readPinned reads back the picture references in pinned outputs (those
// of this project's test runs), so a node downstream of an image gets the
// image again.
func (s *Service) readPinned(ctx context.Context, project string, pinned map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(pinned))
	for id, v := range pinned {
		r, err := s.readRefs(ctx, project, v, "PinnedOutputs."+id)
		if err != nil {
			return nil, err
		}
		out[id] = r
	}
	return out, nil
}

// readRefs returns v with the picture references of this project's test
// runs in it read back as pictures; errors name the field at.
func (s *Service) readRefs(ctx context.Context, project string, v any, at string) (any, error) {
	prefix := fmt.Sprintf(testObjectPrefixFmt, project)
	var walk func(v any, at string) (any, error)
	walk = func(v any, at string) (any, error) {
		switch x := v.(type) {
		case map[string]any:
			if key, ok := x["ObjectKey"].(string); ok && strings.HasPrefix(key, prefix) && s.o.Blob != nil {
				return s.readTestPicture(ctx, key, at)
			}
			out := make(map[string]any, len(x))
			for k, e := range x {
				r, err := walk(e, at+"."+k)
				if err != nil {
					return nil, err
				}
				out[k] = r
			}
			return out, nil
		case []any:
			out := make([]any, len(x))
			for i, e := range x {
				r, err := walk(e, fmt.Sprintf("%s[%d]", at, i))
				if err != nil {
					return nil, err
				}
				out[i] = r
			}
			return out, nil
		}
		return v, nil
	}
	return walk(v, at)
}

// readTestPicture reads back one picture a test run stored.
func (s *Service) readTestPicture(ctx context.Context, key, at string) (media.Image, error) {
	rc, info, err := s.o.Blob.Get(ctx, key)
	if errors.Is(err, blob.ErrNotFound) {
		return media.Image{}, api.InvalidValue(at, "picture %s has expired; run the upstream nodes again", key)
	}
	if err != nil {
		return media.Image{}, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxTestImageBytes+1))
	if err != nil {
		return media.Image{}, err
	}
	if len(b) > maxTestImageBytes {
		return media.Image{}, api.Errorf(api.LimitExceeded, "%s: picture larger than %d bytes", at, maxTestImageBytes)
	}
	return media.Image{Bytes: b, ContentType: info.ContentType}, nil
}

// testPictures stores the pictures of one run's outputs, each once (by
// content), and replaces them by references.
type testPictures struct {
	s       *Service
	project string
	seen    map[string]map[string]any // sha256 -> reference
	bytes   int
	max     int // pictures stored
}

const maxTestDepth = 64

func (tp *testPictures) replace(ctx context.Context, v any, depth int) any {
	if depth > maxTestDepth {
		return map[string]any{"Truncated": true}
	}
	if b, ct, ok := media.AsImage(v); ok {
		return tp.ref(ctx, b, ct)
	}
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = tp.replace(ctx, e, depth+1)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = tp.replace(ctx, e, depth+1)
		}
		return out
	case []map[string]any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = tp.replace(ctx, e, depth+1)
		}
		return out
	}
	return v
}

// ref stores one picture (content-addressed, so the same frame in many
// outputs or runs is one object) and returns its reference.
func (tp *testPictures) ref(ctx context.Context, b []byte, ct string) map[string]any {
	sum := sha256.Sum256(b)
	id := hex.EncodeToString(sum[:])
	if r, ok := tp.seen[id]; ok {
		return r
	}
	r := map[string]any{"ContentType": ct, "Size": int64(len(b))}
	switch {
	case tp.s.o.Blob == nil:
		r["Omitted"] = "pictures are not stored on this platform"
		return r
	case len(tp.seen) >= tp.max || tp.bytes+len(b) > maxTestStoredBytes:
		r["Omitted"] = fmt.Sprintf("more than %d pictures or %d bytes in one test run", tp.max, maxTestStoredBytes)
		return r
	}
	key := fmt.Sprintf(testObjectPrefixFmt, tp.project) + id[:32] + media.Extension(ct)
	if _, err := tp.s.o.Blob.Stat(ctx, key); err != nil {
		if _, err := tp.s.o.Blob.Put(ctx, key, bytes.NewReader(b), blob.PutOptions{ContentType: ct, Size: int64(len(b))}); err != nil {
			tp.s.o.Logger.Warn("test run picture not stored", "key", key, "err", err)
			r["Omitted"] = "not stored: " + err.Error()
			return r
		}
	}
	url, err := tp.s.o.Blob.PresignGet(ctx, key, testObjectTTL)
	if err != nil {
		r["Omitted"] = "not signed: " + err.Error()
		return r
	}
	r["ObjectKey"], r["ObjectUrl"] = key, url
	tp.seen[id] = r
	tp.bytes += len(b)
	return r
}

// bounded returns v, or a marker when its JSON is larger than the node
// limit or than what is left of budget, and the budget left.
func bounded(v any, budget int) (any, int) {
	if v == nil {
		return nil, budget
	}
	b, err := json.Marshal(v)
	if err != nil {
		return map[string]any{"Truncated": true, "Reason": "not JSON: " + err.Error()}, budget
	}
	if len(b) > maxTestNodeOutput || len(b) > budget {
		return map[string]any{"Truncated": true, "Bytes": len(b), "Reason": fmt.Sprintf("output larger than %d bytes, or than what is left of the run's %d", maxTestNodeOutput, maxTestTotalOutput)}, budget
	}
	return v, budget - len(b)
}

// sweepTestObjects deletes a project's test-run pictures older than their
// URLs, at most once every ten minutes per project.
func (s *Service) sweepTestObjects(ctx context.Context, project string) {
	if s.o.Blob == nil {
		return
	}
	now := time.Now() // the blob store's clock, which ModTime reads
	s.mu.Lock()
	last := s.swept[project]
	if now.Sub(last) < 10*time.Minute {
		s.mu.Unlock()
		return
	}
	s.swept[project] = now
	s.mu.Unlock()
	var old []string
	err := s.o.Blob.List(ctx, fmt.Sprintf(testObjectPrefixFmt, project), func(info blob.Info) error {
		if now.Sub(info.ModTime) > testObjectTTL {
			old = append(old, info.Key)
		}
		return nil
	})
	for _, k := range old {
		if err == nil {
			err = s.o.Blob.Delete(ctx, k)
		}
	}
	if err != nil {
		s.o.Logger.Warn("test run pictures not swept", "project", project, "err", err)
	}
}
