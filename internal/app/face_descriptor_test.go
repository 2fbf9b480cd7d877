package app_test

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/jpeg"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/testenv"
)

const faceDescriptorDir = "../../examples/algorithms/face-descriptor-node"

// descriptorDefinition is the face-descriptor package's definition, its
// embedding declared with dim (128 is the model's).
func descriptorDefinition(dim int) map[string]any {
	return map[string]any{"runtime": "process", "protocol": "tianshu-v1", "timeout": "60s",
		"contract": map[string]any{
			"inputs": []any{map[string]any{"name": "image", "type": "image", "required": true},
				map[string]any{"name": "margin", "type": "number"}, map[string]any{"name": "align", "type": "bool"},
				map[string]any{"name": "embedding", "type": "bool"}},
			"outputs": []any{map[string]any{"name": "embedding", "type": "embedding", "dim": dim}}}}
}

// needDescriptorPackage skips (or fails, in CI) without node and the
// package's node_modules, and returns node's path.
func needDescriptorPackage(t testing.TB) string {
	node := testenv.NeedCommand(t, "node")
	if _, err := os.Stat(filepath.Join(faceDescriptorDir, "node_modules", "@vladmandic", "face-api", "model", "face_recognition_model.bin")); err != nil {
		testenv.Unavailable(t, "face-descriptor-node has no node_modules: run npm ci --omit=dev --ignore-scripts --prefix examples/algorithms/face-descriptor-node")
	}
	return node
}

// uploadDescriptor packs face-descriptor-node and uploads it over tus (it
// is ~5.9 MB, over what PackageBase64 carries); it returns the upload id.
func uploadDescriptor(t testing.TB, c *sdk) string {
	t.Helper()
	pkgPath := filepath.Join(t.TempDir(), "face-descriptor-node.tar.gz")
	if out, err := exec.Command("bash", filepath.Join(faceDescriptorDir, "pack.sh"), pkgPath).CombinedOutput(); err != nil {
		t.Fatalf("pack.sh: %v\n%s", err, out)
	}
	pkg, err := os.ReadFile(pkgPath)
	if err != nil {
		t.Fatal(err)
	}
	tok := c.mustCall("CreateUploadToken", map[string]any{"MaxSize": len(pkg)})
	return tusUploadType(t, tok["Endpoint"].(string), tok["Token"].(string), "face-descriptor-node.tar.gz", "application/gzip", pkg)
}

// onboardDescriptor creates an algorithm with face-descriptor-node, waits
// for its instance and returns the algorithm's id.
func onboardDescriptor(t testing.TB, c *sdk) string {
	t.Helper()
	up := uploadDescriptor(t, c)
	algID := c.mustCall("CreateAlgorithm", map[string]any{"Name": "face-descriptor"})["AlgorithmId"].(string)
	c.mustCall("CreateAlgorithmVersion", map[string]any{"AlgorithmId": algID, "Definition": descriptorDefinition(128), "PackageUploadId": up, "Start": true})
	testenv.Eventually(t, 180*time.Second, "face-descriptor instance ready", func() bool {
		is := c.mustCall("DescribeAlgorithmInstances", map[string]any{"AlgorithmId": algID})["InstanceSet"].([]any)
		return len(is) == 1 && is[0].(map[string]any)["Status"] == "ready"
	})
	return algID
}

// photoFace is a face of a bundled photo, by its box (what the built-in
// detector finds, internal/vision/cascade/testdata/reference.json), cropped
// with margin (a fraction of the box side on each side).
func photoFace(t *testing.T, img image.Image, box [4]int, margin float64) []byte {
	t.Helper()
	m := int(margin * float64(box[2]))
	return cropJPEG(t, img, image.Rect(box[0]-m, box[1]-m, box[0]+box[2]+m, box[1]+box[3]+m))
}

func cosine(a, b []float64) float64 {
	var d, na, nb float64
	for i := range a {
		d, na, nb = d+a[i]*b[i], na+a[i]*a[i], nb+b[i]*b[i]
	}
	return d / math.Sqrt(na*nb)
}

// The 128-value face descriptor (face-api's recognition network, aligned
// on its 68 landmarks), onboarded through the algorithm repository and
// run as a real Node.js process: its embedding output has the declared
// dimension; two framings of the astronaut are one person, the facemark
// photo's man another; a definition declaring another dimension is
// refused when its instance starts, naming the contract's field.
func TestFaceDescriptorNodePackage(t *testing.T) {
	node := needDescriptorPackage(t)
	c := nodePlatform(t, node)
	algID := onboardDescriptor(t, c)

	astro := skimagePhoto(t, "astronaut.png")
	man := readImage(t, "../../examples/demo/photos/4-facemark.jpg")
	faces := map[string][]byte{
		"astronaut":         photoFace(t, astro, [4]int{177, 66, 95, 95}, 0.4),
		"astronaut-shifted": cropJPEG(t, astro, image.Rect(147, 22, 312, 187)),
		"man":               photoFace(t, man, [4]int{391, 136, 385, 385}, 0.1),
	}
	describe := func(face []byte, inputs map[string]any) []float64 {
		out := c.mustCall("InvokeAlgorithm", map[string]any{"AlgorithmId": algID, "Image": base64.StdEncoding.EncodeToString(face), "Inputs": inputs})
		vs, _ := out["Outputs"].(map[string]any)["embedding"].([]any)
		if len(vs) != 128 {
			t.Fatalf("embedding of %d values, want 128: %v", len(vs), out)
		}
		e := make([]float64, len(vs))
		for i, v := range vs {
			e[i] = v.(float64)
		}
		return e
	}
	for _, align := range []bool{true, false} {
		emb := map[string][]float64{}
		for name, face := range faces {
			margin := 0.4
			if name == "man" {
				margin = 0.1
			}
			emb[name] = describe(face, map[string]any{"margin": margin, "align": align})
		}
		same, other := cosine(emb["astronaut"], emb["astronaut-shifted"]), cosine(emb["astronaut"], emb["man"])
		t.Logf("align %v: cosine astronaut, shifted %.3f; astronaut, man %.3f", align, same, other)
		if align && (same < 0.95 || other > same-0.1) {
			t.Errorf("aligned: same face %.3f (want ≥ 0.95), another person %.3f (want ≥ 0.1 below)", same, other)
		}
	}
	// A definition of another dimension: the instance is refused as it
	// starts, its LastError naming the contract's field and both shapes.
	wrong := c.mustCall("CreateAlgorithm", map[string]any{"Name": "face-descriptor-512"})["AlgorithmId"].(string)
	up := uploadDescriptor(t, c)
	c.mustCall("CreateAlgorithmVersion", map[string]any{"AlgorithmId": wrong, "Definition": descriptorDefinition(512), "PackageUploadId": up, "Start": true})
	var lastErr string
	testenv.Eventually(t, 180*time.Second, "the 512-d version's instance failed", func() bool {
		is := c.mustCall("DescribeAlgorithmInstances", map[string]any{"AlgorithmId": wrong})["InstanceSet"].([]any)
		if len(is) != 1 {
			return false
		}
		lastErr, _ = is[0].(map[string]any)["LastError"].(string)
		return is[0].(map[string]any)["Status"] == "failed"
	})
	const want = "contract.outputs[0].dim: the package's /v1/metadata declares output embedding as an embedding of dim 128; the definition declares 512"
	if !strings.Contains(lastErr, want) {
		t.Errorf("LastError = %q; want it to say %q", lastErr, want)
	}
	if _, code := c.call("InvokeAlgorithm", map[string]any{"AlgorithmId": wrong, "Image": base64.StdEncoding.EncodeToString(faces["astronaut"])}); code == "" {
		t.Errorf("the 512-d version answered a call")
	}
	// A dimension on a field that is not an embedding is refused at once.
	def := descriptorDefinition(128)
	def["contract"].(map[string]any)["inputs"].([]any)[1].(map[string]any)["dim"] = 2
	if _, code := c.call("CreateAlgorithmVersion", map[string]any{"AlgorithmId": wrong, "Definition": def, "PackageUploadId": up}); code != "InvalidParameterValue" {
		t.Errorf("dim on a number input: %q; want InvalidParameterValue", code)
	}
}

// variant is how a photo is changed to make another picture of the same
// face: rotated (degrees, about the point (cx, cy)), scaled, shifted
// (pixels), brightened (a factor), and encoded at a JPEG quality.
type variant struct {
	angle, scale, dx, dy, bright float64
	quality                      int
}

// apply returns img transformed by v (bilinear; outside the photo is
// black), the same size as img, and where a point of img lands in it.
func (v variant) apply(img image.Image, cx, cy float64) (*image.RGBA, func(x, y float64) (float64, float64)) {
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	sin, cos := math.Sincos(v.angle * math.Pi / 180)
	to := func(x, y float64) (float64, float64) { // img -> out
		x, y = x-cx, y-cy
		return v.scale*(cos*x-sin*y) + cx + v.dx, v.scale*(sin*x+cos*y) + cy + v.dy
	}
	from := func(x, y float64) (float64, float64) { // out -> img
		x, y = (x-cx-v.dx)/v.scale, (y-cy-v.dy)/v.scale
		return cos*x + sin*y + cx, -sin*x + cos*y + cy
	}
	at := func(x, y int) [3]float64 {
		if x < b.Min.X || y < b.Min.Y || x >= b.Max.X || y >= b.Max.Y {
			return [3]float64{}
		}
		r, g, bl, _ := img.At(x, y).RGBA()
		return [3]float64{float64(r >> 8), float64(g >> 8), float64(bl >> 8)}
	}
	for y := range b.Dy() {
		for x := range b.Dx() {
			sx, sy := from(float64(x)+0.5, float64(y)+0.5)
			sx, sy = sx-0.5+float64(b.Min.X), sy-0.5+float64(b.Min.Y)
			x0, y0 := int(math.Floor(sx)), int(math.Floor(sy))
			fx, fy := sx-float64(x0), sy-float64(y0)
			p00, p10, p01, p11 := at(x0, y0), at(x0+1, y0), at(x0, y0+1), at(x0+1, y0+1)
			i := out.PixOffset(x, y)
			for c := range 3 {
				val := ((p00[c]*(1-fx)+p10[c]*fx)*(1-fy) + (p01[c]*(1-fx)+p11[c]*fx)*fy) * v.bright
				out.Pix[i+c] = uint8(min(255, max(0, math.Round(val))))
			}
			out.Pix[i+3] = 255
		}
	}
	return out, to
}

// encodeJPEG encodes img at quality q.
func encodeJPEG(t testing.TB, img image.Image, q int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
