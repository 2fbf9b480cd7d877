package faces_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/vision/faces"
	"github.com/tianshu-ai/tianshu/internal/vision/imageops"
)

func TestDetectBytes(t *testing.T) {
	data, err := os.ReadFile("../cascade/testdata/astronaut.png")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, model := range []string{"", faces.ModelLBP} {
		d, err := faces.New(model)
		if err != nil {
			t.Fatal(err)
		}
		res, err := d.DetectBytes(ctx, data, faces.Options{Quality: true, MinSize: 40})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Faces) != 1 || res.Best != 0 || res.Width != 512 || res.Faces[0].Quality == nil {
			t.Fatalf("%s: %+v", d.Model(), res)
		}
		f := res.Faces[0]
		if f.Box.X < 160 || f.Box.X > 195 || f.Box.W < 80 || f.Box.W > 115 || f.Quality.Score <= 0.3 {
			t.Errorf("%s: face %+v, quality %+v", d.Model(), f.Box, *f.Quality)
		}
		b, _ := json.Marshal(res)
		if !strings.Contains(string(b), `"faces":[{"box":{"x":`) {
			t.Errorf("json: %s", b)
		}
	}
	if _, err := faces.New("dnn"); !errors.Is(err, faces.ErrUnknownModel) {
		t.Errorf("unknown model: %v", err)
	}
}

func TestDetectBadInput(t *testing.T) {
	d, err := faces.New(faces.ModelLBP)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	one, _ := os.ReadFile("../imageops/testdata/1x1.jpg")
	res, err := d.DetectBytes(ctx, one, faces.Options{Quality: true})
	if err != nil || len(res.Faces) != 0 || res.Best != -1 || res.Faces == nil {
		t.Errorf("1x1: %+v %v", res, err)
	}
	if _, err := d.DetectBytes(ctx, []byte("nope"), faces.Options{}); !errors.Is(err, imageops.ErrFormat) {
		t.Errorf("garbage: %v", err)
	}
	png, _ := os.ReadFile("../cascade/testdata/camera.png")
	if _, err := d.DetectBytes(ctx, png, faces.Options{Limits: imageops.Limits{MaxPixels: 100_000}}); !errors.Is(err, imageops.ErrTooLarge) {
		t.Errorf("over the pixel limit: %v", err)
	}
	cmyk, _ := os.ReadFile("../imageops/testdata/cmyk.jpg")
	if _, err := d.DetectBytes(ctx, cmyk, faces.Options{}); err != nil {
		t.Errorf("cmyk: %v", err)
	}
}
