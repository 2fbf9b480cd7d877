package flow

import (
	"context"
	"sort"
	"sync"
	"time"
)

func init() { builtinKinds = append(builtinKinds, kindTrack) }

func kindTrack() *Kind {
	return &Kind{
		Name: "track",
		Doc: "IoU tracker: gives each object in input objects (with box [x,y,w,h]) a trackId that persists across messages; " +
			"outputs {objects, ended: [ids unseen for maxAge]}.",
		Category: CategoryStream,
		Inputs:   []Port{{Name: "objects", Type: TypeObjects, Required: true, Doc: "this message's objects, each with box [x, y, w, h]"}},
		Outputs: []Port{
			{Name: "active", Type: TypeInteger, Doc: "tracks followed on this device"},
			{Name: "ended", Type: TypeList, Doc: "ids of the tracks unseen for maxAge"},
			{Name: "objects", Type: TypeObjects, Doc: "the input objects, each with its trackId"},
		},
		Config:  trackConfig{},
		Compile: compileTrack,
	}
}

type trackConfig struct {
	streamCommon `omit:"key"`
	IoU          float64 `json:"iou" min:"0" max:"1" default:"0.3" doc:"the least box overlap (intersection over union) that continues a track"`
	MaxAge       string  `json:"maxAge" format:"duration" default:"1s" doc:"a track unseen this long ends"`
	MaxTracks    int     `json:"maxTracks" default:"1000" doc:"most tracks per device (0: 1000)"`
}

func compileTrack(b *Builder) Node {
	var cfg trackConfig
	if !b.Config(&cfg) {
		return nil
	}
	if cfg.Key != "" {
		b.Errorf("config.key", "track partitions by the message key only")
	}
	_, maxKeys, idle := cfg.streamCommon.compile(b, false)
	if cfg.IoU == 0 {
		cfg.IoU = 0.3
	}
	if cfg.IoU < 0 || cfg.IoU > 1 {
		b.Errorf("config.iou", "must be between 0 and 1, got %v", cfg.IoU)
	}
	if cfg.MaxTracks <= 0 {
		cfg.MaxTracks = 1000
	}
	n := &trackNode{objects: b.RequireArg("objects"), iou: cfg.IoU, maxAge: b.Duration("config.maxAge", cfg.MaxAge, time.Second),
		maxTracks: cfg.MaxTracks, maxKeys: maxKeys, idle: idle}
	b.DeclareOutputs([]string{"active", "ended", "objects"})
	return n
}

type trackNode struct {
	objects   int
	iou       float64
	maxAge    time.Duration
	maxTracks int
	maxKeys   int
	idle      time.Duration
}

type track struct {
	id   int64
	box  [4]float64
	last time.Time
}

type trackState struct {
	mu     sync.Mutex
	nextID int64
	keys   *keyed[*[]track]
}

func (n *trackNode) Run(_ context.Context, c *Call) (any, error) {
	objs, err := listArg(c, n.objects, "objects")
	if err != nil {
		return nil, err
	}
	st := c.NodeState(func() any { return &trackState{keys: newKeyed[*[]track](n.maxKeys, n.idle)} }).(*trackState)
	now := c.Time()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.keys.expire(now, nil)
	tracks := st.keys.get(c.Key(), now, func() *[]track { return &[]track{} }, nil)

	ended := []any{}
	live := (*tracks)[:0]
	for _, t := range *tracks {
		if now.Sub(t.last) > n.maxAge {
			ended = append(ended, t.id)
		} else {
			live = append(live, t)
		}
	}
	*tracks = live

	boxes := make([][4]float64, len(objs))
	valid := make([]bool, len(objs))
	type pair struct {
		o, t int
		iou  float64
	}
	var pairs []pair
	for i, o := range objs {
		boxes[i], valid[i] = boxOf(o)
		if !valid[i] {
			continue
		}
		for j := range live {
			if v := iou(boxes[i], live[j].box); v >= n.iou {
				pairs = append(pairs, pair{i, j, v})
			}
		}
	}
	sort.Slice(pairs, func(a, b int) bool { return pairs[a].iou > pairs[b].iou })
	assigned := make([]int64, len(objs))
	usedT := make([]bool, len(live))
	for _, p := range pairs {
		if assigned[p.o] != 0 || usedT[p.t] {
			continue
		}
		usedT[p.t] = true
		assigned[p.o] = live[p.t].id
		live[p.t].box = boxes[p.o]
		live[p.t].last = now
	}
	out := make([]any, len(objs))
	for i, o := range objs {
		if valid[i] && assigned[i] == 0 && len(*tracks) < n.maxTracks {
			st.nextID++
			assigned[i] = st.nextID
			*tracks = append(*tracks, track{id: st.nextID, box: boxes[i], last: now})
		}
		if assigned[i] != 0 {
			out[i] = with(o, "trackId", assigned[i])
		} else {
			out[i] = with(o)
		}
	}
	return map[string]any{"objects": out, "ended": ended, "active": int64(len(*tracks))}, nil
}
