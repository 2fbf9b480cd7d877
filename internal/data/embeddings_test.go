package data_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
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
	"github.com/tianshu-ai/tianshu/internal/testenv"
	"github.com/tianshu-ai/tianshu/internal/vectors"
	_ "github.com/tianshu-ai/tianshu/internal/vectors/hnsw"
)

// person returns n noisy shots (64-d) of one identity: what a face
// model's descriptors of one person look like to the index.
func person(r *rand.Rand, n int) [][]float64 {
	centre := make([]float64, 64)
	for i := range centre {
		centre[i] = r.NormFloat64()
	}
	out := make([][]float64, n)
	for j := range out {
		v := make([]float64, 64)
		for i := range v {
			v[i] = centre[i] + r.NormFloat64()*0.3
		}
		out[j] = v
	}
	return out
}

func openIndex(t *testing.T, dir string, src vectors.Source) vectors.Index {
	t.Helper()
	ix, err := vectors.Open(context.Background(), "hnsw://"+dir, vectors.Options{Source: src})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	return ix
}

// TestEmbeddings: a task's store node that writes an Embedding field has
// it kept out of the record's document, stored beside it, indexed, found
// by SearchFaces across devices, and deleted with the record; a lost
// index is rebuilt from the store.
func TestEmbeddings(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db)
		e.clk.set(time.Now())
		reg := prometheus.NewRegistry()
		svc, err := data.New(e.db, e.blobs, data.Options{Now: e.clk.now, Registerer: reg})
		if err != nil {
			t.Fatal(err)
		}
		ixDir := t.TempDir() + "/vectors"
		ix := openIndex(t, ixDir, svc.VectorSource())
		testenv.Eventually(t, 10*time.Second, "the empty index to be ready", func() bool {
			_, err := ix.Search(ctx, make([]float32, 4), 1, vectors.Filter{ProjectID: "default", Type: "face"})
			return err == nil || !strings.Contains(err.Error(), "unavailable")
		})
		svc.UseVectors(ix)
		w := svc.NewWriter(data.WriterOptions{})
		sink := svc.NewRecordSink(w)

		r := rand.New(rand.NewPCG(29, 1))
		alice, bob := person(r, 6), person(r, 6)
		put := func(i int, dev string, emb any) string {
			id, err := sink.StoreRecord(ctx, pipeline.Record{ProjectID: "default", TaskID: "task-" + dev, DeviceID: dev, Type: "face",
				Time: e.clk.now().Add(time.Duration(i) * time.Second), EventID: fmt.Sprintf("evt-%s-%d", dev, i),
				Data: map[string]any{"TrackId": i, "Crop": media.Image{Bytes: bytes.Repeat([]byte{byte(i)}, 100), ContentType: "image/jpeg"},
					data.EmbeddingField: emb}})
			if err != nil {
				t.Fatal(err)
			}
			return id
		}
		asAny := func(v []float64) []any {
			out := make([]any, len(v))
			for i, x := range v {
				out[i] = x
			}
			return out
		}
		var aliceIDs, bobIDs []string
		for i := range 6 {
			dev := []string{"dev-gate", "dev-hall"}[i%2]
			aliceIDs = append(aliceIDs, put(i, dev, asAny(alice[i])))
			bobIDs = append(bobIDs, put(10+i, dev, asAny(bob[i])))
		}
		plain := put(30, "dev-gate", "not a list") // stays in the document, not indexed

		rec, err := svc.Record(ctx, aliceIDs[0])
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(rec.Data), data.EmbeddingField) {
			t.Errorf("record document holds the embedding: %s", rec.Data)
		}
		if got, err := svc.Embedding(ctx, aliceIDs[0]); err != nil || len(got) != 64 || float64(got[3]) != float64(float32(alice[0][3])) {
			t.Errorf("stored embedding = %d values, %v", len(got), err)
		}
		// Responses leave it out unless asked.
		var one data.DescribeRecordResponse
		if err := call(t, registry(svc), admin, "DescribeRecord", map[string]any{"RecordId": aliceIDs[0]}, &one); err != nil || one.Record.Embedding != nil {
			t.Errorf("DescribeRecord without WithEmbedding: %v, %v", one.Record.Embedding, err)
		}
		if err := call(t, registry(svc), admin, "DescribeRecord", map[string]any{"RecordId": aliceIDs[0], "WithEmbedding": true}, &one); err != nil || len(one.Record.Embedding) != 64 {
			t.Errorf("DescribeRecord with WithEmbedding: %d values, %v", len(one.Record.Embedding), err)
		}
		var list data.DescribeRecordsResponse
		if err := call(t, registry(svc), admin, "DescribeRecords", map[string]any{"WithEmbedding": true, "Limit": 100}, &list); err != nil {
			t.Fatal(err)
		}
		with := 0
		for _, r := range list.RecordSet {
			if len(r.Embedding) == 64 {
				with++
			}
		}
		if with != 12 || len(list.RecordSet) != 13 {
			t.Errorf("DescribeRecords WithEmbedding: %d of %d records with an embedding; want 12 of 13", with, len(list.RecordSet))
		}
		if p, _ := svc.Record(ctx, plain); !strings.Contains(string(p.Data), `"Embedding":"not a list"`) {
			t.Errorf("a non-list Embedding field left the document: %s", p.Data)
		}
		// A null Embedding (a describing node that failed and was skipped)
		// is dropped: the record is stored without an embedding.
		if p, _ := svc.Record(ctx, put(40, "dev-gate", nil)); strings.Contains(string(p.Data), "Embedding") {
			t.Errorf("a null Embedding stayed in the document: %s", p.Data)
		}

		areg := registry(svc)
		var resp data.SearchFacesResponse
		if err := call(t, areg, admin, "SearchFaces", map[string]any{"ProjectId": "default", "RecordId": aliceIDs[0], "Limit": 5}, &resp); err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		devs := map[string]bool{}
		for _, h := range resp.FaceSet {
			got[h.RecordId] = true
			devs[h.DeviceId] = true
			if h.CropUrl == "" || h.Similarity <= 0 || h.Similarity > 1.0001 || h.Record.RecordId != h.RecordId {
				t.Errorf("hit %+v", h)
			}
		}
		for _, id := range aliceIDs[1:] {
			if !got[id] {
				t.Errorf("alice's %s not among the 5 most similar: %+v", id, resp.FaceSet)
			}
		}
		if got[aliceIDs[0]] || !devs["dev-gate"] || !devs["dev-hall"] || resp.HasMore != true {
			t.Errorf("search found itself, or not both devices, or HasMore false: %+v", resp)
		}
		// Filters and threshold: one device, Alice's similarity floor.
		if err := call(t, areg, admin, "SearchFaces", map[string]any{"RecordId": aliceIDs[0], "DeviceIds": []string{"dev-hall"}, "Threshold": 0.7}, &resp); err != nil {
			t.Fatal(err)
		}
		if len(resp.FaceSet) != 3 || resp.HasMore {
			t.Errorf("dev-hall above 0.7: %+v; want alice's 3 shots there", resp.FaceSet)
		}
		for _, h := range resp.FaceSet {
			if h.DeviceId != "dev-hall" || !strings.HasPrefix(h.TaskId, "task-dev-hall") {
				t.Errorf("hit outside the filter: %+v", h)
			}
		}
		// A descriptor instead of a record; paging.
		var page2 data.SearchFacesResponse
		if err := call(t, areg, admin, "SearchFaces", map[string]any{"Embedding": bob[0], "Offset": 2, "Limit": 2}, &page2); err != nil {
			t.Fatal(err)
		}
		if len(page2.FaceSet) != 2 || !page2.HasMore {
			t.Errorf("page 2 of bob: %+v", page2)
		}
		for _, h := range page2.FaceSet {
			if !contains(bobIDs, h.RecordId) {
				t.Errorf("bob's page 2 holds %s", h.RecordId)
			}
		}

		// Precise errors.
		for _, tc := range []struct {
			req  map[string]any
			code api.Code
			in   string
		}{
			{map[string]any{}, api.MissingParameter, "RecordId, Embedding or Image"},
			{map[string]any{"Image": "aGk="}, api.MissingParameter, "AlgorithmId"},
			{map[string]any{"Image": "aGk=", "AlgorithmId": "alg-x", "Box": []int{1, 2, 0, 4}}, api.InvalidParameterValue, "Box"},
			{map[string]any{"Image": "not base64!", "AlgorithmId": "alg-x"}, api.InvalidParameterValue, "Image"},
			{map[string]any{"Image": "aGk=", "AlgorithmId": "alg-x"}, api.ResourceUnavailable, "Image"},
			{map[string]any{"Image": "aGk=", "RecordId": aliceIDs[0]}, api.InvalidParameterValue, "Image"},
			{map[string]any{"RecordId": plain}, api.InvalidParameterValue, "RecordId"},
			{map[string]any{"RecordId": "rec-none"}, api.ResourceNotFound, "RecordId"},
			{map[string]any{"Embedding": []float64{1, 2, 3}}, api.InvalidParameterValue, "Embedding"},
			{map[string]any{"Embedding": make([]float64, 64)}, api.InvalidParameterValue, "Embedding"},
			{map[string]any{"RecordId": aliceIDs[0], "Embedding": bob[0]}, api.InvalidParameterValue, "RecordId, Embedding, Image and UploadId"},
			{map[string]any{"Image": "aGk=", "UploadId": "up-x", "AlgorithmId": "alg-x"}, api.InvalidParameterValue, "UploadId"},
			{map[string]any{"UploadId": "up-none"}, api.MissingParameter, "AlgorithmId"},
			{map[string]any{"UploadId": "up-none", "AlgorithmId": "alg-x"}, api.ResourceNotFound, "UploadId"},
			{map[string]any{"RecordId": aliceIDs[0], "Threshold": 1.5}, api.InvalidParameterValue, "Threshold"},
			{map[string]any{"RecordId": aliceIDs[0], "Offset": 990, "Limit": 20}, api.InvalidParameterValue, "Offset"},
			{map[string]any{"RecordId": aliceIDs[0], "StartTime": "yesterday"}, api.InvalidParameterValue, "StartTime"},
		} {
			err := call(t, areg, admin, "SearchFaces", tc.req, nil)
			ae, ok := api.AsError(err)
			if !ok || ae.Code != tc.code || !strings.Contains(ae.Message, tc.in) {
				t.Errorf("SearchFaces %v = %v; want %s naming %s", tc.req, err, tc.code, tc.in)
			}
		}

		// Deleted with its record.
		if _, err := svc.DeleteRecords(ctx, store.Projects{All: true}, []string{aliceIDs[1]}); err != nil {
			t.Fatal(err)
		}
		if emb, _ := svc.Embedding(ctx, aliceIDs[1]); emb != nil {
			t.Error("embedding of a deleted record still stored")
		}
		hits, err := ix.Search(ctx, toF32(alice[1]), 20, vectors.Filter{ProjectID: "default", Type: "face"})
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hits {
			if h.ID == aliceIDs[1] {
				t.Error("deleted record still in the index")
			}
		}

		// The index lost: rebuilt from the store, searches wait meanwhile.
		w.Close(ctx)
		ix.Close()
		ix2 := openIndex(t, t.TempDir()+"/vectors", svc.VectorSource())
		testenv.Eventually(t, 30*time.Second, "the rebuild", func() bool {
			hits, err = ix2.Search(ctx, toF32(alice[0]), 5, vectors.Filter{ProjectID: "default", Type: "face"})
			return err == nil
		})
		if st, _ := ix2.Stats(ctx); st.Items != 11 || len(hits) == 0 || hits[0].ID != aliceIDs[0] {
			t.Errorf("rebuilt index: %d items, first hit %+v; want 11 and %s", st.Items, hits, aliceIDs[0])
		}
	})
}

// TestEmbeddingOtherDimension: a record whose embedding has another
// dimension than its partition's (another model) is stored, not indexed,
// and counted.
func TestEmbeddingOtherDimension(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	ctx := context.Background()
	e := newEnv(t, db)
	reg := prometheus.NewRegistry()
	svc, err := data.New(e.db, e.blobs, data.Options{Now: e.clk.now, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ix := openIndex(t, t.TempDir(), nil)
	svc.UseVectors(ix)
	recs := []data.Record{
		{TaskID: "t", DeviceID: "d", Type: "face", Embedding: []float32{1, 2, 3, 4}},
		{TaskID: "t", DeviceID: "d", Type: "face", Embedding: []float32{1, 2, 3}},
	}
	if err := svc.Insert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if _, err := svc.Record(ctx, r.ID); err != nil {
			t.Errorf("record %s not stored: %v", r.ID, err)
		}
	}
	if st, _ := ix.Stats(ctx); st.Items != 1 {
		t.Errorf("index holds %d; want 1", st.Items)
	}
	mfs, _ := reg.Gather()
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "tianshu_data_embeddings_not_indexed_total" {
			found = mf.GetMetric()[0].GetCounter().GetValue() == 1
		}
	}
	if !found {
		t.Error("tianshu_data_embeddings_not_indexed_total is not 1")
	}
	// A bad embedding refuses the record before anything is written.
	bad := []data.Record{{TaskID: "t", Type: "face", Embedding: make([]float32, 4)}}
	if err := svc.Insert(ctx, bad); err == nil || !strings.Contains(err.Error(), "zero vector") {
		t.Errorf("zero embedding: %v", err)
	}
	// Without an index SearchFaces says so.
	plain, _ := data.New(e.db, e.blobs, data.Options{})
	err = call(t, registry(plain), admin, "SearchFaces", map[string]any{"Embedding": []float64{1, 2, 3, 4}}, nil)
	wantCode(t, err, api.ResourceUnavailable)
}

func toF32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
