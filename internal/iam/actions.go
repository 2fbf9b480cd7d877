package iam

import (
	"context"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
)

// DescribeAuditEventsRequest is the request of DescribeAuditEvents.
type DescribeAuditEventsRequest struct {
	ProjectId string `json:"ProjectId" validate:"max=64"`
	// StartTime (inclusive) and EndTime (exclusive) bound the events' times,
	// RFC 3339.
	StartTime string `json:"StartTime" validate:"max=64"`
	EndTime   string `json:"EndTime" validate:"max=64"`
	// Filters: Actor, Action, Resource, Result (exact values).
	Filters []api.Filter `json:"Filters" validate:"max=10"`
	// AfterSeq returns events after this sequence number: paging that stays
	// put while events are appended and old ones removed (exports use it).
	AfterSeq int64 `json:"AfterSeq" validate:"min=0"`
	api.Paging
}

// AuditEventInfo is one audit event.
type AuditEventInfo struct {
	Seq       int64  `json:"Seq"`
	Time      string `json:"Time"`
	ProjectId string `json:"ProjectId"`
	Actor     string `json:"Actor"`
	Action    string `json:"Action"`
	Resource  string `json:"Resource"`
	Result    string `json:"Result"`
	SourceIp  string `json:"SourceIp"`
	RequestId string `json:"RequestId"`
	Detail    string `json:"Detail"`
	PrevHash  string `json:"PrevHash"`
	Hash      string `json:"Hash"`
}

// DescribeAuditEventsResponse is the response of DescribeAuditEvents.
type DescribeAuditEventsResponse struct {
	TotalCount    int              `json:"TotalCount"`
	AuditEventSet []AuditEventInfo `json:"AuditEventSet"`
}

// VerifyAuditLogRequest is the request of VerifyAuditLog.
type VerifyAuditLogRequest struct{}

// VerifyAuditLogResponse is the response of VerifyAuditLog.
type VerifyAuditLogResponse struct {
	Valid bool `json:"Valid"`
	// CheckedCount is how many events were checked.
	CheckedCount int64 `json:"CheckedCount"`
	// CheckpointSeq is the last event removed by retention (0: none); the
	// walk starts after it.
	CheckpointSeq  int64  `json:"CheckpointSeq"`
	CheckpointTime string `json:"CheckpointTime"`
	// HeadSeq and HeadHash are the chain head the walk reached: note them
	// elsewhere to tell later that nothing up to them changed.
	HeadSeq  int64  `json:"HeadSeq"`
	HeadHash string `json:"HeadHash"`
	// BrokenSeq and Reason name the first broken link when not Valid:
	// "hash mismatch", "prev_hash mismatch", "missing row", "head mismatch"
	// or "checkpoint signature mismatch".
	BrokenSeq int64  `json:"BrokenSeq"`
	Reason    string `json:"Reason"`
	// PendingCount is how many events were staged and not yet chained
	// when a valid walk ended: events of writes committed while it ran
	// (it chains those staged before it first).
	PendingCount int64 `json:"PendingCount"`
}

// auditFilters are the filter names DescribeAuditEvents takes.
var auditFilters = []string{"Actor", "Action", "Resource", "Result"}

var auditRead = api.Permission{Resource: "audit", Access: api.Read}

// RegisterActions adds the IAM actions to reg; a may be nil for docs.
func RegisterActions(reg *api.Registry, a *Audit) {
	api.Register(reg, api.Spec{Name: "DescribeAuditEvents", Summary: "List audit events oldest first, filtered by time range (StartTime inclusive, EndTime exclusive, RFC 3339), project and Filters Actor, Action, Resource, Result; Offset/Limit or AfterSeq paging. Without ProjectId: every project where the caller's roles grant it.",
		Permission: auditRead, Union: true},
		func(ctx context.Context, c *api.Caller, r *DescribeAuditEventsRequest) (*DescribeAuditEventsResponse, error) {
			f, err := api.ParseFilters(r.Filters, auditFilters...)
			if err != nil {
				return nil, err
			}
			in := c.ListIn(r.ProjectId, nil)
			q := AuditQuery{Projects: &in, Actors: f["Actor"], Actions: f["Action"], Resources: f["Resource"], Results: f["Result"], AfterSeq: r.AfterSeq}
			if q.Start, err = parseTime("StartTime", r.StartTime); err != nil {
				return nil, err
			}
			if q.End, err = parseTime("EndTime", r.EndTime); err != nil {
				return nil, err
			}
			q.Offset, q.Limit = r.Page()
			recs, total, err := a.Search(ctx, q)
			if err != nil {
				return nil, err
			}
			out := &DescribeAuditEventsResponse{TotalCount: total, AuditEventSet: make([]AuditEventInfo, 0, len(recs))}
			for _, e := range recs {
				out.AuditEventSet = append(out.AuditEventSet, AuditEventInfo{Seq: e.Seq, Time: e.Time.Format(time.RFC3339Nano),
					ProjectId: e.ProjectID, Actor: e.Actor, Action: e.Action, Resource: e.Resource, Result: e.Result,
					SourceIp: e.SourceIP, RequestId: e.RequestID, Detail: e.Detail, PrevHash: e.PrevHash, Hash: e.Hash})
			}
			return out, nil
		})
	api.Register(reg, api.Spec{Name: "VerifyAuditLog", Summary: "Walk the audit log's hash chain from its retention checkpoint to its head and report the first broken link (an edited, removed or inserted event, or a forged checkpoint).",
		Permission: auditRead},
		func(ctx context.Context, c *api.Caller, r *VerifyAuditLogRequest) (*VerifyAuditLogResponse, error) {
			res, err := a.Check(ctx)
			if err != nil {
				return nil, err
			}
			out := &VerifyAuditLogResponse{Valid: res.Valid, CheckedCount: res.Checked, CheckpointSeq: res.Checkpoint.Seq,
				HeadSeq: res.HeadSeq, HeadHash: res.HeadHash, BrokenSeq: res.BrokenSeq, Reason: res.Reason, PendingCount: res.Pending}
			if !res.Checkpoint.IsZero() {
				out.CheckpointTime = res.Checkpoint.Time.Format(time.RFC3339Nano)
			}
			return out, nil
		})
}

// parseTime parses an optional RFC 3339 time field.
func parseTime(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, api.InvalidValue(field, "%q is not an RFC 3339 time such as 2026-11-28T08:00:00Z", v)
	}
	return t, nil
}
