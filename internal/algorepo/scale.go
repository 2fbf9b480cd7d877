package algorepo

import (
	"context"
	"encoding/json"
	"sort"
	"strings"

	"github.com/tianshu-ai/tianshu/internal/algorithm"
)

// InUse returns the algorithm versions that the flows of tasks desired
// running call: the version an algorithm node names, or, for a node naming
// none, the algorithm's current version and its canary's. Nodes in foreach
// bodies count; flows called as subflows are not followed.
func (s *Service) InUse(ctx context.Context) (map[algorithm.Ref]bool, error) {
	rows, err := s.db.Query(ctx, `SELECT DISTINCT f.document FROM tasks t
		JOIN flow_versions f ON f.flow_id = t.flow_id AND f.version = t.flow_version
		WHERE t.desired_state = 'running'`)
	if err != nil {
		return nil, err
	}
	var refs []algorithm.Ref
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			rows.Close()
			return nil, err
		}
		var d flowDoc
		if json.Unmarshal([]byte(doc), &d) == nil {
			refs = d.algorithms(refs)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	used := map[algorithm.Ref]bool{}
	current := map[string]*Algorithm{}
	for _, r := range refs {
		if r.Version != "" {
			used[r] = true
			continue
		}
		a, ok := current[r.ID]
		if !ok {
			if a, err = s.Get(ctx, r.ID); isNotFound(err) {
				a = nil
			} else if err != nil {
				return nil, err
			}
			current[r.ID] = a
		}
		if a == nil {
			continue
		}
		if a.CurrentVersion != "" {
			used[algorithm.Ref{ID: r.ID, Version: a.CurrentVersion}] = true
		}
		if a.Canary != nil {
			used[algorithm.Ref{ID: r.ID, Version: a.Canary.Version}] = true
		}
	}
	return used, nil
}

// flowDoc is the part of a flow document that names algorithms.
type flowDoc struct {
	Nodes []struct {
		Kind   string `json:"kind"`
		Config struct {
			Algorithm string   `json:"algorithm"`
			Version   string   `json:"version"`
			Body      *flowDoc `json:"body"`
		} `json:"config"`
	} `json:"nodes"`
}

func (d *flowDoc) algorithms(out []algorithm.Ref) []algorithm.Ref {
	for _, n := range d.Nodes {
		if n.Kind == "algorithm" && n.Config.Algorithm != "" {
			out = append(out, algorithm.Ref{ID: n.Config.Algorithm, Version: n.Config.Version})
		}
		if n.Config.Body != nil {
			out = n.Config.Body.algorithms(out)
		}
	}
	return out
}

// ScaleToUse runs each container version that scales to zero on its
// replicas while a running task uses it and on none otherwise. Every
// process with the runtime does it; the count is idempotent.
func (s *Service) ScaleToUse(ctx context.Context) {
	if s.m == nil {
		return
	}
	s.mu.Lock()
	var refs []algorithm.Ref
	for key, def := range s.applied {
		var v struct {
			ScaleToZero bool `json:"scaleToZero"`
		}
		if json.Unmarshal([]byte(def), &v) == nil && v.ScaleToZero {
			refs = append(refs, refOf(key))
		}
	}
	s.mu.Unlock()
	if len(refs) == 0 {
		return
	}
	used, err := s.InUse(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("algorithm use unreadable", "err", err)
		}
		return
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].ID+"@"+refs[i].Version < refs[j].ID+"@"+refs[j].Version })
	for _, r := range refs {
		if err := s.m.Scale(ctx, r, used[r]); err != nil && ctx.Err() == nil {
			s.log.Warn("algorithm version not scaled", "algorithm", r.ID, "version", r.Version, "in_use", used[r], "err", err)
		}
	}
}

// refOf splits an "id@version" key of applied.
func refOf(key string) algorithm.Ref {
	id, version, _ := strings.Cut(key, "@")
	return algorithm.Ref{ID: id, Version: version}
}

// wanted returns the versions desired running.
func (s *Service) wanted(ctx context.Context) (map[algorithm.Ref]bool, error) {
	rows, err := s.db.Query(ctx, "SELECT algorithm_id, version FROM algorithm_versions WHERE desired_state = ?", Running)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	want := map[algorithm.Ref]bool{}
	for rows.Next() {
		var r algorithm.Ref
		if err := rows.Scan(&r.ID, &r.Version); err != nil {
			return nil, err
		}
		want[r] = true
	}
	return want, rows.Err()
}

// Prune removes from the cluster the container versions this platform
// deployed that are no longer desired running: stopped or deleted while no
// process with the runtime ran to remove them.
func (s *Service) Prune(ctx context.Context) {
	if s.m == nil {
		return
	}
	if _, err := s.m.PruneContainers(ctx, s.wanted); err != nil && ctx.Err() == nil {
		s.log.Warn("container versions not pruned", "err", err)
	}
}
