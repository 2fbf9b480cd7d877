package cascade_test

import (
	"context"
	"encoding/json"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/testenv"
	"github.com/tianshu-ai/tianshu/internal/vision/cascade"
)

// systemCascades are other cascades of Debian's opencv-data, covering
// what the embedded two do not: two-split trees (alt2), tilted features
// (upper body, eyes with glasses, which also has trees), profile faces,
// eyes, the improved LBP face cascade.
var systemCascades = []string{
	"haarcascades/haarcascade_frontalface_alt.xml",
	"haarcascades/haarcascade_frontalface_alt2.xml",
	"haarcascades/haarcascade_profileface.xml",
	"haarcascades/haarcascade_eye.xml",
	"haarcascades/haarcascade_eye_tree_eyeglasses.xml",
	"haarcascades/haarcascade_upperbody.xml",
	"haarcascades/haarcascade_smile.xml",
	"lbpcascades/lbpcascade_frontalface_improved.xml",
	"lbpcascades/lbpcascade_profileface.xml",
}

const systemScript = `
import json, sys
import cv2
cv2.setNumThreads(1)
out = []
for casc in sys.argv[1].split(","):
    clf = cv2.CascadeClassifier(casc)
    for f in sys.argv[2:]:
        g = cv2.imread(f, cv2.IMREAD_GRAYSCALE) if f.endswith(".jpg") else cv2.cvtColor(cv2.imread(f), cv2.COLOR_BGR2GRAY)
        for mn in (0, 3):
            b = clf.detectMultiScale(g, scaleFactor=1.2, minNeighbors=mn)
            out.append({"cascade": casc, "image": f, "minNeighbors": mn, "boxes": [[int(v) for v in r] for r in b]})
print(json.dumps(out))
`

// TestSystemCascadesAgainstOpenCV loads more of opencv-data's cascades
// and compares with OpenCV run live (there is no committed reference for
// these). It needs opencv-data and python3-opencv
// (scripts/install-vision-deps.sh).
func TestSystemCascadesAgainstOpenCV(t *testing.T) {
	t.Parallel()
	const dir = "/usr/share/opencv4"
	if _, err := os.Stat(filepath.Join(dir, systemCascades[0])); err != nil {
		testenv.Unavailable(t, "opencv-data not installed: "+err.Error())
		return
	}
	if !openCVAvailable() {
		testenv.Unavailable(t, "python3-opencv not installed (/usr/bin/python3 cannot import cv2)")
		return
	}
	// A PNG, so both sides see the same pixels (JPEG decoders differ by
	// ±1 in luma; the accuracy test covers JPEG input).
	images := []string{"astronaut.png"}
	var files, paths []string
	for _, c := range systemCascades {
		paths = append(paths, filepath.Join(dir, c))
	}
	for _, im := range images {
		files = append(files, filepath.Join("testdata", im))
	}
	joined := paths[0]
	for _, p := range paths[1:] {
		joined += "," + p
	}
	out, err := exec.Command(systemPython, append([]string{"-c", systemScript, joined}, files...)...).Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	var cases []struct {
		Cascade      string   `json:"cascade"`
		Image        string   `json:"image"`
		MinNeighbors int      `json:"minNeighbors"`
		Boxes        [][4]int `json:"boxes"`
	}
	if err := json.Unmarshal(out, &cases); err != nil {
		t.Fatal(err)
	}
	loaded := map[string]*cascade.Cascade{}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		c, err := cascade.Load(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		loaded[p] = c
	}
	grays := map[string]*image.Gray{}
	var ref, got, matched, exact int
	for _, c := range cases {
		g := grays[c.Image]
		if g == nil {
			g = loadGray(t, filepath.Base(c.Image))
			grays[c.Image] = g
		}
		dets, err := loaded[c.Cascade].Detect(context.Background(), g, cascade.Params{ScaleFactor: 1.2, MinNeighbors: c.MinNeighbors})
		if err != nil {
			t.Fatal(err)
		}
		var want, ours []image.Rectangle
		for _, b := range c.Boxes {
			want = append(want, image.Rect(b[0], b[1], b[0]+b[2], b[1]+b[3]))
		}
		for _, d := range dets {
			ours = append(ours, d.Rect)
		}
		m, ex := match(want, ours)
		exact += ex
		ref += len(want)
		got += len(ours)
		matched += m
		if m != len(want) || len(ours) != len(want) {
			t.Logf("%s %s minNeighbors %d: opencv %d, ours %d, matched %d", filepath.Base(c.Cascade), filepath.Base(c.Image), c.MinNeighbors, len(want), len(ours), m)
		}
	}
	t.Logf("%d cascades: opencv %d boxes, ours %d, matched %.1f%% (identical %.1f%%), extra %.1f%%", len(paths), ref, got,
		100*float64(matched)/float64(ref), 100*float64(exact)/float64(ref), 100*float64(got-matched)/float64(ref))
	if ref == 0 || float64(matched) < 0.95*float64(ref) || float64(got-matched) > 0.05*float64(ref) {
		t.Errorf("system cascades: matched %d of %d, %d extra", matched, ref, got-matched)
	}
}
