package data_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// reloadPeople is the size of the big list: enough that a full reload and
// a one-person change differ by thousands of faces.
const reloadPeople = 2000

// TestWatchlistIncrementalReload proves that a matcher applies a change by
// reading only what changed, on every store engine, in two processes (two
// services over one store): after adding one person with two reference
// faces to a list of 2,000, each matcher loads exactly those two faces
// (tianshu_data_watchlist_faces_loaded_total) without a full reload, hits
// the new person, and keeps hitting the old ones meanwhile; removing the
// person from the list, disabling and re-enabling the list and deleting
// the person apply alike; a change log with a gap (pruned) falls back to
// a full reload that is still right.
func TestWatchlistIncrementalReload(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		type proc struct {
			svc *data.Service
			reg *prometheus.Registry
		}
		procs := make([]proc, 2)
		for i := range procs {
			procs[i].reg = prometheus.NewRegistry()
			svc, err := data.New(e.db, e.blobs, data.Options{Now: e.clk.now, Registerer: procs[i].reg})
			if err != nil {
				t.Fatal(err)
			}
			procs[i].svc = svc
		}
		reg := registry(procs[0].svc)
		var big data.CreateWatchlistResponse
		if err := call(t, reg, admin, "CreateWatchlist", map[string]any{"Name": "big", "Threshold": 0.8}, &big); err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(38, 1))
		old := make([][][]float64, reloadPeople)
		for i := range old {
			old[i] = person(r, 2)
		}
		fillList(t, db, big.WatchlistId, old)

		match := func(p proc, v []float64) map[string]string {
			hits, err := p.svc.MatchFace(ctx, "default", toF32(v))
			if err != nil {
				t.Error(err)
				return nil
			}
			out := map[string]string{}
			for _, h := range hits {
				out[h.WatchlistID] = h.PersonName
			}
			return out
		}
		for _, p := range procs {
			if got := match(p, old[7][1]); got[big.WatchlistId] != "old 7" {
				t.Fatalf("an old person before any change: %v", got)
			}
			if got := metric(t, p.reg, "tianshu_data_watchlist_faces_loaded_total", ""); got != 2*reloadPeople {
				t.Fatalf("faces loaded by the first match: %v; want %d", got, 2*reloadPeople)
			}
		}

		// Match old people without pause in both processes while the
		// changes apply: every shot of a listed person hits.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var matched, missed atomic.Int64
		for _, p := range procs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					k := (i * 31) % reloadPeople
					if k == 5 {
						continue // the person the test removes below
					}
					if got := match(p, old[k][1]); got[big.WatchlistId] != fmt.Sprintf("old %d", k) {
						missed.Add(1)
					}
					matched.Add(1)
				}
			}()
		}

		loaded := func(p proc) float64 { return metric(t, p.reg, "tianshu_data_watchlist_faces_loaded_total", "") }
		full := func(p proc) float64 { return metric(t, p.reg, "tianshu_data_watchlist_reloads_total", "full") }
		step := func(what string, change func(), want func(p proc) bool, faces int) {
			t.Helper()
			before := make([]float64, len(procs))
			for i, p := range procs {
				before[i] = loaded(p)
			}
			change()
			for i, p := range procs {
				testenv.Eventually(t, 10*time.Second, what+" to reach process "+fmt.Sprint(i), func() bool { return want(p) })
				if got := loaded(p) - before[i]; got != float64(faces) {
					t.Errorf("%s: process %d loaded %v faces; want %d", what, i, got, faces)
				}
				if got := full(p); got != 1 {
					t.Errorf("%s: process %d reloaded the whole project %v times; want 1 (the first match)", what, i, got)
				}
			}
		}

		newcomer := person(r, 3)
		var added data.CreateWatchlistPersonResponse
		step("a new person", func() {
			if err := call(t, reg, admin, "CreateWatchlistPerson", map[string]any{"Name": "newcomer", "WatchlistIds": []string{big.WatchlistId},
				"Faces": []any{map[string]any{"Embedding": newcomer[0]}, map[string]any{"Embedding": newcomer[1]}}}, &added); err != nil {
				t.Fatal(err)
			}
		}, func(p proc) bool { return match(p, newcomer[2])[big.WatchlistId] == "newcomer" }, 2)

		step("the newcomer off the list", func() {
			if err := call(t, reg, admin, "ModifyWatchlistPerson", map[string]any{"PersonId": added.PersonId, "WatchlistIds": []string{}}, nil); err != nil {
				t.Fatal(err)
			}
		}, func(p proc) bool { return len(match(p, newcomer[2])) == 0 }, 0)

		step("an old person deleted", func() {
			if err := call(t, reg, admin, "DeleteWatchlistPeople", map[string]any{"PersonIds": []string{"psn-old-00005"}}, nil); err != nil {
				t.Fatal(err)
			}
		}, func(p proc) bool { return len(match(p, old[5][1])) == 0 }, 0)

		close(stop)
		wg.Wait()
		if missed.Load() > 0 || matched.Load() == 0 {
			t.Errorf("while the changes applied: %d of %d shots of listed people missed", missed.Load(), matched.Load())
		}

		// A list disabled unloads its people without reading anything; enabled
		// again, it reads its members' faces (that list's, not the project's).
		step("the list disabled", func() {
			if err := call(t, reg, admin, "ModifyWatchlist", map[string]any{"WatchlistId": big.WatchlistId, "Enabled": false}, nil); err != nil {
				t.Fatal(err)
			}
		}, func(p proc) bool { return len(match(p, old[7][1])) == 0 }, 0)
		step("the list enabled", func() {
			if err := call(t, reg, admin, "ModifyWatchlist", map[string]any{"WatchlistId": big.WatchlistId, "Enabled": true, "Threshold": 0.7}, nil); err != nil {
				t.Fatal(err)
			}
		}, func(p proc) bool {
			hits, _ := p.svc.MatchFace(ctx, "default", toF32(old[7][1]))
			return len(hits) == 1 && hits[0].PersonName == "old 7" && hits[0].Threshold > 0.69 && hits[0].Threshold < 0.71
		}, 2*(reloadPeople-1))

		// A gap in the change log (rows pruned while a process was away):
		// the matcher reloads the whole project, and is right.
		if _, err := db.Exec(ctx, "UPDATE watchlist_versions SET seq = seq + 5000 WHERE project_id = 'default'"); err != nil {
			t.Fatal(err)
		}
		if err := call(t, reg, admin, "ModifyWatchlistPerson", map[string]any{"PersonId": added.PersonId, "WatchlistIds": []string{big.WatchlistId}}, nil); err != nil {
			t.Fatal(err)
		}
		for i, p := range procs {
			testenv.Eventually(t, 10*time.Second, "the change after a gap to reach process "+fmt.Sprint(i), func() bool {
				return match(p, newcomer[2])[big.WatchlistId] == "newcomer"
			})
			if got := full(p); got != 2 {
				t.Errorf("process %d after a gap: %v full reloads; want 2", i, got)
			}
			if got := match(p, old[9][0])[big.WatchlistId]; got != "old 9" {
				t.Errorf("process %d after a full reload: old 9's shot hits %q", i, got)
			}
		}
	})
}

// fillList stores people "old i" (ids psn-old-i) with the shots of
// people[i] as reference faces on list, by SQL in batches, without
// logging a change: the first match loads them whole.
func fillList(t *testing.T, db *store.DB, list string, people [][][]float64) {
	t.Helper()
	ctx := context.Background()
	err := db.InTx(ctx, func(tx *store.Tx) error {
		const batch = 100
		for lo := 0; lo < len(people); lo += batch {
			hi := min(lo+batch, len(people))
			var ps, ms, fs []string
			var pa, ma, fa []any
			for i := lo; i < hi; i++ {
				id := fmt.Sprintf("psn-old-%05d", i)
				ps, pa = append(ps, "(?, 'default', ?, '', '', 0, 0)"), append(pa, id, fmt.Sprintf("old %d", i))
				ms, ma = append(ms, "(?, ?, 'default')"), append(ma, list, id)
				for j, v := range people[i] {
					enc := make([]byte, 4*len(v))
					for k, x := range v {
						binary.LittleEndian.PutUint32(enc[4*k:], math.Float32bits(float32(x)))
					}
					fs, fa = append(fs, "(?, ?, 'default', '', '[]', ?, ?, 0)"), append(fa, fmt.Sprintf("wf-old-%05d-%d", i, j), id, len(v), base64.StdEncoding.EncodeToString(enc))
				}
			}
			if _, err := tx.Exec(ctx, "INSERT INTO watchlist_people (id, project_id, name, external_id, notes, created_at, updated_at) VALUES "+strings.Join(ps, ", "), pa...); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "INSERT INTO watchlist_members (list_id, person_id, project_id) VALUES "+strings.Join(ms, ", "), ma...); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "INSERT INTO watchlist_faces (id, person_id, project_id, algorithm_id, box, dim, vector, created_at) VALUES "+strings.Join(fs, ", "), fa...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// metric reads a counter from reg (the series with label value lv, or the
// only one when lv is "").
func metric(t *testing.T, reg *prometheus.Registry, name, lv string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if lv == "" || (len(m.GetLabel()) > 0 && m.GetLabel()[0].GetValue() == lv) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
