package data_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/api/apitest"
	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

// viewRecords writes faces, persons and vehicles with nested attributes,
// one second apart from t0, and returns their ids in order: 12 faces
// (age 20+3i, gender female for even i, glasses for i%3 == 0, one without
// age), 6 persons (upper colour cycling), 6 vehicles (colour, plate,
// speed).
func viewRecords(t *testing.T, e *env) ([]string, []map[string]any) {
	t.Helper()
	ctx := context.Background()
	w := e.svc.NewWriter(data.WriterOptions{BatchSize: 8, FlushInterval: time.Hour})
	var ids []string
	var docs []map[string]any
	add := func(typ, dev string, d map[string]any) {
		id, err := w.Write(ctx, data.Record{TaskID: "task-v", DeviceID: dev, Type: typ,
			Time: t0.Add(time.Duration(len(ids)) * time.Second), Data: doc("Attributes", d, "Quality", 0.5)})
		if err != nil {
			t.Fatal(err)
		}
		ids, docs = append(ids, id), append(docs, d)
	}
	for i := range 12 {
		d := map[string]any{"age": 20 + 3*i, "gender": []string{"female", "male"}[i%2], "glasses": i%3 == 0}
		if i == 11 {
			delete(d, "age")
		}
		add("face", fmt.Sprintf("dev-%d", i%2), d)
	}
	for i := range 6 {
		add("person", "dev-0", map[string]any{"upper": map[string]any{"color": []string{"red", "blue", "black"}[i%3]}})
	}
	for i := range 6 {
		add("vehicle", "dev-1", map[string]any{"color": []string{"white", "black", "red"}[i%3], "plate": fmt.Sprintf("京A%05d", i), "speed": 40.5 + float64(i*10)})
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return ids, docs
}

func TestSearchRecords(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		ids, _ := viewRecords(t, e)
		reg := registry(e.svc)
		search := func(req map[string]any) ([]string, int, error) {
			var out data.SearchRecordsResponse
			err := call(t, reg, admin, "SearchRecords", req, &out)
			var got []string
			for _, r := range out.RecordSet {
				got = append(got, r.RecordId)
			}
			return got, out.TotalCount, err
		}
		// newest first of the ids whose index i keeps
		want := func(keep func(i int) bool) []string {
			var out []string
			for i := len(ids) - 1; i >= 0; i-- {
				if keep(i) {
					out = append(out, ids[i])
				}
			}
			return out
		}
		cond := func(field, op string, v any) map[string]any {
			if op == "in" {
				return map[string]any{"Field": field, "Op": op, "Values": v}
			}
			return map[string]any{"Field": field, "Op": op, "Value": v}
		}
		for _, tc := range []struct {
			name string
			req  map[string]any
			keep func(i int) bool
		}{
			{"age > 30", map[string]any{"Types": []string{"face"}, "Conditions": []any{cond("Attributes.age", ">", 30)}},
				func(i int) bool { return i < 11 && 20+3*i > 30 }},
			{"age <= 26 and female", map[string]any{"Conditions": []any{cond("Attributes.age", "<=", 26), cond("Attributes.gender", "", "female")}},
				func(i int) bool { return i < 11 && 20+3*i <= 26 && i%2 == 0 }},
			{"age = 29 (a number)", map[string]any{"Conditions": []any{cond("Attributes.age", "=", 29)}}, func(i int) bool { return i == 3 }},
			{"age != 29: a face without age matches none", map[string]any{"Types": []string{"face"}, "Conditions": []any{cond("Attributes.age", "!=", 29)}},
				func(i int) bool { return i < 11 && i != 3 }},
			{"age in", map[string]any{"Conditions": []any{cond("Attributes.age", "in", []any{20, 26, 99})}}, func(i int) bool { return i == 0 || i == 2 }},
			{"glasses = true", map[string]any{"Conditions": []any{cond("Attributes.glasses", "=", true)}}, func(i int) bool { return i < 12 && i%3 == 0 }},
			{"gender != female", map[string]any{"Conditions": []any{cond("Attributes.gender", "!=", "female")}}, func(i int) bool { return i < 12 && i%2 == 1 }},
			{"person upper colour (3 levels)", map[string]any{"Types": []string{"person"}, "Conditions": []any{cond("Attributes.upper.color", "=", "blue")}},
				func(i int) bool { return i >= 12 && i < 18 && (i-12)%3 == 1 }},
			{"vehicle colour in", map[string]any{"Types": []string{"vehicle"}, "Conditions": []any{cond("Attributes.color", "in", []any{"black", "red"})}},
				func(i int) bool { return i >= 18 && (i-18)%3 != 0 }},
			{"vehicle speed >= 60.5 (a fraction)", map[string]any{"Conditions": []any{cond("Attributes.speed", ">=", 60.5)}}, func(i int) bool { return i >= 20 }},
			{"plate, non-ASCII", map[string]any{"Conditions": []any{cond("Attributes.plate", "=", "京A00003")}}, func(i int) bool { return i == 21 }},
			{"colour, any type", map[string]any{"Conditions": []any{cond("Attributes.color", "=", "black")}}, func(i int) bool { return i == 19 || i == 22 }},
			{"top-level field", map[string]any{"Types": []string{"vehicle"}, "Conditions": []any{cond("Quality", "<", 0.6)}}, func(i int) bool { return i >= 18 }},
			{"device and time", map[string]any{"DeviceIds": []string{"dev-1"}, "StartTime": t0.Add(5 * time.Second).Format(time.RFC3339),
				"EndTime": t0.Add(20 * time.Second).Format(time.RFC3339)}, func(i int) bool { return i >= 5 && i < 20 && (i < 12 && i%2 == 1 || i >= 18) }},
			{"a number never equals a string", map[string]any{"Conditions": []any{cond("Attributes.age", "=", "29")}}, func(int) bool { return false }},
			{"a missing field", map[string]any{"Conditions": []any{cond("Attributes.nothing.here", "=", "x")}}, func(int) bool { return false }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tc.req["Limit"] = 100
				got, total, err := search(tc.req)
				w := want(tc.keep)
				if err != nil || !slices.Equal(got, w) || total != len(w) {
					t.Errorf("got %d records (total %d), %v; want %d", len(got), total, err, len(w))
				}
			})
		}
		// Paging: newest first, TotalCount of all.
		got, total, err := search(map[string]any{"Types": []string{"face"}, "Offset": 2, "Limit": 3})
		if err != nil || total != 12 || !slices.Equal(got, want(func(i int) bool { return i < 12 })[2:5]) {
			t.Errorf("page 2..5 of faces: %v (total %d), %v", got, total, err)
		}

		// Bad input answers InvalidParameterValue or MissingParameter
		// naming the field.
		long := strings.Repeat("x", data.MaxConditionText+1)
		many := make([]any, data.MaxConditionValues+1)
		for i := range many {
			many[i] = i
		}
		tooMany := make([]any, data.MaxConditions+1)
		for i := range tooMany {
			tooMany[i] = cond("a", "=", 1)
		}
		for _, tc := range []struct {
			req   map[string]any
			code  api.Code
			field string
		}{
			{map[string]any{"Conditions": []any{cond("Attributes.age; DROP TABLE records", "=", 1)}}, api.InvalidParameterValue, "Conditions[0].Field"},
			{map[string]any{"Conditions": []any{cond("a.b.c.d.e", "=", 1)}}, api.InvalidParameterValue, "Conditions[0].Field"},
			{map[string]any{"Conditions": []any{cond("Attributes.age", "=", 1), cond("Attributes.age", "~", 1)}}, api.InvalidParameterValue, "Conditions[1].Op"},
			{map[string]any{"Conditions": []any{cond("Attributes.age", ">", "30")}}, api.InvalidParameterValue, "Conditions[0].Value"},
			{map[string]any{"Conditions": []any{cond("Attributes.age", "=", map[string]any{"a": 1})}}, api.InvalidParameterValue, "Conditions[0].Value"},
			{map[string]any{"Conditions": []any{cond("Attributes.age", "=", nil)}}, api.MissingParameter, "Conditions[0].Value"},
			{map[string]any{"Conditions": []any{cond("Attributes.age", "=", long)}}, api.InvalidParameterValue, "Conditions[0].Value"},
			{map[string]any{"Conditions": []any{cond("Attributes.age", "in", []any{})}}, api.MissingParameter, "Conditions[0].Values"},
			{map[string]any{"Conditions": []any{cond("Attributes.age", "in", []any{1, "2"})}}, api.InvalidParameterValue, "Conditions[0].Values[1]"},
			{map[string]any{"Conditions": []any{cond("Attributes.age", "in", many)}}, api.InvalidParameterValue, "Conditions[0].Values"},
			{map[string]any{"Conditions": []any{map[string]any{"Field": "a", "Value": 1, "Values": []any{1}}}}, api.InvalidParameterValue, "Conditions[0].Values"},
			{map[string]any{"Conditions": tooMany}, api.InvalidParameterValue, "Conditions"},
			{map[string]any{"StartTime": "yesterday"}, api.InvalidParameterValue, "StartTime"},
			{map[string]any{"StartTime": t0.Format(time.RFC3339), "EndTime": t0.Format(time.RFC3339)}, api.InvalidParameterValue, "EndTime"},
			{map[string]any{"Types": []string{""}}, api.InvalidParameterValue, "Types[0]"},
		} {
			_, _, err := search(tc.req)
			e, ok := api.AsError(err)
			if !ok || e.Code != tc.code || !strings.Contains(e.Message, tc.field) {
				t.Errorf("%v: %v; want %s naming %s", tc.req, err, tc.code, tc.field)
			}
		}
	})
}

// SearchRecords reaches what DescribeRecords does: the union of the
// caller's projects, narrowed by a role's devices.
func TestSearchRecordsUnion(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		scopedRecords(t, db, e)
		apitest.CheckUnion(t, registry(e.svc), apitest.Union{Action: "SearchRecords", Key: "Type",
			Scope: api.Scope{DeviceIDs: []string{"dev-1"}, DeviceGroups: []string{"site-a"}},
			WantA: []string{"a-dev1", "a-dev2"}, WantB: []string{"b1", "b2", "b3"},
			Body: `"Conditions": [{"Field": "n", "Op": ">=", "Value": 0}]`})
	})
}
