package store

import (
	"fmt"
	"testing"
)

// InProjects puts the projects that are not narrowed in one IN list and
// ORs each narrowed one with its condition; no parts reach no row, All
// adds nothing.
func TestWhereInProjects(t *testing.T) {
	for _, c := range []struct {
		p    Projects
		sql  string
		args string
	}{
		{Projects{All: true}, "", "[]"},
		{Projects{}, " WHERE 1 = 0", "[]"},
		{OneProject("a"), " WHERE (project_id IN (?))", "[a]"},
		{Projects{Parts: []ProjectPart{{ID: "a", Cond: "device_id IN (?)", Args: []any{"d1"}}, {ID: "b"}, {ID: "c"}}},
			" WHERE (project_id IN (?,?) OR (project_id = ? AND device_id IN (?)))", "[b c a d1]"},
	} {
		var w Where
		sql, args := w.InProjects("project_id", c.p).SQL()
		if sql != c.sql || fmt.Sprint(args) != c.args {
			t.Errorf("InProjects(%+v) = %q %v; want %q %s", c.p, sql, args, c.sql, c.args)
		}
	}
	var a, b, none Where
	a.In("x", []string{"1"})
	b.Add("y = ?", 2).Add("z = ?", 3)
	if c, args := Or(&a, &none, &b); c != "((x IN (?)) OR (y = ? AND z = ?))" || fmt.Sprint(args) != "[1 2 3]" {
		t.Errorf("Or = %q %v", c, args)
	}
	if c, _ := Or(&none); c != "" {
		t.Errorf("Or of nothing = %q; want empty", c)
	}
}
