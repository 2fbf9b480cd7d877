package api

import (
	"fmt"
	"sort"
	"strings"
)

// Filter is one list filter: a field name and the values it may take.
type Filter struct {
	Name   string   `json:"Name" validate:"required,max=64"`
	Values []string `json:"Values" validate:"required,max=100"`
}

// Paging is the Offset/Limit pair every Describe* list action takes.
type Paging struct {
	Offset int `json:"Offset" validate:"min=0,max=1000000"`
	Limit  int `json:"Limit" validate:"min=0,max=100"`
}

// Page returns the offset and the limit with its default (20) applied.
func (p Paging) Page() (offset, limit int) {
	if p.Limit == 0 {
		return p.Offset, 20
	}
	return p.Offset, p.Limit
}

// ParseFilters checks filters against the known names and returns the
// values per name. An unknown name is an InvalidParameterValue naming the
// filter's position and the names that are known.
func ParseFilters(filters []Filter, known ...string) (map[string][]string, error) {
	out := make(map[string][]string, len(filters))
	for i, f := range filters {
		if !contains(known, f.Name) {
			k := append([]string(nil), known...)
			sort.Strings(k)
			return nil, InvalidValue(fmt.Sprintf("Filters[%d].Name", i), "unknown filter %q; known: %s", f.Name, strings.Join(k, ", "))
		}
		out[f.Name] = append(out[f.Name], f.Values...)
	}
	return out, nil
}
