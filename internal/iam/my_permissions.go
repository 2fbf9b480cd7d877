package iam

import (
	"context"

	"github.com/tianshu-ai/tianshu/internal/api"
)

// MyProject is one project a person may act in, with what they may run
// there.
type MyProject struct {
	ProjectId string   `json:"ProjectId"`
	Name      string   `json:"Name"`
	Roles     []string `json:"Roles"`
	Actions   []string `json:"Actions"`
}

// DescribeMyPermissionsResponse is the response of DescribeMyPermissions.
type DescribeMyPermissionsResponse struct {
	UserId        string      `json:"UserId"`
	UserName      string      `json:"UserName"`
	PlatformAdmin bool        `json:"PlatformAdmin"`
	TotalCount    int         `json:"TotalCount"`
	ProjectSet    []MyProject `json:"ProjectSet"`
}

// RegisterMyPermissionsAction adds DescribeMyPermissions to reg: what the
// calling person may do, per project, so that the console shows only what
// their roles allow. The gateway decides each call on its own; this answer
// only spares a person buttons that would be refused. access and projects
// may be nil (the docs generator registers without services).
func RegisterMyPermissionsAction(reg *api.Registry, access *Access, projects *Projects) {
	api.Register(reg, api.Spec{Name: "DescribeMyPermissions",
		Summary:    "The projects you hold a role in (every project for platform admins), with your roles and the actions you may run in each.",
		Permission: api.Permission{Resource: "session", Access: api.Read}, Self: true},
		func(ctx context.Context, c *api.Caller, _ *Empty) (*DescribeMyPermissionsResponse, error) {
			// Self actions skip the gateway's authorization, so the
			// caller's grants are resolved here.
			g, err := access.Grants(ctx, c)
			if err != nil {
				return nil, err
			}
			c.SetGrants(g)
			all, err := projects.List(ctx)
			if err != nil {
				return nil, err
			}
			// One query for the person's roles in every project (sorted by
			// project and role), not one per project.
			bs, err := access.bindingsOf(ctx, c.Principal())
			if err != nil {
				return nil, err
			}
			roles := map[string][]string{}
			for _, b := range bs {
				roles[b.project] = append(roles[b.project], b.role)
			}
			out := &DescribeMyPermissionsResponse{UserId: c.UserID, UserName: c.UserName, PlatformAdmin: g.PlatformAdmin(), ProjectSet: []MyProject{}}
			actions := reg.Actions()
			for _, pr := range all {
				if len(roles[pr.ID]) == 0 && !g.PlatformAdmin() {
					continue
				}
				mp := MyProject{ProjectId: pr.ID, Name: pr.Name, Roles: append([]string{}, roles[pr.ID]...), Actions: []string{}}
				for _, a := range actions {
					if !a.Public && !a.Self && c.MayRunIn(a, pr.ID) {
						mp.Actions = append(mp.Actions, a.Name)
					}
				}
				out.ProjectSet = append(out.ProjectSet, mp)
			}
			out.TotalCount = len(out.ProjectSet)
			return out, nil
		})
}
