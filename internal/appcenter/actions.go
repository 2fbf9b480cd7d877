package appcenter

import (
	"context"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
)

var (
	appRead  = api.Permission{Resource: "app", Access: api.Read}
	appWrite = api.Permission{Resource: "app", Access: api.Write}
)

// CreateAppRequest is the request of CreateApp.
type CreateAppRequest struct {
	ProjectId   string `json:"ProjectId" validate:"max=64"`
	Name        string `json:"Name" validate:"required,max=64"`
	Description string `json:"Description" validate:"max=1024"`
	Role        string `json:"Role" validate:"oneof=admin viewer"`
}

// CreateAppResponse is the response of CreateApp.
type CreateAppResponse struct {
	AppId string `json:"AppId"`
}

// DescribeAppsRequest is the request of DescribeApps.
type DescribeAppsRequest struct {
	ProjectId string       `json:"ProjectId" validate:"max=64"`
	AppIds    []string     `json:"AppIds" validate:"max=100"`
	Filters   []api.Filter `json:"Filters" validate:"max=10"`
	api.Paging
}

// AppInfo is an app as Describe actions return it.
type AppInfo struct {
	AppId          string `json:"AppId"`
	ProjectId      string `json:"ProjectId"`
	Name           string `json:"Name"`
	Description    string `json:"Description"`
	Role           string `json:"Role"`
	Status         string `json:"Status"`
	ActiveKeyCount int    `json:"ActiveKeyCount"`
	CreatedTime    string `json:"CreatedTime"`
}

// DescribeAppsResponse is the response of DescribeApps.
type DescribeAppsResponse struct {
	TotalCount int       `json:"TotalCount"`
	AppSet     []AppInfo `json:"AppSet"`
}

// CreateAppKeyRequest is the request of CreateAppKey.
type CreateAppKeyRequest struct {
	AppId string `json:"AppId" validate:"required,max=64"`
}

// CreateAppKeyResponse is the response of CreateAppKey. The SecretKey is
// returned only here.
type CreateAppKeyResponse struct {
	AppId     string `json:"AppId"`
	SecretId  string `json:"SecretId"`
	SecretKey string `json:"SecretKey"`
}

// DeleteAppKeyRequest is the request of DeleteAppKey.
type DeleteAppKeyRequest struct {
	AppId    string `json:"AppId" validate:"required,max=64"`
	SecretId string `json:"SecretId" validate:"required,max=64"`
}

// Empty is the response of actions that return only a RequestId.
type Empty struct{}

// RegisterActions adds the application center's actions to reg. s may be
// nil when the registry only feeds docs or the CLI.
func RegisterActions(reg *api.Registry, s *Service) {
	api.Register(reg, api.Spec{Name: "CreateApp", Summary: "Create an application with a built-in role (admin or viewer; default viewer).", Permission: appWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *CreateAppRequest) (*CreateAppResponse, error) {
			a, err := s.CreateApp(ctx, r.ProjectId, r.Name, r.Description, r.Role)
			if err != nil {
				return nil, err
			}
			c.SetResource(a.ID)
			return &CreateAppResponse{AppId: a.ID}, nil
		})
	api.Register(reg, api.Spec{Name: "DescribeApps", Summary: "List applications, newest first. Filters: Name, Role.", Permission: appRead},
		func(ctx context.Context, c *api.Caller, r *DescribeAppsRequest) (*DescribeAppsResponse, error) {
			f, err := api.ParseFilters(r.Filters, "Name", "Role")
			if err != nil {
				return nil, err
			}
			off, lim := r.Page()
			apps, total, err := s.ListApps(ctx, r.ProjectId, r.AppIds, f["Name"], f["Role"], off, lim)
			if err != nil {
				return nil, err
			}
			out := &DescribeAppsResponse{TotalCount: total, AppSet: make([]AppInfo, 0, len(apps))}
			for _, a := range apps {
				out.AppSet = append(out.AppSet, AppInfo{AppId: a.ID, ProjectId: a.ProjectID, Name: a.Name, Description: a.Description,
					Role: a.Role, Status: a.Status, ActiveKeyCount: a.ActiveKeys, CreatedTime: a.CreatedAt.Format(time.RFC3339)})
			}
			return out, nil
		})
	api.Register(reg, api.Spec{Name: "CreateAppKey", Summary: "Create a key pair for an app (at most two active). The SecretKey is returned once.", Permission: appWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *CreateAppKeyRequest) (*CreateAppKeyResponse, error) {
			id, key, err := s.CreateKey(ctx, r.AppId, "", "")
			if err != nil {
				return nil, err
			}
			c.SetResource(r.AppId + "/" + id)
			return &CreateAppKeyResponse{AppId: r.AppId, SecretId: id, SecretKey: key}, nil
		})
	api.Register(reg, api.Spec{Name: "DeleteAppKey", Summary: "Delete one of an app's key pairs; calls signed with it fail from then on.", Permission: appWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *DeleteAppKeyRequest) (*Empty, error) {
			c.SetResource(r.AppId + "/" + r.SecretId)
			return &Empty{}, s.DeleteKey(ctx, r.AppId, r.SecretId)
		})
}
