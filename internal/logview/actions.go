// Package logview serves the last log lines a process kept in memory
// (telemetry.LogRing) through the action API: DescribeLogs. With the
// platform's roles in several processes, it asks the others for theirs
// over the bus (internal/peers) and shows every process's lines.
package logview

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sort"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/peers"
	"github.com/tianshu-ai/tianshu/internal/telemetry"
)

// PeersTopic is the peers topic on which processes ask each other for
// their lines.
const PeersTopic = "logs"

// Asker asks the platform's other processes (a *peers.Peers).
type Asker interface {
	Ask(ctx context.Context, q any) (answers []peers.Answer, missing []string, err error)
}

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
	// Process keeps the lines of one process (a name from ProcessSet);
	// empty: every process's.
	Process string `json:"Process" validate:"max=256"`
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
	// Process names the process that logged the line: its worker name
	// (or host) and its targets.
	Process string `json:"Process"`

	time time.Time
}

// DescribeLogsResponse is the response of DescribeLogs.
type DescribeLogsResponse struct {
	// LogSet are the selected lines, newest first.
	LogSet []LogLine `json:"LogSet"`
	// ComponentSet names every component with kept lines.
	ComponentSet []string `json:"ComponentSet"`
	// ProcessSet names the processes whose lines were read: this one
	// and every other that answered.
	ProcessSet []string `json:"ProcessSet"`
	// UnansweredProcesses names the processes that did not answer in
	// time: their lines are missing.
	UnansweredProcesses []string `json:"UnansweredProcesses,omitempty"`
	// Truncated says the answer stopped at its size limit (1 MiB of
	// text) before Limit lines: narrow the filters.
	Truncated bool `json:"Truncated"`
}

// permission is what DescribeLogs needs: the platform's own resource,
// which only platform admins hold, since lines name every project.
var permission = api.Permission{Resource: "platform", Access: api.Read}

// RegisterActions registers DescribeLogs over ring (nil: nothing kept,
// and the action says so), naming this process process, and others, the
// platform's other processes (nil: none, or a bus that cannot ask them).
func RegisterActions(reg *api.Registry, ring *telemetry.LogRing, process string, others Asker) {
	api.Register(reg, api.Spec{Name: "DescribeLogs", Summary: "Read the last log lines kept in memory (--log.recent-lines per component) by this process and, with roles in several processes, by every one, newest first, filtered by component, process, lowest level, time and text. Platform admins only: lines name every project.",
		Permission: permission},
		func(ctx context.Context, c *api.Caller, req *DescribeLogsRequest) (*DescribeLogsResponse, error) {
			return describeLogs(ctx, ring, process, others, req)
		})
}

// logsQuestion is what DescribeLogs asks the other processes.
type logsQuestion struct {
	Component string    `json:"c,omitempty"`
	Level     int       `json:"l"`
	Since     time.Time `json:"s,omitzero"`
	Contains  string    `json:"x,omitempty"`
	Limit     int       `json:"n"`
}

// logItem is one item of an answer: a line, or the answering process's
// components.
type logItem struct {
	Line       *LogLine `json:"l,omitempty"`
	Components []string `json:"c,omitempty"`
}

func (q logsQuestion) query() telemetry.LogQuery {
	return telemetry.LogQuery{Component: q.Component, MinLevel: slog.Level(q.Level), Since: q.Since, Contains: q.Contains, Limit: min(max(q.Limit, 1), MaxLimit)}
}

// Answerer answers another process's DescribeLogs from ring (a
// peers.Answerer): its components, then the lines asked for, at most
// MaxAnswerBytes of them.
func Answerer(ring *telemetry.LogRing, process string) peers.Answerer {
	return func(_ context.Context, question json.RawMessage) []json.RawMessage {
		var q logsQuestion
		if ring == nil || json.Unmarshal(question, &q) != nil {
			return nil
		}
		first, _ := json.Marshal(logItem{Components: ring.Components()})
		out := []json.RawMessage{first}
		size := 0
		for _, l := range ring.Lines(q.query()) {
			line := lineOf(l, process)
			if size += lineSize(line); size > MaxAnswerBytes {
				break
			}
			if b, err := json.Marshal(logItem{Line: &line}); err == nil {
				out = append(out, b)
			}
		}
		return out
	}
}

func lineOf(l telemetry.LogLine, process string) LogLine {
	return LogLine{Time: l.Time.UTC().Format(time.RFC3339Nano), Level: levelName(l.Level), Component: l.Component, Message: l.Message,
		Fields: l.Fields, Process: process, time: l.Time}
}

func lineSize(l LogLine) int {
	return len(l.Message) + len(l.Fields) + len(l.Component) + len(l.Process) + 64
}

func describeLogs(ctx context.Context, ring *telemetry.LogRing, process string, others Asker, req *DescribeLogsRequest) (*DescribeLogsResponse, error) {
	q := logsQuestion{Component: req.Component, Contains: req.Contains, Limit: req.Limit, Level: int(slog.LevelDebug)}
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	if req.Level != "" {
		q.Level = int(telemetry.ParseLevel(req.Level))
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
	resp := &DescribeLogsResponse{LogSet: []LogLine{}, ComponentSet: ring.Components(), ProcessSet: []string{process}}
	var lines []LogLine
	if req.Process == "" || req.Process == process {
		for _, l := range ring.Lines(q.query()) {
			lines = append(lines, lineOf(l, process))
		}
	}
	if others != nil {
		answers, missing, err := others.Ask(ctx, q)
		if err == nil {
			resp.UnansweredProcesses = missing
			for _, a := range answers {
				resp.ProcessSet = append(resp.ProcessSet, a.Peer)
				for _, it := range a.Items {
					var item logItem
					if json.Unmarshal(it, &item) != nil {
						continue
					}
					resp.ComponentSet = append(resp.ComponentSet, item.Components...)
					if l := item.Line; l != nil && (req.Process == "" || req.Process == a.Peer) {
						l.Process = a.Peer
						l.time, _ = time.Parse(time.RFC3339Nano, l.Time)
						lines = append(lines, *l)
					}
				}
			}
			// Newest first across processes; each process's own order
			// (by sequence) holds among lines of one instant.
			sort.SliceStable(lines, func(i, j int) bool { return lines[i].time.After(lines[j].time) })
			sort.Strings(resp.ComponentSet)
			resp.ComponentSet = slices.Compact(resp.ComponentSet)
			sort.Strings(resp.ProcessSet[1:])
		}
	}
	size := 0
	for _, l := range lines {
		if len(resp.LogSet) == q.Limit {
			break
		}
		if size += lineSize(l); size > MaxAnswerBytes {
			resp.Truncated = true
			break
		}
		resp.LogSet = append(resp.LogSet, l)
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
