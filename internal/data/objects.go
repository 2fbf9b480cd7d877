package data

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/tianshu-ai/tianshu/internal/blob"
	"github.com/tianshu-ai/tianshu/internal/ids"
	"github.com/tianshu-ai/tianshu/internal/media"
)

// objectPrefix is where a task's objects live. Records delete only objects
// under their own task's prefix, so a record that refers to an upload (the
// video a batch task reads) never deletes it.
func objectPrefix(projectID, taskID string) string {
	return "projects/" + projectID + "/tasks/" + taskID + "/"
}

// PutObject stores a crop or frame of a task and returns its key,
// projects/<project>/tasks/<task>/<yyyy>/<mm>/<dd>/<random>.<ext>, for a
// record's Objects. The date segments keep listings of one day cheap.
func (s *Service) PutObject(ctx context.Context, projectID, taskID string, content []byte, contentType string) (string, error) {
	if projectID == "" {
		projectID = "default"
	}
	if !validSegment(projectID) || !validSegment(taskID) {
		return "", fmt.Errorf("data: put object: project %q or task %q cannot name a key segment", projectID, taskID)
	}
	key := objectPrefix(projectID, taskID) + s.o.Now().UTC().Format("2006/01/02/") + ids.Random(16, recordIDChars) + media.Extension(contentType)
	if _, err := s.blobs.Put(ctx, key, bytes.NewReader(content), blob.PutOptions{ContentType: contentType, Size: int64(len(content))}); err != nil {
		return "", fmt.Errorf("data: put object: %w", err)
	}
	s.m.objects.Inc()
	return key, nil
}

// ObjectURLs returns a signed GET URL for each key, valid for the
// service's URLTTL.
func (s *Service) ObjectURLs(ctx context.Context, keys []string) ([]string, error) {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		u, err := s.blobs.PresignGet(ctx, k, s.o.URLTTL)
		if err != nil {
			return nil, fmt.Errorf("data: sign URL of %s: %w", k, err)
		}
		out = append(out, u)
	}
	return out, nil
}

// validSegment reports whether s may be one segment of a blob key.
func validSegment(s string) bool {
	return s != "" && !strings.Contains(s, "/") && blob.ValidateKey(s) == nil
}
