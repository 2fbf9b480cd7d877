package iam

import (
	"context"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
)

var (
	roleRead    = api.Permission{Resource: "role", Access: api.Read}
	roleWrite   = api.Permission{Resource: "role", Access: api.Write}
	memberRead  = api.Permission{Resource: "member", Access: api.Read}
	memberWrite = api.Permission{Resource: "member", Access: api.Write}
)

// CreateRoleRequest is the request of CreateRole.
type CreateRoleRequest struct {
	ProjectId   string `json:"ProjectId" validate:"max=64"`
	Name        string `json:"Name" validate:"required,max=64"`
	Description string `json:"Description" validate:"max=1024"`
	// Actions are action names or patterns with * ("Describe*", "*Device*").
	Actions []string `json:"Actions" validate:"required,max=200"`
	// DeviceIds, DeviceGroups and TaskIds narrow the role to those
	// resources; a kind left empty is not narrowed.
	DeviceIds    []string `json:"DeviceIds" validate:"max=1000"`
	DeviceGroups []string `json:"DeviceGroups" validate:"max=100"`
	TaskIds      []string `json:"TaskIds" validate:"max=1000"`
}

// CreateRoleResponse is the response of CreateRole.
type CreateRoleResponse struct {
	RoleId string `json:"RoleId"`
}

// DescribeRolesRequest is the request of DescribeRoles.
type DescribeRolesRequest struct {
	ProjectId string `json:"ProjectId" validate:"max=64"`
	api.Paging
}

// RoleInfo is a role: built-in (no RoleId, every project) or custom.
type RoleInfo struct {
	RoleId       string   `json:"RoleId"`
	ProjectId    string   `json:"ProjectId"`
	Name         string   `json:"Name"`
	Description  string   `json:"Description"`
	BuiltIn      bool     `json:"BuiltIn"`
	Actions      []string `json:"Actions"`
	DeviceIds    []string `json:"DeviceIds"`
	DeviceGroups []string `json:"DeviceGroups"`
	TaskIds      []string `json:"TaskIds"`
	CreatedTime  string   `json:"CreatedTime"`
}

// DescribeRolesResponse is the response of DescribeRoles.
type DescribeRolesResponse struct {
	TotalCount int        `json:"TotalCount"`
	RoleSet    []RoleInfo `json:"RoleSet"`
}

// ModifyRoleRequest is the request of ModifyRole; absent fields stay.
type ModifyRoleRequest struct {
	RoleId       string    `json:"RoleId" validate:"required,max=64"`
	Description  *string   `json:"Description" validate:"max=1024"`
	Actions      []string  `json:"Actions" validate:"max=200"`
	DeviceIds    *[]string `json:"DeviceIds" validate:"max=1000"`
	DeviceGroups *[]string `json:"DeviceGroups" validate:"max=100"`
	TaskIds      *[]string `json:"TaskIds" validate:"max=1000"`
}

// RoleIdRequest names a custom role.
type RoleIdRequest struct {
	RoleId string `json:"RoleId" validate:"required,max=64"`
}

// ProjectMemberRequest names a principal's role in a project.
type ProjectMemberRequest struct {
	ProjectId   string `json:"ProjectId" validate:"max=64"`
	PrincipalId string `json:"PrincipalId" validate:"required,max=64"`
	// Role is a built-in role or a custom role of the project; for
	// DeleteProjectMember, empty removes every role of the principal.
	Role string `json:"Role" validate:"max=64"`
}

// CreateProjectMemberRequest gives a principal, named by id or (a user)
// by user name, one more role in a project.
type CreateProjectMemberRequest struct {
	ProjectId string `json:"ProjectId" validate:"max=64"`
	// PrincipalId is a user (usr-…) or an app (app-…); give it or UserName.
	PrincipalId string `json:"PrincipalId" validate:"max=64"`
	// UserName names a user instead of PrincipalId, so that a project
	// admin, who may not list users, adds a person by the name they give.
	UserName string `json:"UserName" validate:"max=64"`
	Role     string `json:"Role" validate:"required,max=64"`
}

// CreateProjectMemberResponse is the response of CreateProjectMember.
type CreateProjectMemberResponse struct {
	PrincipalId string `json:"PrincipalId"`
}

// ModifyProjectMemberRequest replaces a member's roles in a project.
type ModifyProjectMemberRequest struct {
	ProjectId   string   `json:"ProjectId" validate:"max=64"`
	PrincipalId string   `json:"PrincipalId" validate:"required,max=64"`
	Roles       []string `json:"Roles" validate:"required,min=1,max=20"`
}

// DescribeProjectMembersRequest is the request of DescribeProjectMembers.
type DescribeProjectMembersRequest struct {
	ProjectId    string   `json:"ProjectId" validate:"max=64"`
	PrincipalIds []string `json:"PrincipalIds" validate:"max=100"`
	api.Paging
}

// MemberInfo is a member of a project.
type MemberInfo struct {
	ProjectId   string `json:"ProjectId"`
	PrincipalId string `json:"PrincipalId"`
	// Name is the user's user name or the app's name.
	Name  string   `json:"Name"`
	Roles []string `json:"Roles"`
}

// DescribeProjectMembersResponse is the response of DescribeProjectMembers.
type DescribeProjectMembersResponse struct {
	TotalCount int          `json:"TotalCount"`
	MemberSet  []MemberInfo `json:"MemberSet"`
}

var builtinSummaries = map[string]string{
	api.RoleOwner:    "Every action in the project, binding owners included.",
	api.RoleAdmin:    "Every action in the project; cannot bind or unbind owners.",
	api.RoleOperator: "Run tasks, manage devices, flows, algorithms, data and subscriptions; read the rest but the audit log; no IAM.",
	api.RoleViewer:   "Read (Describe*) actions, but the audit log.",
	api.RoleAuditor:  "The audit log only.",
}

// projectOf is the project a request names; a platform admin's empty
// ProjectId (which scopeProject leaves empty) means "default".
func projectOf(p string) string {
	if p == "" {
		return "default"
	}
	return p
}

// guardOwner refuses to bind or unbind the owner role unless the caller is
// an owner of the project (or a platform admin): an admin manages members
// but cannot make or unmake owners.
func guardOwner(c *api.Caller, project string, roles ...string) error {
	for _, r := range roles {
		if r == api.RoleOwner && !c.HasRole(project, api.RoleOwner) {
			return api.Errorf(api.AuthFailureUnauthorizedOperation, "Role: only an owner of project %s binds or unbinds owners", project)
		}
	}
	return nil
}

// RegisterAccessActions adds the role and membership actions to reg; a may
// be nil for docs.
func RegisterAccessActions(reg *api.Registry, a *Access) {
	api.Register(reg, api.Spec{Name: "CreateRole", Summary: "Create a custom role in a project: action patterns (Describe*, *Device*), optionally narrowed to device ids, device groups and task ids.",
		Permission: roleWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *CreateRoleRequest) (*CreateRoleResponse, error) {
			cr := &CustomRole{ProjectID: projectOf(r.ProjectId), Name: r.Name, Description: r.Description, Actions: r.Actions,
				Scope: api.Scope{DeviceIDs: r.DeviceIds, DeviceGroups: r.DeviceGroups, TaskIDs: r.TaskIds}}
			if err := a.CreateRole(ctx, cr); err != nil {
				return nil, err
			}
			c.SetResource(cr.ID)
			return &CreateRoleResponse{RoleId: cr.ID}, nil
		})
	api.Register(reg, api.Spec{Name: "DescribeRoles", Summary: "List the roles of a project: the built-in ones, then its custom roles by name. Without ProjectId: the built-in ones once (ProjectId *), then the custom roles of every project where the caller's roles grant it, by project and name.",
		Permission: roleRead, Union: true},
		func(ctx context.Context, c *api.Caller, r *DescribeRolesRequest) (*DescribeRolesResponse, error) {
			project := r.ProjectId
			if project == "" {
				project = "*" // the built-ins are every project's
			}
			// One list, built-ins first: the page takes what it reaches of
			// the built-ins, then the custom roles from where they begin.
			off, lim := r.Page()
			builtins := api.Roles()
			out := &DescribeRolesResponse{RoleSet: []RoleInfo{}}
			for _, name := range builtins[min(off, len(builtins)):min(off+lim, len(builtins))] {
				role, _ := reg.BuiltinRole(name)
				out.RoleSet = append(out.RoleSet, RoleInfo{ProjectId: project, Name: name, Description: builtinSummaries[name], BuiltIn: true,
					Actions: reg.Names(role.Actions), DeviceIds: []string{}, DeviceGroups: []string{}, TaskIds: []string{}})
			}
			rs, total, err := a.RolesPage(ctx, c.ListIn(r.ProjectId, nil), max(off-len(builtins), 0), lim-len(out.RoleSet))
			if err != nil {
				return nil, err
			}
			for _, cr := range rs {
				out.RoleSet = append(out.RoleSet, roleInfo(cr))
			}
			out.TotalCount = len(builtins) + total
			return out, nil
		})
	api.Register(reg, api.Spec{Name: "ModifyRole", Summary: "Change a custom role's description, actions or resource scopes; its members' rights change with it.",
		Permission: roleWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *ModifyRoleRequest) (*Empty, error) {
			if _, err := a.visibleRole(ctx, c, r.RoleId); err != nil {
				return nil, err
			}
			c.SetResource(r.RoleId)
			return &Empty{}, a.ModifyRole(ctx, r.RoleId, RoleChange{Description: r.Description, Actions: r.Actions,
				DeviceIDs: r.DeviceIds, DeviceGroups: r.DeviceGroups, TaskIDs: r.TaskIds})
		})
	api.Register(reg, api.Spec{Name: "DeleteRole", Summary: "Delete a custom role; refused while a member holds it.", Permission: roleWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *RoleIdRequest) (*Empty, error) {
			if _, err := a.visibleRole(ctx, c, r.RoleId); err != nil {
				return nil, err
			}
			c.SetResource(r.RoleId)
			return &Empty{}, a.DeleteRole(ctx, r.RoleId)
		})
	api.Register(reg, api.Spec{Name: "CreateProjectMember", Summary: "Give a user (usr-…, or by UserName) or an app (app-…) a role in a project.", Permission: memberWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *CreateProjectMemberRequest) (*CreateProjectMemberResponse, error) {
			project := projectOf(r.ProjectId)
			principal := r.PrincipalId
			switch {
			case principal != "" && r.UserName != "":
				return nil, api.InvalidValue("UserName", "give PrincipalId or UserName, not both")
			case principal == "" && r.UserName == "":
				return nil, api.Missing("PrincipalId")
			case principal == "":
				id, err := a.UserID(ctx, "UserName", r.UserName)
				if err != nil {
					return nil, err
				}
				principal = id
			}
			c.SetResource(project + "/" + principal)
			if err := guardOwner(c, project, r.Role); err != nil {
				return nil, err
			}
			if err := a.AddRole(ctx, principal, project, r.Role); err != nil {
				return nil, err
			}
			return &CreateProjectMemberResponse{PrincipalId: principal}, nil
		})
	api.Register(reg, api.Spec{Name: "DescribeProjectMembers", Summary: "List the members of a project and their roles, by principal id. Without ProjectId: the members of every project where the caller's roles grant it, by project.", Permission: memberRead, Union: true},
		func(ctx context.Context, c *api.Caller, r *DescribeProjectMembersRequest) (*DescribeProjectMembersResponse, error) {
			off, lim := r.Page()
			ms, total, err := a.MembersIn(ctx, c.ListIn(r.ProjectId, nil), r.PrincipalIds, off, lim)
			if err != nil {
				return nil, err
			}
			principals := make([]string, 0, len(ms))
			for _, m := range ms {
				principals = append(principals, m.PrincipalID)
			}
			names, err := a.Names(ctx, principals)
			if err != nil {
				return nil, err
			}
			out := &DescribeProjectMembersResponse{TotalCount: total, MemberSet: make([]MemberInfo, 0, len(ms))}
			for _, m := range ms {
				out.MemberSet = append(out.MemberSet, MemberInfo{ProjectId: m.ProjectID, PrincipalId: m.PrincipalID, Name: names[m.PrincipalID], Roles: m.Roles})
			}
			return out, nil
		})
	api.Register(reg, api.Spec{Name: "ModifyProjectMember", Summary: "Replace a member's roles in a project.", Permission: memberWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *ModifyProjectMemberRequest) (*Empty, error) {
			project := projectOf(r.ProjectId)
			c.SetResource(project + "/" + r.PrincipalId)
			held, err := a.RolesOf(ctx, r.PrincipalId, project)
			if err != nil {
				return nil, err
			}
			if err := guardOwner(c, project, append(held, r.Roles...)...); err != nil {
				return nil, err
			}
			return &Empty{}, a.SetRoles(ctx, r.PrincipalId, project, r.Roles)
		})
	api.Register(reg, api.Spec{Name: "DeleteProjectMember", Summary: "Take a role (or, without Role, every role) of a member in a project.", Permission: memberWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *ProjectMemberRequest) (*Empty, error) {
			project := projectOf(r.ProjectId)
			c.SetResource(project + "/" + r.PrincipalId)
			held, err := a.RolesOf(ctx, r.PrincipalId, project)
			if err != nil {
				return nil, err
			}
			taken := held
			if r.Role != "" {
				taken = []string{r.Role}
			}
			if err := guardOwner(c, project, taken...); err != nil {
				return nil, err
			}
			return &Empty{}, a.RemoveRole(ctx, r.PrincipalId, project, r.Role)
		})
}

// visibleRole returns a custom role the caller may act on; roles of other
// projects are "not found".
func (a *Access) visibleRole(ctx context.Context, c *api.Caller, id string) (*CustomRole, error) {
	r, err := a.Role(ctx, id)
	if err != nil {
		return nil, err
	}
	if !c.Sees(r.ProjectID) {
		return nil, api.NotFound("RoleId", id)
	}
	return r, nil
}

func roleInfo(r CustomRole) RoleInfo {
	nz := func(v []string) []string {
		if v == nil {
			return []string{}
		}
		return v
	}
	return RoleInfo{RoleId: r.ID, ProjectId: r.ProjectID, Name: r.Name, Description: r.Description, Actions: nz(r.Actions),
		DeviceIds: nz(r.Scope.DeviceIDs), DeviceGroups: nz(r.Scope.DeviceGroups), TaskIds: nz(r.Scope.TaskIDs),
		CreatedTime: r.CreatedAt.Format(time.RFC3339)}
}
