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
