package studio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/flow"
	"github.com/tianshu-ai/tianshu/internal/function"
)

var (
	flowRead  = api.Permission{Resource: "flow", Access: api.Read}
	flowWrite = api.Permission{Resource: "flow", Access: api.Write}
)

// CreateFlowRequest is the request of CreateFlow.
type CreateFlowRequest struct {
	ProjectId   string `json:"ProjectId" validate:"max=64"`
	Name        string `json:"Name" validate:"max=128"`
	Description string `json:"Description" validate:"max=1024"`
	// Document is the flow as a JSON object, or a string holding JSON or
	// YAML; give it or TemplateName.
	Document json.RawMessage `json:"Document"`
	// TemplateName starts from a flow template (DescribeFlowTemplates)
	// instead of a Document.
	TemplateName string `json:"TemplateName" validate:"max=64"`
	// TemplateAlgorithms maps the template's placeholder algorithm ids
	// (DescribeFlowTemplates' Algorithms) to algorithms of yours, e.g.
	// {"alg-ocr": "alg-…"} for text-reading; each placeholder is required.
	// The optional ones (OptionalAlgorithms) may be mapped too: the face
	// templates' {"alg-face-descriptor": "alg-…"} stores each best shot's
	// embedding for SearchFaces.
	TemplateAlgorithms map[string]string `json:"TemplateAlgorithms" validate:"max=16"`
}

// CreateFlowResponse is the response of CreateFlow.
type CreateFlowResponse struct {
	FlowId  string `json:"FlowId"`
	Version int64  `json:"Version"`
}

// ModifyFlowRequest is the request of ModifyFlow.
type ModifyFlowRequest struct {
	FlowId      string          `json:"FlowId" validate:"required,max=64"`
	Name        *string         `json:"Name" validate:"max=128"`
	Description *string         `json:"Description" validate:"max=1024"`
	Document    json.RawMessage `json:"Document"`
	Comment     string          `json:"Comment" validate:"max=1024"`
}

// ModifyFlowResponse is the response of ModifyFlow: the flow's latest
// version after the change (unchanged when the document was identical).
type ModifyFlowResponse struct {
	FlowId  string `json:"FlowId"`
	Version int64  `json:"Version"`
}

// DescribeFlowsRequest is the request of DescribeFlows.
type DescribeFlowsRequest struct {
	ProjectId string       `json:"ProjectId" validate:"max=64"`
	FlowIds   []string     `json:"FlowIds" validate:"max=100"`
	Filters   []api.Filter `json:"Filters" validate:"max=10"`
	api.Paging
}

// FlowInfo is a flow as Describe actions return it.
type FlowInfo struct {
	FlowId        string `json:"FlowId"`
	ProjectId     string `json:"ProjectId"`
	Name          string `json:"Name"`
	Description   string `json:"Description"`
	LatestVersion int64  `json:"LatestVersion"`
	CreatedTime   string `json:"CreatedTime"`
	UpdatedTime   string `json:"UpdatedTime"`
}

// DescribeFlowsResponse is the response of DescribeFlows.
type DescribeFlowsResponse struct {
	TotalCount int        `json:"TotalCount"`
	FlowSet    []FlowInfo `json:"FlowSet"`
}

// DescribeFlowVersionRequest is the request of DescribeFlowVersion.
type DescribeFlowVersionRequest struct {
	FlowId string `json:"FlowId" validate:"required,max=64"`
	// Version 0 (or absent) means the latest.
	Version int64 `json:"Version" validate:"min=0"`
}

// FlowVersionInfo is one version of a flow.
type FlowVersionInfo struct {
	FlowId      string          `json:"FlowId"`
	Version     int64           `json:"Version"`
	Digest      string          `json:"Digest"`
	Comment     string          `json:"Comment"`
	CreatedBy   string          `json:"CreatedBy"`
	CreatedTime string          `json:"CreatedTime"`
	Document    json.RawMessage `json:"Document,omitempty"`
}

// DescribeFlowVersionsRequest is the request of DescribeFlowVersions.
type DescribeFlowVersionsRequest struct {
	FlowId string `json:"FlowId" validate:"required,max=64"`
	api.Paging
}

// DescribeFlowVersionsResponse is the response of DescribeFlowVersions.
type DescribeFlowVersionsResponse struct {
	TotalCount     int               `json:"TotalCount"`
	FlowVersionSet []FlowVersionInfo `json:"FlowVersionSet"`
}

// DeleteFlowRequest is the request of DeleteFlow.
type DeleteFlowRequest struct {
	FlowId string `json:"FlowId" validate:"required,max=64"`
}

// ValidateFlowRequest is the request of ValidateFlow.
type ValidateFlowRequest struct {
	ProjectId string          `json:"ProjectId" validate:"max=64"`
	Document  json.RawMessage `json:"Document" validate:"required"`
}

// FlowError is one problem found in a flow document, located so that an
// editor can pin it: on node NodeId (empty: the document), on Edge when
// the problem is a connection (an edge of the document, or the data
// dependency from a node whose output a path reads to the reader), and at
// Field inside the node ("config.cases[1].when", "inputs.image"). Line
// and Column (1-based) place a script's or expression's error inside the
// field's text (a syntax error, an undefined name); 0 for other problems.
type FlowError struct {
	NodeId  string    `json:"NodeId"`
	Edge    *FlowEdge `json:"Edge,omitempty"`
	Field   string    `json:"Field"`
	Message string    `json:"Message"`
	Line    int       `json:"Line"`
	Column  int       `json:"Column"`
}

// FlowEdge names an edge by the ids of its ends.
type FlowEdge struct {
	From string `json:"From"`
	To   string `json:"To"`
}

// ValidateFlowResponse is the response of ValidateFlow.
type ValidateFlowResponse struct {
	Valid    bool        `json:"Valid"`
	ErrorSet []FlowError `json:"ErrorSet"`
}

// InvokeFlowRequest is the request of InvokeFlow.
type InvokeFlowRequest struct {
	FlowId string `json:"FlowId" validate:"required,max=64"`
	// Version 0 (or absent) means the latest.
	Version int64 `json:"Version" validate:"min=0"`
	// Input is the message ($input).
	Input api.Object `json:"Input"`
	// Parameters are the template parameters ($params).
	Parameters api.Object `json:"Parameters"`
	// Trace returns every node's output, status and duration.
	Trace bool `json:"Trace"`
	// TimeoutMs bounds the run (default 30000, at most 300000).
	TimeoutMs int `json:"TimeoutMs" validate:"min=0,max=300000"`
}

// NodeRun is one node's part of an InvokeFlow run.
type NodeRun struct {
	NodeId     string `json:"NodeId"`
	Kind       string `json:"Kind"`
	Status     string `json:"Status"`
	DurationUs int64  `json:"DurationUs"`
	Attempts   int    `json:"Attempts,omitempty"`
	Output     any    `json:"Output,omitempty"`
	Error      string `json:"Error,omitempty"`
	// Line and Column place a script's failure in its text, when
	// Starlark's backtrace has a place for it; absent otherwise.
	Line   int `json:"Line,omitempty"`
	Column int `json:"Column,omitempty"`
}

// CapturedRecord is a record a store node would have written.
type CapturedRecord struct {
	RecordId string         `json:"RecordId"`
	Type     string         `json:"Type"`
	Data     map[string]any `json:"Data"`
}

// CapturedEvent is an event a publish node would have published.
type CapturedEvent struct {
	Type    string         `json:"Type"`
	Subject string         `json:"Subject"`
	Data    map[string]any `json:"Data"`
}

// InvokeFlowResponse is the response of InvokeFlow. Sinks are not written
// in a test run: what store and publish nodes produced is returned instead.
type InvokeFlowResponse struct {
	FlowId     string           `json:"FlowId"`
	Version    int64            `json:"Version"`
	Output     api.ObjectOut    `json:"Output"`
	NodeSet    []NodeRun        `json:"NodeSet"`
	RecordSet  []CapturedRecord `json:"RecordSet"`
	EventSet   []CapturedEvent  `json:"EventSet"`
	DurationUs int64            `json:"DurationUs"`
}

// document accepts a JSON object, or a JSON string holding JSON or YAML.
func document(raw json.RawMessage) ([]byte, error) {
	raw = json.RawMessage(strings.TrimSpace(string(raw)))
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, api.InvalidValue("Document", "%v", err)
		}
		return []byte(s), nil
	}
	if len(raw) == 0 || raw[0] != '{' {
		return nil, api.InvalidValue("Document", "want a JSON object, or a string holding JSON or YAML")
	}
	return raw, nil
}

// apiError turns validation failures into one InvalidParameterValue that
// lists every problem.
func apiError(err error) error {
	var ve *ValidationError
	if errors.As(err, &ve) {
		var parts []string
		for _, e := range ve.Errs {
			parts = append(parts, e.Error())
		}
		return api.InvalidValue("Document", "%d problem(s): %s", len(ve.Errs), strings.Join(parts, "; "))
	}
	return err
}

func flowInfo(f Flow) FlowInfo {
	return FlowInfo{FlowId: f.ID, ProjectId: f.ProjectID, Name: f.Name, Description: f.Description, LatestVersion: f.LatestVersion,
		CreatedTime: f.CreatedAt.Format(time.RFC3339), UpdatedTime: f.UpdatedAt.Format(time.RFC3339)}
}

func versionInfo(v Version) FlowVersionInfo {
	return FlowVersionInfo{FlowId: v.FlowID, Version: v.Version, Digest: v.Digest, Comment: v.Comment, CreatedBy: v.CreatedBy,
		CreatedTime: v.CreatedAt.Format(time.RFC3339), Document: v.Document}
}

// RegisterActions adds the studio's actions to reg; s may be nil for docs.
func RegisterActions(reg *api.Registry, s *Service) {
	registerKindActions(reg, s)
	registerTestRunAction(reg, s)
	registerTemplateActions(reg)
	api.Register(reg, api.Spec{Name: "CreateFlow", Summary: "Create a flow from a JSON (or YAML) document, or from a flow template (TemplateName); it becomes version 1.", Permission: flowWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *CreateFlowRequest) (*CreateFlowResponse, error) {
			switch {
			case r.TemplateName != "" && len(r.Document) > 0:
				return nil, api.InvalidValue("TemplateName", "give a Document or a TemplateName, not both")
			case r.TemplateName == "" && len(r.Document) == 0:
				return nil, api.Missing("Document")
			case r.TemplateName == "" && len(r.TemplateAlgorithms) > 0:
				return nil, api.InvalidValue("TemplateAlgorithms", "only with a TemplateName")
			case r.TemplateName != "":
				t, err := templateDocument(r.TemplateName, r.TemplateAlgorithms)
				if err != nil {
					return nil, err
				}
				r.Document = t
			}
			doc, err := document(r.Document)
			if err != nil {
				return nil, err
			}
			f, err := s.Create(ctx, r.ProjectId, r.Name, r.Description, doc, c.Actor())
			if err != nil {
				return nil, apiError(err)
			}
			c.SetResource(f.ID)
			return &CreateFlowResponse{FlowId: f.ID, Version: 1}, nil
		})
	api.Register(reg, api.Spec{Name: "ModifyFlow", Summary: "Rename a flow or change its description; a changed Document makes a new immutable version.", Permission: flowWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *ModifyFlowRequest) (*ModifyFlowResponse, error) {
			if err := s.visible(ctx, c, r.FlowId); err != nil {
				return nil, err
			}
			var doc []byte
			if len(r.Document) > 0 {
				var err error
				if doc, err = document(r.Document); err != nil {
					return nil, err
				}
			}
			c.SetResource(r.FlowId)
			v, err := s.Modify(ctx, r.FlowId, r.Name, r.Description, doc, r.Comment, c.Actor())
			if err != nil {
				return nil, apiError(err)
			}
			return &ModifyFlowResponse{FlowId: r.FlowId, Version: v}, nil
		})
	api.Register(reg, api.Spec{Name: "DescribeFlows", Summary: "List flows, most recently changed first. Filters: Name. Without ProjectId: every project where the caller's roles grant it.", Permission: flowRead, Union: true},
		func(ctx context.Context, c *api.Caller, r *DescribeFlowsRequest) (*DescribeFlowsResponse, error) {
			f, err := api.ParseFilters(r.Filters, "Name")
			if err != nil {
				return nil, err
			}
			off, lim := r.Page()
			flows, total, err := s.List(ctx, c.ListIn(r.ProjectId, nil), r.FlowIds, f["Name"], off, lim)
			if err != nil {
				return nil, err
			}
			out := &DescribeFlowsResponse{TotalCount: total, FlowSet: make([]FlowInfo, 0, len(flows))}
			for _, x := range flows {
				out.FlowSet = append(out.FlowSet, flowInfo(x))
			}
			return out, nil
		})
	api.Register(reg, api.Spec{Name: "DescribeFlowVersion", Summary: "Get one version of a flow with its document (Version 0: the latest).", Permission: flowRead},
		func(ctx context.Context, c *api.Caller, r *DescribeFlowVersionRequest) (*FlowVersionInfo, error) {
			if err := s.visible(ctx, c, r.FlowId); err != nil {
				return nil, err
			}
			v, err := s.GetVersion(ctx, r.FlowId, r.Version)
			if err != nil {
				return nil, err
			}
			info := versionInfo(*v)
			return &info, nil
		})
	api.Register(reg, api.Spec{Name: "DescribeFlowVersions", Summary: "List a flow's versions, newest first (without documents).", Permission: flowRead},
		func(ctx context.Context, c *api.Caller, r *DescribeFlowVersionsRequest) (*DescribeFlowVersionsResponse, error) {
			if err := s.visible(ctx, c, r.FlowId); err != nil {
				return nil, err
			}
			off, lim := r.Page()
			vs, total, err := s.ListVersions(ctx, r.FlowId, off, lim)
			if err != nil {
				return nil, err
			}
			out := &DescribeFlowVersionsResponse{TotalCount: total, FlowVersionSet: make([]FlowVersionInfo, 0, len(vs))}
			for _, v := range vs {
				out.FlowVersionSet = append(out.FlowVersionSet, versionInfo(v))
			}
			return out, nil
		})
	api.Register(reg, api.Spec{Name: "DeleteFlow", Summary: "Delete a flow and its versions; refused with ResourceInUse while a task, or a version of another flow (as a subflow), uses it.", Permission: flowWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *DeleteFlowRequest) (*struct{}, error) {
			if err := s.visible(ctx, c, r.FlowId); err != nil {
				return nil, err
			}
			c.SetResource(r.FlowId)
			return &struct{}{}, s.Delete(ctx, r.FlowId)
		})
	api.Register(reg, api.Spec{Name: "ValidateFlow", Summary: "Check a flow document and return every problem, each naming its node and field.", Permission: flowRead},
		func(ctx context.Context, c *api.Caller, r *ValidateFlowRequest) (*ValidateFlowResponse, error) {
			doc, err := document(r.Document)
			if err != nil {
				return nil, err
			}
			errs := s.Validate(ctx, r.ProjectId, doc)
			out := &ValidateFlowResponse{Valid: len(errs) == 0, ErrorSet: make([]FlowError, 0, len(errs))}
			for _, e := range errs {
				fe := FlowError{NodeId: e.Node, Field: e.Field, Message: e.Msg, Line: e.Line, Column: e.Column}
				if e.Edge != nil {
					fe.Edge = &FlowEdge{From: e.Edge.From, To: e.Edge.To}
				}
				out.ErrorSet = append(out.ErrorSet, fe)
			}
			return out, nil
		})
	api.Register(reg, api.Spec{Name: "InvokeFlow", Summary: "Run a flow version once on an input and return its output and, with Trace, every node's output and timing. Sinks are captured, not written.", Permission: flowWrite, Invoke: true},
		func(ctx context.Context, c *api.Caller, r *InvokeFlowRequest) (*InvokeFlowResponse, error) {
			// The flow's row (cached for flowCacheTTL) says who sees it
			// and which version is latest; that version's plan is cached
			// (versions are immutable).
			f, err := s.getForRun(ctx, r.FlowId)
			if err != nil {
				return nil, err
			}
			if !c.Sees(f.ProjectID) {
				return nil, api.NotFound("FlowId", r.FlowId)
			}
			plan, v, err := s.planOf(ctx, f, r.Version)
			if err != nil {
				return nil, apiError(err)
			}
			// api.Object holds normalized numbers already.
			params := map[string]any(r.Parameters)
			if params == nil {
				params = map[string]any{}
			}
			input := map[string]any(r.Input)
			if input == nil {
				input = map[string]any{}
			}
			if err := plan.CheckParams(params); err != nil {
				return nil, api.InvalidValue("Parameters", "%v", err)
			}
			timeout := 30 * time.Second
			if r.TimeoutMs > 0 {
				timeout = time.Duration(r.TimeoutMs) * time.Millisecond
			}
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			sinks := &captureSinks{}
			start := time.Now()
			res, err := plan.Run(ctx, flow.Input{Data: input, Params: params, Sinks: sinks, Trace: r.Trace, Key: "invoke"})
			if err != nil {
				if errors.Is(err, flow.ErrBadInput) {
					return nil, api.InvalidValue("Input", "%v", err)
				}
				if errors.Is(err, context.DeadlineExceeded) {
					return nil, api.Errorf(api.FailedOperation, "flow run exceeded %s", timeout)
				}
				var le *function.LimitError
				if errors.As(err, &le) {
					return nil, api.Errorf(api.LimitExceeded, "flow run failed: %v", err)
				}
				return nil, api.Errorf(api.FailedOperation, "flow run failed: %v", err)
			}
			out := &InvokeFlowResponse{FlowId: r.FlowId, Version: v.Version, Output: res.Output, DurationUs: time.Since(start).Microseconds(),
				NodeSet: make([]NodeRun, 0, len(res.Nodes)), RecordSet: sinks.records, EventSet: sinks.events}
			for _, n := range res.Nodes {
				out.NodeSet = append(out.NodeSet, NodeRun{NodeId: n.ID, Kind: n.Kind, Status: string(n.Status), DurationUs: n.Duration.Microseconds(),
					Attempts: n.Attempts, Output: n.Output, Error: n.Error})
			}
			if out.RecordSet == nil {
				out.RecordSet = []CapturedRecord{}
			}
			if out.EventSet == nil {
				out.EventSet = []CapturedEvent{}
			}
			return out, nil
		})
}

// captureSinks collects what a test run's store and publish nodes produce.
type captureSinks struct {
	mu      sync.Mutex
	records []CapturedRecord
	events  []CapturedEvent
}

func (c *captureSinks) Store(_ context.Context, r flow.Record) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.records) >= 1000 {
		return "", errors.New("test run stored more than 1000 records")
	}
	id := fmt.Sprintf("rec-invoke-%d", len(c.records)+1)
	c.records = append(c.records, CapturedRecord{RecordId: id, Type: r.Type, Data: r.Data})
	return id, nil
}

func (c *captureSinks) Publish(_ context.Context, e flow.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.events) >= 1000 {
		return errors.New("test run published more than 1000 events")
	}
	c.events = append(c.events, CapturedEvent{Type: e.Type, Subject: e.Subject, Data: e.Data})
	return nil
}

// visible checks that the caller may act on a flow; flows of other
// projects are "not found".
func (s *Service) visible(ctx context.Context, c *api.Caller, id string) error {
	f, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	if !c.Sees(f.ProjectID) {
		return api.NotFound("FlowId", id)
	}
	return nil
}

// AppendJSON encodes the answer as encoding/json would (HTML escaping off),
// the output without reflection: InvokeFlow is a hot path.
func (r *InvokeFlowResponse) AppendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, `{"FlowId":`...)
	b = api.AppendJSONString(b, r.FlowId)
	b = append(b, `,"Version":`...)
	b = strconv.AppendInt(b, r.Version, 10)
	b = append(b, `,"Output":`...)
	if b, err = api.AppendJSONValue(b, map[string]any(r.Output)); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name  string
		empty bool
		v     any
	}{
		{`,"NodeSet":`, r.NodeSet != nil && len(r.NodeSet) == 0, r.NodeSet},
		{`,"RecordSet":`, r.RecordSet != nil && len(r.RecordSet) == 0, r.RecordSet},
		{`,"EventSet":`, r.EventSet != nil && len(r.EventSet) == 0, r.EventSet},
	} {
		b = append(b, f.name...)
		if f.empty {
			b = append(b, "[]"...)
		} else if b, err = api.AppendJSONValue(b, f.v); err != nil {
			return nil, err
		}
	}
	b = append(b, `,"DurationUs":`...)
	b = strconv.AppendInt(b, r.DurationUs, 10)
	return append(b, '}'), nil
}
