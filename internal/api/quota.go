package api

import "context"

// The kinds of resources a project's quotas count.
const (
	QuotaApps    = "apps"
	QuotaDevices = "devices"
	QuotaTasks   = "tasks"
)

// Quotas answers a project's quota of a kind of resource (implemented by
// the IAM center, which keeps projects). Centers that create a project's
// resources check it before they insert.
type Quotas interface {
	// Quota returns how many resources of kind (QuotaApps, ...) the
	// project may hold; 0 is no quota.
	Quota(ctx context.Context, projectID, kind string) (int, error)
}

// CheckQuota answers LimitExceeded when the project already holds its
// quota of kind; count returns how many it holds. q nil is no quota.
//
// The count and the insert that follows are not one transaction: two
// creates racing on the last unit of a quota may both pass, so a project
// can exceed its quota by the number of its concurrent creates. A quota
// bounds growth; it is not an exact ceiling.
func CheckQuota(ctx context.Context, q Quotas, projectID, kind string, count func(context.Context) (int, error)) error {
	if q == nil {
		return nil
	}
	max, err := q.Quota(ctx, projectID, kind)
	if err != nil || max <= 0 {
		return err
	}
	n, err := count(ctx)
	if err != nil {
		return err
	}
	if n >= max {
		return Errorf(LimitExceeded, "project %s holds %d %s, its quota of %s; a platform admin raises it with ModifyProjectQuota", projectID, n, kind, kind)
	}
	return nil
}
