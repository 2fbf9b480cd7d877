package flow

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"
)

func init() { builtinKinds = append(builtinKinds, kindZone) }

func kindZone() *Kind {
	return &Kind{
		Name: "zone",
		Doc: "Keeps objects (box [x,y,w,h]) inside or outside config.polygon, entering or leaving it, or crossing config.line " +
			"(enter, leave and cross need trackId); or uses the zone named config.zone drawn on the message's device " +
			"(inputs device, width, height; default $input.device, $input.width, $input.height); " +
			"outputs {objects}, and stops the branch when none is left.",
		Category: CategoryStream,
		Inputs: []Port{
			{Name: "objects", Type: TypeObjects, Required: true, Doc: "objects with box [x, y, w, h] (and trackId for enter, leave and cross)"},
			{Name: "device", Type: TypeString, Doc: "with config.zone: the device whose zone applies (default $input.device, else the message key)"},
			{Name: "width", Type: TypeInteger, Doc: "with config.zone: the frame's width in pixels (default $input.width)"},
			{Name: "height", Type: TypeInteger, Doc: "with config.zone: the frame's height in pixels (default $input.height)"},
		},
		Outputs: []Port{{Name: "objects", Type: TypeObjects, Doc: "the objects kept, with zone (and direction for cross)"}},
		Config:  zoneConfig{},
		Compile: compileZone,
	}
}

type zoneConfig struct {
	streamCommon `omit:"key"`
	Polygon      [][2]float64 `json:"polygon" example:"[[0, 0], [100, 0], [100, 100], [0, 100]]" doc:"the zone's corners in pixels [[x, y], ...], at least 3 (or set line or zone)"`
	Zone         string       `json:"zone" doc:"the name of a zone or line drawn on the message's device, scaled to the frame (or set polygon or line)"`
	Line         [][2]float64 `json:"line" doc:"two points [[x, y], [x, y]] that objects cross (or set polygon or zone)"`
	Mode         string       `json:"mode" enum:"inside|outside|enter|leave|cross" doc:"which objects to keep; default inside for a polygon, cross for a line"`
	Anchor       string       `json:"anchor" enum:"bottom|center" default:"bottom" doc:"the point of a box that must be in the zone"`
}

func compileZone(b *Builder) Node {
	var cfg zoneConfig
	if !b.Config(&cfg) {
		return nil
	}
	if cfg.Key != "" {
		b.Errorf("config.key", "zone partitions by the message key and trackId")
	}
	_, maxKeys, idle := cfg.streamCommon.compile(b, false)
	n := &zoneNode{objects: b.RequireArg("objects"), poly: cfg.Polygon, line: cfg.Line, mode: cfg.Mode, maxKeys: maxKeys, idle: idle}
	switch {
	case cfg.Zone != "" && (len(cfg.Polygon) > 0 || len(cfg.Line) > 0):
		b.Errorf("config", "set zone, polygon or line, only one")
	case cfg.Zone != "":
		compileNamedZone(b, n, cfg.Zone)
	case len(cfg.Polygon) > 0 && len(cfg.Line) > 0:
		b.Errorf("config", "set polygon or line, not both")
	case len(cfg.Line) > 0:
		if len(cfg.Line) != 2 {
			b.Errorf("config.line", "a line is two points, got %d", len(cfg.Line))
		}
		if n.mode == "" {
			n.mode = "cross"
		}
		if n.mode != "cross" {
			b.Errorf("config.mode", "a line supports mode cross only")
		}
	case len(cfg.Polygon) > 0:
		if len(cfg.Polygon) < 3 {
			b.Errorf("config.polygon", "a polygon needs at least 3 points, got %d", len(cfg.Polygon))
		}
		if n.mode == "" {
			n.mode = "inside"
		}
		switch n.mode {
		case "inside", "outside", "enter", "leave":
		default:
			b.Errorf("config.mode", "unknown mode %q for a polygon; use inside, outside, enter or leave", n.mode)
		}
	default:
		b.Errorf("config", "missing polygon, line or zone")
	}
	switch cfg.Anchor {
	case "", "bottom":
		n.bottom = true
	case "center":
	default:
		b.Errorf("config.anchor", "unknown anchor %q; use bottom or center", cfg.Anchor)
	}
	b.DeclareOutputs([]string{"objects"})
	return n
}

// compileNamedZone sets n up to resolve the device's zone called name per
// message: the zone's kind is known only then, so a mode is checked
// against both kinds now and against the zone's kind when it runs.
func compileNamedZone(b *Builder, n *zoneNode, name string) {
	if len(name) > maxZoneName {
		b.Errorf("config.zone", "at most %d characters", maxZoneName)
	}
	n.named, n.zones = name, b.Zones()
	if n.zones == nil {
		b.Errorf("config.zone", "device zones are not available where this flow runs")
	}
	n.device, n.width, n.height = b.Arg("device"), b.Arg("width"), b.Arg("height")
	switch n.mode {
	case "", "inside", "outside", "enter", "leave", "cross":
	default:
		b.Errorf("config.mode", "unknown mode %q; use inside, outside, enter or leave for a polygon, cross for a line", n.mode)
	}
}

// maxZoneName matches the device center's limit on zone names.
const maxZoneName = 64

type zoneNode struct {
	objects int
	// named is the device zone to resolve per message (with zones), from
	// the device, width and height inputs (-1: from $input).
	named                 string
	zones                 Zones
	device, width, height int
	poly                  [][2]float64
	line                  [][2]float64
	mode                  string
	bottom                bool
	maxKeys               int
	idle                  time.Duration
}

type zoneState struct {
	mu   sync.Mutex
	prev *keyed[*[2]float64]
}

// geometry is the polygon or line and mode one message uses.
type geometry struct {
	poly, line [][2]float64
	mode       string
}

// resolve returns the node's own geometry, or the named zone of the
// message's device scaled to its frame.
func (n *zoneNode) resolve(ctx context.Context, c *Call) (geometry, error) {
	if n.named == "" {
		return geometry{poly: n.poly, line: n.line, mode: n.mode}, nil
	}
	in, _ := c.Input().(map[string]any)
	pick := func(i int, key string) any {
		if i >= 0 {
			return c.Arg(i)
		}
		return in[key]
	}
	dev, ok := pick(n.device, "device").(string)
	if !ok || dev == "" {
		dev = c.Key()
	}
	w, wok := num(pick(n.width, "width"))
	h, hok := num(pick(n.height, "height"))
	if !wok || !hok || w <= 0 || h <= 0 {
		return geometry{}, Permanent(fmt.Errorf("zone %q: the frame's width and height are missing (inputs width and height, or $input.width and $input.height)", n.named))
	}
	z, err := n.zones.Zone(ctx, dev, n.named)
	if err != nil {
		return geometry{}, Permanent(fmt.Errorf("zone %q of device %s: %w", n.named, dev, err))
	}
	pts := make([][2]float64, len(z.Points))
	for i, p := range z.Points {
		pts[i] = [2]float64{p[0] * w, p[1] * h}
	}
	g := geometry{mode: n.mode}
	switch z.Kind {
	case "line":
		g.line = pts
		if g.mode == "" {
			g.mode = "cross"
		}
		if g.mode != "cross" || len(pts) != 2 {
			return geometry{}, Permanent(fmt.Errorf("zone %q of device %s is a line: mode %s does not apply", n.named, dev, g.mode))
		}
	default:
		g.poly = pts
		if g.mode == "" {
			g.mode = "inside"
		}
		if g.mode == "cross" || len(pts) < 3 {
			return geometry{}, Permanent(fmt.Errorf("zone %q of device %s is a polygon: mode %s does not apply", n.named, dev, g.mode))
		}
	}
	return g, nil
}

func (n *zoneNode) anchor(b [4]float64) [2]float64 {
	if n.bottom {
		return [2]float64{b[0] + b[2]/2, b[1] + b[3]}
	}
	return [2]float64{b[0] + b[2]/2, b[1] + b[3]/2}
}

func inside(poly [][2]float64, p [2]float64) bool {
	in := false
	for i, j := 0, len(poly)-1; i < len(poly); j, i = i, i+1 {
		a, b := poly[i], poly[j]
		if (a[1] > p[1]) != (b[1] > p[1]) && p[0] < (b[0]-a[0])*(p[1]-a[1])/(b[1]-a[1])+a[0] {
			in = !in
		}
	}
	return in
}

func side(a, b, p [2]float64) float64 {
	return (b[0]-a[0])*(p[1]-a[1]) - (b[1]-a[1])*(p[0]-a[0])
}

// crosses reports whether the move p->q crosses segment a-b, and to which
// side of a->b it went.
func crosses(a, b, p, q [2]float64) (bool, string) {
	d1, d2 := side(a, b, p), side(a, b, q)
	d3, d4 := side(p, q, a), side(p, q, b)
	if (d1 > 0) != (d2 > 0) && d1 != 0 && d2 != 0 && (d3 > 0) != (d4 > 0) {
		if d2 > 0 {
			return true, "left"
		}
		return true, "right"
	}
	return false, ""
}

func (n *zoneNode) Run(ctx context.Context, c *Call) (any, error) {
	objs, err := listArg(c, n.objects, "objects")
	if err != nil {
		return nil, err
	}
	g, err := n.resolve(ctx, c)
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(objs))
	stateful := g.mode == "enter" || g.mode == "leave" || g.mode == "cross"
	var st *zoneState
	now := c.Time()
	if stateful {
		st = c.NodeState(func() any { return &zoneState{prev: newKeyed[*[2]float64](n.maxKeys, n.idle)} }).(*zoneState)
		st.mu.Lock()
		defer st.mu.Unlock()
	}
	for _, o := range objs {
		b, ok := boxOf(o)
		if !ok {
			continue
		}
		p := n.anchor(b)
		switch g.mode {
		case "inside":
			if inside(g.poly, p) {
				out = append(out, with(o, "zone", "inside"))
			}
		case "outside":
			if !inside(g.poly, p) {
				out = append(out, with(o, "zone", "outside"))
			}
		default:
			id, ok := trackIDOf(o)
			if !ok {
				continue
			}
			key := c.Key() + "\x00" + strconv.FormatInt(id, 10)
			e, seen := st.prev.m[key]
			var prev [2]float64
			if seen {
				prev = *e.v
			}
			*st.prev.get(key, now, func() *[2]float64 { return new([2]float64) }, nil) = p
			if !seen {
				continue
			}
			switch g.mode {
			case "enter":
				if !inside(g.poly, prev) && inside(g.poly, p) {
					out = append(out, with(o, "zone", "enter"))
				}
			case "leave":
				if inside(g.poly, prev) && !inside(g.poly, p) {
					out = append(out, with(o, "zone", "leave"))
				}
			case "cross":
				if ok, dir := crosses(g.line[0], g.line[1], prev, p); ok {
					out = append(out, with(o, "zone", "cross", "direction", dir))
				}
			}
		}
	}
	if len(out) == 0 {
		c.SelectNone()
	}
	return map[string]any{"objects": out}, nil
}
