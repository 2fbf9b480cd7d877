package data_test

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/api/apitest"
	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// TestWatchlists manages lists and people through the actions and matches
// faces against them, on every store engine: a face of a person on an
// enabled list hits that list at or above its threshold, a stranger hits
// nothing, a disabled list and a removed membership stop hitting, and bad
// input names its field.
func TestWatchlists(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		reg := registry(e.svc)
		r := rand.New(rand.NewPCG(37, 1))
		alice, bob, stranger := person(r, 3), person(r, 3), person(r, 1)
		var vip, staff data.CreateWatchlistResponse
		if err := call(t, reg, admin, "CreateWatchlist", map[string]any{"Name": "vip", "Threshold": 0.8}, &vip); err != nil {
			t.Fatal(err)
		}
		if err := call(t, reg, admin, "CreateWatchlist", map[string]any{"Name": "staff", "Threshold": 0.8}, &staff); err != nil {
			t.Fatal(err)
		}
		var a, b data.CreateWatchlistPersonResponse
		if err := call(t, reg, admin, "CreateWatchlistPerson", map[string]any{"Name": "Alice", "ExternalId": "emp-1",
			"WatchlistIds": []string{vip.WatchlistId, staff.WatchlistId}, "Faces": []any{map[string]any{"Embedding": alice[0]}, map[string]any{"Embedding": alice[1]}}}, &a); err != nil {
			t.Fatal(err)
		}
		if err := call(t, reg, admin, "CreateWatchlistPerson", map[string]any{"Name": "Bob", "WatchlistIds": []string{staff.WatchlistId},
			"Faces": []any{map[string]any{"Embedding": bob[0]}}}, &b); err != nil {
			t.Fatal(err)
		}
		if len(a.FaceSet) != 2 || a.FaceSet[0].Dim != 64 {
			t.Errorf("Alice's faces: %+v", a.FaceSet)
		}
		match := func(v []float64) map[string]string {
			hits, err := e.svc.MatchFace(ctx, "default", toF32(v))
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]string{}
			for _, h := range hits {
				if h.Similarity < h.Threshold {
					t.Errorf("hit below its threshold: %+v", h)
				}
				out[h.WatchlistID] = h.PersonName
			}
			return out
		}
		// Alice's third shot (not a reference) hits both her lists; Bob's
		// second hits staff; a stranger nothing.
		if got := match(alice[2]); got[vip.WatchlistId] != "Alice" || got[staff.WatchlistId] != "Alice" || len(got) != 2 {
			t.Errorf("Alice: %v", got)
		}
		if got := match(bob[1]); got[staff.WatchlistId] != "Bob" || len(got) != 1 {
			t.Errorf("Bob: %v", got)
		}
		if got := match(stranger[0]); len(got) != 0 {
			t.Errorf("a stranger hits %v", got)
		}
		// Another dimension (another model) matches nothing.
		if hits, err := e.svc.MatchFace(ctx, "default", make32(128)); err != nil || len(hits) != 0 {
			t.Errorf("128 values against 64-value references: %v, %v", hits, err)
		}
		// Disabling vip and taking Bob off staff reach the matcher
		// within WatchRecheck.
		if err := call(t, reg, admin, "ModifyWatchlist", map[string]any{"WatchlistId": vip.WatchlistId, "Enabled": false}, nil); err != nil {
			t.Fatal(err)
		}
		if err := call(t, reg, admin, "ModifyWatchlistPerson", map[string]any{"PersonId": b.PersonId, "WatchlistIds": []string{}, "Notes": "left"}, nil); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 5*time.Second, "the changes to reach the matcher", func() bool {
			got := match(alice[2])
			return len(got) == 1 && got[staff.WatchlistId] == "Alice" && len(match(bob[1])) == 0
		})
		// A higher threshold than the shot's similarity: no hit.
		if err := call(t, reg, admin, "ModifyWatchlist", map[string]any{"WatchlistId": staff.WatchlistId, "Threshold": 1}, nil); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 5*time.Second, "the threshold to apply", func() bool { return len(match(alice[2])) == 0 })

		var lists data.DescribeWatchlistsResponse
		if err := call(t, reg, admin, "DescribeWatchlists", map[string]any{}, &lists); err != nil || lists.TotalCount != 2 {
			t.Fatalf("DescribeWatchlists: %+v, %v", lists, err)
		}
		for _, l := range lists.WatchlistSet {
			if l.WatchlistId == staff.WatchlistId && (l.PersonCount != 1 || l.Threshold != 1 || !l.Enabled) {
				t.Errorf("staff: %+v", l)
			}
		}
		var people data.DescribeWatchlistPeopleResponse
		if err := call(t, reg, admin, "DescribeWatchlistPeople", map[string]any{"WatchlistIds": []string{vip.WatchlistId}}, &people); err != nil ||
			people.TotalCount != 1 || people.PersonSet[0].Name != "Alice" || len(people.PersonSet[0].FaceSet) != 2 || len(people.PersonSet[0].WatchlistIds) != 2 {
			t.Errorf("people of vip: %+v, %v", people, err)
		}
		// Faces: remove one, add one; delete the person.
		if err := call(t, reg, admin, "ModifyWatchlistPerson", map[string]any{"PersonId": a.PersonId, "RemoveFaceIds": []string{a.FaceSet[0].FaceId},
			"AddFaces": []any{map[string]any{"Embedding": alice[2]}}}, nil); err != nil {
			t.Error(err)
		}
		var del data.DeleteWatchlistPeopleResponse
		if err := call(t, reg, admin, "DeleteWatchlistPeople", map[string]any{"PersonIds": []string{a.PersonId, b.PersonId, "psn-nothere"}}, &del); err != nil || del.DeletedCount != 2 {
			t.Errorf("DeleteWatchlistPeople: %+v, %v", del, err)
		}
		if err := call(t, reg, admin, "DeleteWatchlist", map[string]any{"WatchlistId": vip.WatchlistId}, nil); err != nil {
			t.Error(err)
		}

		// Bad input names the field.
		tooManyFaces := make([]any, data.MaxPersonFaces+1)
		for i := range tooManyFaces {
			tooManyFaces[i] = map[string]any{"Embedding": alice[0]}
		}
		for _, tc := range []struct {
			action string
			req    map[string]any
			code   api.Code
			field  string
		}{
			{"CreateWatchlist", map[string]any{"Name": "x", "Threshold": 1.5}, api.InvalidParameterValue, "Threshold"},
			{"CreateWatchlist", map[string]any{"Name": "x"}, api.InvalidParameterValue, "Threshold"},
			{"CreateWatchlist", map[string]any{"Name": " ", "Threshold": 0.5}, api.MissingParameter, "Name"},
			{"CreateWatchlist", map[string]any{"Name": "staff", "Threshold": 0.5}, api.ResourceInUse, "Name"},
			{"CreateWatchlist", map[string]any{"ProjectId": "prj-none", "Name": "x", "Threshold": 0.5}, api.ResourceNotFound, "ProjectId"},
			{"ModifyWatchlist", map[string]any{"WatchlistId": "wl-none"}, api.ResourceNotFound, "WatchlistId"},
			{"ModifyWatchlist", map[string]any{"WatchlistId": staff.WatchlistId, "Threshold": 0}, api.InvalidParameterValue, "Threshold"},
			{"CreateWatchlistPerson", map[string]any{"Name": "x", "WatchlistIds": []string{"wl-none"}}, api.ResourceNotFound, "WatchlistIds[0]"},
			{"CreateWatchlistPerson", map[string]any{"Name": "x", "WatchlistIds": []string{staff.WatchlistId, staff.WatchlistId}}, api.InvalidParameterValue, "WatchlistIds[1]"},
			{"CreateWatchlistPerson", map[string]any{"Name": "x", "Faces": []any{map[string]any{}}}, api.MissingParameter, "Faces[0].Image or Faces[0].Embedding"},
			{"CreateWatchlistPerson", map[string]any{"Name": "x", "Faces": []any{map[string]any{"Embedding": make([]float64, 8)}}}, api.InvalidParameterValue, "Faces[0].Embedding"},
			{"CreateWatchlistPerson", map[string]any{"Name": "x", "Faces": []any{map[string]any{"Image": "aGk="}}}, api.MissingParameter, "Faces[0].AlgorithmId"},
			{"CreateWatchlistPerson", map[string]any{"Name": "x", "Faces": []any{map[string]any{"Image": "!!", "AlgorithmId": "alg-x"}}}, api.InvalidParameterValue, "Faces[0].Image"},
			{"CreateWatchlistPerson", map[string]any{"Name": "x", "Faces": tooManyFaces}, api.InvalidParameterValue, "Faces"},
			{"CreateWatchlistPerson", map[string]any{"Name": "x", "Notes": strings.Repeat("n", 2049)}, api.InvalidParameterValue, "Notes"},
			{"ModifyWatchlistPerson", map[string]any{"PersonId": "psn-none"}, api.ResourceNotFound, "PersonId"},
			{"DeleteWatchlistPeople", map[string]any{"PersonIds": []string{}}, api.MissingParameter, "PersonIds"},
		} {
			err := call(t, reg, admin, tc.action, tc.req, nil)
			e, ok := api.AsError(err)
			if !ok || e.Code != tc.code || !strings.Contains(e.Message, tc.field) {
				t.Errorf("%s %v: %v; want %s naming %s", tc.action, tc.req, err, tc.code, tc.field)
			}
		}
	})
}

// Watchlists of another project are neither listed nor matched.
func TestWatchlistsUnion(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		for _, p := range []string{apitest.ProjectA, apitest.ProjectB, apitest.ProjectC} {
			var n int
			if err := db.QueryRow(ctx, "SELECT COUNT(*) FROM projects WHERE id = ?", p).Scan(&n); err != nil || n > 0 {
				continue
			}
			if _, err := db.Exec(ctx, "INSERT INTO projects (id, name, description, created_at, updated_at) VALUES (?, ?, '', 0, 0)", p, "union-"+p); err != nil {
				t.Fatal(err)
			}
		}
		reg := registry(e.svc)
		for _, l := range []struct{ project, name string }{{apitest.ProjectA, "a1"}, {apitest.ProjectA, "a2"}, {apitest.ProjectB, "b1"}, {apitest.ProjectC, "c1"}} {
			if err := call(t, reg, api.Caller{Role: api.RoleAdmin, ProjectID: l.project}, "CreateWatchlist", map[string]any{"ProjectId": l.project, "Name": l.name, "Threshold": 0.5}, nil); err != nil {
				t.Fatal(err)
			}
		}
		apitest.CheckUnion(t, reg, apitest.Union{Action: "DescribeWatchlists", Key: "Name", WantA: []string{"a1", "a2"}, WantB: []string{"b1"}})
	})
}

func make32(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i%7) + 1
	}
	return v
}
