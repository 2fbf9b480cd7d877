package data

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/event"
	"github.com/tianshu-ai/tianshu/internal/media"
	"github.com/tianshu-ai/tianshu/internal/pipeline"
)

// RecordSink is the records store of a task's store nodes
// (pipeline.RecordStore): binary values in a record (crops, frames) become
// objects in the blob store and the record keeps their keys.
type RecordSink struct {
	s *Service
	w *Writer
}

// NewRecordSink returns a record sink writing through w, a writer of s.
func (s *Service) NewRecordSink(w *Writer) *RecordSink { return &RecordSink{s: s, w: w} }

var (
	_ pipeline.RecordStore = (*RecordSink)(nil)
	_ pipeline.RecordCrops = (*RecordSink)(nil)
)

// StoreRecord writes a record and returns after its batch committed. The
// record id derives from the event id, so a redelivered message writes the
// same record again, which the store ignores.
//
// A record that would pass its project's storage quota is refused before
// any of it is stored (LimitExceeded, counted in
// tianshu_data_records_refused_total): the task's source is then not
// acknowledged, and the task's LastError names the quota.
func (rs *RecordSink) StoreRecord(ctx context.Context, r pipeline.Record) (string, error) {
	objBytes := binaryBytes(r.Data)
	if err := rs.s.admitStorage(ctx, r.ProjectID, objBytes); err != nil {
		if _, ok := api.AsError(err); ok {
			rs.s.m.refused.WithLabelValues("storage_quota").Inc()
		}
		return "", err
	}
	var objects []string
	doc, emb := takeEmbedding(r.Data)
	dataJSON, err := json.Marshal(rs.externalize(ctx, r, doc, &objects))
	if err != nil {
		return "", fmt.Errorf("record data: %w", err)
	}
	rs.s.chargeStorage(r.ProjectID, int64(len(dataJSON)))
	rec := Record{ID: event.RecordID(r.EventID), ProjectID: r.ProjectID, TaskID: r.TaskID, DeviceID: r.DeviceID,
		Type: r.Type, Time: r.Time, Data: dataJSON, Objects: objects, Bytes: objBytes + int64(len(dataJSON)) + 4*int64(len(emb)), Embedding: emb}
	return rs.w.WriteSync(ctx, rec)
}

// CropURL implements pipeline.RecordCrops: the signed URL of a stored
// record's crop, as SearchFaces answers it.
func (rs *RecordSink) CropURL(ctx context.Context, recordID string) (string, error) {
	rec, err := rs.s.Record(ctx, recordID)
	if err != nil {
		return "", err
	}
	info, err := rs.s.recordInfo(ctx, rec)
	if err != nil {
		return "", err
	}
	return cropURL(info), nil
}

// binaryBytes is the size of the values externalize stores as objects.
func binaryBytes(v any) int64 {
	switch x := v.(type) {
	case media.Image:
		return int64(len(x.Bytes))
	case *media.Image:
		return int64(len(x.Bytes))
	case []byte:
		return int64(len(x))
	case map[string]any:
		var n int64
		for _, e := range x {
			n += binaryBytes(e)
		}
		return n
	case []any:
		var n int64
		for _, e := range x {
			n += binaryBytes(e)
		}
		return n
	}
	return 0
}

// externalize replaces images and byte slices by {"ObjectKey": key}.
func (rs *RecordSink) externalize(ctx context.Context, r pipeline.Record, v any, objects *[]string) any {
	var content []byte
	var ctype string
	switch x := v.(type) {
	case media.Image:
		content, ctype = x.Bytes, x.ContentType
	case *media.Image:
		content, ctype = x.Bytes, x.ContentType
	case []byte:
		content = x
	case map[string]any:
		// In key order, so that a record's ObjectKeys are in the same order
		// every time (a face's Crop before its Image).
		out := make(map[string]any, len(x))
		for _, k := range slices.Sorted(maps.Keys(x)) {
			out[k] = rs.externalize(ctx, r, x[k], objects)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = rs.externalize(ctx, r, e, objects)
		}
		return out
	default:
		return v
	}
	if ctype == "" {
		ctype = http.DetectContentType(content)
	}
	key, err := rs.s.PutObject(ctx, r.ProjectID, r.TaskID, content, ctype)
	if err != nil {
		return map[string]any{"Error": "object not stored: " + err.Error()}
	}
	*objects = append(*objects, key)
	return map[string]any{"ObjectKey": key, "ContentType": ctype, "Size": len(content)}
}
