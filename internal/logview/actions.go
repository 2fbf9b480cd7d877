// Package logview serves the last log lines a process kept in memory
// (telemetry.LogRing) through the action API: DescribeLogs.
package logview

import (
	"context"
	"log/slog"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/telemetry"
)

// Limits of DescribeLogs.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
	// MaxAnswerBytes caps the lines' text in one answer; past it the
	// answer stops early and says Truncated.
	MaxAnswerBytes = 1 << 20
)

// DescribeLogsRequest is the request of DescribeLogs.
type DescribeLogsRequest struct {
	// Component keeps the lines of one component (a name from
	// ComponentSet); empty: every component.
	Component string `json:"Component" validate:"max=64"`
	// Level is the lowest level shown: debug, info, warn or error
	// (default: every level kept).
	Level string `json:"Level" validate:"oneof=debug info warn error"`
	// Since keeps lines at or after this time (RFC 3339).
	Since string `json:"Since" validate:"max=64"`
	// Contains keeps lines whose message or fields contain this text
	// (case-sensitive), e.g. a RequestId or a trace id.
	Contains string `json:"Contains" validate:"max=256"`
	// Limit is how many lines, the newest (default 100, max 1000).
	Limit int `json:"Limit" validate:"min=0,max=1000"`
}

// LogLine is one kept line.
type LogLine struct {
	Time      string `json:"Time"`
	Level     string `json:"Level"`
	Component string `json:"Component"`
	Message   string `json:"Message"`
	// Fields are the line's attributes as key=value pairs (request_id
	// and trace_id among them when it was written within a request or a
	// traced message).
	Fields string `json:"Fields"`
}

// DescribeLogsResponse is the response of DescribeLogs.
type DescribeLogsResponse struct {
	// LogSet are the selected lines, newest first.
	LogSet []LogLine `json:"LogSet"`
	// ComponentSet names every component with kept lines.
	ComponentSet []string `json:"ComponentSet"`
	// Truncated says the answer stopped at its size limit (1 MiB of
	// text) before Limit lines: narrow the filters.
	Truncated bool `json:"Truncated"`
}

// permission is what DescribeLogs needs: the platform's own resource,
// which only platform admins hold, since lines name every project.
var permission = api.Permission{Resource: "platform", Access: api.Read}

// RegisterActions registers DescribeLogs over ring (nil: nothing kept,
// and the action says so).
func RegisterActions(reg *api.Registry, ring *telemetry.LogRing) {
	api.Register(reg, api.Spec{Name: "DescribeLogs", Summary: "Read the last log lines this process kept in memory (--log.recent-lines per component), newest first, filtered by component, lowest level, time and text. Platform admins only: lines name every project.",
		Permission: permission},
		func(ctx context.Context, c *api.Caller, req *DescribeLogsRequest) (*DescribeLogsResponse, error) {
			return describeLogs(ring, req)
		})
}

func describeLogs(ring *telemetry.LogRing, req *DescribeLogsRequest) (*DescribeLogsResponse, error) {
	q := telemetry.LogQuery{Component: req.Component, Contains: req.Contains, Limit: req.Limit, MinLevel: slog.LevelDebug}
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	if req.Level != "" {
		q.MinLevel = telemetry.ParseLevel(req.Level)
	}
	if req.Since != "" {
		t, err := time.Parse(time.RFC3339Nano, req.Since)
		if err != nil {
			return nil, api.InvalidValue("Since", "%q is not an RFC 3339 time", req.Since)
		}
		q.Since = t
	}
	if ring == nil {
		return nil, api.Errorf(api.FailedOperation, "logs in memory are off on this server: set --log.recent-lines")
	}
	resp := &DescribeLogsResponse{LogSet: []LogLine{}, ComponentSet: ring.Components()}
	size := 0
	for _, l := range ring.Lines(q) {
		size += len(l.Message) + len(l.Fields) + len(l.Component) + 64
		if size > MaxAnswerBytes {
			resp.Truncated = true
			break
		}
		resp.LogSet = append(resp.LogSet, LogLine{Time: l.Time.UTC().Format(time.RFC3339Nano), Level: levelName(l.Level),
			Component: l.Component, Message: l.Message, Fields: l.Fields})
	}
	return resp, nil
}

func levelName(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "error"
	case l >= slog.LevelWarn:
		return "warn"
	case l >= slog.LevelInfo:
		return "info"
	}
	return "debug"
}
