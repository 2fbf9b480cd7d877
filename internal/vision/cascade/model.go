// Package cascade evaluates boosted cascade classifiers trained by OpenCV's
// opencv_traincascade (Haar-like and LBP features, the "new" XML format that
// starts with <opencv_storage><cascade>) and finds objects at every scale the
// way OpenCV's CascadeClassifier.detectMultiScale does: an image pyramid,
// a sliding window, early stage rejection and grouping of overlapping hits.
//
// It is written from the published algorithms — Viola and Jones (integral
// images, Haar-like features normalised by the window's standard deviation,
// a cascade of boosted stages), Lienhart and Maydt's extended feature set
// (45° tilted features on a rotated integral image) and multi-block LBP
// (Liao et al.) — and from the behaviour OpenCV documents for
// detectMultiScale and groupRectangles, so that the boxes agree with
// OpenCV's on the same image, cascade and parameters: on identical pixels
// the raw windows are the same (see the accuracy tests).
//
// Old-format cascades (<haarcascade_... type_id="opencv-haar-classifier">)
// are refused with ErrOldFormat; in Debian's opencv-data only
// haarcascade_licence_plate_rus_16stages.xml is one.
//
// A Cascade is immutable once loaded and safe for concurrent use.
package cascade

import (
	"bytes"
	_ "embed"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Embedded cascades, unchanged from Debian's opencv-data (see data/NOTICE).
var (
	//go:embed data/haarcascade_frontalface_default.xml
	haarFrontalFaceXML []byte
	//go:embed data/lbpcascade_frontalface.xml
	lbpFrontalFaceXML []byte
)

// FeatureType is the kind of feature a cascade's weak classifiers test.
type FeatureType int

// Feature types a cascade may use.
const (
	// Haar is Viola–Jones rectangle features (Lienhart's "BASIC"/"CORE" set).
	Haar FeatureType = iota + 1
	// LBP is multi-block local binary patterns over a 3×3 grid of blocks.
	LBP
)

// String returns "HAAR" or "LBP", as the XML spells them.
func (f FeatureType) String() string {
	switch f {
	case Haar:
		return "HAAR"
	case LBP:
		return "LBP"
	}
	return "FeatureType(" + strconv.Itoa(int(f)) + ")"
}

// Errors returned by Load. Each wraps with details of what was wrong.
var (
	// ErrOldFormat means the file is an old-style (pre-traincascade)
	// cascade, e.g. <haarcascade_... type_id="opencv-haar-classifier">;
	// convert it with OpenCV or use the new-format file of the same name.
	ErrOldFormat = errors.New("cascade: old-format cascade XML is not supported")
	// ErrUnsupported means the cascade uses something this package does not
	// evaluate (HOG features, non-boosted stages, windows over 256 pixels).
	ErrUnsupported = errors.New("cascade: unsupported cascade")
	// ErrInvalid means the XML is malformed or inconsistent (indices out of
	// range, rectangles outside the window, missing fields).
	ErrInvalid = errors.New("cascade: invalid cascade XML")
)

// maxXMLBytes bounds what Load reads; OpenCV's largest shipped cascade
// (haarcascade_frontalface_alt_tree.xml) is 2.7 MB.
const maxXMLBytes = 64 << 20

// thresholdEps is taken off every stage threshold, as OpenCV does, so that
// windows sitting exactly on a threshold after float rounding still pass.
const thresholdEps = 1e-5

// Cascade is a loaded boosted cascade classifier.
type Cascade struct {
	feature    FeatureType
	winW, winH int
	stages     []stage
	stumps     bool   // every tree is a single split: the fast path
	trees      []tree // one per weak classifier, in stage order
	nodes      []node // all internal nodes
	leaves     []float32
	subsets    []uint32 // LBP: 8 words (256 bits) per node
	haar       []haarFeature
	lbp        []lbpFeature
	tilted     bool // some Haar feature is tilted: compute the tilted integral
}

type stage struct {
	first, count int // trees[first : first+count]
	threshold    float32
}

type tree struct {
	firstNode, firstLeaf int
}

// node is one split; left and right are node indices relative to the tree
// when > 0, or leaf indices (negated) when ≤ 0, as in the XML.
type node struct {
	left, right int
	feature     int
	threshold   float32 // Haar only
}

type haarRect struct {
	x, y, w, h int
	weight     float32
}

// haarFeature is up to three weighted rectangles. A tilted feature's
// rectangles are turned 45°: (x, y) is the top corner, w runs down to the
// right and h down to the left (Lienhart and Maydt's extended set).
type haarFeature struct {
	rects  []haarRect
	tilted bool
}

type lbpFeature struct {
	x, y, w, h int // one block; the feature covers 3w × 3h from (x, y)
}

// FrontalFaceHaar returns OpenCV's haarcascade_frontalface_default.xml,
// embedded in the binary. Parsing takes a few tens of milliseconds: load it
// once and share it.
func FrontalFaceHaar() (*Cascade, error) { return Load(bytes.NewReader(haarFrontalFaceXML)) }

// FrontalFaceLBP returns OpenCV's lbpcascade_frontalface.xml, embedded in
// the binary: faster than the Haar cascade, somewhat less accurate.
func FrontalFaceLBP() (*Cascade, error) { return Load(bytes.NewReader(lbpFrontalFaceXML)) }

// Feature returns the kind of features the cascade uses.
func (c *Cascade) Feature() FeatureType { return c.feature }

// WindowSize returns the size of the training window in pixels, the
// smallest object the cascade can find.
func (c *Cascade) WindowSize() (w, h int) { return c.winW, c.winH }

// Stages returns the number of stages.
func (c *Cascade) Stages() int { return len(c.stages) }

type xmlStorage struct {
	XMLName xml.Name
	Cascade *xmlCascade `xml:"cascade"`
}

type xmlCascade struct {
	StageType     string `xml:"stageType"`
	FeatureType   string `xml:"featureType"`
	Height        int    `xml:"height"`
	Width         int    `xml:"width"`
	FeatureParams struct {
		MaxCatCount int `xml:"maxCatCount"`
	} `xml:"featureParams"`
	Stages   []xmlStage   `xml:"stages>_"`
	Features []xmlFeature `xml:"features>_"`
}

type xmlStage struct {
	Threshold string    `xml:"stageThreshold"`
	Weak      []xmlWeak `xml:"weakClassifiers>_"`
}

type xmlWeak struct {
	Internal string `xml:"internalNodes"`
	Leaves   string `xml:"leafValues"`
}

type xmlFeature struct {
	Rects  []string `xml:"rects>_"`
	Tilted string   `xml:"tilted"`
	Rect   string   `xml:"rect"`
}

// Load reads a cascade in OpenCV's traincascade XML format (Haar or LBP,
// boosted stages of decision trees). It reads at most 64 MiB.
func Load(r io.Reader) (*Cascade, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxXMLBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cascade: reading XML: %w", err)
	}
	if len(data) > maxXMLBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalid, maxXMLBytes)
	}
	var doc xmlStorage
	if err := xml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if doc.XMLName.Local != "opencv_storage" {
		return nil, fmt.Errorf("%w: root element <%s>, want <opencv_storage>", ErrInvalid, doc.XMLName.Local)
	}
	if doc.Cascade == nil {
		if bytes.Contains(data, []byte("opencv-haar-classifier")) {
			return nil, ErrOldFormat
		}
		return nil, fmt.Errorf("%w: no <cascade> element", ErrInvalid)
	}
	return build(doc.Cascade)
}

func build(x *xmlCascade) (*Cascade, error) {
	c := &Cascade{winW: x.Width, winH: x.Height}
	if st := strings.TrimSpace(x.StageType); st != "BOOST" {
		return nil, fmt.Errorf("%w: stage type %q", ErrUnsupported, st)
	}
	switch strings.TrimSpace(x.FeatureType) {
	case "HAAR":
		c.feature = Haar
	case "LBP":
		c.feature = LBP
	default:
		return nil, fmt.Errorf("%w: feature type %q", ErrUnsupported, x.FeatureType)
	}
	// The window's sum of squares must fit the 32-bit integral of squares
	// (255² × 65536 < 2³²); trained cascades use windows of 20–60 pixels.
	if c.winW < 3 || c.winH < 3 || c.winW > 256 || c.winH > 256 || c.winW*c.winH > 65536 {
		return nil, fmt.Errorf("%w: window %dx%d (3–256 pixels a side, at most 65536 pixels)", ErrUnsupported, c.winW, c.winH)
	}
	if len(x.Stages) == 0 || len(x.Features) == 0 {
		return nil, fmt.Errorf("%w: no stages or no features", ErrInvalid)
	}
	subsetWords := 0
	if c.feature == LBP {
		if n := x.FeatureParams.MaxCatCount; n != 256 {
			return nil, fmt.Errorf("%w: LBP maxCatCount %d, want 256", ErrUnsupported, n)
		}
		subsetWords = 8
	}
	nfeat := len(x.Features)
	c.stumps = true
	for si, xs := range x.Stages {
		thr, err := strconv.ParseFloat(strings.TrimSpace(xs.Threshold), 64)
		if err != nil {
			return nil, fmt.Errorf("%w: stage %d threshold: %v", ErrInvalid, si, err)
		}
		if len(xs.Weak) == 0 {
			return nil, fmt.Errorf("%w: stage %d has no weak classifiers", ErrInvalid, si)
		}
		c.stages = append(c.stages, stage{first: len(c.trees), count: len(xs.Weak), threshold: float32(thr) - thresholdEps})
		for wi, w := range xs.Weak {
			in, err := parseFloats(w.Internal)
			if err != nil {
				return nil, fmt.Errorf("%w: stage %d tree %d nodes: %v", ErrInvalid, si, wi, err)
			}
			lv, err := parseFloats(w.Leaves)
			if err != nil {
				return nil, fmt.Errorf("%w: stage %d tree %d leaves: %v", ErrInvalid, si, wi, err)
			}
			per := 4
			if c.feature == LBP {
				per = 3 + subsetWords
			}
			if len(in) == 0 || len(in)%per != 0 {
				return nil, fmt.Errorf("%w: stage %d tree %d: %d node values, want a multiple of %d", ErrInvalid, si, wi, len(in), per)
			}
			nn := len(in) / per
			if len(lv) != nn+1 {
				return nil, fmt.Errorf("%w: stage %d tree %d: %d leaves for %d nodes", ErrInvalid, si, wi, len(lv), nn)
			}
			if nn != 1 {
				c.stumps = false
			}
			t := tree{firstNode: len(c.nodes), firstLeaf: len(c.leaves)}
			for k := 0; k < nn; k++ {
				v := in[k*per : (k+1)*per]
				nd := node{left: int(v[0]), right: int(v[1]), feature: int(v[2])}
				for _, child := range []int{nd.left, nd.right} {
					if child > 0 && child >= nn || child <= 0 && -child > nn {
						return nil, fmt.Errorf("%w: stage %d tree %d: child %d out of range", ErrInvalid, si, wi, child)
					}
				}
				if nd.left > 0 && nd.left <= k || nd.right > 0 && nd.right <= k {
					return nil, fmt.Errorf("%w: stage %d tree %d: child before parent", ErrInvalid, si, wi)
				}
				if nd.feature < 0 || nd.feature >= nfeat || float64(nd.feature) != v[2] {
					return nil, fmt.Errorf("%w: stage %d tree %d: feature %v out of range", ErrInvalid, si, wi, v[2])
				}
				if c.feature == Haar {
					nd.threshold = float32(v[3])
				} else {
					for _, s := range v[3:] {
						if s != math.Trunc(s) || s < math.MinInt32 || s > math.MaxInt32 {
							return nil, fmt.Errorf("%w: stage %d tree %d: subset word %v", ErrInvalid, si, wi, s)
						}
						c.subsets = append(c.subsets, uint32(int32(s)))
					}
				}
				c.nodes = append(c.nodes, nd)
			}
			for _, l := range lv {
				c.leaves = append(c.leaves, float32(l))
			}
			c.trees = append(c.trees, t)
		}
	}
	for i, f := range x.Features {
		if c.feature == LBP {
			v, err := parseInts(f.Rect, 4)
			if err != nil {
				return nil, fmt.Errorf("%w: feature %d: %v", ErrInvalid, i, err)
			}
			lf := lbpFeature{x: v[0], y: v[1], w: v[2], h: v[3]}
			if lf.x < 0 || lf.y < 0 || lf.w < 1 || lf.h < 1 || lf.x+3*lf.w > c.winW || lf.y+3*lf.h > c.winH {
				return nil, fmt.Errorf("%w: feature %d: rect %v outside the %dx%d window", ErrInvalid, i, v, c.winW, c.winH)
			}
			c.lbp = append(c.lbp, lf)
			continue
		}
		var hf haarFeature
		switch t := strings.TrimSpace(f.Tilted); t {
		case "", "0":
		case "1":
			hf.tilted = true
			c.tilted = true
		default:
			return nil, fmt.Errorf("%w: feature %d: tilted %q", ErrInvalid, i, t)
		}
		if len(f.Rects) < 1 || len(f.Rects) > 3 {
			return nil, fmt.Errorf("%w: feature %d has %d rectangles", ErrInvalid, i, len(f.Rects))
		}
		for _, rs := range f.Rects {
			v, err := parseFloats(rs)
			if err != nil || len(v) != 5 {
				return nil, fmt.Errorf("%w: feature %d: rect %q", ErrInvalid, i, rs)
			}
			r := haarRect{x: int(v[0]), y: int(v[1]), w: int(v[2]), h: int(v[3]), weight: float32(v[4])}
			inside := r.x >= 0 && r.y >= 0 && r.w >= 0 && r.h >= 0 && r.x+r.w <= c.winW && r.y+r.h <= c.winH
			if hf.tilted {
				inside = r.w >= 0 && r.h >= 0 && r.x-r.h >= 0 && r.y >= 0 && r.x+r.w <= c.winW && r.y+r.w+r.h <= c.winH
			}
			if !inside {
				return nil, fmt.Errorf("%w: feature %d: rect %q outside the %dx%d window", ErrInvalid, i, rs, c.winW, c.winH)
			}
			hf.rects = append(hf.rects, r)
		}
		c.haar = append(c.haar, hf)
	}
	return c, nil
}

func parseFloats(s string) ([]float64, error) {
	f := strings.Fields(s)
	out := make([]float64, len(f))
	for i, w := range f {
		v, err := strconv.ParseFloat(w, 64)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func parseInts(s string, n int) ([]int, error) {
	f := strings.Fields(s)
	if len(f) != n {
		return nil, fmt.Errorf("%d numbers, want %d", len(f), n)
	}
	out := make([]int, n)
	for i, w := range f {
		v, err := strconv.Atoi(w)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}
