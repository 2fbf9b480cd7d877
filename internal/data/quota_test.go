package data_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/media"
	"github.com/tianshu-ai/tianshu/internal/pipeline"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

type storageQuota map[string]int

func (q storageQuota) Quota(_ context.Context, projectID, kind string) (int, error) {
	if kind != api.QuotaStorage {
		return 0, nil
	}
	return q[projectID], nil
}

// refused reads tianshu_data_records_refused_total{reason="storage_quota"}.
func refused(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "tianshu_data_records_refused_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == "storage_quota" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// A project's records and uploads stay within its storage quota (issue
// #26, part 6): a task's record that would pass it is refused before
// anything is stored, and counted; an upload is refused at creation;
// deleting records makes room again.
func TestStorageQuota(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		e.clk.set(time.Now())
		reg := prometheus.NewRegistry()
		svc, err := data.New(e.db, e.blobs, data.Options{Now: e.clk.now, Registerer: reg, TokenKey: []byte("token-key"), StagingDir: e.dir + "/uploads"})
		if err != nil {
			t.Fatal(err)
		}
		svc.UseQuotas(storageQuota{"default": 10_000})
		w := svc.NewWriter(data.WriterOptions{})
		defer w.Close(ctx)
		sink := svc.NewRecordSink(w)
		store := func(id string, size int) error {
			_, err := sink.StoreRecord(ctx, pipeline.Record{ProjectID: "default", TaskID: "task-q", DeviceID: "cam", Type: "face", Time: e.clk.now(), EventID: id,
				Data: map[string]any{"crop": media.Image{Bytes: bytes.Repeat([]byte{1}, size), ContentType: "image/jpeg"}}})
			return err
		}
		count := func() int {
			var n int
			if err := db.QueryRow(ctx, "SELECT COUNT(*) FROM records WHERE project_id = 'default'").Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}

		if err := store("evt-1", 6000); err != nil {
			t.Fatal(err)
		}
		err = store("evt-2", 6000)
		if e, ok := api.AsError(err); !ok || e.Code != api.LimitExceeded || !strings.Contains(e.Message, "its storage quota of 10000 bytes") {
			t.Fatalf("record over the quota: %v", err)
		}
		if n := count(); n != 1 || refused(t, reg) != 1 {
			t.Fatalf("%d records stored, %g refused; want 1 and 1", n, refused(t, reg))
		}
		var held int64
		if err := db.QueryRow(ctx, "SELECT bytes FROM records WHERE project_id = 'default'").Scan(&held); err != nil || held <= 6000 {
			t.Fatalf("record holds %d bytes (%v); want its crop and document", held, err)
		}

		// An upload is refused when it is created: 6000 more bytes would pass.
		tok, _, err := svc.NewUploadToken("default", 0)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(svc.Handler())
		defer srv.Close()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/files/", nil)
		req.Header.Set("Tus-Resumable", "1.0.0")
		req.Header.Set("Upload-Token", tok)
		req.Header.Set("Upload-Length", strconv.Itoa(6000))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var msg bytes.Buffer
		_, _ = msg.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(msg.String(), "storage quota") {
			t.Fatalf("upload over the quota: %s %s", resp.Status, msg.String())
		}

		// Deleting the record makes room for the next one.
		if _, err := svc.DeleteTaskRecords(ctx, projectOf("default"), "task-q", time.Time{}, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if err := store("evt-2", 6000); err != nil {
			t.Fatalf("after the delete: %v", err)
		}
		if n := count(); n != 1 {
			t.Fatalf("%d records; want 1", n)
		}
	})
}

// projectOf is what a list or deletion naming projectID covers.
func projectOf(projectID string) store.Projects { return store.OneProject(projectID) }
