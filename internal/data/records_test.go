package data_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/blob"
	_ "github.com/tianshu-ai/tianshu/internal/blob/fileblob"
	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

// clock is a settable test clock.
type clock struct{ ms atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.set(t)
	return c
}
func (c *clock) now() time.Time          { return time.UnixMilli(c.ms.Load()).UTC() }
func (c *clock) set(t time.Time)         { c.ms.Store(t.UnixMilli()) }
func (c *clock) advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

var t0 = time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)

// env is a data service over a real store and a real file blob store.
type env struct {
	db    *store.DB
	blobs blob.Store
	svc   *data.Service
	clk   *clock
	dir   string // data dir: objects/ and uploads/
}

func newEnv(t *testing.T, db *store.DB) *env {
	t.Helper()
	e := &env{db: db, clk: newClock(t0), dir: t.TempDir()}
	var err error
	e.blobs, err = blob.Open(context.Background(), "file://"+e.dir+"/objects", blob.Options{
		DataDir: e.dir, PublicURL: "http://127.0.0.1:1", SigningKey: []byte("test-signing-key-0123456789abcdef"), Now: e.clk.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.blobs.Close() })
	e.svc = e.service(t)
	return e
}

// service returns a fresh service over the env's store, blobs and staging
// dir, as a restarted process would build it.
func (e *env) service(t *testing.T) *data.Service {
	t.Helper()
	s, err := data.New(e.db, e.blobs, data.Options{Now: e.clk.now, TokenKey: []byte("token-key"), StagingDir: e.dir + "/uploads"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func doc(kv ...any) json.RawMessage {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	b, _ := json.Marshal(m)
	return b
}

// fixture writes 24 records through a Writer: tasks A/B alternate, devices
// d0..d2 cycle, types face/car by halves, one second apart from t0.
func fixture(t *testing.T, e *env) []data.Record {
	t.Helper()
	ctx := context.Background()
	w := e.svc.NewWriter(data.WriterOptions{BatchSize: 5, FlushInterval: time.Hour})
	var recs []data.Record
	for i := range 24 {
		r := data.Record{
			TaskID: []string{"task-a", "task-b"}[i%2], DeviceID: fmt.Sprintf("dev-%d", i%3), Type: []string{"face", "car"}[i/12],
			Time: t0.Add(time.Duration(i) * time.Second),
			Data: doc("n", i, "color", []string{"red", "blue", "绿"}[i%3], "ok", i%4 == 0, "score", 0.5),
		}
		id, err := w.Write(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		r.ID = id
		recs = append(recs, r)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return recs
}

func ids(recs []data.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

// expect returns the ids of want's records matching keep, newest first.
func expect(all []data.Record, keep func(i int, r data.Record) bool) []string {
	var out []string
	for i := len(all) - 1; i >= 0; i-- {
		if keep(i, all[i]) {
			out = append(out, all[i].ID)
		}
	}
	return out
}

func TestRecordQueries(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		all := fixture(t, e)
		cases := []struct {
			name string
			q    data.Query
			keep func(i int, r data.Record) bool
		}{
			{"all", data.Query{Limit: 100}, func(int, data.Record) bool { return true }},
			{"project", data.Query{ProjectID: "default", Limit: 100}, func(int, data.Record) bool { return true }},
			{"other project", data.Query{ProjectID: "prj-other", Limit: 100}, func(int, data.Record) bool { return false }},
			{"task", data.Query{TaskIDs: []string{"task-a"}, Limit: 100}, func(i int, _ data.Record) bool { return i%2 == 0 }},
			{"device", data.Query{DeviceIDs: []string{"dev-1", "dev-2"}, Limit: 100}, func(i int, _ data.Record) bool { return i%3 != 0 }},
			{"type", data.Query{Types: []string{"car"}, Limit: 100}, func(i int, _ data.Record) bool { return i >= 12 }},
			{"time range", data.Query{Start: t0.Add(5 * time.Second), End: t0.Add(10 * time.Second), Limit: 100},
				func(i int, _ data.Record) bool { return i >= 5 && i < 10 }},
			{"attr string", data.Query{Attributes: []data.Attribute{{Name: "color", Value: "blue"}}, Limit: 100},
				func(i int, _ data.Record) bool { return i%3 == 1 }},
			{"attr unicode", data.Query{Attributes: []data.Attribute{{Name: "color", Value: "绿"}}, Limit: 100},
				func(i int, _ data.Record) bool { return i%3 == 2 }},
			{"attr number", data.Query{Attributes: []data.Attribute{{Name: "n", Value: "7"}}, Limit: 100},
				func(i int, _ data.Record) bool { return i == 7 }},
			{"attr float", data.Query{Attributes: []data.Attribute{{Name: "score", Value: "0.5"}}, Limit: 100},
				func(int, data.Record) bool { return true }},
			{"attr bool", data.Query{Attributes: []data.Attribute{{Name: "ok", Value: "true"}}, Limit: 100},
				func(i int, _ data.Record) bool { return i%4 == 0 }},
			{"attr missing field", data.Query{Attributes: []data.Attribute{{Name: "nope", Value: "x"}}, Limit: 100},
				func(int, data.Record) bool { return false }},
			{"attr not equal", data.Query{Attributes: []data.Attribute{{Name: "color", Op: "!=", Value: "red"}}, Limit: 100},
				func(i int, _ data.Record) bool { return i%3 != 0 }},
			{"attr range", data.Query{Attributes: []data.Attribute{{Name: "n", Op: ">=", Value: "5"}, {Name: "n", Op: "<", Value: "8"}}, Limit: 100},
				func(i int, _ data.Record) bool { return i >= 5 && i < 8 }},
			{"attr range float", data.Query{Attributes: []data.Attribute{{Name: "n", Op: ">", Value: " 20.5 "}}, Limit: 100},
				func(i int, _ data.Record) bool { return i > 20 }},
			{"attr range le", data.Query{Attributes: []data.Attribute{{Name: "score", Op: "<=", Value: "0.5"}, {Name: "n", Op: "<=", Value: "1e0"}}, Limit: 100},
				func(i int, _ data.Record) bool { return i <= 1 }},
			// 9 < 10 as numbers, though "9" > "10" as text.
			{"attr range numeric not text", data.Query{Attributes: []data.Attribute{{Name: "n", Op: "<", Value: "10"}, {Name: "n", Op: ">", Value: "8"}}, Limit: 100},
				func(i int, _ data.Record) bool { return i == 9 }},
			// A string or a boolean is not a number, whatever its text.
			{"attr range on string", data.Query{Attributes: []data.Attribute{{Name: "color", Op: ">", Value: "-1"}}, Limit: 100},
				func(int, data.Record) bool { return false }},
			{"attr range on bool", data.Query{Attributes: []data.Attribute{{Name: "ok", Op: ">=", Value: "0"}}, Limit: 100},
				func(int, data.Record) bool { return false }},
			{"attr range missing field", data.Query{Attributes: []data.Attribute{{Name: "nope", Op: "<", Value: "1"}}, Limit: 100},
				func(int, data.Record) bool { return false }},
			{"combined", data.Query{TaskIDs: []string{"task-b"}, Types: []string{"face"}, DeviceIDs: []string{"dev-0"},
				Attributes: []data.Attribute{{Name: "color", Value: "red"}, {Name: "ok", Value: "false"}}, Start: t0, Limit: 100},
				func(i int, r data.Record) bool { return i%2 == 1 && i < 12 && i%3 == 0 }},
		}
		for _, c := range cases {
			got, total, err := e.svc.Records(ctx, c.q)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			want := expect(all, c.keep)
			if total != len(want) || !slices.Equal(ids(got), want) {
				t.Errorf("%s: got %d of %d %v; want %d %v", c.name, len(got), total, ids(got), len(want), want)
			}
		}

		// Paging walks newest first without gaps or repeats.
		var paged []string
		for off := 0; ; off += 7 {
			got, total, err := e.svc.Records(ctx, data.Query{Offset: off, Limit: 7})
			if err != nil {
				t.Fatal(err)
			}
			if total != len(all) {
				t.Fatalf("TotalCount %d, want %d", total, len(all))
			}
			if len(got) == 0 {
				break
			}
			paged = append(paged, ids(got)...)
		}
		if want := expect(all, func(int, data.Record) bool { return true }); !slices.Equal(paged, want) {
			t.Errorf("paged %v\nwant  %v", paged, want)
		}

		// A record reads back as written.
		r, err := e.svc.Record(ctx, all[7].ID)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(r.Data, &m); err != nil || m["n"] != float64(7) || r.TaskID != "task-b" || r.DeviceID != "dev-1" ||
			r.Type != "face" || !r.Time.Equal(t0.Add(7*time.Second)) || r.ProjectID != "default" {
			t.Errorf("record 7 = %+v (data %s, err %v)", r, r.Data, err)
		}
		if _, err := e.svc.Record(ctx, "rec-missing"); err == nil {
			t.Error("missing record: no error")
		}
		// Field names go into SQL text, so anything but an identifier is refused.
		if _, _, err := e.svc.Records(ctx, data.Query{Attributes: []data.Attribute{{Name: "a') OR 1=1 --", Value: "x"}}}); err == nil {
			t.Error("attribute name with SQL: no error")
		}
		// A bad operator or a comparison with a non-number names the field.
		for _, c := range []struct {
			a     data.Attribute
			field string
		}{
			{data.Attribute{Name: "n", Op: "~", Value: "1"}, "Attributes[0].Op"},
			{data.Attribute{Name: "n", Op: ">", Value: "abc"}, "Attributes[0].Value"},
			{data.Attribute{Name: "n", Op: "<", Value: "Inf"}, "Attributes[0].Value"},
			{data.Attribute{Name: "n", Op: "<", Value: ""}, "Attributes[0].Value"},
		} {
			_, _, err := e.svc.Records(ctx, data.Query{Attributes: []data.Attribute{c.a}})
			if e, ok := api.AsError(err); !ok || e.Code != api.InvalidParameterValue || !strings.HasPrefix(e.Message, c.field+": ") {
				t.Errorf("%+v: %v; want InvalidParameterValue naming %s", c.a, err, c.field)
			}
		}
	})
}

func TestWriter(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		var mu sync.Mutex
		var flushed, batches int
		w := e.svc.NewWriter(data.WriterOptions{BatchSize: 16, FlushInterval: 20 * time.Millisecond, QueueSize: 8,
			OnFlush: func(recs []data.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Errorf("flush: %v", err)
				}
				flushed += len(recs)
				batches++
			}})
		// Concurrent writers through a small queue: back-pressure, no loss.
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range 100 {
					if _, err := w.Write(ctx, data.Record{TaskID: "task-w", DeviceID: fmt.Sprint(g), Type: "t", Data: doc("i", i)}); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		if flushed != 400 || batches < 400/16 {
			t.Errorf("OnFlush saw %d records in %d batches; want 400 in ≥ %d", flushed, batches, 400/16)
		}
		mu.Unlock()
		if _, total, _ := e.svc.Records(ctx, data.Query{TaskIDs: []string{"task-w"}}); total != 400 {
			t.Errorf("stored %d records, want 400", total)
		}

		// WriteSync returns after the commit: the record is readable at once.
		id, err := w.WriteSync(ctx, data.Record{TaskID: "task-s", Type: "t"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Record(ctx, id); err != nil {
			t.Errorf("after WriteSync: %v", err)
		}
		// A caller-chosen id makes a rewrite a no-op (redelivered messages).
		for range 2 {
			if _, err := w.WriteSync(ctx, data.Record{ID: "rec-frame-42", TaskID: "task-s", Type: "t"}); err != nil {
				t.Fatal(err)
			}
		}
		if _, total, _ := e.svc.Records(ctx, data.Query{TaskIDs: []string{"task-s"}}); total != 2 {
			t.Errorf("task-s has %d records, want 2", total)
		}
		// Invalid records fail at Write, not in a batch.
		if _, err := w.Write(ctx, data.Record{TaskID: "x", Data: json.RawMessage(`[1]`)}); !errors.Is(err, data.ErrInvalidRecord) {
			t.Errorf("array data: err %v", err)
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(ctx, data.Record{TaskID: "x"}); !errors.Is(err, data.ErrWriterClosed) {
			t.Errorf("write after close: err %v", err)
		}
	})
}

func TestRetention(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		// task-age keeps 1 h; task-count keeps 5; task-none is kept by the
		// default max age (3 h) only.
		if err := e.svc.SetRetention(ctx, "", "task-age", data.Policy{MaxAge: time.Hour}); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.SetRetention(ctx, "", "task-count", data.Policy{MaxAge: time.Hour, MaxCount: 100}); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.SetRetention(ctx, "", "task-count", data.Policy{MaxCount: 5}); err != nil { // replaces
			t.Fatal(err)
		}
		if p, err := e.svc.RetentionPolicy(ctx, "task-count"); err != nil || p != (data.Policy{MaxCount: 5}) {
			t.Fatalf("policy %+v, %v", p, err)
		}
		// An upload's object that a record refers to must survive retention.
		shared := "uploads/default/upl-1/video.mp4"
		if _, err := e.blobs.Put(ctx, shared, strings.NewReader("v"), blob.PutOptions{Size: 1}); err != nil {
			t.Fatal(err)
		}
		var recs []data.Record
		var owned []string
		for i := range 12 {
			// Minutes apart, two per minute for task-count (ties in time).
			at := t0.Add(-time.Duration(i*30) * time.Minute)
			key, err := e.svc.PutObject(ctx, "default", "task-age", []byte("jpeg"), "image/jpeg")
			if err != nil {
				t.Fatal(err)
			}
			owned = append(owned, key)
			recs = append(recs,
				data.Record{TaskID: "task-age", Type: "t", Time: at, Objects: []string{key, shared}},
				data.Record{TaskID: "task-count", Type: "t", Time: t0.Add(-time.Duration(i/2) * time.Minute)},
				data.Record{TaskID: "task-none", Type: "t", Time: at})
		}
		if err := e.svc.Insert(ctx, recs); err != nil {
			t.Fatal(err)
		}
		e.clk.set(t0)
		r := e.svc.NewRetention(data.RetentionOptions{DefaultMaxAge: 3 * time.Hour})
		n, err := r.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		count := func(task string) []data.Record {
			got, _, err := e.svc.Records(ctx, data.Query{TaskIDs: []string{task}, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		// task-age: ages 0, 30 and 60 min kept (60 min is not older than 1 h).
		if got := count("task-age"); len(got) != 3 {
			t.Errorf("task-age kept %d, want 3", len(got))
		}
		// task-count: the newest 5 in (time, id) order, the order of queries.
		var byCount []data.Record
		for _, r := range recs {
			if r.TaskID == "task-count" {
				byCount = append(byCount, r)
			}
		}
		slices.SortFunc(byCount, func(a, b data.Record) int {
			if c := b.Time.Compare(a.Time); c != 0 {
				return c
			}
			return strings.Compare(b.ID, a.ID)
		})
		gotCount := count("task-count")
		if want := ids(byCount[:5]); !slices.Equal(ids(gotCount), want) {
			t.Errorf("task-count kept %v, want %v", ids(gotCount), want)
		}
		// task-none: the default 3 h keeps ages 0..180 min (7 records).
		if got := count("task-none"); len(got) != 7 {
			t.Errorf("task-none kept %d, want 7", len(got))
		}
		if wantN := 9 + 7 + 5; n != wantN {
			t.Errorf("RunOnce deleted %d, want %d", n, wantN)
		}
		// Objects of deleted task-age records are gone, the kept ones and
		// the shared upload stay.
		for i, k := range owned {
			_, err := e.blobs.Stat(ctx, k)
			if gone := errors.Is(err, blob.ErrNotFound); gone != (i >= 3) {
				t.Errorf("object %d (age %d min): stat err %v", i, i*30, err)
			}
		}
		if _, err := e.blobs.Stat(ctx, shared); err != nil {
			t.Errorf("shared upload object: %v", err)
		}
		// A second round has nothing left to do.
		if n, err := r.RunOnce(ctx); n != 0 || err != nil {
			t.Errorf("second round: %d, %v", n, err)
		}
		// Time passes: everything of task-age ages out.
		e.clk.advance(2 * time.Hour)
		if _, err := r.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if got := count("task-age"); len(got) != 0 {
			t.Errorf("task-age after 2 h kept %d", len(got))
		}

		// DeleteRecords by id and by task + time range.
		n, err = e.svc.DeleteRecords(ctx, store.OneProject(""), []string{gotCount[0].ID, "rec-nope"})
		if err != nil || n != 1 {
			t.Errorf("DeleteRecords: %d, %v", n, err)
		}
		// task-none now holds ages 0, 30, 60 min (the default 3 h, 2 h on).
		n, err = e.svc.DeleteTaskRecords(ctx, store.OneProject(""), "task-none", time.Time{}, t0)
		if err != nil || n != 2 {
			t.Errorf("DeleteTaskRecords: %d, %v (want 2: all but the one at t0)", n, err)
		}
	})
}

func TestRetentionRun(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	e := newEnv(t, db)
	ctx, cancel := context.WithCancel(context.Background())
	if err := e.svc.SetRetention(ctx, "", "task-x", data.Policy{MaxCount: 1}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Insert(ctx, []data.Record{{TaskID: "task-x", Time: t0}, {TaskID: "task-x", Time: t0.Add(time.Second)}}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.svc.NewRetention(data.RetentionOptions{Interval: time.Millisecond}).Run(ctx) }()
	for {
		_, total, err := e.svc.Records(ctx, data.Query{TaskIDs: []string{"task-x"}})
		if err != nil {
			t.Fatal(err)
		}
		if total == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v", err)
	}
}
