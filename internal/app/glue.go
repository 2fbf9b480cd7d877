package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tianshu-ai/tianshu/internal/algorithm"
	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/device"
	"github.com/tianshu-ai/tianshu/internal/task"
)

// This file joins the centers where a task meets them: records and objects
// written by store nodes, and uploads read as a task's source.

// recordStore implements task.RecordStore over the data center: binary
// values in a record (crops, frames) become objects in the blob store and
// the record keeps their keys.
type recordStore struct {
	d *data.Service
	w *data.Writer
}

// StoreRecord writes a record and returns after its batch committed. The
// record id derives from the event id, so a redelivered message writes the
// same record again, which the store ignores.
func (rs recordStore) StoreRecord(ctx context.Context, r task.StoredRecord) (string, error) {
	var objects []string
	dataJSON, err := json.Marshal(rs.externalize(ctx, r, r.Data, &objects))
	if err != nil {
		return "", fmt.Errorf("record data: %w", err)
	}
	sum := sha256.Sum256([]byte(r.EventID))
	rec := data.Record{ID: "rec-" + hex.EncodeToString(sum[:12]), ProjectID: r.ProjectID, TaskID: r.TaskID, DeviceID: r.DeviceID,
		Type: r.Type, Time: r.Time, Data: dataJSON, Objects: objects}
	return rs.w.WriteSync(ctx, rec)
}

// externalize replaces images and byte slices by {"ObjectKey": key}.
func (rs recordStore) externalize(ctx context.Context, r task.StoredRecord, v any, objects *[]string) any {
	var content []byte
	var ctype string
	switch x := v.(type) {
	case algorithm.Image:
		content, ctype = x.Bytes, x.ContentType
	case *algorithm.Image:
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
	key, err := rs.d.PutObject(ctx, r.ProjectID, r.TaskID, content, ctype)
	if err != nil {
		return map[string]any{"Error": "object not stored: " + err.Error()}
	}
	*objects = append(*objects, key)
	return map[string]any{"ObjectKey": key, "ContentType": ctype, "Size": len(content)}
}

// maxUploadSourceBytes bounds an uploaded picture read into memory.
const maxUploadSourceBytes = 64 << 20

// uploadSource feeds a task one uploaded picture and then ends, so the
// task completes (batch tasks over stored data).
type uploadSource struct {
	p         *Platform
	id        string
	projectID string
}

// newUploadSource checks the upload when the task starts, so a wrong one
// fails the task with a reason instead of being retried.
func (p *Platform) newUploadSource(ctx context.Context, spec task.SourceSpec, env task.SourceEnv) (task.Source, error) {
	u, err := p.Data.Upload(ctx, spec.Id)
	if err != nil {
		return nil, err
	}
	if u.ProjectID != env.ProjectID {
		return nil, fmt.Errorf("upload %s is not in the task's project", spec.Id)
	}
	return &uploadSource{p: p, id: spec.Id, projectID: env.ProjectID}, nil
}

func (s *uploadSource) Live() bool { return false }

func (s *uploadSource) Run(ctx context.Context, emit task.Emit) error {
	u, err := s.p.Data.Upload(ctx, s.id)
	if err != nil {
		return err
	}
	if u.ProjectID != s.projectID {
		return fmt.Errorf("upload %s belongs to project %s, not the task's %s", s.id, u.ProjectID, s.projectID)
	}
	if u.BlobKey == "" {
		return fmt.Errorf("upload %s is %s, not completed", s.id, u.State)
	}
	if strings.HasPrefix(u.ContentType, "video/") {
		return s.runVideo(ctx, u, emit)
	}
	if !strings.HasPrefix(u.ContentType, "image/") && u.ContentType != "application/octet-stream" && u.ContentType != "" {
		return fmt.Errorf("upload %s is %s; tasks read uploaded pictures and videos", s.id, u.ContentType)
	}
	rc, _, err := s.p.Blob.Get(ctx, u.BlobKey)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(io.LimitReader(rc, maxUploadSourceBytes+1))
	rc.Close()
	if err != nil {
		return err
	}
	if len(b) > maxUploadSourceBytes {
		return fmt.Errorf("upload %s is larger than %d bytes", s.id, maxUploadSourceBytes)
	}
	done := make(chan error, 1)
	m := task.Message{ID: "upload-" + u.ID, Key: u.ID, Time: u.CreatedAt,
		Data: map[string]any{"image": algorithm.Image{Bytes: b, ContentType: u.ContentType}, "upload": u.ID, "name": u.Name},
		Ack:  func(err error) { done <- err }}
	if err := emit(ctx, m); err != nil {
		return err
	}
	select {
	case err := <-done:
		if err != nil {
			return err
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	return task.ErrSourceDone
}

// runVideo decodes an uploaded video with ffmpeg, reading it through a
// signed URL (so it works on any blob backend), and emits every frame with
// back-pressure: stored data loses nothing.
func (s *uploadSource) runVideo(ctx context.Context, u data.Upload, emit task.Emit) error {
	url, err := s.p.Blob.PresignGet(ctx, u.BlobKey, 6*time.Hour)
	if err != nil {
		return err
	}
	var pending []chan error
	err = device.DecodeVideo(ctx, "", url, 0, 0, func(f device.Frame) error {
		done := make(chan error, 1)
		pending = append(pending, done)
		m := task.Message{ID: fmt.Sprintf("upload-%s-%d", u.ID, f.Seq), Key: u.ID, Time: f.Time,
			Data: map[string]any{"image": algorithm.Image{Bytes: f.Image, ContentType: "image/jpeg"}, "upload": u.ID, "name": u.Name,
				"frame": int64(f.Seq), "width": int64(f.Width), "height": int64(f.Height)},
			Ack: func(err error) { done <- err }}
		return emit(ctx, m)
	})
	if err != nil {
		return fmt.Errorf("upload %s: %w", u.ID, err)
	}
	// The task completes once every frame went through its flow and sinks.
	for _, done := range pending {
		select {
		case err := <-done:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return task.ErrSourceDone
}
