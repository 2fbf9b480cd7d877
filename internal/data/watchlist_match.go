package data

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/tianshu-ai/tianshu/internal/ids"
	"github.com/tianshu-ai/tianshu/internal/vectors"
)

// WatchRecheck is how often a matcher asks the store whether a project's
// watchlists changed (one small query per project): a change reaches
// match nodes in every process within it.
const WatchRecheck = 500 * time.Millisecond

// WatchHit is a face's hit on a watchlist: the person of the list most
// similar to the face, at or above the list's threshold.
type WatchHit struct {
	WatchlistID, WatchlistName string
	Threshold                  float64
	PersonID, PersonName       string
	ExternalID                 string
	Similarity                 float64
}

// watchSet is a project's enabled watchlists in memory, as a matrix: the
// reference faces of every person on an enabled list, unit length, one
// row each, grouped by dimension (a face is compared with the references
// of its own model's dimension only).
type watchSet struct {
	version string
	checked time.Time
	lists   []watchList
	people  []watchPerson
	byDim   map[int]*watchMatrix
}

type watchList struct {
	id, name  string
	threshold float32
}

type watchPerson struct {
	id, name, external string
	lists              []int // indexes into watchSet.lists
}

type watchMatrix struct {
	dim    int
	rows   []float32 // len(person) × dim
	person []int32   // row → index into watchSet.people
}

// watchCache holds the watch sets by project.
type watchCache struct {
	mu   sync.Mutex
	sets map[string]*watchSet
	// loading serializes loads per process: a change seen by many match
	// calls at once loads once.
	loading sync.Mutex
}

// MatchFace compares a face's embedding with projectID's enabled
// watchlists and returns, for every list, its person most similar to the
// face when at or above the list's threshold, most similar first. An
// embedding of a dimension no reference face has matches nothing.
func (s *Service) MatchFace(ctx context.Context, projectID string, embedding []float32) ([]WatchHit, error) {
	if err := vectors.CheckVector(embedding, "embedding"); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidRecord, err)
	}
	start := time.Now()
	set, err := s.watchSet(ctx, projectID)
	if err != nil {
		return nil, err
	}
	m := set.byDim[len(embedding)]
	if m == nil {
		s.m.watchMatched.Inc()
		return nil, nil
	}
	q := vectors.Normalize(embedding)
	best := make([]float32, len(set.people))
	for i := range best {
		best[i] = -2
	}
	for r, p := range m.person {
		if sim := vectors.Dot(q, m.rows[r*m.dim:(r+1)*m.dim]); sim > best[p] {
			best[p] = sim
		}
	}
	// Per list, its most similar person.
	top := make([]int, len(set.lists))
	for i := range top {
		top[i] = -1
	}
	for p, sim := range best {
		if sim < -1 {
			continue
		}
		for _, l := range set.people[p].lists {
			if sim >= set.lists[l].threshold && (top[l] < 0 || sim > best[top[l]]) {
				top[l] = p
			}
		}
	}
	var hits []WatchHit
	for l, p := range top {
		if p < 0 {
			continue
		}
		pe, li := set.people[p], set.lists[l]
		hits = append(hits, WatchHit{WatchlistID: li.id, WatchlistName: li.name, Threshold: float64(li.threshold),
			PersonID: pe.id, PersonName: pe.name, ExternalID: pe.external, Similarity: float64(best[p])})
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].Similarity > hits[j].Similarity })
	s.m.watchMatched.Inc()
	s.m.watchHits.Add(float64(len(hits)))
	s.m.watchMatchSeconds.Observe(time.Since(start).Seconds())
	return hits, nil
}

// watchSet returns projectID's watch set, reloading it when the store
// holds another version (asked at most every WatchRecheck).
func (s *Service) watchSet(ctx context.Context, projectID string) (*watchSet, error) {
	c := &s.watch
	c.mu.Lock()
	set := c.sets[projectID]
	c.mu.Unlock()
	now := time.Now()
	if set != nil && now.Sub(set.checked) < WatchRecheck {
		return set, nil
	}
	if set == nil {
		c.loading.Lock()
	} else if !c.loading.TryLock() {
		// Another call is checking or reloading (seconds for 10,000
		// people of 1024 values): match with the lists loaded meanwhile,
		// so hits are not held up behind a change.
		return set, nil
	}
	defer c.loading.Unlock()
	c.mu.Lock()
	set = c.sets[projectID]
	c.mu.Unlock()
	if set != nil && now.Sub(set.checked) < WatchRecheck {
		return set, nil // another call just checked
	}
	var version string
	err := s.db.QueryRow(ctx, "SELECT version FROM watchlist_versions WHERE project_id = ?", projectID).Scan(&version)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		if set != nil {
			// The store is away: match with what we have, ask again later.
			s.log.Warn("watchlist version unreadable; matching with the lists loaded", "project", projectID, "err", err)
			return set, nil
		}
		return nil, fmt.Errorf("data: watchlist version: %w", err)
	}
	if set == nil || set.version != version {
		if set, err = s.loadWatchSet(ctx, projectID); err != nil {
			return nil, err
		}
		set.version = version
		s.log.Info("watchlists loaded", "project", projectID, "version", version, "lists", len(set.lists), "people", len(set.people))
	} else {
		fresh := *set
		set = &fresh
	}
	set.checked = now
	c.mu.Lock()
	if c.sets == nil {
		c.sets = map[string]*watchSet{}
	}
	c.sets[projectID] = set
	c.mu.Unlock()
	return set, nil
}

// loadWatchSet reads projectID's enabled lists, their people and those
// people's reference faces.
func (s *Service) loadWatchSet(ctx context.Context, projectID string) (*watchSet, error) {
	set := &watchSet{byDim: map[int]*watchMatrix{}}
	listIdx := map[string]int{}
	rows, err := s.db.Query(ctx, "SELECT id, name, threshold FROM watchlists WHERE project_id = ? AND enabled = 1 ORDER BY id", projectID)
	if err != nil {
		return nil, fmt.Errorf("data: load watchlists: %w", err)
	}
	for rows.Next() {
		var l watchList
		var th float64
		if err := rows.Scan(&l.id, &l.name, &th); err != nil {
			rows.Close()
			return nil, fmt.Errorf("data: load watchlists: %w", err)
		}
		l.threshold = float32(th)
		listIdx[l.id] = len(set.lists)
		set.lists = append(set.lists, l)
	}
	rows.Close()
	if len(set.lists) == 0 {
		return set, rows.Err()
	}
	personIdx := map[string]int{}
	rows, err = s.db.Query(ctx, "SELECT p.id, p.name, p.external_id, m.list_id FROM watchlist_members m JOIN watchlist_people p ON p.id = m.person_id"+
		" WHERE m.project_id = ? ORDER BY p.id", projectID)
	if err != nil {
		return nil, fmt.Errorf("data: load watchlist people: %w", err)
	}
	for rows.Next() {
		var p watchPerson
		var list string
		if err := rows.Scan(&p.id, &p.name, &p.external, &list); err != nil {
			rows.Close()
			return nil, fmt.Errorf("data: load watchlist people: %w", err)
		}
		l, ok := listIdx[list]
		if !ok {
			continue // a disabled list
		}
		i, ok := personIdx[p.id]
		if !ok {
			i = len(set.people)
			personIdx[p.id] = i
			set.people = append(set.people, p)
		}
		set.people[i].lists = append(set.people[i].lists, l)
	}
	rows.Close()
	// The faces in pages by id, so that no one query holds 200 MB.
	after := ""
	for {
		rows, err = s.db.Query(ctx, "SELECT id, person_id, dim, vector FROM watchlist_faces WHERE project_id = ? AND id > ? ORDER BY id LIMIT 2000", projectID, after)
		if err != nil {
			return nil, fmt.Errorf("data: load reference faces: %w", err)
		}
		read := 0
		for rows.Next() {
			var person, enc string
			var dim int
			if err := rows.Scan(&after, &person, &dim, &enc); err != nil {
				rows.Close()
				return nil, fmt.Errorf("data: load reference faces: %w", err)
			}
			read++
			p, ok := personIdx[person]
			if !ok {
				continue // on no enabled list
			}
			v, err := decodeVector(enc, dim)
			if err != nil {
				s.log.Warn("reference face unreadable", "face", after, "err", err)
				continue
			}
			m := set.byDim[dim]
			if m == nil {
				m = &watchMatrix{dim: dim}
				set.byDim[dim] = m
			}
			m.rows = append(m.rows, vectors.Normalize(v)...)
			m.person = append(m.person, int32(p))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("data: load reference faces: %w", err)
		}
		if read < 2000 {
			return set, nil
		}
	}
}

func newPersonID() string { return ids.New("psn") }
