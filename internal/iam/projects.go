package iam

import (
	"context"
	"database/sql"
	"errors"
	"sync"
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

	mu       sync.Mutex
	defaults Quotas
}

// Quotas are how many apps, devices and tasks a project may hold; 0 is no
// quota (as a default) or "the default" (as a project's own).
type Quotas struct {
	Apps, Devices, Tasks int
	// StorageBytes bounds the bytes of records and uploads (see the data
	// center).
	StorageBytes int
}

// SetDefaultQuotas sets the quotas of projects that have none of their
// own. Without it projects have no quotas.
func (p *Projects) SetDefaultQuotas(q Quotas) {
	p.mu.Lock()
	p.defaults = q
	p.mu.Unlock()
}

func (p *Projects) defaultQuotas() Quotas {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.defaults
}

// effective fills a project's unset quotas from the defaults.
func (p *Projects) effective(own Quotas) Quotas {
	d := p.defaultQuotas()
	if own.Apps == 0 {
		own.Apps = d.Apps
	}
	if own.Devices == 0 {
		own.Devices = d.Devices
	}
	if own.Tasks == 0 {
		own.Tasks = d.Tasks
	}
	if own.StorageBytes == 0 {
		own.StorageBytes = d.StorageBytes
	}
	return own
}

// Quota implements api.Quotas: the project's own quota of kind, else the
// default. An unknown project or kind has none (the create that asks
// fails on the project anyway).
func (p *Projects) Quota(ctx context.Context, projectID, kind string) (int, error) {
	var own Quotas
	err := p.db.QueryRow(ctx, "SELECT max_apps, max_devices, max_tasks, max_storage_bytes FROM projects WHERE id = ?", projectID).
		Scan(&own.Apps, &own.Devices, &own.Tasks, &own.StorageBytes)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	q := p.effective(own)
	switch kind {
	case api.QuotaApps:
		return q.Apps, nil
	case api.QuotaDevices:
		return q.Devices, nil
	case api.QuotaTasks:
		return q.Tasks, nil
	case api.QuotaStorage:
		return q.StorageBytes, nil
	}
	return 0, nil
}

// SetQuotas changes the quotas a project names (nil: unchanged; 0: back to
// the default).
func (p *Projects) SetQuotas(ctx context.Context, id string, apps, devices, tasks *int) error {
	var cur Quotas
	err := p.db.QueryRow(ctx, "SELECT max_apps, max_devices, max_tasks FROM projects WHERE id = ?", id).Scan(&cur.Apps, &cur.Devices, &cur.Tasks)
	if errors.Is(err, sql.ErrNoRows) {
		return api.NotFound("ProjectId", id)
	}
	if err != nil {
		return err
	}
	for _, f := range []struct {
		v   *int
		dst *int
	}{{apps, &cur.Apps}, {devices, &cur.Devices}, {tasks, &cur.Tasks}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	_, err = p.db.Exec(ctx, "UPDATE projects SET max_apps = ?, max_devices = ?, max_tasks = ?, updated_at = ? WHERE id = ?",
		cur.Apps, cur.Devices, cur.Tasks, p.now().UnixMilli(), id)
	return err
}

// SetStorageQuota sets the bytes of records and uploads a project may hold
// (0: back to the default); SetQuotas has checked that the project exists.
func (p *Projects) SetStorageQuota(ctx context.Context, id string, bytes int64) error {
	_, err := p.db.Exec(ctx, "UPDATE projects SET max_storage_bytes = ?, updated_at = ? WHERE id = ?", bytes, p.now().UnixMilli(), id)
	return err
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
	// Quotas are the project's own (0: the default).
	Quotas Quotas
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
	ps, _, err := p.Page(ctx, store.Projects{All: true}, nil, 0, -1)
	return ps, err
}

// Page returns limit projects from offset (limit -1: every one) of those
// in (only ids, when given), oldest first, and how many there are,
// counted over the same condition.
func (p *Projects) Page(ctx context.Context, in store.Projects, ids []string, offset, limit int) ([]Project, int, error) {
	var w store.Where
	cond, args := w.InProjects("id", in).In("id", ids).SQL()
	var total int
	if err := p.db.QueryRow(ctx, "SELECT COUNT(*) FROM projects"+cond, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	page := ""
	if limit >= 0 {
		page, args = " LIMIT ? OFFSET ?", append(args, limit, offset)
	}
	rows, err := p.db.Query(ctx, "SELECT id, name, description, created_at, max_apps, max_devices, max_tasks, max_storage_bytes FROM projects"+cond+" ORDER BY created_at, id"+page, args...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []Project
	for rows.Next() {
		var pr Project
		var c int64
		if err := rows.Scan(&pr.ID, &pr.Name, &pr.Description, &c, &pr.Quotas.Apps, &pr.Quotas.Devices, &pr.Quotas.Tasks, &pr.Quotas.StorageBytes); err != nil {
			return nil, 0, err
		}
		pr.CreatedAt = time.UnixMilli(c).UTC()
		out = append(out, pr)
	}
	return out, total, rows.Err()
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
type DescribeProjectsRequest struct {
	// ProjectIds lists only these projects (those the caller sees).
	ProjectIds []string `json:"ProjectIds" validate:"max=100"`
	api.Paging
}

// ProjectInfo is one project.
type ProjectInfo struct {
	ProjectId   string       `json:"ProjectId"`
	Name        string       `json:"Name"`
	Description string       `json:"Description"`
	CreatedTime string       `json:"CreatedTime"`
	Quota       ProjectQuota `json:"Quota"`
}

// ProjectQuota is how many apps, devices and tasks a project may hold (0:
// no quota). In ModifyProjectQuota, 0 returns a quota to the platform's
// default.
type ProjectQuota struct {
	MaxApps    int `json:"MaxApps"`
	MaxDevices int `json:"MaxDevices"`
	MaxTasks   int `json:"MaxTasks"`
	// MaxStorageBytes bounds the bytes of the project's records (documents
	// and the objects stored with them) and uploads.
	MaxStorageBytes int64 `json:"MaxStorageBytes"`
}

// ModifyProjectQuotaRequest is the request of ModifyProjectQuota; absent
// fields stay as they are.
type ModifyProjectQuotaRequest struct {
	ProjectId  string `json:"ProjectId" validate:"required,max=64"`
	MaxApps    *int   `json:"MaxApps" validate:"min=0,max=1000000"`
	MaxDevices *int   `json:"MaxDevices" validate:"min=0,max=1000000"`
	MaxTasks   *int   `json:"MaxTasks" validate:"min=0,max=1000000"`
	// MaxStorageBytes is the storage quota in bytes (0: the default).
	MaxStorageBytes *int64 `json:"MaxStorageBytes" validate:"min=0"`
}

// ModifyProjectQuotaResponse is the response of ModifyProjectQuota.
type ModifyProjectQuotaResponse struct{}

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
	api.Register(reg, api.Spec{Name: "ModifyProjectQuota", Summary: "Set how many apps, devices and tasks, and how many bytes of records and uploads, a project may hold (0: the platform's default). Platform admins only.",
		Permission: api.Permission{Resource: "project", Access: api.Write}, Audit: true},
		func(ctx context.Context, c *api.Caller, r *ModifyProjectQuotaRequest) (*ModifyProjectQuotaResponse, error) {
			c.SetResource(r.ProjectId)
			// A project's quotas bound it on a shared platform: its own
			// owners and admins must not be able to lift them.
			if !c.PlatformAdmin() {
				return nil, api.Errorf(api.AuthFailureUnauthorizedOperation, "ModifyProjectQuota: only a platform admin sets a project's quotas")
			}
			if err := p.SetQuotas(ctx, r.ProjectId, r.MaxApps, r.MaxDevices, r.MaxTasks); err != nil {
				return nil, err
			}
			if r.MaxStorageBytes != nil {
				if err := p.SetStorageQuota(ctx, r.ProjectId, *r.MaxStorageBytes); err != nil {
					return nil, err
				}
			}
			return &ModifyProjectQuotaResponse{}, nil
		})
	api.Register(reg, api.Spec{Name: "DescribeProjects", Summary: "List the projects where the caller holds a role (every project for platform admins), oldest first, with their quotas.", Permission: api.Permission{Resource: "project", Access: api.Read}},
		func(ctx context.Context, c *api.Caller, r *DescribeProjectsRequest) (*DescribeProjectsResponse, error) {
			// Only the projects where the caller holds a role that grants
			// this action (every one for a platform admin).
			off, lim := r.Page()
			ps, total, err := p.Page(ctx, c.ListIn("", nil), r.ProjectIds, off, lim)
			if err != nil {
				return nil, err
			}
			out := &DescribeProjectsResponse{TotalCount: total, ProjectSet: make([]ProjectInfo, 0, len(ps))}
			for _, pr := range ps {
				q := p.effective(pr.Quotas)
				out.ProjectSet = append(out.ProjectSet, ProjectInfo{ProjectId: pr.ID, Name: pr.Name, Description: pr.Description,
					CreatedTime: pr.CreatedAt.Format(time.RFC3339), Quota: ProjectQuota{MaxApps: q.Apps, MaxDevices: q.Devices, MaxTasks: q.Tasks, MaxStorageBytes: int64(q.StorageBytes)}})
			}
			return out, nil
		})
}
