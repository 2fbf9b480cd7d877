package iam

import (
	"context"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/ids"
	"github.com/tianshu-ai/tianshu/internal/store"
)

// Projects keeps projects: the scopes that own devices, flows, tasks and
// apps. Project "default" exists from the first migration.
type Projects struct {
	db  *store.DB
	now func() time.Time
}

// NewProjects returns the project store over db.
func NewProjects(db *store.DB, now func() time.Time) *Projects {
	if now == nil {
		now = time.Now
	}
	return &Projects{db: db, now: now}
}

// Project is a project row.
type Project struct {
	ID, Name, Description string
	CreatedAt             time.Time
}

// Create adds a project; id may be given (e.g. "demo"), else one is made.
func (p *Projects) Create(ctx context.Context, id, name, description string) (*Project, error) {
	if id == "" {
		id = ids.New("prj")
	}
	now := p.now()
	_, err := p.db.Exec(ctx, "INSERT INTO projects (id, name, description, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
		id, name, description, now.UnixMilli(), now.UnixMilli())
	if p.db.IsUniqueViolation(err) {
		return nil, api.Errorf(api.ResourceInUse, "Name: a project named %q (or with id %q) exists", name, id)
	}
	if err != nil {
		return nil, err
	}
	return &Project{ID: id, Name: name, Description: description, CreatedAt: now}, nil
}

// List returns every project, oldest first.
func (p *Projects) List(ctx context.Context) ([]Project, error) {
	rows, err := p.db.Query(ctx, "SELECT id, name, description, created_at FROM projects ORDER BY created_at, id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Project
	for rows.Next() {
		var pr Project
		var c int64
		if err := rows.Scan(&pr.ID, &pr.Name, &pr.Description, &c); err != nil {
			return nil, err
		}
		pr.CreatedAt = time.UnixMilli(c).UTC()
		out = append(out, pr)
	}
	return out, rows.Err()
}

// CreateProjectRequest is the request of CreateProject.
type CreateProjectRequest struct {
	Name        string `json:"Name" validate:"required,max=128"`
	Description string `json:"Description" validate:"max=1024"`
}

// CreateProjectResponse is the response of CreateProject.
type CreateProjectResponse struct {
	ProjectId string `json:"ProjectId"`
}

// DescribeProjectsRequest is the request of DescribeProjects.
type DescribeProjectsRequest struct{}

// ProjectInfo is one project.
type ProjectInfo struct {
	ProjectId   string `json:"ProjectId"`
	Name        string `json:"Name"`
	Description string `json:"Description"`
	CreatedTime string `json:"CreatedTime"`
}

// DescribeProjectsResponse is the response of DescribeProjects.
type DescribeProjectsResponse struct {
	TotalCount int           `json:"TotalCount"`
	ProjectSet []ProjectInfo `json:"ProjectSet"`
}

// RegisterProjectActions adds the project actions to reg; p may be nil.
func RegisterProjectActions(reg *api.Registry, p *Projects) {
	api.Register(reg, api.Spec{Name: "CreateProject", Summary: "Create a project: a scope that owns devices, flows, tasks and apps.",
		Permission: api.Permission{Resource: "project", Access: api.Write}, Audit: true},
		func(ctx context.Context, c *api.Caller, r *CreateProjectRequest) (*CreateProjectResponse, error) {
			pr, err := p.Create(ctx, "", r.Name, r.Description)
			if err != nil {
				return nil, err
			}
			c.SetResource(pr.ID)
			return &CreateProjectResponse{ProjectId: pr.ID}, nil
		})
	api.Register(reg, api.Spec{Name: "DescribeProjects", Summary: "List projects.", Permission: api.Permission{Resource: "project", Access: api.Read}},
		func(ctx context.Context, c *api.Caller, r *DescribeProjectsRequest) (*DescribeProjectsResponse, error) {
			ps, err := p.List(ctx)
			if err != nil {
				return nil, err
			}
			out := &DescribeProjectsResponse{ProjectSet: make([]ProjectInfo, 0, len(ps))}
			for _, pr := range ps {
				if !c.Sees(pr.ID) { // only the projects the caller holds a role in
					continue
				}
				out.ProjectSet = append(out.ProjectSet, ProjectInfo{ProjectId: pr.ID, Name: pr.Name, Description: pr.Description,
					CreatedTime: pr.CreatedAt.Format(time.RFC3339)})
			}
			out.TotalCount = len(out.ProjectSet)
			return out, nil
		})
}
