package data

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/ids"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/vectors"
)

// Watchlist limits. A project's reference faces are held in memory by
// every process that matches (the matcher's matrix): 50,000 faces of
// 1024 values are 200 MB, of 128 values 25 MB.
const (
	MaxWatchlists       = 100     // lists per project
	MaxWatchlistPeople  = 20000   // people per project
	MaxWatchlistFaces   = 50000   // reference faces per project
	MaxPersonFaces      = 10      // reference faces per person
	MaxPersonWatchlists = 20      // lists a person belongs to
	maxWatchNameLen     = 128     // bytes of a list's or person's name, an external id
	maxWatchTextLen     = 2048    // bytes of a person's notes (a list's description: 1024)
	maxWatchImage       = 4 << 20 // bytes of one reference photo, base64
)

var (
	watchlistRead  = api.Permission{Resource: "watchlist", Access: api.Read}
	watchlistWrite = api.Permission{Resource: "watchlist", Access: api.Write}
)

// Watchlist is a list of people with the similarity a face needs to hit
// one of them.
type Watchlist struct {
	ID, ProjectID, Name, Description string
	Threshold                        float64
	Enabled                          bool
	People                           int
	CreatedAt, UpdatedAt             int64
}

// ReferenceFace is one of a person's reference faces.
type ReferenceFace struct {
	ID, AlgorithmID string
	Box             []int
	Dim             int
}

// WatchPerson is a person on watchlists.
type WatchPerson struct {
	ID, ProjectID, Name, ExternalID, Notes string
	Lists                                  []string
	Faces                                  []ReferenceFace
	CreatedAt, UpdatedAt                   int64
}

// watchChange names a list or person a transaction changed.
type watchChange struct {
	kind string // watchChangeList or watchChangePerson
	id   string
}

const (
	watchChangeList   = "list"
	watchChangePerson = "person"
	// watchChangeAll says the seq replaced the project's lists whole
	// (ReplaceWatchlists): matchers reload the project.
	watchChangeAll = "all"
	// watchChangesKept is how many of a project's seqs keep their change
	// rows: a matcher further behind reloads the whole project.
	watchChangesKept = 1000
)

func listChange(id string) watchChange   { return watchChange{watchChangeList, id} }
func personChange(id string) watchChange { return watchChange{watchChangePerson, id} }

// bumpWatchVersion records, in tx, that projectID's watchlists changed:
// it increments the project's seq and logs the lists and people changed
// under it, and matchers in every process reload just those when they see
// the new seq. Call it after the transaction's other writes: the
// increment locks the project's row until commit, so seqs commit in order
// and a matcher that reads seq N finds every change up to N.
func (s *Service) bumpWatchVersion(ctx context.Context, tx *store.Tx, projectID string, changes ...watchChange) error {
	if _, err := tx.Exec(ctx, "INSERT INTO watchlist_versions (project_id, version) VALUES (?, ?)"+
		s.db.Dialect().OnConflict([]string{"project_id"}, "version"), projectID, ids.New("v")); err != nil {
		return fmt.Errorf("data: watchlist version: %w", err)
	}
	if _, err := tx.Exec(ctx, "UPDATE watchlist_versions SET seq = seq + 1 WHERE project_id = ?", projectID); err != nil {
		return fmt.Errorf("data: watchlist version: %w", err)
	}
	var seq int64
	if err := tx.QueryRow(ctx, "SELECT seq FROM watchlist_versions WHERE project_id = ?", projectID).Scan(&seq); err != nil {
		return fmt.Errorf("data: watchlist version: %w", err)
	}
	seen := map[watchChange]bool{}
	for _, c := range changes {
		if seen[c] {
			continue
		}
		seen[c] = true
		if _, err := tx.Exec(ctx, "INSERT INTO watchlist_changes (project_id, seq, kind, ref_id) VALUES (?, ?, ?, ?)", projectID, seq, c.kind, c.id); err != nil {
			return fmt.Errorf("data: watchlist change: %w", err)
		}
	}
	if seq%64 == 0 && seq > watchChangesKept {
		if _, err := tx.Exec(ctx, "DELETE FROM watchlist_changes WHERE project_id = ? AND seq <= ?", projectID, seq-watchChangesKept); err != nil {
			return fmt.Errorf("data: prune watchlist changes: %w", err)
		}
	}
	return nil
}

func checkText(field, v string, max int, required bool) error {
	if required && strings.TrimSpace(v) == "" {
		return api.Missing(field)
	}
	if len(v) > max || !utf8.ValidString(v) {
		return api.InvalidValue(field, "at most %d bytes of UTF-8", max)
	}
	return nil
}

func checkThreshold(v float64) error {
	if !(v > 0 && v <= 1) {
		return api.InvalidValue("Threshold", "%v: a cosine similarity above 0 and at most 1 (docs/search.md gives values per model)", v)
	}
	return nil
}

func (s *Service) count(ctx context.Context, tx *store.Tx, q string, args ...any) (int, error) {
	var n int
	if err := tx.QueryRow(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("data: count: %w", err)
	}
	return n, nil
}

// createWatchlist stores a new list.
func (s *Service) createWatchlist(ctx context.Context, w *Watchlist) error {
	if err := s.projectExists(ctx, w.ProjectID); err != nil {
		return err
	}
	w.ID = ids.New("wl")
	now := s.o.Now().UnixMilli()
	w.CreatedAt, w.UpdatedAt = now, now
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		n, err := s.count(ctx, tx, "SELECT COUNT(*) FROM watchlists WHERE project_id = ?", w.ProjectID)
		if err != nil {
			return err
		}
		if n >= MaxWatchlists {
			return api.Errorf(api.LimitExceeded, "project %s has %d watchlists; at most %d", w.ProjectID, n, MaxWatchlists)
		}
		if n, err = s.count(ctx, tx, "SELECT COUNT(*) FROM watchlists WHERE project_id = ? AND name = ?", w.ProjectID, w.Name); err != nil {
			return err
		} else if n > 0 {
			return listNameInUse(w)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO watchlists (id, project_id, name, description, threshold, enabled, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			w.ID, w.ProjectID, w.Name, w.Description, w.Threshold, boolInt(w.Enabled), now, now); err != nil {
			if s.db.IsUniqueViolation(err) { // a concurrent create of the same name
				return listNameInUse(w)
			}
			return fmt.Errorf("data: insert watchlist: %w", err)
		}
		return s.bumpWatchVersion(ctx, tx, w.ProjectID, listChange(w.ID))
	})
}

// listNameInUse is the error of a second list of w's name in its project.
func listNameInUse(w *Watchlist) error {
	return api.Errorf(api.ResourceInUse, "Name: project %s has a watchlist named %q", w.ProjectID, w.Name)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

const watchlistColumns = "w.id, w.project_id, w.name, w.description, w.threshold, w.enabled, w.created_at, w.updated_at, " +
	"(SELECT COUNT(*) FROM watchlist_members m WHERE m.list_id = w.id)"

func scanWatchlist(row interface{ Scan(...any) error }) (Watchlist, error) {
	var w Watchlist
	var enabled int
	err := row.Scan(&w.ID, &w.ProjectID, &w.Name, &w.Description, &w.Threshold, &enabled, &w.CreatedAt, &w.UpdatedAt, &w.People)
	w.Enabled = enabled != 0
	return w, err
}

// watchlist returns one list of a project that in reaches, or NotFound.
func (s *Service) watchlist(ctx context.Context, in store.Projects, id string) (Watchlist, error) {
	var w store.Where
	c, a := w.InProjects("w.project_id", in).Eq("w.id", id).SQL()
	l, err := scanWatchlist(s.db.QueryRow(ctx, "SELECT "+watchlistColumns+" FROM watchlists w"+c, a...))
	if errors.Is(err, sql.ErrNoRows) {
		return l, api.NotFound("WatchlistId", id)
	}
	if err != nil {
		return l, fmt.Errorf("data: read watchlist: %w", err)
	}
	return l, nil
}

// watchlists lists the lists in reaches, by name.
func (s *Service) watchlists(ctx context.Context, in store.Projects, idList []string, off, lim int) ([]Watchlist, int, error) {
	var w store.Where
	c, a := w.InProjects("w.project_id", in).In("w.id", idList).SQL()
	var total int
	if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM watchlists w"+c, a...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("data: count watchlists: %w", err)
	}
	rows, err := s.db.Query(ctx, "SELECT "+watchlistColumns+" FROM watchlists w"+c+" ORDER BY w.project_id, w.name LIMIT ? OFFSET ?", append(a, lim, off)...)
	if err != nil {
		return nil, 0, fmt.Errorf("data: list watchlists: %w", err)
	}
	defer rows.Close()
	var out []Watchlist
	for rows.Next() {
		l, err := scanWatchlist(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("data: list watchlists: %w", err)
		}
		out = append(out, l)
	}
	return out, total, rows.Err()
}

// checkLists checks that every list of idList is one of projectID's, in
// tx; field names the request's field.
func (s *Service) checkLists(ctx context.Context, tx *store.Tx, projectID, field string, idList []string) error {
	if len(idList) > MaxPersonWatchlists {
		return api.InvalidValue(field, "%d lists; a person belongs to at most %d", len(idList), MaxPersonWatchlists)
	}
	seen := map[string]bool{}
	for i, id := range idList {
		if seen[id] {
			return api.InvalidValue(fmt.Sprintf("%s[%d]", field, i), "%s is named twice", id)
		}
		seen[id] = true
		n, err := s.count(ctx, tx, "SELECT COUNT(*) FROM watchlists WHERE id = ? AND project_id = ?", id, projectID)
		if err != nil {
			return err
		}
		if n == 0 {
			return api.NotFound(fmt.Sprintf("%s[%d]", field, i), id)
		}
	}
	return nil
}

// newFace is a reference face to store: its embedding and where it came
// from.
type newFace struct {
	ReferenceFace
	vector []float32
}

// insertFaces stores faces of personID, in tx, within the limits.
func (s *Service) insertFaces(ctx context.Context, tx *store.Tx, projectID, personID string, faces []newFace) error {
	if len(faces) == 0 {
		return nil
	}
	n, err := s.count(ctx, tx, "SELECT COUNT(*) FROM watchlist_faces WHERE person_id = ?", personID)
	if err != nil {
		return err
	}
	if n+len(faces) > MaxPersonFaces {
		return api.Errorf(api.LimitExceeded, "a person has at most %d reference faces; this one would have %d", MaxPersonFaces, n+len(faces))
	}
	if n, err = s.count(ctx, tx, "SELECT COUNT(*) FROM watchlist_faces WHERE project_id = ?", projectID); err != nil {
		return err
	}
	if n+len(faces) > MaxWatchlistFaces {
		return api.Errorf(api.LimitExceeded, "project %s has %d reference faces; at most %d", projectID, n, MaxWatchlistFaces)
	}
	now := s.o.Now().UnixMilli()
	for i := range faces {
		f := &faces[i]
		f.ID = ids.New("wf")
		box, _ := json.Marshal(f.Box)
		if f.Box == nil {
			box = []byte("[]")
		}
		if _, err := tx.Exec(ctx, "INSERT INTO watchlist_faces (id, person_id, project_id, algorithm_id, box, dim, vector, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			f.ID, personID, projectID, f.AlgorithmID, string(box), len(f.vector), encodeVector(f.vector), now); err != nil {
			return fmt.Errorf("data: insert reference face: %w", err)
		}
	}
	return nil
}

// setMembership replaces personID's lists, in tx.
func (s *Service) setMembership(ctx context.Context, tx *store.Tx, projectID, personID string, lists []string) error {
	if _, err := tx.Exec(ctx, "DELETE FROM watchlist_members WHERE person_id = ?", personID); err != nil {
		return fmt.Errorf("data: watchlist members: %w", err)
	}
	for _, l := range lists {
		if _, err := tx.Exec(ctx, "INSERT INTO watchlist_members (list_id, person_id, project_id) VALUES (?, ?, ?)", l, personID, projectID); err != nil {
			return fmt.Errorf("data: watchlist members: %w", err)
		}
	}
	return nil
}

// person returns one person that in reaches, or NotFound.
func (s *Service) person(ctx context.Context, in store.Projects, id string) (WatchPerson, error) {
	ps, _, err := s.people(ctx, in, []string{id}, nil, 0, 1)
	if err != nil {
		return WatchPerson{}, err
	}
	if len(ps) == 0 {
		return WatchPerson{}, api.NotFound("PersonId", id)
	}
	return ps[0], nil
}

// people lists the people in reaches (of lists, when given), by name.
func (s *Service) people(ctx context.Context, in store.Projects, personIDs, lists []string, off, lim int) ([]WatchPerson, int, error) {
	var w store.Where
	w.InProjects("p.project_id", in).In("p.id", personIDs)
	if len(lists) > 0 {
		var m store.Where
		c, a := m.In("list_id", lists).SQL()
		w.Add("p.id IN (SELECT person_id FROM watchlist_members"+c+")", a...)
	}
	c, a := w.SQL()
	var total int
	if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM watchlist_people p"+c, a...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("data: count people: %w", err)
	}
	rows, err := s.db.Query(ctx, "SELECT p.id, p.project_id, p.name, p.external_id, p.notes, p.created_at, p.updated_at FROM watchlist_people p"+c+
		" ORDER BY p.project_id, p.name, p.id LIMIT ? OFFSET ?", append(a, lim, off)...)
	if err != nil {
		return nil, 0, fmt.Errorf("data: list people: %w", err)
	}
	var out []WatchPerson
	byID := map[string]int{}
	for rows.Next() {
		var p WatchPerson
		if err := rows.Scan(&p.ID, &p.ProjectID, &p.Name, &p.ExternalID, &p.Notes, &p.CreatedAt, &p.UpdatedAt); err != nil {
			rows.Close()
			return nil, 0, fmt.Errorf("data: list people: %w", err)
		}
		p.Lists, p.Faces = []string{}, []ReferenceFace{}
		byID[p.ID] = len(out)
		out = append(out, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(out) == 0 {
		return out, total, err
	}
	found := make([]string, len(out))
	for i, p := range out {
		found[i] = p.ID
	}
	var mw store.Where
	mc, ma := mw.In("person_id", found).SQL()
	rows, err = s.db.Query(ctx, "SELECT person_id, list_id FROM watchlist_members"+mc+" ORDER BY list_id", ma...)
	if err != nil {
		return nil, 0, fmt.Errorf("data: list people's lists: %w", err)
	}
	for rows.Next() {
		var pid, lid string
		if err := rows.Scan(&pid, &lid); err != nil {
			rows.Close()
			return nil, 0, err
		}
		out[byID[pid]].Lists = append(out[byID[pid]].Lists, lid)
	}
	rows.Close()
	rows, err = s.db.Query(ctx, "SELECT person_id, id, algorithm_id, box, dim FROM watchlist_faces"+mc+" ORDER BY created_at, id", ma...)
	if err != nil {
		return nil, 0, fmt.Errorf("data: list people's faces: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var pid, box string
		var f ReferenceFace
		if err := rows.Scan(&pid, &f.ID, &f.AlgorithmID, &box, &f.Dim); err != nil {
			return nil, 0, err
		}
		_ = json.Unmarshal([]byte(box), &f.Box)
		out[byID[pid]].Faces = append(out[byID[pid]].Faces, f)
	}
	return out, total, rows.Err()
}

// faceInputs turns a request's faces into embeddings: a photo through the
// face embedder, or an embedding as given. field names the request's list.
func (s *Service) faceInputs(ctx context.Context, c *api.Caller, field string, in []FaceInput) ([]newFace, error) {
	out := make([]newFace, 0, len(in))
	for i, f := range in {
		at := func(name string) string { return fmt.Sprintf("%s[%d].%s", field, i, name) }
		switch {
		case f.Image != "" && len(f.Embedding) > 0:
			return nil, api.InvalidValue(at("Image"), "give Image (with AlgorithmId) or Embedding, not both")
		case f.Image != "":
			if f.AlgorithmId == "" {
				return nil, api.Missing(at("AlgorithmId"))
			}
			if len(f.Image) > maxWatchImage {
				return nil, api.InvalidValue(at("Image"), "%d bytes of base64; at most %d", len(f.Image), maxWatchImage)
			}
			if len(f.Box) != 0 && (len(f.Box) != 4 || f.Box[0] < 0 || f.Box[1] < 0 || f.Box[2] <= 0 || f.Box[3] <= 0) {
				return nil, api.InvalidValue(at("Box"), "%v: [x, y, w, h] with w and h above 0", f.Box)
			}
			img, err := base64.StdEncoding.DecodeString(f.Image)
			if err != nil {
				return nil, api.InvalidValue(at("Image"), "not base64: %v", err)
			}
			if s.embedder == nil {
				return nil, api.Errorf(api.ResourceUnavailable, "%s: reference photos need the algorithms module in this process; give Embedding", at("Image"))
			}
			v, box, err := s.embedder.EmbedFace(ctx, c, f.AlgorithmId, "Image", img, f.Box)
			if err != nil {
				if e, ok := api.AsError(err); ok {
					// The embedder names Image, Box or AlgorithmId: say which face.
					e2 := *e
					e2.Message = field + fmt.Sprintf("[%d].", i) + e.Message
					return nil, &e2
				}
				return nil, err
			}
			if err := vectors.CheckVector(v, "embedding"); err != nil {
				return nil, api.InvalidValue(at("AlgorithmId"), "algorithm %s answered an unusable embedding: %s", f.AlgorithmId, trimPrefix(err))
			}
			out = append(out, newFace{ReferenceFace: ReferenceFace{AlgorithmID: f.AlgorithmId, Box: box, Dim: len(v)}, vector: v})
		case len(f.Embedding) > 0:
			v := make([]float32, len(f.Embedding))
			for j, x := range f.Embedding {
				v[j] = float32(x)
			}
			if err := vectors.CheckVector(v, at("Embedding")); err != nil {
				return nil, api.InvalidValue(at("Embedding"), "%s", trimPrefix(err))
			}
			out = append(out, newFace{ReferenceFace: ReferenceFace{AlgorithmID: f.AlgorithmId, Dim: len(v)}, vector: v})
		default:
			return nil, api.Missing(at("Image") + " or " + at("Embedding"))
		}
	}
	return out, nil
}
