package api

import (
	"sort"

	"github.com/tianshu-ai/tianshu/internal/store"
)

// Reach builds the condition, on a list's rows in projectID, of what a role
// narrowed to s reaches; "" when s does not narrow that list's rows (a
// scope of devices does not narrow flows).
type Reach func(projectID string, s Scope) (cond string, args []any)

// ListIn tells a list (an action registered with Union) what it covers, as
// one store condition: ListProjects' projects, each narrowed, where every
// role of the caller there that grants the action is narrowed, to what one
// of them reaches (reach; nil: resource scopes do not narrow this list).
// A platform admin naming no project covers every project.
func (c *Caller) ListIn(projectID string, reach Reach) store.Projects {
	every, projects := c.ListProjects(projectID)
	if every {
		return store.Projects{All: true}
	}
	var out store.Projects
	for _, p := range projects {
		part, ok := c.listPart(p, reach)
		if ok {
			out.Parts = append(out.Parts, part)
		}
	}
	return out
}

// listPart is project p of ListIn, false when no role there grants the
// action.
func (c *Caller) listPart(p string, reach Reach) (store.ProjectPart, bool) {
	part := store.ProjectPart{ID: p}
	if reach == nil || c == nil || c.PlatformAdmin() || c.grants == nil || c.act == nil {
		return part, true
	}
	var or []*store.Where
	for _, r := range c.grants.projects[p] {
		if !r.Actions.Has(c.act) {
			continue
		}
		cond, args := "", []any(nil)
		if r.scoped {
			cond, args = reach(p, r.scope())
		}
		if cond == "" {
			return part, true // this role reaches every row of p
		}
		or = append(or, new(store.Where).Add(cond, args...))
	}
	if len(or) == 0 {
		return part, false
	}
	part.Cond, part.Args = store.Or(or...)
	return part, true
}

// scope returns what the role is narrowed to, each list sorted.
func (r *Role) scope() Scope {
	list := func(s set) []string {
		out := make([]string, 0, len(s))
		for v := range s {
			out = append(out, v)
		}
		sort.Strings(out)
		return out
	}
	return Scope{DeviceIDs: list(r.devices), DeviceGroups: list(r.groups), TaskIDs: list(r.tasks)}
}
