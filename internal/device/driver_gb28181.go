package device

import (
	"context"
	"io"
	"sync/atomic"
	"time"

	"github.com/tianshu-ai/tianshu/internal/gb28181"
)

// GBServer is the GB/T 28181 SIP server as the gb28181 driver sees it
// (internal/gb28181 through the device center): devices register to the
// platform, so the driver asks the server, never the device's address.
type GBServer interface {
	// Registered reports whether the device with this GB id is registered
	// and sending keepalives; with channel set, whether that channel of
	// it is on as its catalog says (known false while no catalog named it).
	Registered(id, channel string) (online, known bool)
	// DeviceInfo asks a registered device what it is.
	DeviceInfo(ctx context.Context, id string) (map[string]any, error)
	// Play invites the registered device id to send channel's live video
	// (RTP over TCP, the device connecting, when tcp) and returns its
	// MPEG-2 program stream; the read error says why it stopped (no RTP
	// for a while, the device hung up). Close hangs up.
	Play(ctx context.Context, id, channel string, tcp bool) (io.ReadCloser, error)
}

// gbHolder lets the server be attached after the runtime exists (the
// server needs the device center, which needs the runtime).
type gbHolder struct{ p atomic.Pointer[GBServer] }

func (h *gbHolder) get() GBServer {
	if p := h.p.Load(); p != nil {
		return *p
	}
	return nil
}

// UseGB28181 attaches the GB/T 28181 SIP server the gb28181 driver asks;
// without one every gb28181 device probes offline with a config reason.
func (r *Runtime) UseGB28181(s GBServer) { r.env.gb.p.Store(&s) }

// gb28181Driver: a camera or NVR that registers to the platform's SIP
// server (--gb28181.addr). Address is its 20-digit GB id; Password, when
// set, is the one it must prove (else the platform's). Channels found in
// its catalog become devices of their own with Options.parent naming it.
type gb28181Driver struct{}

func init() { Register("gb28181", gb28181Driver{}) }

var gbOptions = []Option{
	{Name: "parent", Type: "string", Description: "GB id of the device this channel belongs to (set for channels found in a catalog)."},
	{Name: "manufacturer", Type: "string", Description: "Manufacturer as the catalog reports it."},
	{Name: "model", Type: "string", Description: "Model as the catalog reports it."},
	{Name: "civil_code", Type: "string", Description: "Civil (administrative region) code from the catalog."},
	{Name: "transport", Type: "string", Default: "udp", Enum: []string{"udp", "tcp"}, Description: "Live video RTP transport: udp, or tcp (the device connects to the platform's media port)."},
	optFormat, optQuality, optStall,
}

func (gb28181Driver) Spec() DriverSpec {
	return DriverSpec{Description: "A GB/T 28181 camera or NVR that registers to the platform's SIP server; its catalog's channels become devices. Live video: INVITE, PS over RTP (UDP or TCP), decoded by ffmpeg.",
		Fields: []Option{address("The device's 20-digit GB/T 28181 id (for a channel, the channel's id)."),
			{Name: "Password", Type: "string", Secret: true, Description: "SIP digest password this device registers with; empty: the platform password (--gb28181.password). Encrypted at rest and never shown again."}},
		Options: gbOptions}
}

func (gb28181Driver) Validate(cfg Config) error {
	if !gb28181.ValidID(cfg.Address) {
		return fieldErr("Address", "must be the device's 20-digit GB/T 28181 id, such as 34020000001320000001")
	}
	if cfg.Username != "" && cfg.Username != cfg.Address {
		return fieldErr("Username", "must be empty: a GB/T 28181 device authenticates with its id (Address)")
	}
	if err := cfg.checkOptions(optionNames(gbOptions)...); err != nil {
		return err
	}
	for _, n := range []string{"parent", "manufacturer", "model", "civil_code"} {
		if _, err := cfg.optString(n, ""); err != nil {
			return err
		}
	}
	if _, err := cfg.optOneOf("transport", "udp", "tcp"); err != nil {
		return err
	}
	if err := validateDecodeOptions(cfg); err != nil {
		return err
	}
	if p, _ := cfg.optString("parent", ""); p != "" && !gb28181.ValidID(p) {
		return fieldErr("Options.parent", "must be a 20-digit GB/T 28181 id")
	}
	return nil
}

// registered answers for a device or, for a channel, its parent.
func gbRegistered(env *Env, cfg Config) (GBServer, string, error) {
	srv := env.gb.get()
	if srv == nil {
		return nil, "", statusErrf(ReasonConfig, "gb28181: the platform's SIP server is off (start it with --gb28181.addr)")
	}
	id := cfg.Address
	p, _ := cfg.optString("parent", "")
	if p != "" {
		id = p
	}
	online, known := srv.Registered(id, "")
	if !known {
		return srv, id, statusErrf(ReasonUnreachable, "gb28181: device %s has not registered", id)
	}
	if !online {
		return srv, id, statusErrf(ReasonTimeout, "gb28181: device %s stopped sending keepalives", id)
	}
	if p != "" {
		if on, known := srv.Registered(p, cfg.Address); !known {
			return srv, id, statusErrf(ReasonUnreachable, "gb28181: channel %s is not in the catalog of %s", cfg.Address, p)
		} else if !on {
			return srv, id, statusErrf(ReasonUnreachable, "gb28181: the catalog of %s says channel %s is off", p, cfg.Address)
		}
	}
	return srv, id, nil
}

func (gb28181Driver) Probe(ctx context.Context, env *Env, cfg Config) (ProbeResult, error) {
	srv, id, err := gbRegistered(env, cfg)
	if err != nil {
		return ProbeResult{}, err
	}
	info := map[string]any{"registered_as": id}
	if id == cfg.Address {
		if di, err := srv.DeviceInfo(ctx, id); err == nil {
			for k, v := range di {
				info[k] = v
			}
		} else {
			info["device_info_error"] = err.Error()
		}
	}
	return ProbeResult{Online: true, Info: info}, nil
}

// Open plays the channel's live video: each session invites the device
// (through its parent, for a channel) and hands the program stream to
// ffmpeg on its standard input, as RTSP devices' streams are decoded; a
// stream that stops (no RTP, the device's BYE) ends the session and the
// next one invites again.
func (gb28181Driver) Open(_ context.Context, env *Env, cfg Config, sink Sink) (Source, error) {
	transport, _ := cfg.optOneOf("transport", "udp", "tcp")
	format, _ := cfg.optOneOf("format", string(FormatJPEG), string(FormatRGB24), string(FormatGray))
	quality, _ := cfg.optInt("quality", 5, 2, 31)
	stall, _ := cfg.optDuration("stall", 15*time.Second, time.Second, 10*time.Minute)
	return startStream(env, cfg, sink, func(ctx context.Context, em *emitter) error {
		srv, id, err := gbRegistered(env, cfg)
		if err != nil {
			return err
		}
		ps, err := srv.Play(ctx, id, cfg.Address, transport == "tcp")
		if err != nil {
			return statusErr(ReasonUnreachable, err)
		}
		defer ps.Close()
		return runFFmpeg(ctx, em, ffmpegJob{
			// A short probe: the program stream map names the codec, and
			// the first key frame is all ffmpeg needs to start.
			input: []string{"-fflags", "nobuffer", "-probesize", "65536", "-analyzeduration", "500000", "-f", "mpeg", "-i", "pipe:0"},
			stdin: ps, stdinReason: ReasonStreamEnded,
			fps: cfg.FPS, width: cfg.Width, format: PixelFormat(format), quality: quality,
			firstFrame: 20 * time.Second, stall: stall,
		})
	}), nil
}
