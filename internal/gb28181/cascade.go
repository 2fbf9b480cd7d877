package gb28181

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// CascadeConfig is the link that registers the platform, as a lower
// platform, to an upper-level GB/T 28181 platform.
type CascadeConfig struct {
	// Upper is the upper platform's SIP address (host:port) and UpperID
	// its 20-digit id.
	Upper, UpperID string
	// ID is the id the platform registers as (usually its server id), and
	// Password the one the upper platform gave it.
	ID, Password string
	// Transport is udp (default) or tcp.
	Transport string
	// Local is the address to bind (default 0.0.0.0:0: any).
	Local string
	// Keepalive is the interval between keepalives (default 60s); Expires
	// the registration asked for (default 1h).
	Keepalive, Expires time.Duration
	// Retry is the wait after a refused or failed registration (default 30s).
	Retry  time.Duration
	Logger *slog.Logger
}

// CascadeSource is what the link offers the upper platform.
type CascadeSource interface {
	// Channels are the channels the upper platform's catalog query is
	// answered with (their ids and names).
	Channels(ctx context.Context) ([]SimChannel, error)
	// Control carries out a PTZ command the upper platform sent for one
	// of those channels.
	Control(ctx context.Context, channel string, cmd PTZ) error
	// Invite has the channel's camera send its live video to media (the
	// upper platform's receiver) and returns the call; Hangup(call ID)
	// is how it ends.
	Invite(ctx context.Context, channel string, media MediaAddr) (*Call, error)
	Hangup(ctx context.Context, callID string) error
}

// Cascade registers the platform to an upper platform and answers it as
// a device with many channels does: keepalives, catalog (the source's
// channels, names in GBK), device info, and PTZ commands handed to the
// source, and INVITEs passed on to the channel's camera with the upper
// platform's media address, so the video goes from the camera to the
// upper platform directly (this platform relays no media: the camera
// must reach the upper platform's media address). To the upper platform
// a lower platform is one device, so the link is the same SIP user agent
// as the simulator, fed by the platform.
type Cascade struct {
	cfg CascadeConfig
	src CascadeSource
}

// NewCascade checks cfg and returns the link; Run keeps it up.
func NewCascade(cfg CascadeConfig, src CascadeSource) (*Cascade, error) {
	if !ValidID(cfg.UpperID) {
		return nil, fmt.Errorf("gb28181 cascade: upper platform id %q must be 20 digits", clean(cfg.UpperID))
	}
	if !ValidID(cfg.ID) {
		return nil, fmt.Errorf("gb28181 cascade: id %q must be 20 digits", clean(cfg.ID))
	}
	if src == nil {
		return nil, errors.New("gb28181 cascade: a source is required")
	}
	if cfg.Local == "" {
		cfg.Local = "0.0.0.0:0"
	}
	if cfg.Retry <= 0 {
		cfg.Retry = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Cascade{cfg: cfg, src: src}
	if _, err := c.agent(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Cascade) agent() (*Simulator, error) {
	return NewSimulator(SimConfig{Server: c.cfg.Upper, ServerID: c.cfg.UpperID, Transport: c.cfg.Transport, DeviceID: c.cfg.ID,
		Password: c.cfg.Password, Local: c.cfg.Local, Expires: c.cfg.Expires, Keepalive: c.cfg.Keepalive, Logger: c.cfg.Logger,
		Name: "Tianshu", Manufacturer: "Tianshu", Model: "platform",
		list: c.src.Channels, control: c.src.Control, invite: c.invite})
}

// invite passes the upper platform's INVITE on to the channel's camera,
// with the upper platform's media address: the camera sends to it
// directly. The answer is the camera's, with the SSRC it was asked for.
func (c *Cascade) invite(ctx context.Context, channel string, offer SDP) (SDP, func(context.Context) error, error) {
	call, err := c.src.Invite(ctx, channel, MediaAddr{IP: offer.IP, Port: offer.Port, TCP: offer.TCP})
	if err != nil {
		return SDP{}, nil, err
	}
	hangup := func(ctx context.Context) error { return c.src.Hangup(ctx, call.ID) }
	answer, err := ParseSDP([]byte(call.SDPReceived))
	if err != nil {
		_ = hangup(ctx)
		return SDP{}, nil, fmt.Errorf("gb28181 cascade: the camera's answer: %w", err)
	}
	answer.Origin, answer.SSRC = c.cfg.ID, call.SSRC
	return answer, hangup, nil
}

// Run registers and keeps the registration until ctx ends (then it
// unregisters); a refused or lost link is registered again after Retry.
func (c *Cascade) Run(ctx context.Context) error {
	for {
		a, err := c.agent()
		if err != nil {
			return err
		}
		err = a.Run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		c.cfg.Logger.Warn("gb28181 cascade link down", "upper", c.cfg.Upper, "err", err, "retry_in", c.cfg.Retry)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(c.cfg.Retry):
		}
	}
}
