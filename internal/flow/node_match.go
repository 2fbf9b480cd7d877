package flow

import (
	"context"
	"fmt"
	"strings"
)

func init() { builtinKinds = append(builtinKinds, kindMatch) }

// Watchlists compares face embeddings with the enabled watchlists of the
// flow's project for match nodes; the data center implements it
// (internal/app adapts it). Match returns one hit per list whose most
// similar person is at or above the list's threshold, most similar first.
type Watchlists interface {
	Match(ctx context.Context, embedding []float32) ([]WatchlistHit, error)
}

// WatchlistHit is a face's hit on one watchlist.
type WatchlistHit struct {
	WatchlistID, WatchlistName string
	Threshold                  float64
	PersonID, PersonName       string
	ExternalID                 string
	Similarity                 float64
}

// WatchlistHitEvent is the event type match nodes publish per hit.
const WatchlistHitEvent = "tianshu.watchlist.hit"

// matchConfig is the config of match nodes.
type matchConfig struct {
	Type    string `json:"type" example:"watchlist_hit" doc:"the record type each hit is stored as (default watchlist_hit); set store to false to store none"`
	Store   *bool  `json:"store" doc:"store each hit as a record (default true)"`
	Publish *bool  `json:"publish" doc:"publish each hit as a tianshu.watchlist.hit event (default true)"`
}

func kindMatch() *Kind {
	return &Kind{
		Name: "match",
		Doc: "Compares a face's embedding with the project's enabled watchlists; per list whose most similar person is at or above its threshold, " +
			"stores a watchlist_hit record (with the crop) and publishes tianshu.watchlist.hit (with the crop's signed URL where the record keeps it); outputs {hits, matched}.",
		Blocking: true,
		Category: CategorySink,
		Inputs: []Port{
			{Name: "embedding", Type: TypeList, Required: true, Doc: "the face's descriptor (a list of numbers), e.g. $embed.embedding (an algorithm's embedding output)"},
			{Name: "recordId", Type: TypeString, Doc: "the face's stored record ($save.recordId), named by the hit"},
			{Name: "crop", Type: TypeImage, Doc: "the face's crop, stored with the hit record"},
			{Name: "box", Type: TypeList, Doc: "the face's box [x, y, w, h] in the frame"},
			{Name: "subject", Type: TypeString, Doc: "the event's subject; default: the message key (the device)"},
		},
		Outputs: []Port{
			{Name: "hits", Type: TypeList, Doc: "the hits: {watchlistId, watchlistName, personId, personName, externalId, similarity, threshold, recordId}"},
			{Name: "matched", Type: TypeBool, Doc: "whether any list was hit"},
		},
		Config: matchConfig{},
		Compile: func(b *Builder) Node {
			var cfg matchConfig
			if !b.Config(&cfg) {
				return nil
			}
			n := &matchNode{typ: cfg.Type, store: cfg.Store == nil || *cfg.Store, publish: cfg.Publish == nil || *cfg.Publish,
				embedding: b.RequireArg("embedding"), recordID: b.Arg("recordId"), crop: b.Arg("crop"), box: b.Arg("box"), subject: b.Arg("subject"),
				lists: b.Watchlists()}
			if n.typ == "" {
				n.typ = "watchlist_hit"
			}
			if len(n.typ) > 64 || strings.TrimSpace(n.typ) != n.typ {
				b.Errorf("config.type", "a record type of at most 64 characters without surrounding spaces")
			}
			if n.lists == nil {
				b.Errorf("kind", "watchlists are not available where this flow runs")
			}
			b.DeclareOutputs([]string{"hits", "matched"})
			return n
		},
	}
}

type matchNode struct {
	typ                                     string
	store, publish                          bool
	embedding, recordID, crop, box, subject int
	lists                                   Watchlists
}

func (n *matchNode) Run(ctx context.Context, c *Call) (any, error) {
	raw := c.Arg(n.embedding)
	if raw == nil {
		// The model described no face (say, a crop it found none in):
		// nothing to match, which is not the message's failure.
		return map[string]any{"hits": []any{}, "matched": false}, nil
	}
	emb, err := floats(raw)
	if err != nil {
		return nil, fmt.Errorf("match: input embedding: %w", err)
	}
	hits, err := n.lists.Match(ctx, emb)
	if err != nil {
		return nil, fmt.Errorf("match: %w", err)
	}
	out := make([]any, 0, len(hits))
	if len(hits) == 0 {
		return map[string]any{"hits": out, "matched": false}, nil
	}
	s := c.Sinks()
	if s == nil && (n.store || n.publish) {
		return nil, ErrNoSinks
	}
	face, _ := c.Arg(n.recordID).(string)
	subject := c.Key()
	if n.subject >= 0 {
		subject = fmt.Sprint(c.Arg(n.subject))
	}
	for _, h := range hits {
		data := map[string]any{"FaceRecordId": face, "WatchlistId": h.WatchlistID, "WatchlistName": h.WatchlistName,
			"PersonId": h.PersonID, "PersonName": h.PersonName, "ExternalId": h.ExternalID,
			"Similarity": float64(int64(h.Similarity*1e4+0.5)) / 1e4, "Threshold": h.Threshold}
		if n.box >= 0 {
			data["Box"] = c.Arg(n.box)
		}
		// Each hit's own origin: a redelivered message stores and
		// publishes the same ids again, which the sinks drop.
		origin := c.Origin() + "/" + h.WatchlistID
		hit := map[string]any{"watchlistId": h.WatchlistID, "watchlistName": h.WatchlistName, "personId": h.PersonID, "personName": h.PersonName,
			"externalId": h.ExternalID, "similarity": data["Similarity"], "threshold": h.Threshold, "recordId": ""}
		if n.store {
			rec := make(map[string]any, len(data)+1)
			for k, v := range data {
				rec[k] = v
			}
			if n.crop >= 0 {
				if crop := c.Arg(n.crop); crop != nil {
					rec["Crop"] = crop
				}
			}
			id, err := s.Store(ctx, Record{Type: n.typ, Key: c.Key(), Time: c.Time(), Data: rec, Origin: origin})
			if err != nil {
				return nil, err
			}
			data["RecordId"], hit["recordId"] = id, id
			if cs, ok := s.(CropSigner); ok && n.publish && rec["Crop"] != nil {
				u, err := cs.CropURL(ctx, id)
				if err != nil {
					return nil, err
				}
				if u != "" {
					data["CropUrl"] = u
				}
			}
		}
		if n.publish {
			if err := s.Publish(ctx, Event{Type: WatchlistHitEvent, Subject: subject, Time: c.Time(), Data: data, Origin: origin}); err != nil {
				return nil, err
			}
		}
		out = append(out, hit)
	}
	return map[string]any{"hits": out, "matched": true}, nil
}

// floats reads a list of numbers (an embedding) as float32 values.
func floats(v any) ([]float32, error) {
	switch x := v.(type) {
	case []float32:
		return x, nil
	case []float64:
		out := make([]float32, len(x))
		for i, f := range x {
			out[i] = float32(f)
		}
		return out, nil
	case []any:
		out := make([]float32, len(x))
		for i, e := range x {
			switch f := e.(type) {
			case float64:
				out[i] = float32(f)
			case float32:
				out[i] = f
			case int:
				out[i] = float32(f)
			case int64:
				out[i] = float32(f)
			default:
				return nil, fmt.Errorf("element %d is %T, not a number", i, e)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("%T is not a list of numbers", v)
}
