package data

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tianshu-ai/tianshu/internal/ids"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/vectors"
)

// WatchRecheck is how often a matcher asks the store whether a project's
// watchlists changed (one small query per project): a change reaches
// match nodes in every process within it.
const WatchRecheck = 500 * time.Millisecond

// maxWatchChanges is how many change rows a matcher applies one by one;
// more than that (a bulk import) and it reloads the whole project.
const maxWatchChanges = 2000

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
// of its own model's dimension only). It is loaded whole once and then
// changed in place, a list or person at a time, as the project's change
// log says (applyWatchChanges); mu lets MatchFace read it meanwhile.
type watchSet struct {
	seq     int64        // the project's change seq the set reflects
	checked atomic.Int64 // when the store was last asked (unix ns)

	mu         sync.RWMutex // the loader writes below, MatchFace reads
	lists      []*watchList // by slot; nil is a free slot
	listByID   map[string]int32
	people     []*watchPerson // by slot; nil is a free slot
	personByID map[string]int32
	freePeople []int32
	byDim      map[int]*watchMatrix
}

type watchList struct {
	id, name  string
	threshold float32
}

type watchPerson struct {
	id, name, external string
	lists              []int32 // slots of watchSet.lists
}

type watchMatrix struct {
	dim    int
	rows   []float32 // len(person) × dim
	person []int32   // row → slot of watchSet.people
}

func newWatchSet() *watchSet {
	return &watchSet{listByID: map[string]int32{}, personByID: map[string]int32{}, byDim: map[int]*watchMatrix{}}
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
	set.mu.RLock()
	hits := set.match(embedding)
	set.mu.RUnlock()
	s.m.watchMatched.Inc()
	s.m.watchHits.Add(float64(len(hits)))
	s.m.watchMatchSeconds.Observe(time.Since(start).Seconds())
	return hits, nil
}

// match is MatchFace on the set; the caller holds set.mu for reading.
func (set *watchSet) match(embedding []float32) []WatchHit {
	m := set.byDim[len(embedding)]
	if m == nil {
		return nil
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
	return hits
}

// watchSet returns projectID's watch set, brought up to date with the
// store when it was last asked more than WatchRecheck ago: a new seq
// applies the changes logged since (or reloads the whole project when
// they are too many or pruned).
func (s *Service) watchSet(ctx context.Context, projectID string) (*watchSet, error) {
	c := &s.watch
	c.mu.Lock()
	set := c.sets[projectID]
	c.mu.Unlock()
	now := time.Now()
	fresh := func(set *watchSet) bool {
		return set != nil && now.UnixNano()-set.checked.Load() < int64(WatchRecheck)
	}
	if fresh(set) {
		return set, nil
	}
	if set == nil {
		c.loading.Lock()
	} else if !c.loading.TryLock() {
		// Another call is checking or applying a change: match with the
		// lists loaded meanwhile, so hits are not held up behind it.
		return set, nil
	}
	defer c.loading.Unlock()
	c.mu.Lock()
	set = c.sets[projectID]
	c.mu.Unlock()
	if fresh(set) {
		return set, nil // another call just checked
	}
	var seq int64
	err := s.db.QueryRow(ctx, "SELECT seq FROM watchlist_versions WHERE project_id = ?", projectID).Scan(&seq)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		if set != nil {
			// The store is away: match with what we have, ask again later.
			s.log.Warn("watchlist version unreadable; matching with the lists loaded", "project", projectID, "err", err)
			return set, nil
		}
		return nil, fmt.Errorf("data: watchlist version: %w", err)
	}
	switch {
	case set != nil && set.seq == seq:
	case set != nil && set.seq < seq:
		start := time.Now()
		n, err := s.applyWatchChanges(ctx, projectID, set, seq)
		if err == nil {
			s.m.watchReloads.WithLabelValues("changes").Inc()
			s.log.Debug("watchlist changes applied", "project", projectID, "seq", seq, "changes", n, "took", time.Since(start))
			break
		}
		if !errors.Is(err, errWatchReload) {
			s.log.Warn("watchlist changes unreadable; matching with the lists loaded", "project", projectID, "err", err)
			return set, nil
		}
		s.log.Info("watchlist changes not applicable one by one; reloading the project", "project", projectID, "reason", err)
		set = nil
		fallthrough
	default: // first use, a gap, or a store that went back (restored)
		// The seq was read before the lists: changes committed meanwhile
		// are applied again at the next check, which is harmless.
		if set, err = s.loadWatchSet(ctx, projectID); err != nil {
			return nil, err
		}
		set.seq = seq
		s.m.watchReloads.WithLabelValues("full").Inc()
		s.log.Info("watchlists loaded", "project", projectID, "seq", seq, "lists", len(set.listByID), "people", len(set.personByID))
	}
	set.checked.Store(now.UnixNano())
	c.mu.Lock()
	if c.sets == nil {
		c.sets = map[string]*watchSet{}
	}
	c.sets[projectID] = set
	c.mu.Unlock()
	return set, nil
}

// errWatchReload asks watchSet to reload the whole project.
var errWatchReload = errors.New("data: watchlist changes pruned or too many")

// loadWatchSet reads projectID's enabled lists, their people and those
// people's reference faces.
func (s *Service) loadWatchSet(ctx context.Context, projectID string) (*watchSet, error) {
	set := newWatchSet()
	rows, err := s.db.Query(ctx, "SELECT id, name, threshold FROM watchlists WHERE project_id = ? AND enabled = 1 ORDER BY id", projectID)
	if err != nil {
		return nil, fmt.Errorf("data: load watchlists: %w", err)
	}
	for rows.Next() {
		var id, name string
		var th float64
		if err := rows.Scan(&id, &name, &th); err != nil {
			rows.Close()
			return nil, fmt.Errorf("data: load watchlists: %w", err)
		}
		set.putList(id, name, float32(th))
	}
	rows.Close()
	if len(set.listByID) == 0 {
		return set, rows.Err()
	}
	rows, err = s.db.Query(ctx, "SELECT p.id, p.name, p.external_id, m.list_id FROM watchlist_members m JOIN watchlist_people p ON p.id = m.person_id"+
		" WHERE m.project_id = ? ORDER BY p.id", projectID)
	if err != nil {
		return nil, fmt.Errorf("data: load watchlist people: %w", err)
	}
	for rows.Next() {
		var id, name, external, list string
		if err := rows.Scan(&id, &name, &external, &list); err != nil {
			rows.Close()
			return nil, fmt.Errorf("data: load watchlist people: %w", err)
		}
		l, ok := set.listByID[list]
		if !ok {
			continue // a disabled list
		}
		slot, ok := set.personByID[id]
		if !ok {
			slot = set.addPerson(&watchPerson{id: id, name: name, external: external})
		}
		set.people[slot].lists = append(set.people[slot].lists, l)
	}
	rows.Close()
	// The faces in pages by id, so that no one query holds 200 MB.
	after, loaded := "", 0
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
			p, ok := set.personByID[person]
			if !ok {
				continue // on no enabled list
			}
			v, err := decodeVector(enc, dim)
			if err != nil {
				s.log.Warn("reference face unreadable", "face", after, "err", err)
				continue
			}
			set.addRow(p, vectors.Normalize(v))
			loaded++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("data: load reference faces: %w", err)
		}
		if read < 2000 {
			s.m.watchFacesLoaded.Add(float64(loaded))
			return set, nil
		}
	}
}

// applyWatchChanges brings set from its seq to seq: it reads the lists and
// people changed in between (the change log names them) as they are now,
// and the members of lists newly enabled, then swaps them into the set.
// It returns how many change rows it applied, or errWatchReload when the
// log no longer holds them all or holds too many.
func (s *Service) applyWatchChanges(ctx context.Context, projectID string, set *watchSet, seq int64) (int, error) {
	rows, err := s.db.Query(ctx, "SELECT seq, kind, ref_id FROM watchlist_changes WHERE project_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
		projectID, set.seq, seq, maxWatchChanges+1)
	if err != nil {
		return 0, fmt.Errorf("data: read watchlist changes: %w", err)
	}
	var lists, people []string
	seen := map[watchChange]bool{}
	first, n := int64(-1), 0
	for rows.Next() {
		var c watchChange
		var sq int64
		if err := rows.Scan(&sq, &c.kind, &c.id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("data: read watchlist changes: %w", err)
		}
		if first < 0 {
			first = sq
		}
		n++
		if seen[c] {
			continue
		}
		seen[c] = true
		switch c.kind {
		case watchChangeList:
			lists = append(lists, c.id)
		case watchChangePerson:
			people = append(people, c.id)
		case watchChangeAll:
			rows.Close()
			return 0, fmt.Errorf("%w: seq %d replaced the project's lists", errWatchReload, sq)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("data: read watchlist changes: %w", err)
	}
	if n > maxWatchChanges {
		return 0, fmt.Errorf("%w: more than %d changes since seq %d", errWatchReload, maxWatchChanges, set.seq)
	}
	if first != set.seq+1 {
		// Every seq logs at least one change: the first one missing was
		// pruned (this process was far behind).
		return 0, fmt.Errorf("%w: changes after seq %d start at %d", errWatchReload, set.seq, first)
	}

	type storedList struct {
		name      string
		threshold float32
		enabled   bool
	}
	stored := map[string]storedList{}
	for _, chunk := range chunks(lists, 500) {
		var w store.Where
		c, a := w.Eq("project_id", projectID).In("id", chunk).SQL()
		rows, err := s.db.Query(ctx, "SELECT id, name, threshold, enabled FROM watchlists"+c, a...)
		if err != nil {
			return 0, fmt.Errorf("data: read watchlists: %w", err)
		}
		for rows.Next() {
			var id string
			var l storedList
			var th float64
			var enabled int
			if err := rows.Scan(&id, &l.name, &th, &enabled); err != nil {
				rows.Close()
				return 0, fmt.Errorf("data: read watchlists: %w", err)
			}
			l.threshold, l.enabled = float32(th), enabled != 0
			stored[id] = l
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, fmt.Errorf("data: read watchlists: %w", err)
		}
	}
	// A list newly enabled (or created) brings its members: read them as
	// if they had changed. Only the loader writes the set, so reading its
	// lists here without the lock is safe.
	var added []string
	for _, id := range lists {
		if l, ok := stored[id]; ok && l.enabled {
			if _, had := set.listByID[id]; !had {
				added = append(added, id)
			}
		}
	}
	for _, chunk := range chunks(added, 500) {
		var w store.Where
		c, a := w.In("list_id", chunk).SQL()
		rows, err := s.db.Query(ctx, "SELECT person_id FROM watchlist_members"+c, a...)
		if err != nil {
			return 0, fmt.Errorf("data: read watchlist members: %w", err)
		}
		for rows.Next() {
			var c watchChange
			c.kind = watchChangePerson
			if err := rows.Scan(&c.id); err != nil {
				rows.Close()
				return 0, fmt.Errorf("data: read watchlist members: %w", err)
			}
			if !seen[c] {
				seen[c] = true
				people = append(people, c.id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, fmt.Errorf("data: read watchlist members: %w", err)
		}
	}
	read, err := s.readWatchPeople(ctx, projectID, people)
	if err != nil {
		return 0, err
	}

	set.mu.Lock()
	defer set.mu.Unlock()
	for _, id := range lists {
		if l, ok := stored[id]; ok && l.enabled {
			set.putList(id, l.name, l.threshold)
		} else {
			set.dropList(id)
		}
	}
	s.m.watchFacesLoaded.Add(float64(set.replacePeople(people, read)))
	set.seq = seq
	return n, nil
}

// storedPerson is a person as the store holds it, for a matcher.
type storedPerson struct {
	name, external string
	lists          []string
	faces          [][]float32 // unit length
}

// readWatchPeople reads the people of idList that projectID holds, with
// their lists and reference faces.
func (s *Service) readWatchPeople(ctx context.Context, projectID string, idList []string) (map[string]*storedPerson, error) {
	out := map[string]*storedPerson{}
	for _, chunk := range chunks(idList, 500) {
		var w store.Where
		c, a := w.Eq("project_id", projectID).In("id", chunk).SQL()
		rows, err := s.db.Query(ctx, "SELECT id, name, external_id FROM watchlist_people"+c, a...)
		if err != nil {
			return nil, fmt.Errorf("data: read watchlist people: %w", err)
		}
		for rows.Next() {
			var id string
			p := &storedPerson{}
			if err := rows.Scan(&id, &p.name, &p.external); err != nil {
				rows.Close()
				return nil, fmt.Errorf("data: read watchlist people: %w", err)
			}
			out[id] = p
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("data: read watchlist people: %w", err)
		}
		var mw store.Where
		c, a = mw.In("person_id", chunk).SQL()
		rows, err = s.db.Query(ctx, "SELECT person_id, list_id FROM watchlist_members"+c, a...)
		if err != nil {
			return nil, fmt.Errorf("data: read watchlist members: %w", err)
		}
		for rows.Next() {
			var pid, lid string
			if err := rows.Scan(&pid, &lid); err != nil {
				rows.Close()
				return nil, fmt.Errorf("data: read watchlist members: %w", err)
			}
			if p := out[pid]; p != nil {
				p.lists = append(p.lists, lid)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("data: read watchlist members: %w", err)
		}
		rows, err = s.db.Query(ctx, "SELECT id, person_id, dim, vector FROM watchlist_faces"+c+" ORDER BY id", a...)
		if err != nil {
			return nil, fmt.Errorf("data: read reference faces: %w", err)
		}
		for rows.Next() {
			var id, pid, enc string
			var dim int
			if err := rows.Scan(&id, &pid, &dim, &enc); err != nil {
				rows.Close()
				return nil, fmt.Errorf("data: read reference faces: %w", err)
			}
			p := out[pid]
			if p == nil {
				continue
			}
			v, err := decodeVector(enc, dim)
			if err != nil {
				s.log.Warn("reference face unreadable", "face", id, "err", err)
				continue
			}
			p.faces = append(p.faces, vectors.Normalize(v))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("data: read reference faces: %w", err)
		}
	}
	return out, nil
}

func chunks(v []string, n int) [][]string {
	var out [][]string
	for len(v) > n {
		out = append(out, v[:n])
		v = v[n:]
	}
	if len(v) > 0 {
		out = append(out, v)
	}
	return out
}

// putList adds an enabled list or updates its name and threshold.
func (set *watchSet) putList(id, name string, threshold float32) {
	if slot, ok := set.listByID[id]; ok {
		set.lists[slot] = &watchList{id: id, name: name, threshold: threshold}
		return
	}
	l := &watchList{id: id, name: name, threshold: threshold}
	for i, x := range set.lists {
		if x == nil {
			set.lists[i], set.listByID[id] = l, int32(i)
			return
		}
	}
	set.listByID[id] = int32(len(set.lists))
	set.lists = append(set.lists, l)
}

// dropList removes a list (deleted or disabled), and the people on no
// other enabled list.
func (set *watchSet) dropList(id string) {
	slot, ok := set.listByID[id]
	if !ok {
		return
	}
	delete(set.listByID, id)
	set.lists[slot] = nil
	gone := map[int32]bool{}
	for i, p := range set.people {
		if p == nil {
			continue
		}
		kept := p.lists[:0]
		for _, l := range p.lists {
			if l != slot {
				kept = append(kept, l)
			}
		}
		p.lists = kept
		if len(kept) == 0 {
			gone[int32(i)] = true
		}
	}
	set.removePeople(gone)
}

// replacePeople removes the people of idList from the set and adds back
// those read that are on an enabled list with a reference face; it
// returns how many reference faces it added.
func (set *watchSet) replacePeople(idList []string, read map[string]*storedPerson) int {
	gone := map[int32]bool{}
	for _, id := range idList {
		if slot, ok := set.personByID[id]; ok {
			gone[slot] = true
		}
	}
	set.removePeople(gone)
	added := 0
	for _, id := range idList {
		p := read[id]
		if p == nil || len(p.faces) == 0 {
			continue // deleted, or nothing to match
		}
		wp := &watchPerson{id: id, name: p.name, external: p.external}
		for _, l := range p.lists {
			if slot, ok := set.listByID[l]; ok {
				wp.lists = append(wp.lists, slot)
			}
		}
		if len(wp.lists) == 0 {
			continue // on no enabled list
		}
		slot := set.addPerson(wp)
		for _, f := range p.faces {
			set.addRow(slot, f)
			added++
		}
	}
	return added
}

// addPerson puts p in a free slot and returns it.
func (set *watchSet) addPerson(p *watchPerson) int32 {
	var slot int32
	if n := len(set.freePeople); n > 0 {
		slot = set.freePeople[n-1]
		set.freePeople = set.freePeople[:n-1]
		set.people[slot] = p
	} else {
		slot = int32(len(set.people))
		set.people = append(set.people, p)
	}
	set.personByID[p.id] = slot
	return slot
}

// addRow adds a unit-length reference face of the person in slot.
func (set *watchSet) addRow(slot int32, v []float32) {
	m := set.byDim[len(v)]
	if m == nil {
		m = &watchMatrix{dim: len(v)}
		set.byDim[len(v)] = m
	}
	m.rows = append(m.rows, v...)
	m.person = append(m.person, slot)
}

// removePeople removes the people in slots and their rows, and frees the
// slots. Rows from each matrix's end fill the holes, so removing one
// person moves at most its own rows' count of rows, not the matrix.
func (set *watchSet) removePeople(slots map[int32]bool) {
	if len(slots) == 0 {
		return
	}
	for dim, m := range set.byDim {
		var holes []int
		for r, p := range m.person {
			if slots[p] {
				holes = append(holes, r)
			}
		}
		if len(holes) == 0 {
			continue
		}
		n, hi, last := len(m.person), len(holes)-1, len(m.person)-1
		for _, h := range holes {
			for hi >= 0 && last == holes[hi] {
				last, hi = last-1, hi-1
			}
			if last < h {
				break
			}
			copy(m.rows[h*dim:(h+1)*dim], m.rows[last*dim:(last+1)*dim])
			m.person[h] = m.person[last]
			last--
		}
		n -= len(holes)
		m.rows, m.person = m.rows[:n*dim], m.person[:n]
	}
	for slot := range slots {
		if p := set.people[slot]; p != nil {
			delete(set.personByID, p.id)
			set.people[slot] = nil
			set.freePeople = append(set.freePeople, slot)
		}
	}
}

func newPersonID() string { return ids.New("psn") }
