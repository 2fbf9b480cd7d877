package data_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/blob"
	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

var admin = api.Caller{Role: api.RoleAdmin, ProjectID: "default", AppID: "app-test"}

// call runs an action in-process as the gateway would after
// authentication, and decodes its response into out.
func call(t *testing.T, reg *api.Registry, c api.Caller, name string, req any, out any) error {
	t.Helper()
	a, ok := reg.Lookup(name)
	if !ok {
		t.Fatalf("no action %s", name)
	}
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.Call(context.Background(), &c, body)
	if err != nil {
		return err
	}
	b, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatal(err)
		}
	}
	return nil
}

func registry(s *data.Service) *api.Registry {
	reg := api.NewRegistry()
	data.RegisterActions(reg, s)
	return reg
}

func wantCode(t *testing.T, err error, code api.Code) {
	t.Helper()
	e, ok := api.AsError(err)
	if !ok || e.Code != code {
		t.Errorf("error %v; want code %s", err, code)
	}
}

func TestActions(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		// Presigned URLs point at a server that serves the blob store, so
		// the test fetches the objects a record refers to.
		var objects atomic.Pointer[http.Handler]
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*objects.Load()).ServeHTTP(w, r) }))
		defer srv.Close()
		e := &env{db: db, clk: newClock(time.Now()), dir: t.TempDir()}
		var err error
		e.blobs, err = blob.Open(ctx, "file://"+e.dir+"/objects", blob.Options{DataDir: e.dir, PublicURL: srv.URL, Now: e.clk.now})
		if err != nil {
			t.Fatal(err)
		}
		defer e.blobs.Close()
		h, _ := blob.Handler(e.blobs)
		objects.Store(&h)
		e.svc = e.service(t)
		reg := registry(e.svc)

		key, err := e.svc.PutObject(ctx, "default", "task-a", []byte("crop bytes"), "image/jpeg")
		if err != nil {
			t.Fatal(err)
		}
		now := e.clk.now()
		if err := e.svc.Insert(ctx, []data.Record{
			{TaskID: "task-a", DeviceID: "dev-1", Type: "face", Time: now.Add(-3 * time.Minute), Data: doc("gender", "female", "age", 31), Objects: []string{key}},
			{TaskID: "task-a", DeviceID: "dev-2", Type: "face", Time: now.Add(-2 * time.Minute), Data: doc("gender", "male", "age", 40)},
			{TaskID: "task-b", DeviceID: "dev-1", Type: "car", Time: now.Add(-1 * time.Minute), Data: doc("plate", "京A12345")},
		}); err != nil {
			t.Fatal(err)
		}

		var list data.DescribeRecordsResponse
		if err := call(t, reg, admin, "DescribeRecords", map[string]any{"ProjectId": "default"}, &list); err != nil {
			t.Fatal(err)
		}
		if list.TotalCount != 3 || len(list.RecordSet) != 3 || list.RecordSet[0].Type != "car" || list.RecordSet[2].DeviceId != "dev-1" {
			t.Fatalf("DescribeRecords: %+v", list)
		}
		if err := call(t, reg, admin, "DescribeRecords", map[string]any{
			"TaskIds": []string{"task-a"}, "Types": []string{"face"}, "DeviceIds": []string{"dev-1", "dev-2"},
			"StartTime": now.Add(-4 * time.Minute).Format(time.RFC3339), "EndTime": now.Format(time.RFC3339),
			"Attributes": []map[string]string{{"Name": "gender", "Value": "female"}, {"Name": "age", "Value": "31"}},
			"Limit":      1,
		}, &list); err != nil {
			t.Fatal(err)
		}
		if list.TotalCount != 1 || len(list.RecordSet) != 1 || len(list.RecordSet[0].ObjectUrls) != 1 || list.RecordSet[0].ObjectKeys[0] != key {
			t.Fatalf("filtered DescribeRecords: %+v", list)
		}
		rec := list.RecordSet[0]
		var d map[string]any
		if err := json.Unmarshal(rec.Data, &d); err != nil || d["gender"] != "female" {
			t.Errorf("Data %s", rec.Data)
		}
		// The signed URL serves the object without credentials.
		resp, err := http.Get(rec.ObjectUrls[0])
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "crop bytes" {
			t.Errorf("GET signed URL: %d %q", resp.StatusCode, body)
		}

		var one data.DescribeRecordResponse
		if err := call(t, reg, admin, "DescribeRecord", map[string]any{"RecordId": rec.RecordId}, &one); err != nil || one.Record.RecordId != rec.RecordId || len(one.Record.ObjectUrls) != 1 {
			t.Errorf("DescribeRecord: %+v, %v", one, err)
		}
		wantCode(t, call(t, reg, admin, "DescribeRecord", map[string]any{"RecordId": "rec-nope"}, nil), api.ResourceNotFound)
		wantCode(t, call(t, reg, admin, "DescribeRecord", map[string]any{"RecordId": rec.RecordId, "ProjectId": "prj-other"}, nil), api.ResourceNotFound)
		wantCode(t, call(t, reg, admin, "DescribeRecords", map[string]any{"StartTime": "yesterday"}, nil), api.InvalidParameterValue)
		wantCode(t, call(t, reg, admin, "DescribeRecords", map[string]any{"Limit": 101}, nil), api.InvalidParameterValue)
		wantCode(t, call(t, reg, admin, "DescribeRecords", map[string]any{"Attributes": []map[string]string{{"Name": "a.b", "Value": "x"}}}, nil), api.InvalidParameterValue)
		wantCode(t, call(t, reg, admin, "DeleteRecords", map[string]any{}, nil), api.MissingParameter)
		wantCode(t, call(t, reg, admin, "DeleteRecords", map[string]any{"RecordIds": []string{"rec-x"}, "TaskId": "task-a"}, nil), api.InvalidParameterValue)

		// Deleting by id removes the record and the object its task stored.
		var del data.DeleteRecordsResponse
		if err := call(t, reg, admin, "DeleteRecords", map[string]any{"RecordIds": []string{rec.RecordId}}, &del); err != nil || del.DeletedCount != 1 {
			t.Errorf("DeleteRecords by id: %+v, %v", del, err)
		}
		if _, err := e.blobs.Stat(ctx, key); err == nil {
			t.Error("object of a deleted record still exists")
		}
		// Deleting by task and time range.
		if err := call(t, reg, admin, "DeleteRecords", map[string]any{"TaskId": "task-a", "EndTime": now.Format(time.RFC3339)}, &del); err != nil || del.DeletedCount != 1 {
			t.Errorf("DeleteRecords by task: %+v, %v", del, err)
		}
		if err := call(t, reg, admin, "DescribeRecords", map[string]any{}, &list); err != nil || list.TotalCount != 1 {
			t.Errorf("after deletes: %+v, %v", list, err)
		}

		// Upload tokens: bound to the project, refused for unknown ones.
		var tok data.CreateUploadTokenResponse
		if err := call(t, reg, admin, "CreateUploadToken", map[string]any{"MaxSize": 1000}, &tok); err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(tok.Endpoint, "/files/") || tok.ProjectId != "default" || tok.MaxSize != 1000 || tok.Token == "" {
			t.Errorf("CreateUploadToken: %+v", tok)
		}
		g, err := e.svc.VerifyUploadToken(tok.Token)
		if err != nil || g.ProjectID != "default" || g.MaxSize != 1000 {
			t.Errorf("verify: %+v, %v", g, err)
		}
		wantCode(t, call(t, reg, admin, "CreateUploadToken", map[string]any{"ProjectId": "prj-nope"}, nil), api.ResourceNotFound)
		var ups data.DescribeUploadsResponse
		if err := call(t, reg, admin, "DescribeUploads", map[string]any{}, &ups); err != nil || ups.TotalCount != 0 {
			t.Errorf("DescribeUploads: %+v, %v", ups, err)
		}

		// Permissions: viewers read (Describe…, Search…), only admins write.
		viewer := admin
		viewer.Role = api.RoleViewer
		for _, a := range reg.Actions() {
			reads := strings.HasPrefix(a.Name, "Describe") || strings.HasPrefix(a.Name, "Search")
			if viewer.Allowed(a.Permission) != (a.Permission.Access == api.Read) || reads != (a.Permission.Access == api.Read) {
				t.Errorf("%s: permission %s", a.Name, a.Permission)
			}
		}
	})
}
