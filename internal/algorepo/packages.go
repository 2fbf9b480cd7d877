package algorepo

import (
	"bytes"
	"context"
	"io"

	"github.com/tianshu-ai/tianshu/internal/blob"
	"github.com/tianshu-ai/tianshu/internal/ids"
)

// UploadedFunc returns the blob key of a completed upload of the project;
// its errors name field. The data center provides it.
type UploadedFunc func(ctx context.Context, projectID, uploadID, field string) (string, error)

// BlobPackages is the PackageStore that keeps install packages in the blob
// store: inline packages are written under packages/<algorithm>/, and
// uploaded ones stay where the upload put them.
type BlobPackages struct {
	Blob     blob.Store
	Uploaded UploadedFunc
}

var _ PackageStore = BlobPackages{}

// UploadedPackage returns the blob key of a completed upload of the project.
func (bp BlobPackages) UploadedPackage(ctx context.Context, projectID, uploadID string) (string, error) {
	return bp.Uploaded(ctx, projectID, uploadID, "PackageUploadId")
}

// UploadedModel returns the blob key of a completed model upload.
func (bp BlobPackages) UploadedModel(ctx context.Context, projectID, uploadID string) (string, error) {
	return bp.Uploaded(ctx, projectID, uploadID, "ModelUploadId")
}

// OpenModel reads a model file from the blob store.
func (bp BlobPackages) OpenModel(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	rc, info, err := bp.Blob.Get(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	return rc, info.Size, nil
}

// PutPackage stores an inline package and returns its key.
func (bp BlobPackages) PutPackage(ctx context.Context, algID, version string, data []byte) (string, error) {
	key := "packages/" + algID + "/" + ids.New("pkg") + ".pkg"
	if _, err := bp.Blob.Put(ctx, key, bytes.NewReader(data), blob.PutOptions{ContentType: "application/octet-stream", Size: int64(len(data))}); err != nil {
		return "", err
	}
	return key, nil
}
