package push

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/bus"
	"github.com/tianshu-ai/tianshu/internal/event"
	"github.com/tianshu-ai/tianshu/internal/ids"
	"github.com/tianshu-ai/tianshu/internal/secrets/reseal"
	"github.com/tianshu-ai/tianshu/internal/store"
)

// SecretPrefix starts every webhook secret, as the Standard Webhooks
// specification writes them: "whsec_" + base64 of the key bytes.
const SecretPrefix = "whsec_"

// Filter selects the events a subscription delivers. Empty lists match
// everything; a non-empty list must contain the event's value. Types may
// hold globs ("tianshu.face.*", path.Match syntax). Expression, when set,
// is a Starlark boolean expression over event (the CloudEvent as a dict),
// type, subject and data.
type Filter struct {
	TaskIds    []string `json:"TaskIds,omitempty"`
	Types      []string `json:"Types,omitempty"`
	DeviceIds  []string `json:"DeviceIds,omitempty"`
	Expression string   `json:"Expression,omitempty"`
}

// Subscription is a subscription as stored.
type Subscription struct {
	ID, ProjectID, AppID, Name string
	Channel                    string
	URL                        string // webhook only
	Secret                     string // webhook only, opened
	Filter                     Filter
	MaxAttempts                int
	MaxAge                     time.Duration
	Status                     string
	Generation                 int64
	StartPending               bool
	StartSeq                   uint64
	StartTime                  time.Time
	LeaseHolder                string
	LeaseUntil                 time.Time
	Stats                      Stats
	CreatedAt, UpdatedAt       time.Time
}

// Stats are a subscription's delivery counters.
type Stats struct {
	Delivered, Failed, Retried, DeadLettered int64
	// AckedSeq is the highest bus sequence acknowledged (delivered or
	// filtered out).
	AckedSeq    uint64
	LastError   string
	LastErrorAt time.Time
}

// Topic returns the bus topic the subscription reads.
func (s *Subscription) Topic() string { return event.Topic(s.ProjectID) }

// NewSecret returns a fresh webhook secret: "whsec_" + base64 of 32 random
// bytes.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// secretKey decodes a whsec_ secret into its key bytes.
func secretKey(secret string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil || len(k) < 24 || len(k) > 64 {
		return nil, errors.New("secret must be whsec_ followed by base64 of 24 to 64 bytes")
	}
	return k, nil
}

const subColumns = `id, project_id, app_id, name, channel, url, secret_enc, filter, max_attempts, max_age_ms, status, generation,
	start_pending, start_seq, start_time_ms, lease_holder, lease_until_ms, delivered, failed, retried, dead_lettered, acked_seq,
	last_error, last_error_ms, created_at, updated_at`

type scanner interface{ Scan(dest ...any) error }

func (s *Service) scanSub(r scanner) (*Subscription, error) {
	var sub Subscription
	var secretEnc, filter string
	var maxAge, startSeq, startTime, leaseUntil, ackedSeq, lastErrAt, created, updated int64
	var pending int
	err := r.Scan(&sub.ID, &sub.ProjectID, &sub.AppID, &sub.Name, &sub.Channel, &sub.URL, &secretEnc, &filter, &sub.MaxAttempts,
		&maxAge, &sub.Status, &sub.Generation, &pending, &startSeq, &startTime, &sub.LeaseHolder, &leaseUntil,
		&sub.Stats.Delivered, &sub.Stats.Failed, &sub.Stats.Retried, &sub.Stats.DeadLettered, &ackedSeq,
		&sub.Stats.LastError, &lastErrAt, &created, &updated)
	if err != nil {
		return nil, err
	}
	if secretEnc != "" {
		if sub.Secret, err = s.cfg.Box.Open(secretEnc); err != nil {
			return nil, fmt.Errorf("push: subscription %s secret: %w", sub.ID, err)
		}
	}
	if err := json.Unmarshal([]byte(filter), &sub.Filter); err != nil {
		return nil, fmt.Errorf("push: subscription %s filter: %w", sub.ID, err)
	}
	sub.MaxAge = time.Duration(maxAge) * time.Millisecond
	sub.StartPending, sub.StartSeq = pending != 0, uint64(startSeq)
	if startTime > 0 {
		sub.StartTime = time.UnixMilli(startTime)
	}
	sub.LeaseUntil = time.UnixMilli(leaseUntil)
	sub.Stats.AckedSeq = uint64(ackedSeq)
	if lastErrAt > 0 {
		sub.Stats.LastErrorAt = time.UnixMilli(lastErrAt)
	}
	sub.CreatedAt, sub.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
	return &sub, nil
}

// Scope is who asks: an app sees only its own subscriptions, a console user
// (AppID empty) every subscription of ProjectID.
type Scope struct {
	ProjectID, AppID string
}

// ScopeOf returns the scope of an API caller, with the project the request
// names (empty: the caller's own). An app may name only its own project.
func ScopeOf(c *api.Caller, projectID string) (Scope, error) {
	if c.AppID != "" {
		if projectID != "" && projectID != c.ProjectID {
			return Scope{}, api.Errorf(api.AuthFailureUnauthorizedOperation, "ProjectId: app %s belongs to project %s", c.AppID, c.ProjectID)
		}
		return Scope{ProjectID: c.ProjectID, AppID: c.AppID}, nil
	}
	if projectID == "" {
		projectID = c.ProjectID
	}
	if projectID == "" {
		projectID = "default"
	}
	return Scope{ProjectID: projectID}, nil
}

func (sc Scope) where() (string, []any) {
	if sc.AppID != "" {
		return "project_id = ? AND app_id = ?", []any{sc.ProjectID, sc.AppID}
	}
	return "project_id = ?", []any{sc.ProjectID}
}

// Create stores a new subscription in sc and returns it; for a webhook
// without a secret it generates one (sub.Secret holds it, shown once). The
// subscription delivers events published from now on.
func (s *Service) Create(ctx context.Context, sc Scope, sub *Subscription) error {
	if err := s.check(sub); err != nil {
		return err
	}
	if sub.Channel == ChannelWebhook && sub.Secret == "" {
		sub.Secret = NewSecret()
	}
	var n int
	w, args := sc.where()
	if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM subscriptions WHERE "+w, args...).Scan(&n); err != nil {
		return err
	}
	if n >= maxSubscriptionsPerApp {
		return api.Errorf(api.LimitExceeded, "subscriptions: at most %d per app", maxSubscriptionsPerApp)
	}
	now := s.now()
	sub.ID, sub.ProjectID, sub.AppID, sub.Status, sub.Generation = ids.New("sub"), sc.ProjectID, sc.AppID, StatusActive, 1
	sub.StartPending, sub.StartTime, sub.CreatedAt, sub.UpdatedAt = true, now, now, now
	// Start after the topic's newest event when the bus tells it: from a
	// known sequence the first deliverer runs every worker at once, where a
	// start by time must take events one at a time until the first.
	if h, ok := s.bus.(TopicHead); ok {
		if last, err := h.LastSeq(ctx, sub.Topic()); err == nil {
			sub.StartSeq = last + 1
		}
	}
	filter, _ := json.Marshal(sub.Filter)
	secretEnc := ""
	if sub.Secret != "" {
		secretEnc = s.cfg.Box.Seal(sub.Secret)
	}
	_, err := s.db.Exec(ctx, `INSERT INTO subscriptions (`+subColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, 0, 0, '', 0, ?, ?)`,
		sub.ID, sub.ProjectID, sub.AppID, sub.Name, sub.Channel, sub.URL, secretEnc, string(filter), sub.MaxAttempts,
		sub.MaxAge.Milliseconds(), sub.Status, sub.Generation, 1, int64(sub.StartSeq), now.UnixMilli(), "", 0, now.UnixMilli(), now.UnixMilli())
	if err != nil {
		return fmt.Errorf("push: insert subscription: %w", err)
	}
	s.log.InfoContext(ctx, "subscription created", "subscription", sub.ID, "project", sub.ProjectID, "app", sub.AppID, "channel", sub.Channel)
	return nil
}

// check validates a subscription's channel, URL, secret, filter and limits,
// filling in defaults.
func (s *Service) check(sub *Subscription) error {
	switch sub.Channel {
	case ChannelWebhook:
		if sub.URL == "" {
			return api.Missing("Channel.Webhook.Url")
		}
		if err := checkWebhookURL(s.cfg.Outbound, sub.URL); err != nil {
			return api.InvalidValue("Channel.Webhook.Url", "%v", err)
		}
		if sub.Secret != "" {
			if _, err := secretKey(sub.Secret); err != nil {
				return api.InvalidValue("Channel.Webhook.Secret", "%v", err)
			}
		}
	case ChannelGRPC, ChannelSSE:
		if sub.URL != "" || sub.Secret != "" {
			return api.InvalidValue("Channel.Webhook", "only for channel webhook")
		}
	default:
		return api.InvalidValue("Channel.Type", "must be webhook, grpc or sse")
	}
	if _, err := compileFilter(sub.Filter); err != nil {
		return err
	}
	if sub.MaxAttempts == 0 {
		sub.MaxAttempts = DefaultMaxAttempts
	}
	if sub.MaxAge == 0 {
		sub.MaxAge = DefaultMaxAge
	}
	return nil
}

// Get returns a subscription within sc.
func (s *Service) Get(ctx context.Context, sc Scope, id string) (*Subscription, error) {
	w, args := sc.where()
	sub, err := s.scanSub(s.db.QueryRow(ctx, "SELECT "+subColumns+" FROM subscriptions WHERE id = ? AND "+w, append([]any{id}, args...)...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, api.NotFound("SubscriptionId", id)
	}
	return sub, err
}

// get returns a subscription by id alone (for deliverers).
func (s *Service) get(ctx context.Context, id string) (*Subscription, error) {
	sub, err := s.scanSub(s.db.QueryRow(ctx, "SELECT "+subColumns+" FROM subscriptions WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, api.NotFound("SubscriptionId", id)
	}
	return sub, err
}

// ListIn returns the subscriptions of projects (a union list), only app
// appID's when it is set, newest first, and their total. ids, channels and
// statuses filter when not empty.
func (s *Service) ListIn(ctx context.Context, projects store.Projects, appID string, subIDs, channels, statuses []string, offset, limit int) ([]*Subscription, int, error) {
	var wh store.Where
	w, args := wh.InProjects("project_id", projects).Eq("app_id", appID).In("id", subIDs).In("channel", channels).In("status", statuses).SQL()
	var total int
	if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM subscriptions"+w, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.db.Query(ctx, "SELECT "+subColumns+" FROM subscriptions"+w+" ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
		append(args, limit, offset)...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []*Subscription
	for rows.Next() {
		sub, err := s.scanSub(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, sub)
	}
	return out, total, rows.Err()
}

// Change is what Modify changes; nil fields stay as they are.
type Change struct {
	Name        *string
	Filter      *Filter
	URL         *string
	Secret      *string
	MaxAttempts *int
	MaxAge      *time.Duration
}

// Modify changes a subscription; its deliverer restarts with the new
// settings, keeping its position.
func (s *Service) Modify(ctx context.Context, sc Scope, id string, ch Change) error {
	return s.update(ctx, sc, id, func(sub *Subscription) error {
		if ch.Name != nil {
			sub.Name = *ch.Name
		}
		if ch.Filter != nil {
			sub.Filter = *ch.Filter
		}
		if ch.URL != nil {
			sub.URL = *ch.URL
		}
		if ch.Secret != nil {
			sub.Secret = *ch.Secret
		}
		if ch.MaxAttempts != nil {
			sub.MaxAttempts = *ch.MaxAttempts
		}
		if ch.MaxAge != nil {
			sub.MaxAge = *ch.MaxAge
		}
		return s.check(sub)
	})
}

// SetStatus pauses (StatusPaused) or resumes (StatusActive) a
// subscription. A paused subscription keeps its position; its events wait
// on the bus (within the topic's retention).
func (s *Service) SetStatus(ctx context.Context, sc Scope, id, status string) error {
	return s.update(ctx, sc, id, func(sub *Subscription) error {
		sub.Status = status
		return nil
	})
}

// Replay restarts a subscription at a bus sequence (seq > 0) or at the
// first event stored at or after t: its durable is re-created there by
// its next deliverer, so events are delivered again from that point. A
// sequence past the topic's next one is refused (where the bus tells its
// head): the subscription would wait there for events that never come.
func (s *Service) Replay(ctx context.Context, sc Scope, id string, seq uint64, t time.Time) error {
	return s.update(ctx, sc, id, func(sub *Subscription) error {
		if seq > math.MaxInt64 {
			return api.InvalidValue("StartSeq", "%d is beyond any bus sequence (at most %d)", seq, int64(math.MaxInt64))
		}
		if h, ok := s.bus.(TopicHead); ok && seq > 0 {
			last, err := h.LastSeq(ctx, sub.Topic())
			if err != nil {
				return fmt.Errorf("push: head of %s: %w", sub.Topic(), err)
			}
			if seq > last+1 {
				return api.InvalidValue("StartSeq", "%d is past the newest event (%d); give at most %d to start at the next one", seq, last, last+1)
			}
		}
		sub.StartPending, sub.StartSeq, sub.StartTime = true, seq, t
		return nil
	})
}

// ReplayDeadLetters asks the deliverer of a webhook subscription to deliver
// its dead-lettered events again, oldest first; those that fail once more
// stay dead. It returns how many were queued.
func (s *Service) ReplayDeadLetters(ctx context.Context, sc Scope, id string) (int, error) {
	sub, err := s.Get(ctx, sc, id)
	if err != nil {
		return 0, err
	}
	if sub.Channel != ChannelWebhook {
		return 0, api.InvalidValue("DeadLetters", "only webhook subscriptions have dead letters")
	}
	res, err := s.db.Exec(ctx, "UPDATE subscription_dead_letters SET replay = 1 WHERE subscription_id = ?", id)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	s.log.InfoContext(ctx, "subscription dead letters replayed", "subscription", id, "count", n)
	return int(n), nil
}

// update applies fn to the subscription in a transaction and bumps its
// generation, so that its deliverer restarts.
func (s *Service) update(ctx context.Context, sc Scope, id string, fn func(sub *Subscription) error) error {
	w, args := sc.where()
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		sub, err := s.scanSub(tx.QueryRow(ctx, "SELECT "+subColumns+" FROM subscriptions WHERE id = ? AND "+w+tx.Dialect().ForUpdate(),
			append([]any{id}, args...)...))
		if errors.Is(err, sql.ErrNoRows) {
			return api.NotFound("SubscriptionId", id)
		} else if err != nil {
			return err
		}
		if err := fn(sub); err != nil {
			return err
		}
		filter, _ := json.Marshal(sub.Filter)
		secretEnc := ""
		if sub.Secret != "" {
			secretEnc = s.cfg.Box.Seal(sub.Secret)
		}
		pending, startMs := 0, int64(0)
		if sub.StartPending {
			pending = 1
		}
		if !sub.StartTime.IsZero() {
			startMs = sub.StartTime.UnixMilli()
		}
		_, err = tx.Exec(ctx, `UPDATE subscriptions SET name = ?, url = ?, secret_enc = ?, filter = ?, max_attempts = ?, max_age_ms = ?,
			status = ?, generation = generation + 1, start_pending = ?, start_seq = ?, start_time_ms = ?, updated_at = ? WHERE id = ?`,
			sub.Name, sub.URL, secretEnc, string(filter), sub.MaxAttempts, sub.MaxAge.Milliseconds(), sub.Status, pending,
			int64(sub.StartSeq), startMs, s.now().UnixMilli(), id)
		return err
	})
	if err == nil {
		s.log.InfoContext(ctx, "subscription changed", "subscription", id)
	}
	return err
}

// Delete deletes a subscription, its dead letters and its durable.
func (s *Service) Delete(ctx context.Context, sc Scope, id string) error {
	sub, err := s.Get(ctx, sc, id)
	if err != nil {
		return err
	}
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM subscription_dead_letters WHERE subscription_id = ?", id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "DELETE FROM subscriptions WHERE id = ?", id)
		return err
	})
	if err != nil {
		return err
	}
	if err := s.bus.DeleteConsumer(ctx, sub.Topic(), sub.ID); err != nil && !errors.Is(err, bus.ErrNotFound) {
		s.log.WarnContext(ctx, "subscription durable not deleted", "subscription", id, "err", err)
	}
	s.log.InfoContext(ctx, "subscription deleted", "subscription", id)
	return nil
}

// DeadLetter is one dead-lettered event.
type DeadLetter struct {
	Seq       uint64
	EventID   string
	Subject   string
	Data      []byte
	Attempts  int
	LastError string
	DeadAt    time.Time
	Replay    bool
}

// DeadLetters lists a subscription's dead letters, oldest first.
func (s *Service) DeadLetters(ctx context.Context, sc Scope, id string, offset, limit int) ([]DeadLetter, int, error) {
	if _, err := s.Get(ctx, sc, id); err != nil {
		return nil, 0, err
	}
	var total int
	if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM subscription_dead_letters WHERE subscription_id = ?", id).Scan(&total); err != nil {
		return nil, 0, err
	}
	out, err := s.deadLetters(ctx, id, false, offset, limit)
	return out, total, err
}

func (s *Service) deadLetters(ctx context.Context, id string, replayOnly bool, offset, limit int) ([]DeadLetter, error) {
	q := "SELECT seq, event_id, subject, data, attempts, last_error, dead_at_ms, replay FROM subscription_dead_letters WHERE subscription_id = ?"
	if replayOnly {
		q += " AND replay = 1"
	}
	rows, err := s.db.Query(ctx, q+" ORDER BY seq LIMIT ? OFFSET ?", id, limit, offset)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []DeadLetter
	for rows.Next() {
		var d DeadLetter
		var seq, at int64
		var data string
		var replay int
		if err := rows.Scan(&seq, &d.EventID, &d.Subject, &data, &d.Attempts, &d.LastError, &at, &replay); err != nil {
			return nil, err
		}
		d.Seq, d.Data, d.DeadAt, d.Replay = uint64(seq), []byte(data), time.UnixMilli(at), replay != 0
		out = append(out, d)
	}
	return out, rows.Err()
}

// TopicHead is what a bus may implement to tell a topic's last sequence;
// DescribeSubscriptionStats uses it for the lag.
type TopicHead interface {
	LastSeq(ctx context.Context, topic string) (uint64, error)
}

// Lag returns the topic's last sequence minus the subscription's highest
// acknowledged one, or -1 when the bus cannot tell its topics' heads.
func (s *Service) Lag(ctx context.Context, sub *Subscription) int64 {
	h, ok := s.bus.(TopicHead)
	if !ok {
		return -1
	}
	last, err := h.LastSeq(ctx, sub.Topic())
	if err != nil {
		return -1
	}
	if last <= sub.Stats.AckedSeq {
		return 0
	}
	return int64(last - sub.Stats.AckedSeq)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// SealedColumns lists the columns that hold values sealed under the master
// key, for a rotation to re-encrypt (tianshu secrets rotate): webhook
// signing secrets (empty for gRPC and SSE subscriptions).
func SealedColumns() []reseal.Column {
	return []reseal.Column{{Table: "subscriptions", Key: "id", Column: "secret_enc"}}
}
