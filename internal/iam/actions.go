package iam

import (
	"context"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
)

// DescribeAuditEventsRequest is the request of DescribeAuditEvents.
type DescribeAuditEventsRequest struct {
	ProjectId string `json:"ProjectId" validate:"max=64"`
	// AfterSeq returns events after this sequence number (paging forward).
	AfterSeq int64 `json:"AfterSeq" validate:"min=0"`
	Limit    int   `json:"Limit" validate:"min=0,max=100"`
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
	Hash      string `json:"Hash"`
}

// DescribeAuditEventsResponse is the response of DescribeAuditEvents.
type DescribeAuditEventsResponse struct {
	AuditEventSet []AuditEventInfo `json:"AuditEventSet"`
}

// RegisterActions adds the IAM actions to reg; a may be nil for docs.
func RegisterActions(reg *api.Registry, a *Audit) {
	api.Register(reg, api.Spec{Name: "DescribeAuditEvents", Summary: "List audit events oldest first, after a sequence number.",
		Permission: api.Permission{Resource: "audit", Access: api.Read}},
		func(ctx context.Context, c *api.Caller, r *DescribeAuditEventsRequest) (*DescribeAuditEventsResponse, error) {
			limit := r.Limit
			if limit == 0 {
				limit = 20
			}
			recs, err := a.List(ctx, r.ProjectId, r.AfterSeq, limit)
			if err != nil {
				return nil, err
			}
			out := &DescribeAuditEventsResponse{AuditEventSet: make([]AuditEventInfo, 0, len(recs))}
			for _, e := range recs {
				out.AuditEventSet = append(out.AuditEventSet, AuditEventInfo{Seq: e.Seq, Time: e.Time.Format(time.RFC3339Nano),
					ProjectId: e.ProjectID, Actor: e.Actor, Action: e.Action, Resource: e.Resource, Result: e.Result,
					SourceIp: e.SourceIP, RequestId: e.RequestID, Detail: e.Detail, Hash: e.Hash})
			}
			return out, nil
		})
}
