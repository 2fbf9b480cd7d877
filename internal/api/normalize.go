package api

import "encoding/json"

// Normalize turns the json.Numbers that the strict decoder leaves in
// free-form fields (map[string]any) into int64 when integral and float64
// otherwise — the number types flows and scripts work with. It changes maps
// and slices in place and returns v.
func Normalize(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = Normalize(e)
		}
	case []any:
		for i, e := range x {
			x[i] = Normalize(e)
		}
	}
	return v
}

// NormalizeMap is Normalize for an object, giving an empty map for nil.
func NormalizeMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	Normalize(m)
	return m
}
