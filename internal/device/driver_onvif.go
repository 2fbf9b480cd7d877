package device

import (
	"context"
	"errors"
	"time"
)

// onvifDriver resolves an ONVIF Profile S device (device information,
// profiles, stream and snapshot URIs, authenticated with a WS-Security
// UsernameToken) and then runs the rtsp or http-snapshot driver on the URI
// it found, with the same credentials. The resolution is redone on every
// reconnect, so a camera that changed its URIs is followed.
//
// Address: the device service URL, http://host/onvif/device_service.
// Options: mode (stream, snapshot; default stream), profile (token or
// name; default the first), timeout (per SOAP call, default 5s), and the
// options of the driver underneath (transport, format, quality, stall,
// ffmpeg for stream; auth, max_bytes for snapshot).
type onvifDriver struct{}

// check refuses a device's own ffmpeg outside the exec policy.
func (onvifDriver) check(env *Env, cfg Config) (Config, error) {
	_, err := resolveFFmpeg(env, ffmpegBin(cfg))
	return cfg, err
}

func init() { Register("onvif", onvifDriver{}) }

var onvifOptions = []Option{
	{Name: "mode", Type: "string", Default: "stream", Enum: []string{"stream", "snapshot"}, Description: "Read the profile's RTSP stream, or poll its snapshot URL."},
	{Name: "profile", Type: "string", Description: "Media profile token or name; empty: the first."},
	{Name: "timeout", Type: "duration", Default: "5s", Description: "Timeout of each SOAP call and snapshot request (100ms to 5m)."},
	optTransport, optFFmpeg, optFormat, optQuality, optStall, optAuth, optMaxBytes, optStallEventAfter,
}

func (onvifDriver) Spec() DriverSpec {
	return DriverSpec{Description: "An ONVIF camera: finds its stream or snapshot URL through the device service.",
		Fields:  []Option{address("The device service URL, http://host/onvif/device_service."), fieldUsername, fieldPassword, fieldFps, fieldWidth},
		Options: onvifOptions}
}

func (onvifDriver) Validate(cfg Config) error {
	if err := validateHTTPURL(cfg.Address); err != nil {
		return err
	}
	if err := cfg.checkOptions(optionNames(onvifOptions)...); err != nil {
		return err
	}
	if _, err := cfg.optOneOf("mode", "stream", "snapshot"); err != nil {
		return err
	}
	if _, err := cfg.optString("profile", ""); err != nil {
		return err
	}
	if err := validateSnapshotOptions(cfg); err != nil {
		return err
	}
	return validateFFmpegOptions(cfg)
}

func onvifResolve(ctx context.Context, env *Env, cfg Config) (onvifDevice, error) {
	timeout, _ := cfg.optDuration("timeout", 5*time.Second, 100*time.Millisecond, 5*time.Minute)
	profile, _ := cfg.optString("profile", "")
	c := newONVIFClient(env, cfg, timeout)
	defer c.ac.hc.CloseIdleConnections()
	return c.resolve(ctx, profile)
}

// underlying returns the config of the driver the onvif device runs on.
func onvifUnderlying(cfg Config, d onvifDevice) (Config, error) {
	mode, _ := cfg.optOneOf("mode", "stream", "snapshot")
	sub := cfg
	_, sub.Username, sub.Password = cfg.credentials()
	sub.Options = map[string]any{}
	keep := rtspOptions
	if mode == "snapshot" {
		sub.Driver, sub.Address, keep = "http-snapshot", d.snapshotURI, httpSnapshotOptions
	} else {
		sub.Driver, sub.Address = "rtsp", d.streamURI
	}
	for _, k := range keep {
		if v, ok := cfg.Options[k.Name]; ok {
			sub.Options[k.Name] = v
		}
	}
	if sub.Address == "" {
		return sub, statusErrf(ReasonBadResponse, "onvif: the device gave no %s URI for profile %s", mode, d.profile.Token)
	}
	drv, _ := lookup(sub.Driver)
	if err := drv.Validate(sub); err != nil {
		return sub, statusErrf(ReasonBadResponse, "onvif: %s URI: %v", mode, err)
	}
	return sub, nil
}

// Probe resolves the device and, when it gave a snapshot URI, takes a
// snapshot (never starting ffmpeg: a probe must be quick).
func (onvifDriver) Probe(ctx context.Context, env *Env, cfg Config) (ProbeResult, error) {
	d, err := onvifResolve(ctx, env, cfg)
	if err != nil {
		return ProbeResult{}, err
	}
	res := ProbeResult{Online: true, Info: d.info}
	if d.snapshotURI != "" {
		snapCfg := cfg
		snapCfg.Options = withOption(cfg.Options, "mode", "snapshot")
		if sub, err := onvifUnderlying(snapCfg, d); err == nil {
			if f, err := newSnapshotter(env, sub).fetch(ctx); err == nil {
				res.Snapshot = f.Image
			} else {
				d.info["snapshot_error"] = err.Error()
			}
		}
	}
	return res, nil
}

// Open runs the underlying driver's session after resolving the device on
// every (re)connect.
func (onvifDriver) Open(_ context.Context, env *Env, cfg Config, sink Sink) (Source, error) {
	return startStream(env, cfg, sink, func(ctx context.Context, em *emitter) error {
		d, err := onvifResolve(ctx, env, cfg)
		if err != nil {
			return err
		}
		sub, err := onvifUnderlying(cfg, d)
		if err != nil {
			return err
		}
		if sub.Driver == "http-snapshot" {
			return snapshotSession(env, sub)(ctx, em)
		}
		return runFFmpeg(ctx, em, rtspJob(env, sub))
	}), nil
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
