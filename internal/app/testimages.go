package app

import (
	"context"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/device"
	"github.com/tianshu-ai/tianshu/internal/devicecenter"
	"github.com/tianshu-ai/tianshu/internal/media"
	"github.com/tianshu-ai/tianshu/internal/studio"
)

// testImages gives the studio's test runs (RunFlowTest) the pictures of
// the data center (uploads, records) and the device center (snapshots):
// the centers do not import each other.
type testImages struct {
	data    *data.Service
	devices *devicecenter.Service
}

var _ studio.TestImages = testImages{}

func (t testImages) UploadImage(ctx context.Context, _ *api.Caller, projectID, uploadID, field string, max int64) (media.Image, error) {
	return t.data.UploadImage(ctx, projectID, uploadID, field, max)
}

func (t testImages) DeviceSnapshot(ctx context.Context, c *api.Caller, projectID, deviceID, field string, max int64) (media.Image, error) {
	return t.devices.SnapshotImage(ctx, c, projectID, deviceID, field, max)
}

func (t testImages) RecordImage(ctx context.Context, c *api.Caller, projectID, recordID, field string, max int64) (media.Image, error) {
	return t.data.RecordImage(ctx, c, projectID, recordID, field, max)
}

// UploadVideo decodes a video upload with the same ffmpeg path tasks read
// uploaded videos with, sampled at lim.FPS.
func (t testImages) UploadVideo(ctx context.Context, _ *api.Caller, projectID, uploadID, field string, lim studio.VideoLimits, fn func(media.Frame) error) (bool, error) {
	url, err := t.data.UploadVideoURL(ctx, projectID, uploadID, field, lim.MaxBytes)
	if err != nil || url == "" {
		return false, err
	}
	return true, device.DecodeVideoAt(ctx, url, lim.FPS, fn)
}
