package data

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

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

var _ pipeline.RecordStore = (*RecordSink)(nil)

// StoreRecord writes a record and returns after its batch committed. The
// record id derives from the event id, so a redelivered message writes the
// same record again, which the store ignores.
func (rs *RecordSink) StoreRecord(ctx context.Context, r pipeline.Record) (string, error) {
	var objects []string
	dataJSON, err := json.Marshal(rs.externalize(ctx, r, r.Data, &objects))
	if err != nil {
		return "", fmt.Errorf("record data: %w", err)
	}
	rec := Record{ID: event.RecordID(r.EventID), ProjectID: r.ProjectID, TaskID: r.TaskID, DeviceID: r.DeviceID,
		Type: r.Type, Time: r.Time, Data: dataJSON, Objects: objects}
	return rs.w.WriteSync(ctx, rec)
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
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = rs.externalize(ctx, r, e, objects)
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
