package appcenter

import (
	"context"
	"strconv"
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
	Role        string `json:"Role" validate:"max=64"`
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

// RateLimit is an app's own request rate limits, set only by platform
// admins (a project admin could otherwise lift them); 0 takes the gateway's
// defaults.
type RateLimit struct {
	ReadRps  float64 `json:"ReadRps" validate:"min=0,max=1000000"`
	WriteRps float64 `json:"WriteRps" validate:"min=0,max=1000000"`
	Burst    int     `json:"Burst" validate:"min=0,max=10000000"`
}

// AppInfo is an app as Describe actions return it.
type AppInfo struct {
	AppId          string    `json:"AppId"`
	ProjectId      string    `json:"ProjectId"`
	Name           string    `json:"Name"`
	Description    string    `json:"Description"`
	Role           string    `json:"Role"`
	Status         string    `json:"Status"`
	ActiveKeyCount int       `json:"ActiveKeyCount"`
	RateLimit      RateLimit `json:"RateLimit"`
	CreatedTime    string    `json:"CreatedTime"`
}

// ModifyAppRequest is the request of ModifyApp; absent fields stay as they are.
type ModifyAppRequest struct {
	AppId       string     `json:"AppId" validate:"required,max=64"`
	Name        *string    `json:"Name" validate:"min=1,max=64"`
	Description *string    `json:"Description" validate:"max=1024"`
	Role        *string    `json:"Role" validate:"min=1,max=64"`
	RateLimit   *RateLimit `json:"RateLimit"`
}

// DeleteAppRequest is the request of DeleteApp.
type DeleteAppRequest struct {
	AppId string `json:"AppId" validate:"required,max=64"`
}

// DescribeAppKeysRequest is the request of DescribeAppKeys.
type DescribeAppKeysRequest struct {
	AppId string `json:"AppId" validate:"required,max=64"`
}

// AppKeyInfo is a key pair without its SecretKey.
type AppKeyInfo struct {
	SecretId string `json:"SecretId"`
	Status   string `json:"Status"`
	// RequireSignedAction: requests signed with this key must sign
	// x-tc-action.
	RequireSignedAction bool   `json:"RequireSignedAction"`
	CreatedTime         string `json:"CreatedTime"`
}

// DescribeAppKeysResponse is the response of DescribeAppKeys.
type DescribeAppKeysResponse struct {
	TotalCount int          `json:"TotalCount"`
	KeySet     []AppKeyInfo `json:"KeySet"`
}

// AppKeyRequest names one key pair of an app.
type AppKeyRequest struct {
	AppId    string `json:"AppId" validate:"required,max=64"`
	SecretId string `json:"SecretId" validate:"required,max=64"`
}

// DescribeAppsResponse is the response of DescribeApps.
type DescribeAppsResponse struct {
	TotalCount int       `json:"TotalCount"`
	AppSet     []AppInfo `json:"AppSet"`
}

// AppendJSON encodes the answer as encoding/json would (HTML escaping off),
// without reflection: DescribeApps is the call a signed client makes most
// (encoding/json was a sixth of the gateway's CPU for it, issue #18).
func (r *DescribeAppsResponse) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"TotalCount":`...)
	b = strconv.AppendInt(b, int64(r.TotalCount), 10)
	b = append(b, `,"AppSet":`...)
	if r.AppSet == nil {
		return append(b, "null}"...), nil
	}
	b = append(b, '[')
	var err error
	for i := range r.AppSet {
		a := &r.AppSet[i]
		if i > 0 {
			b = append(b, ',')
		}
		for _, f := range [...]struct{ name, v string }{{`{"AppId":`, a.AppId}, {`,"ProjectId":`, a.ProjectId},
			{`,"Name":`, a.Name}, {`,"Description":`, a.Description}, {`,"Role":`, a.Role}, {`,"Status":`, a.Status}} {
			b = append(b, f.name...)
			b = api.AppendJSONString(b, f.v)
		}
		b = append(b, `,"ActiveKeyCount":`...)
		b = strconv.AppendInt(b, int64(a.ActiveKeyCount), 10)
		b = append(b, `,"RateLimit":{"ReadRps":`...)
		if b, err = api.AppendJSONValue(b, a.RateLimit.ReadRps); err != nil {
			return nil, err
		}
		b = append(b, `,"WriteRps":`...)
		if b, err = api.AppendJSONValue(b, a.RateLimit.WriteRps); err != nil {
			return nil, err
		}
		b = append(b, `,"Burst":`...)
		b = strconv.AppendInt(b, int64(a.RateLimit.Burst), 10)
		b = append(b, `},"CreatedTime":`...)
		b = api.AppendJSONString(b, a.CreatedTime)
		b = append(b, '}')
	}
	return append(b, "]}"...), nil
}

// CreateAppKeyRequest is the request of CreateAppKey.
type CreateAppKeyRequest struct {
	AppId string `json:"AppId" validate:"required,max=64"`
	// RequireSignedAction refuses requests signed with the new key unless
	// their SignedHeaders include x-tc-action, so that a captured request
	// cannot be re-aimed at another action. The official SDKs sign only
	// content-type and host by default; set it for clients that sign more.
	RequireSignedAction bool `json:"RequireSignedAction"`
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
	api.Register(reg, api.Spec{Name: "CreateApp", Summary: "Create an application with a role in its project: built-in (owner, admin, operator, viewer, auditor; default viewer) or custom.", Permission: appWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *CreateAppRequest) (*CreateAppResponse, error) {
			if err := guardOwner(c, r.ProjectId, r.Role); err != nil {
				return nil, err
			}
			a, err := s.CreateApp(ctx, r.ProjectId, r.Name, r.Description, r.Role)
			if err != nil {
				return nil, err
			}
			c.SetResource(a.ID)
			return &CreateAppResponse{AppId: a.ID}, nil
		})
	api.Register(reg, api.Spec{Name: "DescribeApps", Summary: "List applications, newest first. Filters: Name, Role. Without ProjectId: every project where the caller's roles grant it.", Permission: appRead, Union: true},
		func(ctx context.Context, c *api.Caller, r *DescribeAppsRequest) (*DescribeAppsResponse, error) {
			f, err := api.ParseFilters(r.Filters, "Name", "Role")
			if err != nil {
				return nil, err
			}
			off, lim := r.Page()
			apps, total, err := s.ListAppsIn(ctx, c.ListIn(r.ProjectId, nil), r.AppIds, f["Name"], f["Role"], off, lim)
			if err != nil {
				return nil, err
			}
			out := &DescribeAppsResponse{TotalCount: total, AppSet: make([]AppInfo, 0, len(apps))}
			for _, a := range apps {
				out.AppSet = append(out.AppSet, AppInfo{AppId: a.ID, ProjectId: a.ProjectID, Name: a.Name, Description: a.Description,
					Role: a.Role, Status: a.Status, ActiveKeyCount: a.ActiveKeys, CreatedTime: a.CreatedAt.Format(time.RFC3339),
					RateLimit: RateLimit{ReadRps: a.ReadRPS, WriteRps: a.WriteRPS, Burst: a.Burst}})
			}
			return out, nil
		})
	api.Register(reg, api.Spec{Name: "CreateAppKey", Summary: "Create a key pair for an app (at most two active). The SecretKey is returned once.", Permission: appWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *CreateAppKeyRequest) (*CreateAppKeyResponse, error) {
			if err := s.visible(ctx, c, r.AppId); err != nil {
				return nil, err
			}
			id, key, err := s.CreateKeyWith(ctx, r.AppId, KeyOptions{RequireSignedAction: r.RequireSignedAction})
			if err != nil {
				return nil, err
			}
			c.SetResource(r.AppId + "/" + id)
			return &CreateAppKeyResponse{AppId: r.AppId, SecretId: id, SecretKey: key}, nil
		})
	api.Register(reg, api.Spec{Name: "DeleteAppKey", Summary: "Delete one of an app's key pairs; calls signed with it fail from then on.", Permission: appWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *DeleteAppKeyRequest) (*Empty, error) {
			if err := s.visible(ctx, c, r.AppId); err != nil {
				return nil, err
			}
			c.SetResource(r.AppId + "/" + r.SecretId)
			return &Empty{}, s.DeleteKey(ctx, r.AppId, r.SecretId)
		})
	api.Register(reg, api.Spec{Name: "ModifyApp", Summary: "Change an app's name, description, role or rate limits (RateLimit: platform admins only).", Permission: appWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *ModifyAppRequest) (*Empty, error) {
			if err := s.visible(ctx, c, r.AppId); err != nil {
				return nil, err
			}
			c.SetResource(r.AppId)
			// An app's limits bound its project's use of the platform: a
			// project admin who could set them could lift them.
			if r.RateLimit != nil && !c.PlatformAdmin() {
				return nil, api.Errorf(api.AuthFailureUnauthorizedOperation, "RateLimit: only a platform admin sets an app's rate limits")
			}
			if r.Role != nil {
				apps, _, err := s.ListApps(ctx, "", []string{r.AppId}, nil, nil, 0, 1)
				if err != nil || len(apps) == 0 {
					return nil, api.NotFound("AppId", r.AppId)
				}
				if err := guardOwner(c, apps[0].ProjectID, *r.Role, apps[0].Role); err != nil {
					return nil, err
				}
			}
			ch := AppChange{Name: r.Name, Description: r.Description, Role: r.Role}
			if r.RateLimit != nil {
				ch.ReadRPS, ch.WriteRPS, ch.Burst = &r.RateLimit.ReadRps, &r.RateLimit.WriteRps, &r.RateLimit.Burst
			}
			return &Empty{}, s.ModifyApp(ctx, r.AppId, ch)
		})
	api.Register(reg, api.Spec{Name: "DeleteApp", Summary: "Delete an app and its key pairs; refused with ResourceInUse while it owns push subscriptions. The app whose key signs the request cannot delete itself.", Permission: appWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *DeleteAppRequest) (*Empty, error) {
			c.SetResource(r.AppId)
			if r.AppId == c.AppID {
				return nil, api.Errorf(api.ResourceInUse, "AppId: %s signs this request; delete it with another admin app's key", r.AppId)
			}
			if err := s.visible(ctx, c, r.AppId); err != nil {
				return nil, err
			}
			return &Empty{}, s.DeleteApp(ctx, r.AppId)
		})
	api.Register(reg, api.Spec{Name: "DescribeAppKeys", Summary: "List an app's key pairs (SecretIds and status; a SecretKey is shown only when created).", Permission: appRead},
		func(ctx context.Context, c *api.Caller, r *DescribeAppKeysRequest) (*DescribeAppKeysResponse, error) {
			if err := s.visible(ctx, c, r.AppId); err != nil {
				return nil, err
			}
			keys, err := s.Keys(ctx, r.AppId)
			if err != nil {
				return nil, err
			}
			out := &DescribeAppKeysResponse{TotalCount: len(keys), KeySet: make([]AppKeyInfo, 0, len(keys))}
			for _, k := range keys {
				out.KeySet = append(out.KeySet, AppKeyInfo{SecretId: k.SecretID, Status: k.Status, RequireSignedAction: k.RequireSignedAction, CreatedTime: k.CreatedAt.Format(time.RFC3339)})
			}
			return out, nil
		})
	api.Register(reg, api.Spec{Name: "DisableAppKey", Summary: "Disable a key pair: calls signed with it fail until it is enabled again. Rotate a key by creating a second one, moving clients, then disabling and deleting the old one.", Permission: appWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *AppKeyRequest) (*Empty, error) {
			c.SetResource(r.AppId + "/" + r.SecretId)
			if r.SecretId == c.SecretID {
				return nil, api.Errorf(api.ResourceInUse, "SecretId: %s signs this request; disable it with another key", r.SecretId)
			}
			if err := s.visible(ctx, c, r.AppId); err != nil {
				return nil, err
			}
			return &Empty{}, s.SetKeyStatus(ctx, r.AppId, r.SecretId, "disabled")
		})
	api.Register(reg, api.Spec{Name: "EnableAppKey", Summary: "Enable a disabled key pair.", Permission: appWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *AppKeyRequest) (*Empty, error) {
			if err := s.visible(ctx, c, r.AppId); err != nil {
				return nil, err
			}
			c.SetResource(r.AppId + "/" + r.SecretId)
			return &Empty{}, s.SetKeyStatus(ctx, r.AppId, r.SecretId, "active")
		})
	api.Register(reg, api.Spec{Name: "ModifyAppKey", Summary: "Change a key pair's settings: RequireSignedAction refuses requests signed with it unless they sign X-TC-Action.", Permission: appWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *ModifyAppKeyRequest) (*Empty, error) {
			if err := s.visible(ctx, c, r.AppId); err != nil {
				return nil, err
			}
			c.SetResource(r.AppId + "/" + r.SecretId)
			if r.RequireSignedAction == nil {
				return &Empty{}, nil
			}
			return &Empty{}, s.SetKeyRequireSignedAction(ctx, r.AppId, r.SecretId, *r.RequireSignedAction)
		})
}

// ModifyAppKeyRequest is the request of ModifyAppKey; absent fields are
// left as they are.
type ModifyAppKeyRequest struct {
	AppId    string `json:"AppId" validate:"required,max=64"`
	SecretId string `json:"SecretId" validate:"required,max=64"`
	// RequireSignedAction: see CreateAppKey.
	RequireSignedAction *bool `json:"RequireSignedAction"`
}

// guardOwner keeps the owner role for owners: an admin of a project may
// not make an app its owner, nor change an owner app's role.
func guardOwner(c *api.Caller, projectID string, roles ...string) error {
	if projectID == "" {
		projectID = "default"
	}
	for _, r := range roles {
		if r == api.RoleOwner && !c.HasRole(projectID, api.RoleOwner) {
			return api.Errorf(api.AuthFailureUnauthorizedOperation, "Role: only an owner of project %s gives or takes the owner role", projectID)
		}
	}
	return nil
}

// visible checks that the caller may act on an app; apps of other projects
// are "not found".
func (s *Service) visible(ctx context.Context, c *api.Caller, id string) error {
	apps, _, err := s.ListApps(ctx, "", []string{id}, nil, nil, 0, 1)
	if err != nil {
		return err
	}
	if len(apps) == 0 || !c.Sees(apps[0].ProjectID) {
		return api.NotFound("AppId", id)
	}
	return nil
}
