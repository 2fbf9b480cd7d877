package device

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	_ "image/png" // replay folders may hold PNGs
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// replayDriver plays a folder of images (sorted by name; JPEG and PNG) or a
// video file (through ffmpeg), looped, at Config.FPS (default 1 for folders,
// the video's own rate for videos). It is the embedded demo's camera. Image
// folders need no ffmpeg.
//
// Replay can seek: frame Seq n of a folder is its file n-1 (modulo the
// number of files when looping), so a reconnect continues with the next file
// and a source opened with Delivery.After = n starts with file n. A video
// opened with Delivery.After or Backpressure skips the frames before
// After+1 exactly, by decoding and discarding them (fast, unpaced); without
// either, a reconnect starts the video over as a live camera would.
//
// Address: the folder or the video file, under one of the Runtime's media
// roots (Options.Media); any other path is refused alike, existing or not.
// Options: loop (bool, default true), start (where playback begins, as a
// time into the folder at Fps or into the video; a loop comes back to the
// first file or frame), ffmpeg (a program under the exec policy's allowed
// directories), format (jpeg, rgb24, gray; videos only), quality (2-31,
// mjpeg). With start, Seq n is the n-th frame from the start.
type replayDriver struct{}

func init() { Register("replay", replayDriver{}) }

var replayOptions = []Option{
	{Name: "loop", Type: "boolean", Default: true, Description: "Start over at the end."},
	{Name: "start", Type: "duration", Default: "0s", Description: "Where playback begins, as a time into the video or into the folder at the device's Fps (0 to 24h): replay cameras of one clip started apart do not show the same frame at once. A loop starts over at the first frame."},
	optFFmpeg, optFormat, optQuality, optStallEventAfter,
}

func (replayDriver) Spec() DriverSpec {
	return DriverSpec{Description: "Plays a folder of images or a video file, looped: a camera for demos and tests.",
		Fields:  []Option{address("A folder of JPEG or PNG images, or a video file, under one of the server's media roots."), fieldFps, fieldWidth},
		Options: replayOptions}
}

func (replayDriver) Validate(cfg Config) error {
	if cfg.Address == "" {
		return fieldErr("Address", "required: a folder of images or a video file")
	}
	if err := cfg.checkOptions(optionNames(replayOptions)...); err != nil {
		return err
	}
	if _, err := cfg.optBool("loop", true); err != nil {
		return err
	}
	if _, err := replayStart(cfg); err != nil {
		return err
	}
	if _, err := cfg.optString("ffmpeg", ""); err != nil {
		return err
	}
	if _, err := cfg.optOneOf("format", string(FormatJPEG), string(FormatRGB24), string(FormatGray)); err != nil {
		return err
	}
	_, err := cfg.optInt("quality", 5, 2, 31)
	return err
}

// replayStart is Options.start.
func replayStart(cfg Config) (time.Duration, error) {
	return cfg.optDuration("start", 0, 0, 24*time.Hour)
}

func isImageFile(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".jpg", ".jpeg", ".png":
		return true
	}
	return false
}

// listImages returns the folder's image files, sorted by name.
func listImages(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, statusErr(ReasonConfig, err)
	}
	var out []string
	for _, e := range ents {
		if e.Type().IsRegular() && isImageFile(e.Name()) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, statusErrf(ReasonConfig, "no .jpg, .jpeg or .png files in %s", dir)
	}
	return out, nil
}

// check refuses an address outside the media roots and a device's own
// ffmpeg outside the exec policy. An address under a root that does not
// exist yet passes (Probe and each connection attempt resolve it again).
func (replayDriver) check(env *Env, cfg Config) (Config, error) {
	if err := env.Media.Check(cfg.Address); err != nil {
		return cfg, fieldErr("Address", "%v", err)
	}
	_, err := resolveFFmpeg(env, ffmpegBin(cfg))
	return cfg, err
}

func (d replayDriver) Probe(ctx context.Context, env *Env, cfg Config) (ProbeResult, error) {
	real, err := env.Media.Resolve(cfg.Address)
	if err != nil {
		return ProbeResult{}, fieldErr("Address", "%v", err)
	}
	cfg.Address = real
	fi, err := os.Stat(cfg.Address)
	if err != nil {
		return ProbeResult{}, statusErr(ReasonConfig, err)
	}
	if fi.IsDir() {
		files, err := listImages(cfg.Address)
		if err != nil {
			return ProbeResult{}, err
		}
		f, err := loadImage(files[0], cfg.Width)
		if err != nil {
			return ProbeResult{}, err
		}
		return ProbeResult{Online: true, Snapshot: f.Image, Info: map[string]any{
			"kind": "folder", "images": len(files), "width": f.Width, "height": f.Height,
		}}, nil
	}
	// One frame through ffmpeg proves the file decodes.
	bin, err := resolveFFmpeg(env, ffmpegBin(cfg))
	if err != nil {
		return ProbeResult{}, err
	}
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-i", cfg.Address, "-frames:v", "1"}
	if cfg.Width > 0 {
		args = append(args, "-vf", fmt.Sprintf("scale=%d:-2", cfg.Width))
	}
	args = append(args, "-f", "image2pipe", "-c:v", "mjpeg", "-q:v", "5", "pipe:1")
	child, err := newChild(ctx, env.Exec, bin, args)
	if err != nil {
		return ProbeResult{}, statusErr(ReasonProcess, err)
	}
	defer child.Cleanup()
	var stdout, stderr bytes.Buffer
	child.Cmd.Stdout, child.Cmd.Stderr = &stdout, &stderr
	if err = child.Start(); err == nil {
		err = child.Cmd.Wait()
	}
	out := stdout.Bytes()
	if err != nil {
		return ProbeResult{}, statusErrf(ffmpegReason(stderr.String(), false), "ffmpeg: %v: %s", err, orNone(strings.TrimSpace(stderr.String())))
	}
	img, err := readJPEG(bufio.NewReader(bytes.NewReader(out)), 32<<20)
	if err != nil {
		return ProbeResult{}, statusErrf(ReasonBadImage, "ffmpeg output: %v", err)
	}
	c, _ := jpeg.DecodeConfig(bytes.NewReader(img))
	return ProbeResult{Online: true, Snapshot: img, Info: map[string]any{
		"kind": "video", "width": c.Width, "height": c.Height,
	}}, nil
}

// ffmpegBin is the device's own ffmpeg (Options.ffmpeg), or empty.
func ffmpegBin(cfg Config) string {
	b, _ := cfg.optString("ffmpeg", "")
	return b
}

func (d replayDriver) Open(_ context.Context, env *Env, cfg Config, sink Sink) (Source, error) {
	loop, _ := cfg.optBool("loop", true)
	return startStream(env, cfg, sink, func(ctx context.Context, em *emitter) error {
		real, err := env.Media.Resolve(cfg.Address)
		if err != nil {
			return statusErr(ReasonConfig, err)
		}
		cfg := cfg
		cfg.Address = real
		fi, err := os.Stat(cfg.Address)
		if err != nil {
			return statusErr(ReasonConfig, err)
		}
		if fi.IsDir() {
			return replayFolder(ctx, em, cfg, loop)
		}
		format, _ := cfg.optOneOf("format", string(FormatJPEG), string(FormatRGB24), string(FormatGray))
		quality, _ := cfg.optInt("quality", 5, 2, 31)
		input := []string{}
		if loop {
			input = append(input, "-stream_loop", "-1")
		}
		if start, _ := replayStart(cfg); start > 0 {
			input = append(input, "-ss", strconv.FormatFloat(start.Seconds(), 'f', 3, 64))
		}
		var pace *pacer
		if cfg.FPS > 0 {
			// Paced here; the pipe holds ffmpeg back in between.
			pace = newPacer(env.Clock, cfg.FPS)
		} else {
			input = append(input, "-re")
		}
		input = append(input, "-i", cfg.Address)
		var skip uint64
		if cfg.Delivery.resumes() {
			skip = em.nextSeq() - 1
		}
		err = runFFmpeg(ctx, em, ffmpegJob{
			bin: ffmpegBin(cfg), input: input, fps: cfg.FPS, width: cfg.Width,
			format: PixelFormat(format), quality: quality, pace: pace, skip: skip,
			firstFrame: 30 * time.Second, stall: 30 * time.Second,
		})
		if !loop && ReasonOf(err) == ReasonStreamEnded {
			return errFinished
		}
		return err
	}), nil
}

// replayFolder plays the folder once (or forever when loop is set), from
// the file the next Seq names: file Seq-1, or with Options.start, Seq-1
// files after the one at start × fps. A file that does not decode is skipped (its
// Seq is left out); a whole pass with no good file fails. The folder is
// listed again at the start of every pass.
func replayFolder(ctx context.Context, em *emitter, cfg Config, loop bool) error {
	fps := cfg.FPS
	if fps == 0 {
		fps = 1
	}
	pace := newPacer(em.s.env.Clock, fps)
	start, _ := replayStart(cfg)
	bad := 0
	var lastErr error
	for {
		files, err := listImages(cfg.Address)
		if err != nil {
			return err
		}
		n := uint64(len(files))
		first := uint64(math.Round(start.Seconds() * fps))
		if loop {
			first %= n
		}
		for {
			i := em.nextSeq() - 1 + first
			if !loop && i >= n {
				return errFinished
			}
			f, err := loadImage(files[i%n], cfg.Width)
			if err != nil {
				lastErr = err
				if bad++; bad >= len(files) {
					return statusErrf(ReasonBadImage, "no file in %s decodes: %v", cfg.Address, lastErr)
				}
				em.skip()
			} else {
				if err := pace.wait(ctx); err != nil {
					return err
				}
				bad = 0
				em.frame(f)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if i%n == n-1 {
				break // end of a pass: list the folder again
			}
		}
	}
}

// loadImage reads a picture file as a JPEG frame, scaled to width when it is
// set and differs; a JPEG at the right size is passed through untouched.
func loadImage(name string, width int) (Frame, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return Frame{}, statusErr(ReasonConfig, err)
	}
	if f, err := jpegFrame(data, width); err == nil {
		return f, nil
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return Frame{}, statusErrf(ReasonBadImage, "%s: %v", filepath.Base(name), err)
	}
	if width > 0 && width != img.Bounds().Dx() {
		img = scaleNearest(img, width)
	}
	return encodeFrame(img)
}

// scaleNearest resizes img to width, keeping the aspect ratio (height even,
// as ffmpeg's scale=W:-2 does). Nearest neighbour: cheap, and good enough for
// a demo camera.
func scaleNearest(img image.Image, width int) image.Image {
	b := img.Bounds()
	height := max(2, (b.Dy()*width/b.Dx()+1)&^1)
	dst := image.NewRGBA(image.Rect(0, 0, width, height))
	for y := range height {
		sy := b.Min.Y + y*b.Dy()/height
		for x := range width {
			dst.Set(x, y, img.At(b.Min.X+x*b.Dx()/width, sy))
		}
	}
	return dst
}
