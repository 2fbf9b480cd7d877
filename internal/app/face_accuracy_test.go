package app_test

import (
	"encoding/base64"
	"fmt"
	"image"
	"image/draw"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// accuracySource is one face of a photo that the identity set varies.
type accuracySource struct {
	identity string
	photo    string // a path, or skimage:NAME
	box      [4]int // what the built-in detector finds (reference.json)
}

// accuracySources are the identity set: every person in the demo's photos
// and in python3-skimage's data. Four people; the facemark man twice.
var accuracySources = []accuracySource{
	{"astronaut", "skimage:astronaut.png", [4]int{177, 66, 95, 95}},               // Eileen Collins, NASA, public domain
	{"cameraman", "skimage:camera.png", [4]int{205, 123, 57, 57}},                 // in profile; CC0
	{"messi", "../../examples/demo/photos/3-messi5.jpg", [4]int{222, 89, 45, 45}}, // head down, 45 px
	{"man", "../../examples/demo/photos/4-facemark.jpg", [4]int{25, 151, 348, 348}},
	{"man", "../../examples/demo/photos/4-facemark.jpg", [4]int{787, 158, 352, 352}},
}

// accuracyFaces makes n faces of each source: the photo turned by up to
// ±12° and scaled by 0.7..1.3 about the face, its brightness times
// 0.7..1.3, the face cropped with a 40% margin as SearchFaces crops it
// from a box off by up to 8% of its side, at JPEG quality 30..95. The first face of each
// source is the photo as it is (quality 92): the enrolment picture.
func accuracyFaces(t *testing.T, n int) (ids []string, faces [][]byte) {
	r := rand.New(rand.NewPCG(29, 5))
	for _, s := range accuracySources {
		var img image.Image
		if name, ok := strings.CutPrefix(s.photo, "skimage:"); ok {
			img = skimagePhoto(t, name)
		} else {
			img = readImage(t, s.photo)
		}
		side := float64(s.box[2])
		cx, cy := float64(s.box[0])+side/2, float64(s.box[1])+side/2
		for i := range n {
			v, ex, ey := variant{scale: 1, bright: 1, quality: 92}, 0.0, 0.0
			if i > 0 {
				v = variant{angle: -12 + 24*r.Float64(), scale: 0.7 + 0.6*r.Float64(), bright: 0.7 + 0.6*r.Float64(), quality: 30 + r.IntN(66)}
				ex, ey = side*(-0.08+0.16*r.Float64()), side*(-0.08+0.16*r.Float64())
			}
			out, _ := v.apply(img, cx, cy)
			// The box a detector would find in the varied picture (the
			// face's centre stays, its size scales), off by (ex, ey), with
			// a 40% margin; outside the photo is black.
			half := side * v.scale * 1.8 / 2
			x0, y0 := int(cx+ex-half), int(cy+ey-half)
			crop := image.NewRGBA(image.Rect(0, 0, int(2*half), int(2*half)))
			draw.Draw(crop, crop.Bounds(), out, image.Pt(x0, y0), draw.Src)
			ids = append(ids, s.identity)
			faces = append(faces, encodeJPEG(t, crop, v.quality))
		}
	}
	return ids, faces
}

// accuracy is what one model scores on the identity set.
type accuracy struct {
	model                         string
	tar, threshold, rank1         float64
	genuine, impostor             int
	meanGenuine, meanImpostor     float64
	genuineBelow, impostorsAbove  int
	perFace                       time.Duration
	enrolled, probes, rank1Errors int
	// below counts, per person, the same-person pairs under the threshold.
	below map[string]int
}

// score computes verification (every pair of faces: one person or two;
// TAR at FAR 1e-3) and rank-1 identification (each varied face against the
// sources' enrolment faces) from the embeddings.
func score(model string, ids []string, emb [][]float64, perSource int) accuracy {
	a := accuracy{model: model}
	var gen, imp []float64
	var genID []string
	for i := range emb {
		for j := i + 1; j < len(emb); j++ {
			s := cosine(emb[i], emb[j])
			if ids[i] == ids[j] {
				gen = append(gen, s)
				genID = append(genID, ids[i])
			} else {
				imp = append(imp, s)
			}
		}
	}
	slices.Sort(imp)
	// The threshold that lets at most 0.1% of the impostor pairs through:
	// above the k highest, k = floor(0.001 * impostors).
	k := len(imp) / 1000
	a.threshold = imp[len(imp)-1-k]
	a.below = map[string]int{}
	for i, s := range gen {
		if s > a.threshold {
			a.tar++
		} else {
			a.below[genID[i]]++
		}
		a.meanGenuine += s
	}
	for _, s := range imp {
		a.meanImpostor += s
	}
	a.genuine, a.impostor, a.impostorsAbove = len(gen), len(imp), k
	a.genuineBelow = len(gen) - int(a.tar)
	a.tar /= float64(len(gen))
	a.meanGenuine /= float64(len(gen))
	a.meanImpostor /= float64(len(imp))
	// Identification: the gallery is the first face of each source.
	var gallery []int
	for i := 0; i < len(emb); i += perSource {
		gallery = append(gallery, i)
	}
	for i := range emb {
		if i%perSource == 0 {
			continue
		}
		best, who := -2.0, ""
		for _, g := range gallery {
			if s := cosine(emb[i], emb[g]); s > best {
				best, who = s, ids[g]
			}
		}
		a.probes++
		if who == ids[i] {
			a.rank1++
		} else {
			a.rank1Errors++
		}
	}
	a.enrolled = len(gallery)
	a.rank1 /= float64(a.probes)
	return a
}

// TestFaceSearchAccuracy is the accuracy report of docs/search.md: the
// 128-value descriptor with and without alignment and faceres (1024
// values) on the identity set above, each model onboarded through the
// repository and called through the platform. It takes minutes, so it
// runs only with TIANSHU_FACE_ACCURACY=1; it prints the table.
func TestFaceSearchAccuracy(t *testing.T) {
	if os.Getenv("TIANSHU_FACE_ACCURACY") != "1" {
		t.Skip("the accuracy report takes minutes: TIANSHU_FACE_ACCURACY=1 go test ./internal/app -run TestFaceSearchAccuracy -v")
	}
	node := needDescriptorPackage(t)
	needFaceres(t)
	const perSource = 24
	ids, faces := accuracyFaces(t, perSource)
	if dir := os.Getenv("TIANSHU_FACE_ACCURACY_FACES"); dir != "" { // to look at them
		for i, f := range faces {
			_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("%03d-%s.jpg", i, ids[i])), f, 0o644)
		}
	}
	c := nodePlatform(t, node)
	descriptor := onboardDescriptor(t, c)

	faceres := onboardFaceres(t, c)

	models := []struct {
		name, alg string
		inputs    map[string]any
		values    func(out map[string]any) []any
	}{
		{"face-api 128-d, aligned", descriptor, map[string]any{"align": true},
			func(out map[string]any) []any { v, _ := out["embedding"].([]any); return v }},
		{"face-api 128-d, not aligned", descriptor, map[string]any{"align": false},
			func(out map[string]any) []any { v, _ := out["embedding"].([]any); return v }},
		{"faceres 1024-d (human-models)", faceres, map[string]any{"embedding": true},
			func(out map[string]any) []any {
				o, _ := out["objects"].([]any)
				if len(o) == 0 {
					return nil
				}
				v, _ := o[0].(map[string]any)["attributes"].(map[string]any)["embedding"].([]any)
				return v
			}},
	}
	var rows []accuracy
	for _, m := range models {
		emb := make([][]float64, len(faces))
		t0 := time.Now()
		for i, f := range faces {
			out := c.mustCall("InvokeAlgorithm", map[string]any{"AlgorithmId": m.alg, "Image": base64.StdEncoding.EncodeToString(f), "Inputs": m.inputs})
			vs := m.values(out["Outputs"].(map[string]any))
			if len(vs) == 0 {
				t.Fatalf("%s: no embedding for face %d: %v", m.name, i, out)
			}
			for _, v := range vs {
				emb[i] = append(emb[i], v.(float64))
			}
		}
		a := score(m.name, ids, emb, perSource)
		a.perFace = time.Since(t0) / time.Duration(len(faces))
		rows = append(rows, a)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%d faces of %d people (%d sources × %d), %d same-person and %d other-person pairs\n\n", len(faces), 4, len(accuracySources), perSource, rows[0].genuine, rows[0].impostor)
	b.WriteString("| model | TAR at FAR 1e-3 | cosine threshold | rank-1 (gallery: 1 photo each) | mean cosine, same person | mean cosine, other people | per face through the platform |\n|---|---|---|---|---|---|---|\n")
	for _, a := range rows {
		fmt.Fprintf(&b, "| %s | %.1f%% (%d of %d pairs below) | %.3f | %.1f%% (%d of %d wrong) | %.3f | %.3f | %s |\n", a.model, 100*a.tar, a.genuineBelow, a.genuine,
			a.threshold, 100*a.rank1, a.rank1Errors, a.probes, a.meanGenuine, a.meanImpostor, a.perFace.Round(time.Millisecond))
	}
	for _, a := range rows {
		fmt.Fprintf(&b, "\n%s: same-person pairs under the threshold, by person: %v", a.model, a.below)
	}
	t.Log(b.String())
}
