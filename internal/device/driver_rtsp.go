package device

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tianshu-ai/tianshu/internal/netpolicy"
)

// rtspDriver pulls an RTSP stream through an ffmpeg child process that
// decodes it at Config.FPS (0: every frame) and Config.Width, and writes
// frames to a pipe: JPEG (format "jpeg", the default) or raw pixels (format
// "rgb24" or "gray", written as PPM/PGM, which skips JPEG re-encoding and is
// the fastest when the consumer wants pixels). When the stream drops, ffmpeg
// exits (or the stall watchdog kills it) and the source restarts it with
// backoff; the tail of its stderr is the status's LastError.
//
// Address: rtsp://host[:port]/path; Username/Password (or credentials
// inside the URL) are given to ffmpeg through a pipe, never on its command
// line, and masked in LastError.
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

var rtspOptions = []Option{optTransport, optFFmpeg, optFormat, optQuality, streamTimeout, optStall, optStallEventAfter}

func (rtspDriver) Spec() DriverSpec {
	return DriverSpec{Description: "Decodes an RTSP stream with ffmpeg.",
		Fields:  []Option{address("rtsp://host:554/path; credentials in the URL are moved to User name and Password."), fieldUsername, fieldPassword, fieldFps, fieldWidth},
		Options: rtspOptions}
}

func (rtspDriver) Validate(cfg Config) error {
	u, err := url.Parse(cfg.Address)
	if err != nil || (u.Scheme != "rtsp" && u.Scheme != "rtsps") || u.Host == "" {
		return fieldErr("Address", "must be an rtsp:// URL")
	}
	if err := cfg.checkOptions(optionNames(rtspOptions)...); err != nil {
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
	if _, err := cfg.optDuration("timeout", 10*time.Second, time.Second, 5*time.Minute); err != nil {
		return err
	}
	return validateDecodeOptions(cfg)
}

// validateDecodeOptions checks the options of frames decoded by ffmpeg:
// format, quality, stall.
func validateDecodeOptions(cfg Config) error {
	if _, err := cfg.optOneOf("format", string(FormatJPEG), string(FormatRGB24), string(FormatGray)); err != nil {
		return err
	}
	if _, err := cfg.optInt("quality", 5, 2, 31); err != nil {
		return err
	}
	_, err := cfg.optDuration("stall", 15*time.Second, time.Second, 10*time.Minute)
	return err
}

// rtspProtocols are the protocols an RTSP input may use, named for
// ffmpeg's protocol whitelist when the input comes through a concat script.
const rtspProtocols = "pipe,rtsp,rtsps,rtp,srtp,tcp,udp,tls,http,https,httpproxy,crypto,data"

func rtspJob(env *Env, cfg Config) ffmpegJob {
	transport, _ := cfg.optOneOf("transport", "tcp", "udp")
	format, _ := cfg.optOneOf("format", string(FormatJPEG), string(FormatRGB24), string(FormatGray))
	quality, _ := cfg.optInt("quality", 5, 2, 31)
	timeout, _ := cfg.optDuration("timeout", 10*time.Second, time.Second, 5*time.Minute)
	stall, _ := cfg.optDuration("stall", 15*time.Second, time.Second, 10*time.Minute)
	opts := [][2]string{
		{"rtsp_transport", transport},
		{"timeout", strconv.FormatInt(timeout.Microseconds(), 10)},
		{"fflags", "nobuffer"}, {"analyzeduration", "2000000"},
	}
	job := ffmpegJob{
		bin:   ffmpegBin(cfg),
		check: checkURLFor(env, cfg.Address),
		fps:   cfg.FPS, width: cfg.Width, format: PixelFormat(format), quality: quality,
		firstFrame: timeout + 10*time.Second, stall: stall,
	}
	addr, user, pass := cfg.credentials()
	if user == "" {
		for _, o := range opts {
			job.input = append(job.input, "-"+o[0], o[1])
		}
		job.input = append(job.input, "-i", addr)
		return job
	}
	// ffmpeg takes RTSP credentials only inside the URL, and its command
	// line is world-readable (ps, /proc/<pid>/cmdline). The URL goes to it
	// through a pipe instead: a concat script naming the one input, with
	// the input's options, read from file descriptor 3.
	u, err := url.Parse(addr)
	if err != nil {
		u = &url.URL{}
	}
	u.User = url.UserPassword(user, pass)
	var script strings.Builder
	script.WriteString("ffconcat version 1.0\nfile " + ffconcatQuote(u.String()) + "\n")
	for _, o := range opts {
		script.WriteString("option " + o[0] + " " + ffconcatQuote(o[1]) + "\n")
	}
	job.input = []string{"-protocol_whitelist", rtspProtocols, "-f", "concat", "-safe", "0", "-i", "pipe:3"}
	job.inputScript = script.String()
	return job
}

// ffconcatQuote quotes s for a concat script: single quotes, with each
// single quote inside written as '\”.
func ffconcatQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Probe grabs one frame, bounded by ctx.
func (rtspDriver) Probe(ctx context.Context, env *Env, cfg Config) (ProbeResult, error) {
	cfg.FPS = 0
	cfg.Options = withOption(cfg.Options, "format", string(FormatJPEG))
	addr, _, _ := cfg.credentials()
	return probeOneFrame(ctx, env, cfg, rtspJob(env, cfg), map[string]any{"uri": addr})
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

// checkURLFor returns the check run before each ffmpeg start: ffmpeg
// connects by itself, out of reach of the policy's dialer, so the address
// is resolved and checked here. ffmpeg resolves the name again; a name
// that changes its answer in between (DNS rebinding) is the gap left.
func checkURLFor(env *Env, address string) func(context.Context) error {
	if env.Outbound == nil {
		return nil
	}
	return func(ctx context.Context) error {
		u, err := url.Parse(address)
		if err != nil {
			return statusErr(ReasonConfig, errors.New("address is not a URL"))
		}
		if err := env.Outbound.CheckResolved(ctx, u); err != nil {
			if errors.Is(err, netpolicy.ErrRefused) {
				return statusErr(ReasonPolicy, err)
			}
			return statusErr(ReasonUnreachable, err)
		}
		return nil
	}
}
