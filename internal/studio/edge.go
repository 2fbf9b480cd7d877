package studio

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/tianshu-ai/tianshu/internal/flow"
	"github.com/tianshu-ai/tianshu/internal/store"
)

// Import stores version v of flow flowID as another platform (the cloud,
// on an edge) made it, under the same id and number, creating the flow
// when it is new here. The document must validate here, against this
// platform's algorithms and flows: a version that does not is refused and
// nothing changes. A version already here is left as it is (versions are
// immutable).
func (s *Service) Import(ctx context.Context, projectID, flowID, name string, v int64, doc []byte) error {
	var have int
	err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM flow_versions WHERE flow_id = ? AND version = ?", flowID, v).Scan(&have)
	if err != nil || have > 0 {
		return err
	}
	_, norm, used, err := s.parse(ctx, projectID, doc)
	if err != nil {
		return fmt.Errorf("flow %s version %d: %w", flowID, v, err)
	}
	defer s.forgetFlow(flowID)
	now := s.o.Now()
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		var latest int64
		err := tx.QueryRow(ctx, "SELECT latest_version FROM flows WHERE id = ?"+tx.Dialect().ForUpdate(), flowID).Scan(&latest)
		switch {
		case err == nil:
			if v > latest {
				if _, err := tx.Exec(ctx, "UPDATE flows SET latest_version = ?, updated_at = ? WHERE id = ?", v, now.UnixMilli(), flowID); err != nil {
					return err
				}
			}
		case errors.Is(err, sql.ErrNoRows):
			if _, err := tx.Exec(ctx, `INSERT INTO flows (id, project_id, name, description, latest_version, created_at, updated_at)
				VALUES (?, ?, ?, '', ?, ?, ?)`, flowID, projectID, name, v, now.UnixMilli(), now.UnixMilli()); err != nil {
				return err
			}
		default:
			return err
		}
		return s.insertVersion(ctx, tx, flowID, v, norm, used, "from the cloud", "cloud", now)
	})
}

// AlgorithmRefs returns the algorithm versions version v of flow flowID
// calls, as its nodes name them (an empty Version is the algorithm's
// current one), each once, in the order validation met them: what an edge
// must have before the version validates there.
func (s *Service) AlgorithmRefs(ctx context.Context, flowID string, v int64) ([]flow.AlgorithmRef, error) {
	f, err := s.Get(ctx, flowID)
	if err != nil {
		return nil, err
	}
	ver, err := s.GetVersion(ctx, flowID, v)
	if err != nil {
		return nil, err
	}
	spec, err := flow.Parse(ver.Document, flow.Limits{})
	if err != nil {
		return nil, fmt.Errorf("flow %s version %d: %w", flowID, v, err)
	}
	opts := s.options(ctx, f.ProjectID)
	opts.CheckScripts, opts.Metrics = true, nil
	if opts.Algorithms == nil {
		return nil, nil
	}
	refs := &algorithmRefs{Algorithms: opts.Algorithms}
	opts.Algorithms = refs
	// A stored version validated when it was made; what it calls is
	// what matters here, not whether it still validates.
	_ = flow.Validate(ctx, spec, opts)
	var out []flow.AlgorithmRef
	seen := map[flow.AlgorithmRef]bool{}
	for _, r := range refs.refs {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out, nil
}
