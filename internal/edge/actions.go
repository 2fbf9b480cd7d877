package edge

import (
	"context"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
)

var (
	edgeRead  = api.Permission{Resource: "edge", Access: api.Read}
	edgeWrite = api.Permission{Resource: "edge", Access: api.Write}
)

// CreateEdgeNodeRequest is the request of CreateEdgeNode.
type CreateEdgeNodeRequest struct {
	ProjectId   string `json:"ProjectId" validate:"max=64"`
	Name        string `json:"Name" validate:"required,max=128"`
	Description string `json:"Description" validate:"max=1024"`
}

// CreateEdgeNodeResponse is the response of CreateEdgeNode.
type CreateEdgeNodeResponse struct {
	EdgeNodeId string `json:"EdgeNodeId"`
	// JoinToken is shown once: `tianshu serve --target=edge --cloud URL
	// --join-token TOKEN` spends it. It pins the cloud's leaf certificate.
	JoinToken string `json:"JoinToken"`
}

// DescribeEdgeNodesRequest is the request of DescribeEdgeNodes.
type DescribeEdgeNodesRequest struct {
	ProjectId   string   `json:"ProjectId" validate:"max=64"`
	EdgeNodeIds []string `json:"EdgeNodeIds" validate:"max=100"`
	api.Paging
}

// EdgeNodeInfo is an edge node as DescribeEdgeNodes returns it.
type EdgeNodeInfo struct {
	EdgeNodeId  string `json:"EdgeNodeId"`
	ProjectId   string `json:"ProjectId"`
	Name        string `json:"Name"`
	Description string `json:"Description"`
	// Status is pending (not joined yet), online (heard from within three
	// heartbeats) or offline.
	Status           string            `json:"Status"`
	JoinedTime       string            `json:"JoinedTime"`
	LastSeenTime     string            `json:"LastSeenTime"`
	LatencyMs        float64           `json:"LatencyMs"`
	BufferDepth      int64             `json:"BufferDepth"`
	BufferBytes      int64             `json:"BufferBytes"`
	BufferOldestTime string            `json:"BufferOldestTime"`
	ForwardedRecords int64             `json:"ForwardedRecords"`
	Versions         map[string]string `json:"Versions"`
	CreatedTime      string            `json:"CreatedTime"`
}

// DescribeEdgeNodesResponse is the response of DescribeEdgeNodes.
type DescribeEdgeNodesResponse struct {
	TotalCount  int            `json:"TotalCount"`
	EdgeNodeSet []EdgeNodeInfo `json:"EdgeNodeSet"`
}

// EdgeNodeIdRequest names one edge node.
type EdgeNodeIdRequest struct {
	EdgeNodeId string `json:"EdgeNodeId" validate:"required,max=64"`
}

// DeleteEdgeNodeResponse is the response of DeleteEdgeNode.
type DeleteEdgeNodeResponse struct {
	// UnplacedDevices counts the node's devices, now of no site (put them
	// on another node with ModifyDevice).
	UnplacedDevices int `json:"UnplacedDevices"`
	// StoppedTasks counts the node's tasks, now Stopped; StartTask refuses
	// them (ResourceNotFound naming EdgeNodeId).
	StoppedTasks int `json:"StoppedTasks"`
}

// Empty is a response with no fields.
type Empty struct{}

func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func (s *Nodes) info(n *Node, window time.Duration) EdgeNodeInfo {
	st := "pending"
	switch {
	case n.Online(s.now(), window):
		st = "online"
	case !n.Joined.IsZero():
		st = "offline"
	}
	vs := n.Versions
	if vs == nil {
		vs = map[string]string{}
	}
	return EdgeNodeInfo{EdgeNodeId: n.ID, ProjectId: n.ProjectID, Name: n.Name, Description: n.Description, Status: st,
		JoinedTime: timeText(n.Joined), LastSeenTime: timeText(n.LastSeen), LatencyMs: float64(n.Latency.Microseconds()) / 1000,
		BufferDepth: n.BufferDepth, BufferBytes: n.BufferBytes, BufferOldestTime: timeText(n.BufferOldest),
		ForwardedRecords: n.Forwarded, Versions: vs, CreatedTime: timeText(n.CreatedAt)}
}

// RegisterActions adds the edge node actions to reg; s may be nil for
// docs. A node is online while heard from within window.
func RegisterActions(reg *api.Registry, s *Nodes, window time.Duration) {
	api.Register(reg, api.Spec{Name: "CreateEdgeNode", Summary: "Add an edge node (a site with its own store and bus) and return its one-time join token.", Permission: edgeWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *CreateEdgeNodeRequest) (*CreateEdgeNodeResponse, error) {
			n := &Node{ProjectID: r.ProjectId, Name: r.Name, Description: r.Description}
			tok, err := s.Create(ctx, n)
			if err != nil {
				return nil, err
			}
			c.SetResource(n.ID)
			return &CreateEdgeNodeResponse{EdgeNodeId: n.ID, JoinToken: tok}, nil
		})
	api.Register(reg, api.Spec{Name: "DescribeEdgeNodes", Summary: "List edge nodes with their link status, last heartbeat, latency, buffer and versions. Without ProjectId: every project where the caller's roles grant it.", Permission: edgeRead, Union: true},
		func(ctx context.Context, c *api.Caller, r *DescribeEdgeNodesRequest) (*DescribeEdgeNodesResponse, error) {
			off, lim := r.Page()
			ns, total, err := s.List(ctx, c.ListIn(r.ProjectId, nil), r.EdgeNodeIds, off, lim)
			if err != nil {
				return nil, err
			}
			out := &DescribeEdgeNodesResponse{TotalCount: total, EdgeNodeSet: make([]EdgeNodeInfo, 0, len(ns))}
			for _, n := range ns {
				out.EdgeNodeSet = append(out.EdgeNodeSet, s.info(n, window))
			}
			return out, nil
		})
	api.Register(reg, api.Spec{Name: "DeleteEdgeNode", Summary: "Delete an edge node: its tasks are stopped, its devices taken off it, its credential revoked at once and its link cut; records it forwarded stay. The edge learns it is revoked, forgets its credential and stops dialling.", Permission: edgeWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *EdgeNodeIdRequest) (*DeleteEdgeNodeResponse, error) {
			n, err := s.Get(ctx, r.EdgeNodeId)
			if err != nil {
				return nil, err
			}
			if !c.Sees(n.ProjectID) {
				return nil, api.NotFound("EdgeNodeId", r.EdgeNodeId)
			}
			c.SetResource(n.ID)
			// Revoked first: from here the node's reports change
			// nothing, and it can no longer undo what follows.
			if err := s.Delete(ctx, n.ID); err != nil {
				return nil, err
			}
			var out DeleteEdgeNodeResponse
			if s.unplace != nil {
				if out.UnplacedDevices, out.StoppedTasks, err = s.unplace(ctx, n.ID); err != nil {
					return nil, err
				}
			}
			return &out, nil
		})
}
