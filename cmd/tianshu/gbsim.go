package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"strings"
	"syscall"

	"github.com/tianshu-ai/tianshu/internal/gb28181"
)

// gbSim runs a simulated GB/T 28181 camera or NVR against a platform's
// SIP server (docs/devices.md, GB28181).
func gbSim(args []string, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("gb28181-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := gb28181.SimConfig{}
	var channels, changes string
	fs.StringVar(&c.Server, "server", "127.0.0.1:5060", "the platform's SIP server (host:port, --gb28181.addr)")
	fs.StringVar(&c.ServerID, "server-id", "34020000002000000001", "the platform's 20-digit SIP id (--gb28181.server-id)")
	fs.StringVar(&c.Transport, "transport", "udp", "udp or tcp")
	fs.StringVar(&c.DeviceID, "device-id", "34020000001320000001", "this device's 20-digit id (the device's Address in the platform)")
	fs.StringVar(&c.Local, "local", "127.0.0.1:0", "local address to bind (udp)")
	fs.DurationVar(&c.Keepalive, "keepalive", 0, "interval between keepalives (default 60s)")
	fs.DurationVar(&c.Expires, "expires", 0, "registration period asked for (default 1h)")
	fs.StringVar(&channels, "channels", "34020000001310000001=大门入口,34020000001310000002=停车场",
		"catalog channels as id=name pairs, comma-separated (names are sent in GBK)")
	fs.StringVar(&changes, "changes", "",
		"catalog changes to notify after the first catalog answer, as EVENT:id=name items, comma-separated (EVENT: ADD, DEL, UPDATE, ON, OFF)")
	fs.DurationVar(&c.ChangesAfter, "changes-after", 0, "wait between the first catalog answer and the change notification (default 1s)")
	fs.StringVar(&c.Codec, "codec", "h264", "live video codec: h264 or h265")
	fs.StringVar(&c.Video, "video", "", "video file sent as live video (its first 20s, looped, re-encoded by ffmpeg; default: a test pattern)")
	fs.StringVar(&c.FFmpeg, "ffmpeg", "ffmpeg", "the ffmpeg that encodes the live video")
	fs.IntVar(&c.FPS, "fps", 10, "live video frame rate")
	fs.StringVar(&c.SSRC, "ssrc", "", "send this SSRC instead of the one the INVITE asks for (to see the platform refuse it)")
	fs.StringVar(&c.Record, "record", "", "append each INVITE, BYE and DeviceControl (PTZ) received to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c.Password = getenv("TIANSHU_GB28181_SIM_PASSWORD")
	if c.Password == "" {
		fmt.Fprintln(stderr, "gb28181-sim: set the device's password in TIANSHU_GB28181_SIM_PASSWORD")
		return 2
	}
	for _, pair := range strings.Split(channels, ",") {
		if pair = strings.TrimSpace(pair); pair == "" {
			continue
		}
		id, name, _ := strings.Cut(pair, "=")
		if !gb28181.ValidID(id) {
			fmt.Fprintf(stderr, "gb28181-sim: -channels: %q is not a 20-digit id\n", id)
			return 2
		}
		c.Channels = append(c.Channels, gb28181.SimChannel{ID: id, Name: name})
	}
	for _, item := range strings.Split(changes, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		ev, rest, _ := strings.Cut(item, ":")
		id, name, _ := strings.Cut(rest, "=")
		c.Changes = append(c.Changes, gb28181.SimChange{Event: ev, SimChannel: gb28181.SimChannel{ID: id, Name: name}})
	}
	c.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	sm, err := gb28181.NewSimulator(c)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := sm.Run(ctx); err != nil {
		fmt.Fprintln(stderr, "gb28181-sim:", err)
		if errors.Is(err, gb28181.ErrRegisterRefused) {
			return 3
		}
		return 1
	}
	return 0
}
