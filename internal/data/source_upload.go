package data

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tianshu-ai/tianshu/internal/media"
	"github.com/tianshu-ai/tianshu/internal/pipeline"
)

// maxUploadSourceBytes bounds an uploaded picture read into memory.
const maxUploadSourceBytes = 64 << 20

// VideoDecoder decodes a stored video that input names (a URL) into
// frames, in order and without dropping any: fn's return blocks decoding.
// It returns nil at the end of the video.
type VideoDecoder func(ctx context.Context, input string, fn func(media.Frame) error) error

// UploadSources returns the task source factory of type "upload": a task
// reads one uploaded picture, or every frame of an uploaded video (decoded
// by decode), and then completes (batch tasks over stored data). Nothing is
// dropped.
func (s *Service) UploadSources(decode VideoDecoder) pipeline.SourceFactory {
	return func(ctx context.Context, spec pipeline.SourceSpec, env pipeline.SourceEnv) (pipeline.Source, error) {
		// The upload is checked when the task starts, so a wrong one fails
		// the task with a reason instead of being retried.
		u, err := s.Upload(ctx, spec.Id)
		if err != nil {
			return nil, err
		}
		if u.ProjectID != env.ProjectID {
			return nil, fmt.Errorf("upload %s is not in the task's project", spec.Id)
		}
		return &uploadSource{s: s, decode: decode, id: spec.Id, projectID: env.ProjectID}, nil
	}
}

// uploadSource feeds a task one uploaded picture or video and then ends.
type uploadSource struct {
	s         *Service
	decode    VideoDecoder
	id        string
	projectID string
}

func (us *uploadSource) Live() bool { return false }

func (us *uploadSource) Run(ctx context.Context, emit pipeline.Emit) error {
	u, err := us.s.Upload(ctx, us.id)
	if err != nil {
		return err
	}
	if u.ProjectID != us.projectID {
		return fmt.Errorf("upload %s belongs to project %s, not the task's %s", us.id, u.ProjectID, us.projectID)
	}
	if u.BlobKey == "" {
		return fmt.Errorf("upload %s is %s, not completed", us.id, u.State)
	}
	if strings.HasPrefix(u.ContentType, "video/") {
		return us.runVideo(ctx, u, emit)
	}
	if !strings.HasPrefix(u.ContentType, "image/") && u.ContentType != "application/octet-stream" && u.ContentType != "" {
		return fmt.Errorf("upload %s is %s; tasks read uploaded pictures and videos", us.id, u.ContentType)
	}
	rc, _, err := us.s.blobs.Get(ctx, u.BlobKey)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(io.LimitReader(rc, maxUploadSourceBytes+1))
	rc.Close()
	if err != nil {
		return err
	}
	if len(b) > maxUploadSourceBytes {
		return fmt.Errorf("upload %s is larger than %d bytes", us.id, maxUploadSourceBytes)
	}
	done := make(chan error, 1)
	m := pipeline.Message{ID: "upload-" + u.ID, Key: u.ID, Time: u.CreatedAt,
		Data: map[string]any{"image": media.Image{Bytes: b, ContentType: u.ContentType}, "upload": u.ID, "name": u.Name},
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
	return pipeline.ErrSourceDone
}

// runVideo decodes an uploaded video, reading it through a signed URL (so
// it works on any blob backend), and emits every frame with back-pressure:
// stored data loses nothing.
func (us *uploadSource) runVideo(ctx context.Context, u Upload, emit pipeline.Emit) error {
	if us.decode == nil {
		return fmt.Errorf("upload %s is a video, and this worker has no video decoder", u.ID)
	}
	url, err := us.s.blobs.PresignGet(ctx, u.BlobKey, 6*time.Hour)
	if err != nil {
		return err
	}
	var pending []chan error
	err = us.decode(ctx, url, func(f media.Frame) error {
		done := make(chan error, 1)
		pending = append(pending, done)
		m := pipeline.Message{ID: fmt.Sprintf("upload-%s-%d", u.ID, f.Seq), Key: u.ID, Time: f.Time,
			Data: map[string]any{"image": f.Image, "upload": u.ID, "name": u.Name,
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
	return pipeline.ErrSourceDone
}
