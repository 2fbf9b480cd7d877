package push

import (
	"context"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/store"
)

var (
	subRead  = api.Permission{Resource: "subscription", Access: api.Read}
	subWrite = api.Permission{Resource: "subscription", Access: api.Write}
)

// FilterSpec is a subscription's filter in requests and responses.
type FilterSpec struct {
	TaskIds   []string `json:"TaskIds" validate:"max=100"`
	Types     []string `json:"Types" validate:"max=100"`
	DeviceIds []string `json:"DeviceIds" validate:"max=100"`
	// Expression is a Starlark boolean expression over event, type,
	// subject and data, e.g. `data["Quality"] > 0.8`.
	Expression string `json:"Expression" validate:"max=4096"`
}

func (f *FilterSpec) filter() Filter {
	if f == nil {
		return Filter{}
	}
	return Filter{TaskIds: f.TaskIds, Types: f.Types, DeviceIds: f.DeviceIds, Expression: f.Expression}
}

// WebhookSpec is a webhook channel's endpoint and secret.
type WebhookSpec struct {
	Url string `json:"Url" validate:"max=2048"`
	// Secret is "whsec_" + base64 of 24 to 64 bytes; generated when absent
	// and returned once by CreateSubscription.
	Secret string `json:"Secret" validate:"max=128"`
}

// ChannelSpec is how a subscription delivers.
type ChannelSpec struct {
	Type    string       `json:"Type" validate:"required,oneof=webhook grpc sse"`
	Webhook *WebhookSpec `json:"Webhook"`
}

// CreateSubscriptionRequest is the request of CreateSubscription.
type CreateSubscriptionRequest struct {
	ProjectId string      `json:"ProjectId" validate:"max=64"`
	Name      string      `json:"Name" validate:"max=128"`
	Filter    *FilterSpec `json:"Filter"`
	Channel   ChannelSpec `json:"Channel" validate:"required"`
	// MaxAttempts is how many times a webhook is tried before its event is
	// dead-lettered; default 15.
	MaxAttempts int `json:"MaxAttempts" validate:"min=0,max=1000"`
	// MaxAge, in seconds, dead-letters a webhook event still failing this
	// long after it was published; default 86400.
	MaxAge int64 `json:"MaxAge" validate:"min=0,max=2592000"`
}

// CreateSubscriptionResponse is the response of CreateSubscription.
type CreateSubscriptionResponse struct {
	SubscriptionId string `json:"SubscriptionId"`
	// Secret is the webhook secret, returned only here.
	Secret string `json:"Secret,omitempty"`
}

// SubscriptionIdRequest names one subscription.
type SubscriptionIdRequest struct {
	ProjectId      string `json:"ProjectId" validate:"max=64"`
	SubscriptionId string `json:"SubscriptionId" validate:"required,max=64"`
}

// DescribeSubscriptionsRequest is the request of DescribeSubscriptions.
type DescribeSubscriptionsRequest struct {
	ProjectId       string       `json:"ProjectId" validate:"max=64"`
	SubscriptionIds []string     `json:"SubscriptionIds" validate:"max=100"`
	Filters         []api.Filter `json:"Filters" validate:"max=10"`
	api.Paging
}

// SubscriptionInfo is a subscription as Describe actions return it (never
// with its secret).
type SubscriptionInfo struct {
	SubscriptionId string     `json:"SubscriptionId"`
	ProjectId      string     `json:"ProjectId"`
	AppId          string     `json:"AppId"`
	Name           string     `json:"Name"`
	Channel        string     `json:"Channel"`
	Url            string     `json:"Url,omitempty"`
	Filter         FilterSpec `json:"Filter"`
	MaxAttempts    int        `json:"MaxAttempts"`
	MaxAge         int64      `json:"MaxAge"`
	Status         string     `json:"Status"`
	CreatedTime    string     `json:"CreatedTime"`
	UpdatedTime    string     `json:"UpdatedTime"`
}

// DescribeSubscriptionsResponse is the response of DescribeSubscriptions.
type DescribeSubscriptionsResponse struct {
	TotalCount      int                `json:"TotalCount"`
	SubscriptionSet []SubscriptionInfo `json:"SubscriptionSet"`
}

// ModifySubscriptionRequest is the request of ModifySubscription; absent
// fields stay as they are.
type ModifySubscriptionRequest struct {
	ProjectId      string       `json:"ProjectId" validate:"max=64"`
	SubscriptionId string       `json:"SubscriptionId" validate:"required,max=64"`
	Name           *string      `json:"Name" validate:"max=128"`
	Filter         *FilterSpec  `json:"Filter"`
	Webhook        *WebhookSpec `json:"Webhook"`
	MaxAttempts    *int         `json:"MaxAttempts" validate:"min=0,max=1000"`
	MaxAge         *int64       `json:"MaxAge" validate:"min=0,max=2592000"`
}

// ReplaySubscriptionRequest is the request of ReplaySubscription: exactly
// one of StartSeq, StartTime and DeadLetters.
type ReplaySubscriptionRequest struct {
	ProjectId      string `json:"ProjectId" validate:"max=64"`
	SubscriptionId string `json:"SubscriptionId" validate:"required,max=64"`
	// StartSeq restarts delivery at this bus sequence (an event's seq).
	StartSeq uint64 `json:"StartSeq"`
	// StartTime (RFC 3339) restarts delivery at the first event stored at
	// or after it.
	StartTime string `json:"StartTime" validate:"max=64"`
	// DeadLetters delivers the dead-lettered events again (webhook only).
	DeadLetters bool `json:"DeadLetters"`
}

// ReplaySubscriptionResponse is the response of ReplaySubscription.
type ReplaySubscriptionResponse struct {
	// DeadLetterCount is how many dead letters were queued for delivery.
	DeadLetterCount int `json:"DeadLetterCount"`
}

// DescribeSubscriptionStatsResponse is the response of
// DescribeSubscriptionStats. The counters are flushed every second by the
// replica that delivers the subscription.
type DescribeSubscriptionStatsResponse struct {
	SubscriptionId string `json:"SubscriptionId"`
	Status         string `json:"Status"`
	Delivered      int64  `json:"Delivered"`
	Failed         int64  `json:"Failed"`
	Retried        int64  `json:"Retried"`
	DeadLettered   int64  `json:"DeadLettered"`
	// DeadLetterCount is how many dead letters are stored now.
	DeadLetterCount int `json:"DeadLetterCount"`
	// AckedSeq is the highest bus sequence acknowledged.
	AckedSeq uint64 `json:"AckedSeq"`
	// Lag is the topic's last sequence minus AckedSeq; -1 when the bus
	// cannot tell.
	Lag           int64  `json:"Lag"`
	LastError     string `json:"LastError"`
	LastErrorTime string `json:"LastErrorTime"`
	// DeliveredBy names the replica holding the subscription's lease, if any.
	DeliveredBy string `json:"DeliveredBy"`
}

// DescribeSubscriptionDeadLettersRequest is the request of
// DescribeSubscriptionDeadLetters.
type DescribeSubscriptionDeadLettersRequest struct {
	ProjectId      string `json:"ProjectId" validate:"max=64"`
	SubscriptionId string `json:"SubscriptionId" validate:"required,max=64"`
	api.Paging
}

// DeadLetterInfo is one dead-lettered event.
type DeadLetterInfo struct {
	Seq       uint64 `json:"Seq"`
	EventId   string `json:"EventId"`
	Subject   string `json:"Subject"`
	Attempts  int    `json:"Attempts"`
	LastError string `json:"LastError"`
	DeadTime  string `json:"DeadTime"`
	Replaying bool   `json:"Replaying"`
}

// DescribeSubscriptionDeadLettersResponse is the response of
// DescribeSubscriptionDeadLetters.
type DescribeSubscriptionDeadLettersResponse struct {
	TotalCount    int              `json:"TotalCount"`
	DeadLetterSet []DeadLetterInfo `json:"DeadLetterSet"`
}

// Empty is the response of actions that return only a RequestId.
type Empty struct{}

func subInfo(s *Subscription) SubscriptionInfo {
	f := s.Filter
	return SubscriptionInfo{SubscriptionId: s.ID, ProjectId: s.ProjectID, AppId: s.AppID, Name: s.Name, Channel: s.Channel, Url: s.URL,
		Filter:      FilterSpec{TaskIds: nonNil(f.TaskIds), Types: nonNil(f.Types), DeviceIds: nonNil(f.DeviceIds), Expression: f.Expression},
		MaxAttempts: s.MaxAttempts, MaxAge: int64(s.MaxAge / time.Second), Status: s.Status,
		CreatedTime: s.CreatedAt.UTC().Format(time.RFC3339), UpdatedTime: s.UpdatedAt.UTC().Format(time.RFC3339)}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// RegisterActions adds the subscription actions to reg. s may be nil when
// the registry only feeds docs or the CLI.
func RegisterActions(reg *api.Registry, s *Service) {
	api.Register(reg, api.Spec{Name: "CreateSubscription", Summary: "Subscribe to the project's events: a filter (tasks, event types with globs, devices, a Starlark expression) and a channel (webhook, grpc or sse). A generated webhook secret is returned once.", Permission: subWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *CreateSubscriptionRequest) (*CreateSubscriptionResponse, error) {
			sc, err := ScopeOf(c, r.ProjectId)
			if err != nil {
				return nil, err
			}
			sub := &Subscription{Name: r.Name, Channel: r.Channel.Type, Filter: r.Filter.filter(), MaxAttempts: r.MaxAttempts,
				MaxAge: time.Duration(r.MaxAge) * time.Second}
			if w := r.Channel.Webhook; w != nil {
				sub.URL, sub.Secret = w.Url, w.Secret
			}
			generated := sub.Secret == ""
			if err := s.Create(ctx, sc, sub); err != nil {
				return nil, err
			}
			c.SetResource(sub.ID)
			out := &CreateSubscriptionResponse{SubscriptionId: sub.ID}
			if generated {
				out.Secret = sub.Secret
			}
			return out, nil
		})
	api.Register(reg, api.Spec{Name: "DescribeSubscriptions", Summary: "List subscriptions, newest first (an app sees its own). Filters: Channel, Status. Without ProjectId, for a person: every project where their roles grant it.", Permission: subRead, Union: true},
		func(ctx context.Context, c *api.Caller, r *DescribeSubscriptionsRequest) (*DescribeSubscriptionsResponse, error) {
			in, app := c.ListIn(r.ProjectId, nil), ""
			if c.AppID != "" {
				sc, err := ScopeOf(c, r.ProjectId)
				if err != nil {
					return nil, err
				}
				in, app = store.OneProject(sc.ProjectID), sc.AppID
			}
			f, err := api.ParseFilters(r.Filters, "Channel", "Status")
			if err != nil {
				return nil, err
			}
			off, lim := r.Page()
			subs, total, err := s.ListIn(ctx, in, app, r.SubscriptionIds, f["Channel"], f["Status"], off, lim)
			if err != nil {
				return nil, err
			}
			out := &DescribeSubscriptionsResponse{TotalCount: total, SubscriptionSet: make([]SubscriptionInfo, 0, len(subs))}
			for _, sub := range subs {
				out.SubscriptionSet = append(out.SubscriptionSet, subInfo(sub))
			}
			return out, nil
		})
	api.Register(reg, api.Spec{Name: "ModifySubscription", Summary: "Change a subscription's name, filter, webhook URL or secret, or dead-letter limits; delivery continues from where it was.", Permission: subWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *ModifySubscriptionRequest) (*Empty, error) {
			c.SetResource(r.SubscriptionId)
			sc, err := ScopeOf(c, r.ProjectId)
			if err != nil {
				return nil, err
			}
			ch := Change{Name: r.Name, MaxAttempts: r.MaxAttempts}
			if r.Filter != nil {
				f := r.Filter.filter()
				ch.Filter = &f
			}
			if r.Webhook != nil {
				if r.Webhook.Url != "" {
					ch.URL = &r.Webhook.Url
				}
				if r.Webhook.Secret != "" {
					ch.Secret = &r.Webhook.Secret
				}
			}
			if r.MaxAge != nil {
				d := time.Duration(*r.MaxAge) * time.Second
				ch.MaxAge = &d
			}
			return &Empty{}, s.Modify(ctx, sc, r.SubscriptionId, ch)
		})
	api.Register(reg, api.Spec{Name: "DeleteSubscription", Summary: "Delete a subscription with its position and dead letters.", Permission: subWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *SubscriptionIdRequest) (*Empty, error) {
			c.SetResource(r.SubscriptionId)
			sc, err := ScopeOf(c, r.ProjectId)
			if err != nil {
				return nil, err
			}
			return &Empty{}, s.Delete(ctx, sc, r.SubscriptionId)
		})
	for _, a := range []struct{ name, summary, status string }{
		{"PauseSubscription", "Pause delivery; events wait on the bus (within its retention) and follow on resume.", StatusPaused},
		{"ResumeSubscription", "Resume a paused subscription where it stopped.", StatusActive},
	} {
		api.Register(reg, api.Spec{Name: a.name, Summary: a.summary, Permission: subWrite, Audit: true},
			func(ctx context.Context, c *api.Caller, r *SubscriptionIdRequest) (*Empty, error) {
				c.SetResource(r.SubscriptionId)
				sc, err := ScopeOf(c, r.ProjectId)
				if err != nil {
					return nil, err
				}
				return &Empty{}, s.SetStatus(ctx, sc, r.SubscriptionId, a.status)
			})
	}
	api.Register(reg, api.Spec{Name: "ReplaySubscription", Summary: "Deliver events again from a bus sequence (StartSeq) or a time (StartTime), or deliver the dead-lettered events again (DeadLetters).", Permission: subWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *ReplaySubscriptionRequest) (*ReplaySubscriptionResponse, error) {
			c.SetResource(r.SubscriptionId)
			sc, err := ScopeOf(c, r.ProjectId)
			if err != nil {
				return nil, err
			}
			n := 0
			if r.StartSeq > 0 {
				n++
			}
			if r.StartTime != "" {
				n++
			}
			if r.DeadLetters {
				n++
			}
			if n != 1 {
				return nil, api.InvalidValue("StartSeq", "give exactly one of StartSeq, StartTime and DeadLetters")
			}
			if r.DeadLetters {
				k, err := s.ReplayDeadLetters(ctx, sc, r.SubscriptionId)
				return &ReplaySubscriptionResponse{DeadLetterCount: k}, err
			}
			var t time.Time
			if r.StartTime != "" {
				if t, err = time.Parse(time.RFC3339Nano, r.StartTime); err != nil {
					return nil, api.InvalidValue("StartTime", "must be RFC 3339, e.g. 2026-11-29T10:00:00Z")
				}
			}
			return &ReplaySubscriptionResponse{}, s.Replay(ctx, sc, r.SubscriptionId, r.StartSeq, t)
		})
	api.Register(reg, api.Spec{Name: "DescribeSubscriptionStats", Summary: "A subscription's delivered, failed, retried and dead-lettered counts, lag, last error and the replica delivering it.", Permission: subRead},
		func(ctx context.Context, c *api.Caller, r *SubscriptionIdRequest) (*DescribeSubscriptionStatsResponse, error) {
			sc, err := ScopeOf(c, r.ProjectId)
			if err != nil {
				return nil, err
			}
			sub, err := s.Get(ctx, sc, r.SubscriptionId)
			if err != nil {
				return nil, err
			}
			st := sub.Stats
			out := &DescribeSubscriptionStatsResponse{SubscriptionId: sub.ID, Status: sub.Status, Delivered: st.Delivered, Failed: st.Failed,
				Retried: st.Retried, DeadLettered: st.DeadLettered, AckedSeq: st.AckedSeq, Lag: s.Lag(ctx, sub), LastError: st.LastError}
			if !st.LastErrorAt.IsZero() {
				out.LastErrorTime = st.LastErrorAt.UTC().Format(time.RFC3339Nano)
			}
			if sub.LeaseHolder != "" && sub.LeaseUntil.After(s.now()) {
				out.DeliveredBy = sub.LeaseHolder
			}
			if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM subscription_dead_letters WHERE subscription_id = ?", sub.ID).Scan(&out.DeadLetterCount); err != nil {
				return nil, err
			}
			return out, nil
		})
	api.Register(reg, api.Spec{Name: "DescribeSubscriptionDeadLetters", Summary: "List a webhook subscription's dead-lettered events, oldest first.", Permission: subRead},
		func(ctx context.Context, c *api.Caller, r *DescribeSubscriptionDeadLettersRequest) (*DescribeSubscriptionDeadLettersResponse, error) {
			sc, err := ScopeOf(c, r.ProjectId)
			if err != nil {
				return nil, err
			}
			off, lim := r.Page()
			dls, total, err := s.DeadLetters(ctx, sc, r.SubscriptionId, off, lim)
			if err != nil {
				return nil, err
			}
			out := &DescribeSubscriptionDeadLettersResponse{TotalCount: total, DeadLetterSet: make([]DeadLetterInfo, 0, len(dls))}
			for _, d := range dls {
				out.DeadLetterSet = append(out.DeadLetterSet, DeadLetterInfo{Seq: d.Seq, EventId: d.EventID, Subject: d.Subject,
					Attempts: d.Attempts, LastError: d.LastError, DeadTime: d.DeadAt.UTC().Format(time.RFC3339Nano), Replaying: d.Replay})
			}
			return out, nil
		})
}
