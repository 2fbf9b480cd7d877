package data

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/store"
)

// WatchlistSet is the whole of a project's watchlists, as a cloud sends
// them to its edge nodes (internal/edge): every list, enabled or not, the
// people with their memberships, and their reference faces' embeddings as
// stored (little-endian float32 values, base64).
type WatchlistSet struct {
	// Version is the project's watchlist version the set reflects
	// (NoWatchlistVersion where the project never had a list).
	Version string       `json:"Version"`
	Lists   []SyncList   `json:"Lists"`
	People  []SyncPerson `json:"People"`
	Faces   []SyncFace   `json:"Faces"`
	Members []SyncMember `json:"Members"`
}

// SyncList is a list of a WatchlistSet.
type SyncList struct {
	ID          string  `json:"Id"`
	Name        string  `json:"Name"`
	Description string  `json:"Description"`
	Threshold   float64 `json:"Threshold"`
	Enabled     bool    `json:"Enabled"`
	CreatedMs   int64   `json:"CreatedMs"`
	UpdatedMs   int64   `json:"UpdatedMs"`
}

// SyncPerson is a person of a WatchlistSet.
type SyncPerson struct {
	ID         string `json:"Id"`
	Name       string `json:"Name"`
	ExternalID string `json:"ExternalId"`
	Notes      string `json:"Notes"`
	CreatedMs  int64  `json:"CreatedMs"`
	UpdatedMs  int64  `json:"UpdatedMs"`
}

// SyncFace is a reference face of a WatchlistSet: Vector is the stored
// embedding of Dim values.
type SyncFace struct {
	ID          string          `json:"Id"`
	PersonID    string          `json:"PersonId"`
	AlgorithmID string          `json:"AlgorithmId"`
	Box         json.RawMessage `json:"Box"`
	Dim         int             `json:"Dim"`
	Vector      string          `json:"Vector"`
	CreatedMs   int64           `json:"CreatedMs"`
}

// SyncMember puts a person of a WatchlistSet on one of its lists.
type SyncMember struct {
	ListID   string `json:"ListId"`
	PersonID string `json:"PersonId"`
}

// NoWatchlistVersion is the version of a project that never had a list.
const NoWatchlistVersion = "none"

// ErrWatchlistsTooLarge says a project's watchlists do not fit the bytes
// the caller can send; the error names their size.
var ErrWatchlistsTooLarge = errors.New("data: watchlists too large")

// watchSyncRow is the bytes a row adds to a set besides its text: JSON
// names and punctuation, rounded up.
const watchSyncRow = 200

// WatchlistVersion returns projectID's watchlist version:
// NoWatchlistVersion where it never had a list.
func (s *Service) WatchlistVersion(ctx context.Context, projectID string) (string, error) {
	var v string
	err := s.db.QueryRow(ctx, "SELECT version FROM watchlist_versions WHERE project_id = ?", projectID).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return NoWatchlistVersion, nil
	}
	if err != nil {
		return "", fmt.Errorf("data: watchlist version: %w", err)
	}
	return v, nil
}

// ExportWatchlists reads projectID's whole watchlist set, consistent at
// one version: every change bumps the version in its own transaction, so
// a version read the same before and after the rows means no change
// committed between (on any isolation level); a busy project is read
// again, a few times. A set over maxBytes (its JSON, about) is refused
// with ErrWatchlistsTooLarge as soon as the reading passes it.
func (s *Service) ExportWatchlists(ctx context.Context, projectID string, maxBytes int) (WatchlistSet, error) {
	for range 3 {
		before, err := s.WatchlistVersion(ctx, projectID)
		if err != nil {
			return WatchlistSet{}, err
		}
		set, err := s.readWatchlistSet(ctx, projectID, maxBytes)
		if err != nil {
			return WatchlistSet{}, err
		}
		after, err := s.WatchlistVersion(ctx, projectID)
		if err != nil {
			return WatchlistSet{}, err
		}
		if before == after {
			set.Version = after
			return set, nil
		}
	}
	return WatchlistSet{}, fmt.Errorf("data: watchlists of project %s changed while read three times; try later", projectID)
}

func (s *Service) readWatchlistSet(ctx context.Context, projectID string, maxBytes int) (WatchlistSet, error) {
	set := WatchlistSet{Lists: []SyncList{}, People: []SyncPerson{}, Faces: []SyncFace{}, Members: []SyncMember{}}
	size := 0
	grow := func(n int) error {
		size += n + watchSyncRow
		if size > maxBytes {
			return fmt.Errorf("%w: project %s's set passes %d bytes (%d lists, %d people, %d reference faces read so far)",
				ErrWatchlistsTooLarge, projectID, maxBytes, len(set.Lists), len(set.People), len(set.Faces))
		}
		return nil
	}
	if _, err := exportRows(ctx, s, "watchlists", &set.Lists, grow, func(rows *sql.Rows) (SyncList, int, error) {
		var l SyncList
		var enabled int
		err := rows.Scan(&l.ID, &l.Name, &l.Description, &l.Threshold, &enabled, &l.CreatedMs, &l.UpdatedMs)
		l.Enabled = enabled != 0
		return l, len(l.Name) + len(l.Description), err
	}, "SELECT id, name, description, threshold, enabled, created_at, updated_at FROM watchlists WHERE project_id = ? ORDER BY id", projectID); err != nil {
		return set, err
	}
	if _, err := exportRows(ctx, s, "watchlist people", &set.People, grow, func(rows *sql.Rows) (SyncPerson, int, error) {
		var p SyncPerson
		err := rows.Scan(&p.ID, &p.Name, &p.ExternalID, &p.Notes, &p.CreatedMs, &p.UpdatedMs)
		return p, len(p.Name) + len(p.ExternalID) + len(p.Notes), err
	}, "SELECT id, name, external_id, notes, created_at, updated_at FROM watchlist_people WHERE project_id = ? ORDER BY id", projectID); err != nil {
		return set, err
	}
	if _, err := exportRows(ctx, s, "watchlist members", &set.Members, grow, func(rows *sql.Rows) (SyncMember, int, error) {
		var m SyncMember
		err := rows.Scan(&m.ListID, &m.PersonID)
		return m, 0, err
	}, "SELECT list_id, person_id FROM watchlist_members WHERE project_id = ? ORDER BY list_id, person_id", projectID); err != nil {
		return set, err
	}
	// The faces in pages by id, as loadWatchSet reads them.
	const page = 2000
	after := ""
	for {
		read, err := exportRows(ctx, s, "reference faces", &set.Faces, grow, func(rows *sql.Rows) (SyncFace, int, error) {
			var f SyncFace
			var box string
			err := rows.Scan(&f.ID, &f.PersonID, &f.AlgorithmID, &box, &f.Dim, &f.Vector, &f.CreatedMs)
			f.Box, after = json.RawMessage(box), f.ID
			return f, len(f.Vector) + len(box), err
		}, "SELECT id, person_id, algorithm_id, box, dim, vector, created_at FROM watchlist_faces WHERE project_id = ? AND id > ? ORDER BY id LIMIT "+fmt.Sprint(page), projectID, after)
		if err != nil || read < page {
			return set, err
		}
	}
}

// exportRows appends the rows of query q, each read by scan (the row and
// its text's bytes), to out, counting each with grow; it returns how many
// rows it read. Errors other than grow's name what was read.
func exportRows[T any](ctx context.Context, s *Service, what string, out *[]T, grow func(int) error,
	scan func(*sql.Rows) (T, int, error), q string, args ...any) (int, error) {
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("data: export %s: %w", what, err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		v, size, err := scan(rows)
		if err != nil {
			return n, fmt.Errorf("data: export %s: %w", what, err)
		}
		*out = append(*out, v)
		n++
		if err := grow(size); err != nil {
			return n, err
		}
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("data: export %s: %w", what, err)
	}
	return n, nil
}

// ReplaceWatchlists makes set the whole of projectID's watchlists, in one
// transaction: the project's lists, people, memberships and reference
// faces are deleted and set's inserted under their ids, and the project's
// version is bumped so that matchers reload it whole. An edge applies its
// cloud's set with it: lists created on the edge are gone after.
func (s *Service) ReplaceWatchlists(ctx context.Context, projectID string, set WatchlistSet) error {
	if err := s.projectExists(ctx, projectID); err != nil {
		return err
	}
	if len(set.Lists) > MaxWatchlists || len(set.People) > MaxWatchlistPeople || len(set.Faces) > MaxWatchlistFaces {
		return api.Errorf(api.LimitExceeded, "a set of %d lists, %d people and %d reference faces; at most %d, %d and %d",
			len(set.Lists), len(set.People), len(set.Faces), MaxWatchlists, MaxWatchlistPeople, MaxWatchlistFaces)
	}
	for _, f := range set.Faces {
		if _, err := decodeVector(f.Vector, f.Dim); err != nil {
			return fmt.Errorf("data: reference face %s: %w", f.ID, err)
		}
	}
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		for _, table := range []string{"watchlist_members", "watchlist_faces", "watchlist_people", "watchlists"} {
			if _, err := tx.Exec(ctx, "DELETE FROM "+table+" WHERE project_id = ?", projectID); err != nil {
				return fmt.Errorf("data: replace watchlists: %w", err)
			}
		}
		for _, l := range set.Lists {
			if _, err := tx.Exec(ctx, "INSERT INTO watchlists (id, project_id, name, description, threshold, enabled, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
				l.ID, projectID, l.Name, l.Description, l.Threshold, boolInt(l.Enabled), l.CreatedMs, l.UpdatedMs); err != nil {
				return fmt.Errorf("data: replace watchlists: list %s: %w", l.ID, err)
			}
		}
		for _, p := range set.People {
			if _, err := tx.Exec(ctx, "INSERT INTO watchlist_people (id, project_id, name, external_id, notes, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
				p.ID, projectID, p.Name, p.ExternalID, p.Notes, p.CreatedMs, p.UpdatedMs); err != nil {
				return fmt.Errorf("data: replace watchlists: person %s: %w", p.ID, err)
			}
		}
		for _, m := range set.Members {
			if _, err := tx.Exec(ctx, "INSERT INTO watchlist_members (list_id, person_id, project_id) VALUES (?, ?, ?)", m.ListID, m.PersonID, projectID); err != nil {
				return fmt.Errorf("data: replace watchlists: member %s of %s: %w", m.PersonID, m.ListID, err)
			}
		}
		for _, f := range set.Faces {
			box := string(f.Box)
			if box == "" || box == "null" {
				box = "[]"
			}
			if _, err := tx.Exec(ctx, "INSERT INTO watchlist_faces (id, person_id, project_id, algorithm_id, box, dim, vector, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
				f.ID, f.PersonID, projectID, f.AlgorithmID, box, f.Dim, f.Vector, f.CreatedMs); err != nil {
				return fmt.Errorf("data: replace watchlists: reference face %s: %w", f.ID, err)
			}
		}
		return s.bumpWatchVersion(ctx, tx, projectID, watchChange{kind: watchChangeAll})
	})
}
