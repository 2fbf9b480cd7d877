package data

import (
	"context"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
)

// What a project's storage quota (api.QuotaStorage) counts: the bytes of
// its records, each a record's document plus the objects the record sink
// stored with it (records.bytes), and the sizes of its uploads in progress
// (as declared when created) or completed. Snapshots, algorithm packages
// and objects put by other means are not counted.

// storageRecount is how long a project's counted usage is trusted before
// it is counted again from the store; in between, what this process
// admits is added to it. Replicas admitting writes for one project at
// once may together pass the quota by what they admit within it.
const storageRecount = 5 * time.Second

// storageUse is a project's usage as last counted, plus what was admitted
// since.
type storageUse struct {
	bytes   int64
	counted time.Time
}

// UseQuotas makes the service refuse records and uploads that would pass
// a project's storage quota. Call it before the service serves (it is not
// synchronised with the checks).
func (s *Service) UseQuotas(q api.Quotas) { s.quotas = q }

// admitStorage answers LimitExceeded when the project holds its storage
// quota already or n more bytes would pass it; otherwise the n bytes count
// as held from now on.
func (s *Service) admitStorage(ctx context.Context, projectID string, n int64) error {
	if s.quotas == nil {
		return nil
	}
	max, err := s.quotas.Quota(ctx, projectID, api.QuotaStorage)
	if err != nil || max <= 0 {
		return err
	}
	s.quotaMu.Lock()
	use, ok := s.storage[projectID]
	s.quotaMu.Unlock()
	if !ok || s.o.Now().Sub(use.counted) >= storageRecount {
		used, err := s.storageUsed(ctx, projectID)
		if err != nil {
			return err
		}
		use = storageUse{bytes: used, counted: s.o.Now()}
	}
	s.quotaMu.Lock()
	defer s.quotaMu.Unlock()
	if cur, ok := s.storage[projectID]; ok && !cur.counted.Before(use.counted) {
		use = cur // counted meanwhile, with what was admitted since
	}
	if use.bytes >= int64(max) || use.bytes+n > int64(max) {
		s.storage[projectID] = use
		return api.Errorf(api.LimitExceeded, "project %s holds %d bytes of records and uploads; %d more would pass its storage quota of %d bytes: delete records or uploads, or a platform admin raises it with ModifyProjectQuota (MaxStorageBytes)",
			projectID, use.bytes, n, max)
	}
	use.bytes += n
	s.storage[projectID] = use
	return nil
}

// chargeStorage counts n bytes more as held by the project, without
// refusing them (a record's document, known once its objects are stored).
func (s *Service) chargeStorage(projectID string, n int64) {
	s.quotaMu.Lock()
	defer s.quotaMu.Unlock()
	if use, ok := s.storage[projectID]; ok {
		use.bytes += n
		s.storage[projectID] = use
	}
}

// recountStorage makes the next check count the project's usage from the
// store again (after a delete).
func (s *Service) recountStorage(projectID string) {
	s.quotaMu.Lock()
	delete(s.storage, projectID)
	s.quotaMu.Unlock()
}

// storageUsed counts what the project holds, from the store.
func (s *Service) storageUsed(ctx context.Context, projectID string) (int64, error) {
	var records, uploads int64
	if err := s.db.QueryRow(ctx, "SELECT COALESCE(SUM(bytes), 0) FROM records WHERE project_id = ?", projectID).Scan(&records); err != nil {
		return 0, err
	}
	if err := s.db.QueryRow(ctx, "SELECT COALESCE(SUM(size), 0) FROM uploads WHERE project_id = ? AND state <> ?", projectID, UploadExpired).Scan(&uploads); err != nil {
		return 0, err
	}
	return records + uploads, nil
}
