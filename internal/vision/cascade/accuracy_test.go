package cascade_test

import (
	"context"
	"encoding/json"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/vision/cascade"
	"github.com/tianshu-ai/tianshu/internal/vision/imageops"
)

// reference is testdata/reference.json, written by testdata/reference.py.
type reference struct {
	OpenCV string `json:"opencv"`
	Cases  []struct {
		Cascade string `json:"cascade"`
		Image   string `json:"image"`
		Params  struct {
			ScaleFactor  float64 `json:"scaleFactor"`
			MinNeighbors int     `json:"minNeighbors"`
			MinSize      [2]int  `json:"minSize"`
			MaxSize      [2]int  `json:"maxSize"`
		} `json:"params"`
		Boxes [][4]int `json:"boxes"`
	} `json:"cases"`
	// Groups are cv2.groupRectangles results on OpenCV's raw windows.
	Groups []struct {
		Raw          [][4]int `json:"raw"`
		MinNeighbors int      `json:"minNeighbors"`
		Boxes        [][4]int `json:"boxes"`
	} `json:"groups"`
}

const systemPython = "/usr/bin/python3"

// openCVAvailable reports whether Debian's python3-opencv can be imported.
func openCVAvailable() bool {
	return exec.Command(systemPython, "-c", "import cv2").Run() == nil
}

// readReference parses a reference.json.
func readReference(t *testing.T, path string) reference {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Cases) == 0 {
		t.Fatalf("%s has no cases", path)
	}
	return ref
}

// rerunReference starts reference.py when python3-opencv is installed,
// so that CI re-checks against the real thing; the returned function
// waits for it and returns its reference, or nil when OpenCV is absent.
func rerunReference(t *testing.T) func() *reference {
	t.Helper()
	if !openCVAvailable() {
		return func() *reference { return nil }
	}
	out := filepath.Join(t.TempDir(), "reference.json")
	cmd := exec.Command(systemPython, filepath.Join("testdata", "reference.py"), out)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("reference.py: %v", err)
	}
	return func() *reference {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("reference.py: %v\n%s", err, stderr.String())
		}
		ref := readReference(t, out)
		return &ref
	}
}

func loadGray(t testing.TB, name string) *image.Gray {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, _, err := imageops.Decode(f, imageops.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return imageops.Gray(img)
}

// match pairs each reference box with an unused box of ours at the
// highest IoU ≥ 0.5, greedily, and counts matches and exact equals.
func match(ref, got []image.Rectangle) (matched, exact int) {
	used := make([]bool, len(got))
	for _, r := range ref {
		best, bi := 0.5, -1
		for i, g := range got {
			if !used[i] {
				if v := imageops.IoU(r, g); v >= best {
					best, bi = v, i
				}
			}
		}
		if bi >= 0 {
			used[bi] = true
			matched++
			if got[bi] == r {
				exact++
			}
		}
	}
	return matched, exact
}

// TestAccuracyAgainstOpenCV is issue 5's acceptance test: with the same
// cascade and parameters, at least 95% of OpenCV's boxes are matched at
// IoU ≥ 0.5 and at most 5% of ours are extra, for each cascade, over all
// images. Raw windows (minNeighbors 0) are counted separately and held to
// the same bar.
func TestAccuracyAgainstOpenCV(t *testing.T) {
	t.Parallel()
	// Our boxes are computed for the committed cases while OpenCV
	// recomputes its own (when installed) in parallel.
	ref := readReference(t, filepath.Join("testdata", "reference.json"))
	wait := rerunReference(t)
	cascades := map[string]*cascade.Cascade{}
	var err error
	if cascades["haar"], err = cascade.FrontalFaceHaar(); err != nil {
		t.Fatal(err)
	}
	if cascades["lbp"], err = cascade.FrontalFaceLBP(); err != nil {
		t.Fatal(err)
	}
	images := map[string]*image.Gray{}
	type tally struct{ ref, got, matched, exact int }
	totals := map[string]*tally{}
	ours := make([][]image.Rectangle, len(ref.Cases))
	for i, c := range ref.Cases {
		g := images[c.Image]
		if g == nil {
			g = loadGray(t, c.Image)
			images[c.Image] = g
		}
		p := cascade.Params{
			ScaleFactor:  c.Params.ScaleFactor,
			MinNeighbors: c.Params.MinNeighbors,
			MinSize:      image.Pt(c.Params.MinSize[0], c.Params.MinSize[1]),
			MaxSize:      image.Pt(c.Params.MaxSize[0], c.Params.MaxSize[1]),
		}
		dets, err := cascades[c.Cascade].Detect(context.Background(), g, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dets {
			ours[i] = append(ours[i], d.Rect)
		}
	}
	source := "committed testdata/reference.json (python3-opencv not installed)"
	if fresh := wait(); fresh != nil {
		if len(fresh.Cases) != len(ref.Cases) {
			t.Fatalf("reference.py wrote %d cases, the committed JSON has %d: regenerate it", len(fresh.Cases), len(ref.Cases))
		}
		for i := range fresh.Cases {
			a, b := fresh.Cases[i], ref.Cases[i]
			if a.Cascade != b.Cascade || a.Image != b.Image || a.Params != b.Params {
				t.Fatalf("case %d differs from the committed JSON: regenerate it", i)
			}
		}
		ref = *fresh
		source = "reference.py re-run with python3-opencv"
	}
	t.Logf("reference: OpenCV %s, %s", ref.OpenCV, source)
	for i, c := range ref.Cases {
		var want []image.Rectangle
		for _, b := range c.Boxes {
			want = append(want, image.Rect(b[0], b[1], b[0]+b[2], b[1]+b[3]))
		}
		got := ours[i]
		m, ex := match(want, got)
		key := c.Cascade
		if c.Params.MinNeighbors == 0 {
			key += " raw"
		}
		tt := totals[key]
		if tt == nil {
			tt = &tally{}
			totals[key] = tt
		}
		tt.ref += len(want)
		tt.got += len(got)
		tt.matched += m
		tt.exact += ex
		if m != len(want) || len(got) != len(want) {
			t.Logf("%s %s %+v: opencv %d boxes, ours %d, matched %d\n  opencv %v\n  ours   %v", c.Cascade, c.Image, c.Params, len(want), len(got), m, want, got)
		}
	}
	for _, key := range []string{"haar", "lbp", "haar raw", "lbp raw"} {
		tt := totals[key]
		if tt == nil || tt.ref == 0 {
			t.Errorf("%s: no reference boxes", key)
			continue
		}
		matched := float64(tt.matched) / float64(tt.ref)
		extra := float64(tt.got-tt.matched) / float64(tt.ref)
		t.Logf("%-9s opencv %4d boxes, ours %4d: matched %.1f%% (identical %.1f%%), extra %.1f%%",
			key, tt.ref, tt.got, 100*matched, 100*float64(tt.exact)/float64(tt.ref), 100*extra)
		if matched < 0.95 || extra > 0.05 {
			t.Errorf("%s: matched %.1f%% (want ≥ 95%%), extra %.1f%% (want ≤ 5%%)", key, 100*matched, 100*extra)
		}
	}
}

// TestGroupRectanglesAgainstOpenCV checks the grouping step alone: on
// OpenCV's own raw windows, GroupRectangles must return exactly what
// cv2.groupRectangles does.
func TestGroupRectanglesAgainstOpenCV(t *testing.T) {
	ref := readReference(t, filepath.Join("testdata", "reference.json"))
	if len(ref.Groups) == 0 {
		t.Fatal("reference has no groups")
	}
	toRects := func(bs [][4]int) []image.Rectangle {
		var out []image.Rectangle
		for _, b := range bs {
			out = append(out, image.Rect(b[0], b[1], b[0]+b[2], b[1]+b[3]))
		}
		return out
	}
	for i, g := range ref.Groups {
		var got []image.Rectangle
		for _, d := range cascade.GroupRectangles(toRects(g.Raw), g.MinNeighbors, 0.2) {
			got = append(got, d.Rect)
		}
		want := toRects(g.Boxes)
		m, exact := match(want, got)
		if exact != len(want) || m != len(got) || len(got) != len(want) {
			t.Errorf("group %d (minNeighbors %d, %d raw): got %v, want %v", i, g.MinNeighbors, len(g.Raw), got, want)
		}
	}
}
