package data_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/api/apitest"
	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

// DescribeRecords without ProjectId lists the records of every project
// where the caller's roles grant it, and pages that union. A role narrowed
// to a device and a device group reaches only the records of those devices
// (a group's devices of its own project: dev-x of site-a belongs to
// another project).
func TestRecordListUnion(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		ids := scopedRecords(t, db, e)
		apitest.CheckUnion(t, registry(e.svc), apitest.Union{Action: "DescribeRecords", Key: "Type",
			Scope: api.Scope{DeviceIDs: []string{"dev-1"}, DeviceGroups: []string{"site-a"}},
			WantA: []string{"a-dev1", "a-dev2"}, WantB: []string{"b1", "b2", "b3"}})
		// DescribeRecord by id reaches what the list does, and no more.
		reg := registry(e.svc)
		c := narrowedCaller(t, reg, "DescribeRecord")
		for typ, found := range map[string]bool{"a-dev1": true, "a-dev2": true, "a-dev3": false, "a-devx": false, "b1": false} {
			err := call(t, reg, c, "DescribeRecord", map[string]string{"RecordId": ids[typ]}, nil)
			if e, ok := api.AsError(err); found && err != nil || !found && (!ok || e.Code != api.ResourceNotFound) {
				t.Errorf("DescribeRecord of %s: %v; want found %v", typ, err, found)
			}
		}
	})
}

// scopedRecords stores the devices and records the scope tests narrow:
// dev-2 (site-a) and dev-3 (site-b) in project A, dev-x (site-a) in
// project C, and records of A, B and C named by their Type.
func scopedRecords(t *testing.T, db *store.DB, e *env) map[string]string {
	ctx := context.Background()
	for _, d := range []struct{ id, project, group string }{{"dev-2", apitest.ProjectA, "site-a"}, {"dev-3", apitest.ProjectA, "site-b"},
		{"dev-x", apitest.ProjectC, "site-a"}} {
		if _, err := db.Exec(ctx, `INSERT INTO devices (id, project_id, name, description, driver, address, username, password_enc, options, fps, width,
			device_group, edge_node, status, reason, last_error, last_frame_ms, measured_fps, status_ms, created_at, updated_at)
			VALUES (?, ?, ?, '', 'replay', '', '', '', '', 1, 0, ?, '', 'offline', '', '', 0, 0, 0, 0, 0)`, d.id, d.project, d.id, d.group); err != nil {
			t.Fatal(err)
		}
	}
	w := e.svc.NewWriter(data.WriterOptions{BatchSize: 10, FlushInterval: time.Hour})
	ids := map[string]string{}
	for i, r := range []struct{ project, device, typ string }{{apitest.ProjectA, "dev-1", "a-dev1"}, {apitest.ProjectA, "dev-2", "a-dev2"},
		{apitest.ProjectA, "dev-3", "a-dev3"}, {apitest.ProjectA, "dev-x", "a-devx"}, {apitest.ProjectB, "dev-3", "b1"},
		{apitest.ProjectB, "dev-4", "b2"}, {apitest.ProjectB, "dev-4", "b3"}, {apitest.ProjectC, "dev-1", "c1"}} {
		id, err := w.Write(ctx, data.Record{ProjectID: r.project, TaskID: "task-1", DeviceID: r.device, Type: r.typ,
			Time: t0.Add(time.Duration(i) * time.Second), Data: doc("n", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids[r.typ] = id
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return ids
}

// narrowedCaller is a person whose one role, in project A, grants action
// narrowed to device dev-1 and the devices of group site-a.
func narrowedCaller(t *testing.T, reg *api.Registry, action string) api.Caller {
	t.Helper()
	acts, err := reg.MatchActions("Actions", []string{action})
	if err != nil {
		t.Fatal(err)
	}
	c := api.Caller{UserID: "usr-d", UserName: "d"}
	c.SetGrants(api.NewGrants(false, []api.Binding{{ProjectID: apitest.ProjectA,
		Role: (&api.Role{Name: "dev-1", Actions: acts}).Narrow(api.Scope{DeviceIDs: []string{"dev-1"}, DeviceGroups: []string{"site-a"}})}}))
	return c
}

// DeleteRecords is narrowed as DescribeRecords is: a person whose role in
// project A reaches dev-1 and the devices of group site-a deletes those
// devices' records only, by id or by task, and nothing of project B where
// no role grants it.
func TestDeleteRecordsNarrowedByScope(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		ids := scopedRecords(t, db, e)
		reg := registry(e.svc)
		c := narrowedCaller(t, reg, "DeleteRecords")
		left := func() []string {
			var out []string
			rows, err := db.Query(context.Background(), "SELECT type FROM records ORDER BY type")
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			for rows.Next() {
				var typ string
				if err := rows.Scan(&typ); err != nil {
					t.Fatal(err)
				}
				out = append(out, typ)
			}
			return out
		}
		var out struct{ DeletedCount int }
		all := []string{ids["a-dev2"], ids["a-dev3"], ids["a-devx"], ids["b1"], ids["c1"]}
		if err := call(t, reg, c, "DeleteRecords", map[string]any{"RecordIds": all}, &out); err != nil || out.DeletedCount != 1 {
			t.Fatalf("DeleteRecords by id: %v, %d deleted; want a-dev2 only", err, out.DeletedCount)
		}
		if got, want := left(), []string{"a-dev1", "a-dev3", "a-devx", "b1", "b2", "b3", "c1"}; !slices.Equal(got, want) {
			t.Fatalf("after DeleteRecords by id: %v; want %v", got, want)
		}
		if err := call(t, reg, c, "DeleteRecords", map[string]any{"ProjectId": apitest.ProjectA, "TaskId": "task-1"}, &out); err != nil || out.DeletedCount != 1 {
			t.Fatalf("DeleteRecords by task: %v, %d deleted; want a-dev1 only", err, out.DeletedCount)
		}
		if got, want := left(), []string{"a-dev3", "a-devx", "b1", "b2", "b3", "c1"}; !slices.Equal(got, want) {
			t.Fatalf("after DeleteRecords by task: %v; want %v", got, want)
		}
	})
}

// DescribeUploads without ProjectId lists the uploads of every project
// where the caller's roles grant it, and pages that union.
func TestUploadListUnion(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		for i, u := range []struct{ project, name string }{{apitest.ProjectA, "a1"}, {apitest.ProjectA, "a2"}, {apitest.ProjectB, "b1"},
			{apitest.ProjectB, "b2"}, {apitest.ProjectB, "b3"}, {apitest.ProjectC, "c1"}} {
			// The rows a finished tus upload leaves (the tus protocol itself
			// is TestUploadResumesAfterRestart's).
			if _, err := db.Exec(ctx, `INSERT INTO uploads (id, project_id, name, size, content_type, blob_key, sha256, state, created_at, expires_at)
				VALUES (?, ?, ?, 1, 'image/jpeg', '', '', 'completed', ?, ?)`, "upl-"+u.name, u.project, u.name, t0.UnixMilli()+int64(i), t0.Add(time.Hour).UnixMilli()); err != nil {
				t.Fatal(err)
			}
		}
		apitest.CheckUnion(t, registry(e.svc), apitest.Union{Action: "DescribeUploads", Key: "Name", Scope: api.Scope{DeviceIDs: []string{"dev-1"}},
			WantA: []string{"a1", "a2"}, WantB: []string{"b1", "b2", "b3"}})
	})
}
