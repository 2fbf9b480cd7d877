package flow

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/tianshu-ai/tianshu/internal/function"
)

func init() { builtinKinds = append(builtinKinds, kindBestshot) }

func kindBestshot() *Kind {
	return &Kind{
		Name: "bestshot",
		Doc: "Keeps the best object per trackId by config.score; emits it when the track ends (input ended, or unseen for maxAge) " +
			"or emitAfter after the track began; outputs {best: [...]}, and stops the branch when nothing is emitted.",
		Category: CategoryStream,
		Inputs: []Port{
			{Name: "objects", Type: TypeObjects, Required: true, Doc: "this message's objects, each with a trackId (from a track node)"},
			{Name: "ended", Type: TypeList, Doc: "track ids that ended (a track node's ended): their best is emitted now"},
		},
		Outputs: []Port{{Name: "best", Type: TypeObjects, Doc: "the best object of each emitted track, with trackId and score"}},
		Config:  bestshotConfig{},
		Compile: compileBestshot,
	}
}

type bestshotConfig struct {
	streamCommon `omit:"key"`
	Score        string `json:"score" format:"expression" default:"item.get(\"score\", 0)" doc:"Starlark expression over item scoring an object; the highest is kept"`
	EmitAfter    string `json:"emitAfter" format:"duration" doc:"also emit a track's best this long after it began (empty: only when it ends)"`
	MaxAge       string `json:"maxAge" format:"duration" default:"2s" doc:"a track unseen this long has ended"`
	MaxTracks    int    `json:"maxTracks" default:"1000" doc:"most tracks followed per device (0: 1000)"`
}

func compileBestshot(b *Builder) Node {
	var cfg bestshotConfig
	if !b.Config(&cfg) {
		return nil
	}
	if cfg.Key != "" {
		b.Errorf("config.key", "bestshot partitions by the message key and trackId")
	}
	_, maxKeys, idle := cfg.streamCommon.compile(b, false)
	if cfg.Score == "" {
		cfg.Score = `item.get("score", 0)`
	}
	if cfg.MaxTracks <= 0 {
		cfg.MaxTracks = 1000
	}
	n := &bestshotNode{
		objects: b.RequireArg("objects"), ended: b.Arg("ended"),
		score:     b.Expr("config.score", cfg.Score, []string{"item"}),
		emitAfter: b.Duration("config.emitAfter", cfg.EmitAfter, 0),
		maxAge:    b.Duration("config.maxAge", cfg.MaxAge, 2*time.Second),
		maxTracks: cfg.MaxTracks, maxKeys: maxKeys, idle: idle,
	}
	b.DeclareOutputs([]string{"best"})
	return n
}

type bestshotNode struct {
	objects, ended int
	score          *function.Expr
	emitAfter      time.Duration
	maxAge         time.Duration
	maxTracks      int
	maxKeys        int
	idle           time.Duration
}

type best struct {
	item        any
	score       float64
	first, last time.Time
	emitted     bool
}

type bestState struct {
	mu   sync.Mutex
	keys *keyed[map[int64]*best]
}

func (n *bestshotNode) Run(ctx context.Context, c *Call) (any, error) {
	objs, err := listArg(c, n.objects, "objects")
	if err != nil {
		return nil, err
	}
	var ended []any
	if n.ended >= 0 {
		if ended, err = listArg(c, n.ended, "ended"); err != nil {
			return nil, err
		}
	}
	// Scores are computed before taking the lock: scripts may be slow.
	scores := make([]float64, len(objs))
	for i, o := range objs {
		if scores[i], err = n.score.EvalFloat(ctx, o); err != nil {
			return nil, fmt.Errorf("config.score: %w", err)
		}
	}
	st := c.NodeState(func() any { return &bestState{keys: newKeyed[map[int64]*best](n.maxKeys, n.idle)} }).(*bestState)
	now := c.Time()
	var out []any
	emit := func(id int64, b *best) {
		if !b.emitted {
			b.emitted = true
			out = append(out, with(b.item, "trackId", id, "score", b.score))
		}
	}
	st.mu.Lock()
	st.keys.expire(now, nil)
	tracks := st.keys.get(c.Key(), now, func() map[int64]*best { return map[int64]*best{} }, nil)
	for i, o := range objs {
		id, ok := trackIDOf(o)
		if !ok {
			continue
		}
		b := tracks[id]
		if b == nil {
			if len(tracks) >= n.maxTracks {
				continue
			}
			b = &best{item: o, score: scores[i], first: now}
			tracks[id] = b
		} else if scores[i] > b.score && !b.emitted {
			b.item, b.score = o, scores[i]
		}
		b.last = now
	}
	for _, e := range ended {
		id, ok := trackIDOf(map[string]any{"trackId": e})
		if b := tracks[id]; ok && b != nil {
			emit(id, b)
			delete(tracks, id)
		}
	}
	ids := make([]int64, 0, len(tracks))
	for id := range tracks {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] })
	for _, id := range ids {
		b := tracks[id]
		switch {
		case now.Sub(b.last) > n.maxAge:
			emit(id, b)
			delete(tracks, id)
		case n.emitAfter > 0 && now.Sub(b.first) >= n.emitAfter:
			emit(id, b)
		}
	}
	st.mu.Unlock()
	if len(out) == 0 {
		c.SelectNone()
		return map[string]any{"best": []any{}}, nil
	}
	return map[string]any{"best": out}, nil
}
