package studio

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/flow"
	"github.com/tianshu-ai/tianshu/internal/media"
)

// errEnoughFrames stops decoding once a test run has its frames.
var errEnoughFrames = errors.New("enough frames")

// runTestVideo runs the plan over the frames of a video upload, in order,
// as one stream: the frames share one stream state, so tracks, best shots
// and dedup windows carry from frame to frame as in a task. It answers
// false when the upload is not a video (then it is a picture).
func (s *Service) runTestVideo(ctx context.Context, c *api.Caller, project string, plan *flow.Plan, r *RunFlowTestRequest, data, params map[string]any,
	timeout time.Duration) (*RunFlowTestResponse, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Pictures are stored after each frame, under a context of their own:
	// a run that used up its time still shows what it produced.
	pctx, pcancel := context.WithTimeout(context.WithoutCancel(ctx), timeout+30*time.Second)
	defer pcancel()
	pics := &testPictures{s: s, project: project, seen: map[string]map[string]any{}, max: maxTestVideoImages}
	sinks := &captureSinks{}
	state := flow.NewState(s.o.Now)
	out := &RunFlowTestResponse{FrameSet: []TestFrame{}}
	budget := maxTestTotalOutput
	base := s.o.Now()
	start := time.Now()
	var last flow.Result
	var runErr error
	isVideo, err := s.o.TestImages.UploadVideo(ctx, c, project, r.UploadId, "UploadId", VideoLimits{MaxBytes: maxTestVideoBytes, FPS: testVideoFPS},
		func(f media.Frame) error {
			if len(out.FrameSet) >= maxTestVideoFrames {
				return errEnoughFrames
			}
			n := len(out.FrameSet) + 1
			if len(f.Image.Bytes) > maxTestImageBytes {
				return api.Errorf(api.LimitExceeded, "UploadId: frame %d is %d bytes; the limit is %d", n, len(f.Image.Bytes), maxTestImageBytes)
			}
			at := time.Duration(n-1) * time.Second / testVideoFPS
			msg := maps.Clone(data)
			msg["image"], msg["frame"], msg["width"], msg["height"] = f.Image, int64(n), int64(f.Width), int64(f.Height)
			if _, set := msg["upload"]; !set {
				msg["upload"] = r.UploadId
			}
			t0 := time.Now()
			res, err := plan.Run(ctx, flow.Input{Data: msg, Params: params, Sinks: sinks, Trace: true, Key: r.UploadId, Time: base.Add(at), State: state})
			if errors.Is(err, flow.ErrBadInput) {
				return api.InvalidValue("Input", "%v", err)
			}
			fr := TestFrame{Frame: n, TimeMs: at.Milliseconds(), DurationUs: time.Since(t0).Microseconds(), RunError: runError(err, timeout)}
			fr.NodeSet, budget = pics.nodeRuns(pctx, res.Nodes, budget)
			fr.Input, budget = pics.message(pctx, msg, budget)
			out.FrameSet = append(out.FrameSet, fr)
			last = res
			if err != nil && runErr == nil {
				runErr = fmt.Errorf("frame %d: %w", n, err)
			}
			// A frame that ran out of time ends the run; one that failed
			// otherwise does not: a task goes on to the next frame too.
			return ctx.Err()
		})
	if !isVideo {
		return nil, false, err
	}
	switch {
	case errors.Is(err, errEnoughFrames):
	case errors.Is(err, context.DeadlineExceeded) && len(out.FrameSet) > 0:
		if runErr == nil {
			runErr = err
		}
	case err != nil:
		if _, ok := api.AsError(err); ok {
			return nil, true, err
		}
		if len(out.FrameSet) == 0 {
			return nil, true, api.InvalidValue("UploadId", "the video could not be decoded: %v", err)
		}
		runErr = fmt.Errorf("decoding stopped after frame %d: %w", len(out.FrameSet), err)
	}
	out.DurationUs = time.Since(start).Microseconds()
	out.RunError = runError(runErr, timeout)
	out.RecordSet, out.EventSet = sinks.records, sinks.events
	if n := len(out.FrameSet); n > 0 {
		lf := out.FrameSet[n-1]
		out.Input, out.NodeSet = lf.Input, lf.NodeSet
	}
	outMap, _ := bounded(pics.replace(pctx, anyMap(last.Output), 0), maxTestNodeOutput)
	out.Output, _ = outMap.(map[string]any)
	if out.Output == nil {
		out.Output = map[string]any{}
	}
	s.finishTest(pctx, pics, out, "")
	return out, true, nil
}
