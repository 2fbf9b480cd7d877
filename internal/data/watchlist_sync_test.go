package data_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// TestWatchlistExportReplace is an edge's sync on one store: a project's
// set, exported (disabled lists included), replaces whatever the project
// holds in one step, and a matcher that had loaded the lists in between
// reloads them whole; a set over the bytes allowed is refused naming its
// size.
func TestWatchlistExportReplace(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		reg := registry(e.svc)
		r := rand.New(rand.NewPCG(41, 1))
		alice, local := person(r, 2), person(r, 2)
		if v, err := e.svc.WatchlistVersion(ctx, "default"); err != nil || v != data.NoWatchlistVersion {
			t.Fatalf("version of a project with no lists: %q, %v", v, err)
		}
		var vip, off data.CreateWatchlistResponse
		if err := call(t, reg, admin, "CreateWatchlist", map[string]any{"Name": "vip", "Threshold": 0.8}, &vip); err != nil {
			t.Fatal(err)
		}
		if err := call(t, reg, admin, "CreateWatchlist", map[string]any{"Name": "off", "Threshold": 0.8, "Enabled": false}, &off); err != nil {
			t.Fatal(err)
		}
		var a data.CreateWatchlistPersonResponse
		if err := call(t, reg, admin, "CreateWatchlistPerson", map[string]any{"Name": "Alice", "ExternalId": "emp-1",
			"WatchlistIds": []string{vip.WatchlistId, off.WatchlistId}, "Faces": []any{map[string]any{"Embedding": alice[0]}}}, &a); err != nil {
			t.Fatal(err)
		}
		set, err := e.svc.ExportWatchlists(ctx, "default", 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := e.svc.WatchlistVersion(ctx, "default"); set.Version != v || len(set.Lists) != 2 || len(set.People) != 1 || len(set.Faces) != 1 || len(set.Members) != 2 {
			t.Fatalf("exported %+v (version now %s)", set, v)
		}
		if _, err := e.svc.ExportWatchlists(ctx, "default", 300); !errors.Is(err, data.ErrWatchlistsTooLarge) {
			t.Errorf("a set over 300 bytes: %v", err)
		}
		hits := func(v []float64) int {
			h, err := e.svc.MatchFace(ctx, "default", toF32(v))
			if err != nil {
				t.Fatal(err)
			}
			return len(h)
		}
		// Local changes: Alice deleted, another person on a new list; the
		// matcher loads them.
		if err := call(t, reg, admin, "DeleteWatchlistPeople", map[string]any{"PersonIds": []string{a.PersonId}}, nil); err != nil {
			t.Fatal(err)
		}
		var mine data.CreateWatchlistResponse
		if err := call(t, reg, admin, "CreateWatchlist", map[string]any{"Name": "mine", "Threshold": 0.8}, &mine); err != nil {
			t.Fatal(err)
		}
		if err := call(t, reg, admin, "CreateWatchlistPerson", map[string]any{"Name": "Local", "WatchlistIds": []string{mine.WatchlistId},
			"Faces": []any{map[string]any{"Embedding": local[0]}}}, nil); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 5*time.Second, "the local person to hit and Alice not", func() bool { return hits(local[1]) == 1 && hits(alice[1]) == 0 })
		// The exported set replaces them: Alice hits vip (off stays off),
		// the local person is gone.
		if err := e.svc.ReplaceWatchlists(ctx, "default", set); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 5*time.Second, "the replaced set to reach the matcher", func() bool { return hits(alice[1]) == 1 && hits(local[1]) == 0 })
		var lists data.DescribeWatchlistsResponse
		if err := call(t, reg, admin, "DescribeWatchlists", map[string]any{}, &lists); err != nil || lists.TotalCount != 2 {
			t.Fatalf("lists after the replace: %+v, %v", lists, err)
		}
		var people data.DescribeWatchlistPeopleResponse
		if err := call(t, reg, admin, "DescribeWatchlistPeople", map[string]any{}, &people); err != nil ||
			people.TotalCount != 1 || people.PersonSet[0].PersonId != a.PersonId || len(people.PersonSet[0].WatchlistIds) != 2 || len(people.PersonSet[0].FaceSet) != 1 {
			t.Errorf("people after the replace: %+v, %v", people, err)
		}
		// A set with a face that is not its Dim values changes nothing.
		bad := set
		bad.Faces = append([]data.SyncFace{}, set.Faces...)
		bad.Faces[0].Dim++
		if err := e.svc.ReplaceWatchlists(ctx, "default", bad); err == nil {
			t.Error("a face of the wrong size was applied")
		}
	})
}
