package device

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tianshu-ai/tianshu/internal/media"
)

// DecodeVideo decodes a stored video (a path or a URL ffmpeg can read) into
// JPEG frames, calling fn for each in order. Unlike a live source nothing is
// dropped: fn blocks ffmpeg through the pipe. fps > 0 resamples the frame
// rate, width > 0 scales keeping the aspect ratio. It returns nil at the end
// of the video, fn's error if fn fails, or ffmpeg's failure with the tail of
// its stderr.
func DecodeVideo(ctx context.Context, bin, input string, fps float64, width int, fn func(Frame) error) error {
	if bin == "" {
		bin = "ffmpeg"
	}
	j := ffmpegJob{bin: bin, input: []string{"-i", input}, fps: fps, width: width, format: FormatJPEG}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The operator's ffmpeg on a stored upload: a clean environment and a
	// directory of its own, though no Runtime's limits or user.
	child, err := newChild(cctx, nil, bin, j.args())
	if err != nil {
		return err
	}
	defer child.Cleanup()
	cmd := child.Cmd
	tail := newTailBuffer(16, 4096)
	cmd.Stderr = tail
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := child.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	r := bufio.NewReaderSize(stdout, 1<<20)
	var fnErr, readErr error
	var seq uint64
	for {
		f, err := readFrame(r, FormatJPEG)
		if err != nil {
			readErr = err
			break
		}
		seq++
		f.Seq, f.Time = seq, time.Now()
		if fnErr = fn(f); fnErr != nil {
			cancel()
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	waitErr := cmd.Wait()
	switch {
	case fnErr != nil:
		return fnErr
	case ctx.Err() != nil:
		return ctx.Err()
	case readErr != nil && !errors.Is(readErr, io.EOF):
		return fmt.Errorf("ffmpeg output: %w", readErr)
	case waitErr != nil:
		return fmt.Errorf("ffmpeg %v after %d frames: %s", waitErr, seq, orNone(strings.TrimSpace(tail.String())))
	case seq == 0:
		return fmt.Errorf("ffmpeg found no video frame: %s", orNone(strings.TrimSpace(tail.String())))
	}
	return nil
}

// DecodeVideoFrames is DecodeVideo at the video's own rate and size, with
// the frames handed over as media frames: what a consumer that knows no
// device types (the data center's upload source) takes as its decoder.
func DecodeVideoFrames(ctx context.Context, input string, fn func(media.Frame) error) error {
	return DecodeVideoAt(ctx, input, 0, fn)
}

// DecodeVideoAt is DecodeVideoFrames resampled to fps frames a second (0:
// the video's own rate): what a flow test run samples a short video with.
func DecodeVideoAt(ctx context.Context, input string, fps float64, fn func(media.Frame) error) error {
	return DecodeVideo(ctx, "", input, fps, 0, func(f Frame) error {
		return fn(media.Frame{Seq: f.Seq, Time: f.Time, Image: media.Image{Bytes: f.Image, ContentType: "image/jpeg"}, Width: f.Width, Height: f.Height})
	})
}
