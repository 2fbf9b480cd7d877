package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/tianshu-ai/tianshu/internal/algorepo"
	"github.com/tianshu-ai/tianshu/internal/algorithm"
	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/flow"
	"github.com/tianshu-ai/tianshu/internal/media"
)

// faceEmbedder is SearchFaces' photo path (data.FaceEmbedder): the
// built-in face detector finds the faces, the largest one it is sure of
// (or the box the caller names) is cropped with the margin the face-structuring template
// uses, and the caller's embedding algorithm describes the crop.
type faceEmbedder struct{ algos *algorepo.Service }

// The detector's smallest face and the crop's margin around it; a face is
// a candidate when it has at least 1/searchSureRatio of the neighbouring
// detections of the surest face.
const (
	searchMinFace    = 20
	searchCropMargin = 0.4
	searchSureRatio  = 2
)

func (e faceEmbedder) EmbedFace(ctx context.Context, c *api.Caller, algorithmID, field string, img []byte, box []int) ([]float32, []int, error) {
	a, err := e.algos.Get(ctx, algorithmID)
	if err != nil {
		return nil, nil, err
	}
	if !c.Sees(a.ProjectID) {
		return nil, nil, api.NotFound("AlgorithmId", algorithmID)
	}
	photo := media.Image{Bytes: img}
	if len(box) == 0 {
		out, err := e.algos.Invoke(ctx, flow.AlgorithmRef{ID: algorepo.BuiltinID("face-detect")}, map[string]any{"image": photo, "minSize": int64(searchMinFace)})
		if err != nil {
			return nil, nil, invokeErr(field, "face detection", err)
		}
		// The largest face of those the detector is sure of: a false
		// detection (a patch, a shoulder) gathers few of the cascade's
		// neighbouring windows (4-7 where a face gathers 35-43 on the
		// demo's photos) yet may be larger than the face.
		faces, _ := out["faces"].([]any)
		sure := int64(0)
		for _, f := range faces {
			n, _ := f.(map[string]any)["neighbors"].(int64)
			sure = max(sure, n)
		}
		best := -1
		for _, f := range faces {
			m := f.(map[string]any)
			n, _ := m["neighbors"].(int64)
			b := intBox(m["box"])
			if len(b) == 4 && n*searchSureRatio >= sure && b[2]*b[3] > best {
				best, box = b[2]*b[3], b
			}
		}
		if best < 0 {
			return nil, nil, api.InvalidValue(field, "no face found in the photo (faces of at least %d pixels); give Box to name one", searchMinFace)
		}
	}
	crop, err := e.algos.Invoke(ctx, flow.AlgorithmRef{ID: algorepo.BuiltinID("image-ops")}, map[string]any{"image": photo, "op": "crop",
		"box": []any{int64(box[0]), int64(box[1]), int64(box[2]), int64(box[3])}, "margin": searchCropMargin, "quality": int64(90)})
	if err != nil {
		return nil, nil, invokeErr("Box", "crop", err)
	}
	out, err := e.algos.Invoke(ctx, flow.AlgorithmRef{ID: algorithmID}, map[string]any{"image": crop["image"], "embedding": true})
	if err != nil {
		return nil, nil, invokeErr("AlgorithmId", "embedding", err)
	}
	// The contract's embedding output, or the face-attributes package's
	// attributes.embedding of its first object.
	raw := out["embedding"]
	if objs, _ := out["objects"].([]any); raw == nil && len(objs) > 0 {
		if o, ok := objs[0].(map[string]any); ok {
			if attrs, ok := o["attributes"].(map[string]any); ok {
				raw = attrs["embedding"]
			}
		}
	}
	vals, _ := raw.([]any)
	if len(vals) == 0 {
		return nil, nil, api.InvalidValue("AlgorithmId", "algorithm %s answered no embedding (an embedding output, or objects[0].attributes.embedding)", algorithmID)
	}
	emb := make([]float32, len(vals))
	for i, v := range vals {
		f, ok := v.(float64)
		if !ok {
			return nil, nil, api.InvalidValue("AlgorithmId", "algorithm %s answered an embedding with a %T value", algorithmID, v)
		}
		emb[i] = float32(f)
	}
	return emb, box, nil
}

// intBox reads a detector's [x, y, w, h].
func intBox(v any) []int {
	l, _ := v.([]any)
	out := make([]int, 0, len(l))
	for _, x := range l {
		switch n := x.(type) {
		case int64:
			out = append(out, int(n))
		case float64:
			out = append(out, int(n))
		case int:
			out = append(out, n)
		}
	}
	return out
}

// invokeErr maps a failed call to the field it concerns.
func invokeErr(field, step string, err error) error {
	if _, ok := api.AsError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, algorithm.ErrBadInput), errors.Is(err, algorithm.ErrInputTooLarge):
		return api.InvalidValue(field, "%s refused it: %v", step, err)
	case errors.Is(err, algorithm.ErrUnknownAlgorithm):
		return api.Errorf(api.ResourceUnavailable, "%s: %s: the version is not running: %v", field, step, err)
	}
	return api.Errorf(api.FailedOperation, "%s", fmt.Sprintf("%s: %s: %v", field, step, err))
}
