package device

import (
	"context"
	"net/url"
	"strconv"
	"time"
)

// rtspDriver pulls an RTSP stream through an ffmpeg child process that
// decodes it at Config.FPS (0: every frame) and Config.Width, and writes
// frames to a pipe: JPEG (format "jpeg", the default) or raw pixels (format
// "rgb24" or "gray", written as PPM/PGM, which skips JPEG re-encoding and is
// the fastest when the consumer wants pixels). When the stream drops, ffmpeg
// exits (or the stall watchdog kills it) and the source restarts it with
// backoff; the tail of its stderr is the status's LastError.
//
// Address: rtsp://host[:port]/path; Username/Password, when set, are put in
// the URL.
// Options: transport (tcp, udp; default tcp), ffmpeg (path), format,
// quality (2-31, mjpeg), timeout (socket I/O timeout, default 10s), stall
// (longest gap between frames before a restart, default 15s).
type rtspDriver struct{}

// check refuses a device's own ffmpeg outside the exec policy.
func (rtspDriver) check(env *Env, cfg Config) (Config, error) {
	_, err := resolveFFmpeg(env, ffmpegBin(cfg))
	return cfg, err
}

func init() { Register("rtsp", rtspDriver{}) }

var rtspOptions = []string{"transport", "ffmpeg", "format", "quality", "timeout", "stall"}

func (rtspDriver) Validate(cfg Config) error {
	u, err := url.Parse(cfg.Address)
	if err != nil || (u.Scheme != "rtsp" && u.Scheme != "rtsps") || u.Host == "" {
		return fieldErr("Address", "must be an rtsp:// URL")
	}
	if err := cfg.checkOptions(rtspOptions...); err != nil {
		return err
	}
	return validateFFmpegOptions(cfg)
}

func validateFFmpegOptions(cfg Config) error {
	if _, err := cfg.optOneOf("transport", "tcp", "udp"); err != nil {
		return err
	}
	if _, err := cfg.optString("ffmpeg", ""); err != nil {
		return err
	}
	if _, err := cfg.optOneOf("format", string(FormatJPEG), string(FormatRGB24), string(FormatGray)); err != nil {
		return err
	}
	if _, err := cfg.optInt("quality", 5, 2, 31); err != nil {
		return err
	}
	if _, err := cfg.optDuration("timeout", 10*time.Second, time.Second, 5*time.Minute); err != nil {
		return err
	}
	_, err := cfg.optDuration("stall", 15*time.Second, time.Second, 10*time.Minute)
	return err
}

// withCredentials puts username and password in a URL that has none.
func withCredentials(raw, user, pass string) string {
	if user == "" {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.User != nil {
		return raw
	}
	u.User = url.UserPassword(user, pass)
	return u.String()
}

func rtspJob(env *Env, cfg Config) ffmpegJob {
	transport, _ := cfg.optOneOf("transport", "tcp", "udp")
	format, _ := cfg.optOneOf("format", string(FormatJPEG), string(FormatRGB24), string(FormatGray))
	quality, _ := cfg.optInt("quality", 5, 2, 31)
	timeout, _ := cfg.optDuration("timeout", 10*time.Second, time.Second, 5*time.Minute)
	stall, _ := cfg.optDuration("stall", 15*time.Second, time.Second, 10*time.Minute)
	return ffmpegJob{
		bin: ffmpegBin(cfg),
		input: []string{
			"-rtsp_transport", transport,
			"-timeout", strconv.FormatInt(timeout.Microseconds(), 10),
			"-fflags", "nobuffer", "-analyzeduration", "2000000",
			"-i", withCredentials(cfg.Address, cfg.Username, cfg.Password),
		},
		fps: cfg.FPS, width: cfg.Width, format: PixelFormat(format), quality: quality,
		firstFrame: timeout + 10*time.Second, stall: stall,
	}
}

// Probe grabs one frame, bounded by ctx.
func (rtspDriver) Probe(ctx context.Context, env *Env, cfg Config) (ProbeResult, error) {
	cfg.FPS = 0
	cfg.Options = withOption(cfg.Options, "format", string(FormatJPEG))
	return probeOneFrame(ctx, env, cfg, rtspJob(env, cfg), map[string]any{"uri": cfg.Address})
}

func (rtspDriver) Open(_ context.Context, env *Env, cfg Config, sink Sink) (Source, error) {
	job := rtspJob(env, cfg)
	return startStream(env, cfg, sink, func(ctx context.Context, em *emitter) error {
		return runFFmpeg(ctx, em, job)
	}), nil
}

func withOption(opts map[string]any, key string, v any) map[string]any {
	out := make(map[string]any, len(opts)+1)
	for k, x := range opts {
		out[k] = x
	}
	out[key] = v
	return out
}

// probeOneFrame runs job until its first frame and returns that frame as
// the snapshot.
func probeOneFrame(ctx context.Context, env *Env, cfg Config, job ffmpegJob, info map[string]any) (ProbeResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := make(chan Frame, 1)
	em := probeEmitter(env, cfg, func(f Frame) {
		select {
		case got <- f:
		default:
		}
		cancel()
	})
	err := runFFmpeg(ctx, em, job)
	select {
	case f := <-got:
		info["width"], info["height"] = f.Width, f.Height
		return ProbeResult{Online: true, Info: info, Snapshot: f.Image}, nil
	default:
	}
	if err == nil || ctx.Err() != nil {
		err = statusErrf(ReasonTimeout, "no frame before the probe's deadline")
	}
	return ProbeResult{Info: info}, err
}
