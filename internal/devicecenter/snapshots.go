package devicecenter

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/tianshu-ai/tianshu/internal/blob"
)

// BlobSnapshots is the SnapshotStore that keeps device snapshots in the
// blob store behind signed URLs, valid for an hour.
type BlobSnapshots struct{ Blob blob.Store }

var _ SnapshotStore = BlobSnapshots{}

// PutSnapshot stores a snapshot and returns a signed URL for it.
func (bs BlobSnapshots) PutSnapshot(ctx context.Context, projectID, deviceID string, jpeg []byte) (string, error) {
	key := fmt.Sprintf("projects/%s/devices/%s/snapshots/%d.jpg", projectID, deviceID, time.Now().UnixNano())
	if _, err := bs.Blob.Put(ctx, key, bytes.NewReader(jpeg), blob.PutOptions{ContentType: "image/jpeg", Size: int64(len(jpeg))}); err != nil {
		return "", err
	}
	return bs.Blob.PresignGet(ctx, key, time.Hour)
}
