package algorepo

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tianshu-ai/tianshu/internal/algorithm"
	"github.com/tianshu-ai/tianshu/internal/store"
)

// GetVersion returns one stored version ("" = the current one).
func (s *Service) GetVersion(ctx context.Context, algID, version string) (*VersionRow, error) {
	return s.version(ctx, algID, version)
}

// Import stores version def of algorithm algID as another platform (the
// cloud, on an edge) made it, under the same ids, creating the algorithm
// in projectID when it is new here, and makes the version desired running
// (applying it here at once). current makes it the algorithm's current
// version, which flow nodes naming no version call. A version already here
// keeps its definition (versions are immutable) and is only started. The
// values of the version's secrets (def.Secrets, one for each of
// def.SecretNames) are sealed here as CreateAlgorithmVersion seals them:
// never shown by this platform's API.
func (s *Service) Import(ctx context.Context, projectID, algID, name string, def algorithm.Version, current bool) error {
	def.AlgorithmID = algID
	if err := validate(def); err != nil {
		return fmt.Errorf("algorithm %s version %s: %w", algID, def.Version, err)
	}
	// The secrets' values come with the definition (the cloud's, over the
	// link); they are sealed here under this platform's own master key.
	if len(def.Secrets) != len(def.SecretNames) {
		return fmt.Errorf("algorithm %s version %s: %d secret values for %d secrets", algID, def.Version, len(def.Secrets), len(def.SecretNames))
	}
	for _, n := range def.SecretNames {
		if def.Secrets[n] == "" {
			return fmt.Errorf("algorithm %s version %s: no value for secret %s", algID, def.Version, n)
		}
	}
	b, _ := json.Marshal(def)
	now := s.now().UnixMilli()
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		var owner string
		err := tx.QueryRow(ctx, "SELECT project_id FROM algorithms WHERE id = ?", algID).Scan(&owner)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = tx.Exec(ctx, `INSERT INTO algorithms (id, project_id, name, description, current_version, created_at, updated_at)
				VALUES (?, ?, ?, 'from the cloud', '', ?, ?)`, algID, projectID, name, now, now)
			if s.db.IsUniqueViolation(err) {
				return fmt.Errorf("algorithm %s: an algorithm named %q exists here in project %s", algID, name, projectID)
			}
			if err != nil {
				return err
			}
		case err != nil:
			return err
		case owner != projectID:
			return fmt.Errorf("algorithm %s belongs to project %s here", algID, owner)
		}
		var have int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM algorithm_versions WHERE algorithm_id = ? AND version = ?", algID, def.Version).Scan(&have); err != nil {
			return err
		}
		if have == 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO algorithm_versions (algorithm_id, version, definition, desired_state, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?)`, algID, def.Version, string(b), Running, now, now); err != nil {
				return err
			}
			if err := s.insertSecrets(ctx, tx, def); err != nil {
				return err
			}
		} else if _, err := tx.Exec(ctx, "UPDATE algorithm_versions SET desired_state = ?, updated_at = ? WHERE algorithm_id = ? AND version = ? AND desired_state <> ?",
			Running, now, algID, def.Version, Running); err != nil {
			return err
		}
		if current {
			_, err = tx.Exec(ctx, "UPDATE algorithms SET current_version = ?, updated_at = ? WHERE id = ? AND current_version <> ?", def.Version, now, algID, def.Version)
		}
		return err
	})
	if err != nil {
		return err
	}
	row, err := s.version(ctx, algID, def.Version)
	if err != nil {
		return err
	}
	s.mu.Lock()
	cur, _ := json.Marshal(row.Def)
	same := s.applied[algID+"@"+def.Version] == string(cur)
	s.mu.Unlock()
	if same {
		return nil // running already: nothing restarts
	}
	return s.applyNow(ctx, row.Def)
}

// VersionSecrets returns the values of a stored version's secrets (nil
// when it has none), for an edge node the version is deployed to.
func (s *Service) VersionSecrets(ctx context.Context, def algorithm.Version) (map[string]string, error) {
	if len(def.SecretNames) == 0 {
		return nil, nil
	}
	def.Secrets = nil
	if err := s.loadSecrets(ctx, &def); err != nil {
		return nil, err
	}
	return def.Secrets, nil
}
