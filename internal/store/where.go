package store

import "strings"

// Where builds a WHERE clause from optional filters, with `?` placeholders:
// empty values and empty lists add nothing, so list queries state their
// filters once.
type Where struct {
	conds []string
	args  []any
}

// Eq adds col = v unless v is "".
func (w *Where) Eq(col, v string) *Where {
	if v != "" {
		w.conds, w.args = append(w.conds, col+" = ?"), append(w.args, v)
	}
	return w
}

// In adds col IN (vals...) unless vals is empty.
func (w *Where) In(col string, vals []string) *Where {
	if len(vals) == 0 {
		return w
	}
	w.conds = append(w.conds, col+" IN ("+strings.TrimSuffix(strings.Repeat("?,", len(vals)), ",")+")")
	for _, v := range vals {
		w.args = append(w.args, v)
	}
	return w
}

// Add adds a condition with its arguments.
func (w *Where) Add(cond string, args ...any) *Where {
	w.conds, w.args = append(w.conds, cond), append(w.args, args...)
	return w
}

// SQL returns " WHERE c1 AND c2 ..." (or "") and the arguments. The
// arguments slice is a copy, so callers may append LIMIT and OFFSET.
func (w *Where) SQL() (string, []any) {
	args := append([]any(nil), w.args...)
	if len(w.conds) == 0 {
		return "", args
	}
	return " WHERE " + strings.Join(w.conds, " AND "), args
}

// Cond returns the conditions joined by AND, without WHERE ("" when there
// are none), and a copy of the arguments.
func (w *Where) Cond() (string, []any) {
	return strings.Join(w.conds, " AND "), append([]any(nil), w.args...)
}

// Or returns the conditions of ws (each its own conditions joined by AND)
// joined by OR in parentheses, leaving out those that add nothing; "" when
// every one is empty.
func Or(ws ...*Where) (string, []any) {
	var or []string
	var args []any
	for _, w := range ws {
		if len(w.conds) == 0 {
			continue
		}
		c, a := w.Cond()
		or, args = append(or, "("+c+")"), append(args, a...)
	}
	if len(or) == 0 {
		return "", nil
	}
	return "(" + strings.Join(or, " OR ") + ")", args
}

// ProjectPart is one project a list covers; Cond, when set, narrows the
// rows of that project it reaches (a role scoped to some resources).
type ProjectPart struct {
	ID   string
	Cond string
	Args []any
}

// Projects is what a list covers: every project (All), or the rows of
// each of Parts. No parts reaches no row.
type Projects struct {
	All   bool
	Parts []ProjectPart
}

// OneProject is the Projects of a list naming projectID, or every project
// when it is "".
func OneProject(projectID string) Projects {
	if projectID == "" {
		return Projects{All: true}
	}
	return Projects{Parts: []ProjectPart{{ID: projectID}}}
}

// InProjects adds the condition that a row, whose project is column col,
// is one p covers: one condition over every part (the projects that are not
// narrowed as one IN list), so that a count and LIMIT/OFFSET page the union.
func (w *Where) InProjects(col string, p Projects) *Where {
	if p.All {
		return w
	}
	if len(p.Parts) == 0 {
		return w.Add("1 = 0")
	}
	var whole []string
	var or []string
	var args []any
	for _, part := range p.Parts {
		if part.Cond == "" {
			whole = append(whole, part.ID)
			continue
		}
		or, args = append(or, "("+col+" = ? AND "+part.Cond+")"), append(append(args, part.ID), part.Args...)
	}
	if len(whole) > 0 {
		var in Where
		c, a := in.In(col, whole).Cond()
		or, args = append([]string{c}, or...), append(a, args...)
	}
	return w.Add("("+strings.Join(or, " OR ")+")", args...)
}
