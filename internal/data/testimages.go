package data

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/blob"
	"github.com/tianshu-ai/tianshu/internal/media"
)

// This file reads the pictures a flow test run (RunFlowTest) takes as its
// input: an uploaded picture, or the picture a stored record keeps.

// UploadImage reads a completed picture upload of projectID, at most max
// bytes; errors name field. Another project's upload is not found.
func (s *Service) UploadImage(ctx context.Context, projectID, uploadID, field string, max int64) (media.Image, error) {
	u, err := s.completedUpload(ctx, projectID, uploadID, field)
	if err != nil {
		return media.Image{}, err
	}
	if !strings.HasPrefix(u.ContentType, "image/") {
		return media.Image{}, api.InvalidValue(field, "upload %s is %s, not a picture", uploadID, u.ContentType)
	}
	b, ct, err := s.readPicture(ctx, u.BlobKey, field, max)
	if err != nil {
		return media.Image{}, err
	}
	if ct == "" || ct == blob.DefaultContentType {
		ct = u.ContentType
	}
	return media.Image{Bytes: b, ContentType: ct}, nil
}

// UploadVideoURL returns a signed URL to a completed video upload of
// projectID of at most max bytes, for a test run to decode, or "" when the
// upload is not a video; errors name field.
func (s *Service) UploadVideoURL(ctx context.Context, projectID, uploadID, field string, max int64) (string, error) {
	u, err := s.completedUpload(ctx, projectID, uploadID, field)
	if err != nil || !strings.HasPrefix(u.ContentType, "video/") {
		return "", err
	}
	if u.Size > max {
		return "", api.Errorf(api.LimitExceeded, "%s: the video is %d bytes; the limit is %d", field, u.Size, max)
	}
	return s.blobs.PresignGet(ctx, u.BlobKey, time.Hour)
}

// completedUpload returns a completed upload of projectID; another
// project's is not found.
func (s *Service) completedUpload(ctx context.Context, projectID, uploadID, field string) (Upload, error) {
	u, err := s.Upload(ctx, uploadID)
	if e, ok := api.AsError(err); ok && e.Code == api.ResourceNotFound {
		return Upload{}, api.NotFound(field, uploadID)
	}
	if err != nil {
		return Upload{}, err
	}
	if u.ProjectID != projectID {
		return Upload{}, api.NotFound(field, uploadID)
	}
	if u.BlobKey == "" {
		return Upload{}, api.InvalidValue(field, "upload %s is %s, not completed", uploadID, u.State)
	}
	return u, nil
}

// RecordImage reads the first picture among the objects of a record of
// projectID that c reaches (a role narrowed to devices or tasks reaches
// their records only), at most max bytes; errors name field.
func (s *Service) RecordImage(ctx context.Context, c *api.Caller, projectID, recordID, field string, max int64) (media.Image, error) {
	rec, err := s.Record(ctx, recordID)
	if e, ok := api.AsError(err); ok && e.Code == api.ResourceNotFound {
		return media.Image{}, api.NotFound(field, recordID)
	}
	if err != nil {
		return media.Image{}, err
	}
	if rec.ProjectID != projectID {
		return media.Image{}, api.NotFound(field, recordID)
	}
	if ok, err := s.reaches(ctx, c.ListIn(rec.ProjectID, recordReach), rec.ID); err != nil || !ok {
		if err == nil {
			err = api.NotFound(field, recordID)
		}
		return media.Image{}, err
	}
	for _, key := range rec.Objects {
		info, err := s.blobs.Stat(ctx, key)
		if errors.Is(err, blob.ErrNotFound) {
			continue
		}
		if err != nil {
			return media.Image{}, err
		}
		if !strings.HasPrefix(info.ContentType, "image/") {
			continue
		}
		b, ct, err := s.readPicture(ctx, key, field, max)
		if err != nil {
			return media.Image{}, err
		}
		return media.Image{Bytes: b, ContentType: ct}, nil
	}
	return media.Image{}, api.InvalidValue(field, "record %s keeps no picture", recordID)
}

func (s *Service) readPicture(ctx context.Context, key, field string, max int64) ([]byte, string, error) {
	rc, info, err := s.blobs.Get(ctx, key)
	if err != nil {
		return nil, "", fmt.Errorf("data: read %s: %w", key, err)
	}
	defer rc.Close()
	if info.Size > max {
		return nil, "", api.Errorf(api.LimitExceeded, "%s: the picture is %d bytes; the limit is %d", field, info.Size, max)
	}
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, "", fmt.Errorf("data: read %s: %w", key, err)
	}
	if int64(len(b)) > max {
		return nil, "", api.Errorf(api.LimitExceeded, "%s: the picture is larger than %d bytes", field, max)
	}
	return b, info.ContentType, nil
}
