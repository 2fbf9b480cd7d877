package device

import (
	"sort"
	"time"
)

// Option describes one entry of a driver's Options (or a common Config
// field) for forms and docs: the console builds a driver's add and edit
// form from it, so a new driver needs no console change.
type Option struct {
	// Name is the Options key, or the request field for a common field
	// (Address, Username, Password, Fps, Width).
	Name string `json:"Name"`
	// Type is string, text (multi-line string), boolean, integer, number,
	// duration ("5s" or seconds) or strings (a list of strings).
	Type        string   `json:"Type"`
	Required    bool     `json:"Required"`
	Default     any      `json:"Default,omitempty"`
	Description string   `json:"Description"`
	Enum        []string `json:"Enum,omitempty"`
	// Secret fields are write-only: responses never show them, and a
	// change that leaves them out keeps the stored value.
	Secret bool     `json:"Secret"`
	Min    *float64 `json:"Min,omitempty"`
	Max    *float64 `json:"Max,omitempty"`
	// PlatformAdmin marks an option that makes the server run a program,
	// which only platform admins may set.
	PlatformAdmin bool `json:"PlatformAdmin,omitempty"`
}

// DriverSpec describes a driver: its common fields as it reads them and
// its own options.
type DriverSpec struct {
	Name        string `json:"Name"`
	Description string `json:"Description"`
	// Fields are the common Config fields the driver reads (Address,
	// Username, Password, Fps, Width), with what they mean to it.
	Fields []Option `json:"Fields"`
	// Options are the driver's own Options entries; any other key is
	// refused unless OpenOptions.
	Options []Option `json:"Options"`
	// OpenOptions means keys beyond Options are accepted and passed on
	// (the adapter hands them to the vendor's process).
	OpenOptions bool `json:"OpenOptions"`
	// PlatformAdmin means every device of this driver runs a program on
	// the server: only platform admins create, change or probe one.
	PlatformAdmin bool `json:"PlatformAdmin"`
}

// describer is implemented by every registered driver (TestDriversDescribe
// holds them to it): its spec, options included, is what Validate accepts.
type describer interface{ Spec() DriverSpec }

// Specs returns the spec of every registered driver, sorted by name.
func Specs() []DriverSpec {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := make([]DriverSpec, 0, len(registry))
	for name, d := range registry {
		var s DriverSpec
		if ds, ok := d.(describer); ok {
			s = ds.Spec()
		}
		s.Name = name
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func optionNames(opts []Option) []string {
	out := make([]string, len(opts))
	for i, o := range opts {
		out[i] = o.Name
	}
	return out
}

func num(f float64) *float64 { return &f }

// Common fields as drivers read them.
var (
	fieldUsername = Option{Name: "Username", Type: "string", Description: "User name for the device."}
	fieldPassword = Option{Name: "Password", Type: "string", Secret: true, Description: "Password for the device; encrypted at rest and never shown again."}
	fieldFps      = Option{Name: "Fps", Type: "number", Min: num(0), Max: num(MaxFPS), Description: "Frames per second to deliver; 0 or empty: the driver's default."}
	fieldWidth    = Option{Name: "Width", Type: "integer", Min: num(0), Max: num(MaxWidth), Description: "Scale frames to this width, keeping the aspect ratio; 0 or empty: the device's size."}
)

func address(desc string) Option {
	return Option{Name: "Address", Type: "string", Required: true, Description: desc}
}

// Options shared by the drivers that run ffmpeg (rtsp, onvif streams) and
// those that fetch snapshots over HTTP (http-snapshot, onvif snapshots).
var (
	optFFmpeg = Option{Name: "ffmpeg", Type: "string", PlatformAdmin: true,
		Description: "The ffmpeg program to run, under the exec policy's allowed directories; empty: the server's."}
	optFormat = Option{Name: "format", Type: "string", Default: string(FormatJPEG), Enum: []string{string(FormatJPEG), string(FormatRGB24), string(FormatGray)},
		Description: "Frame format: JPEG, or raw pixels (faster when the flow wants pixels)."}
	optQuality    = Option{Name: "quality", Type: "integer", Default: 5, Min: num(2), Max: num(31), Description: "JPEG quality for ffmpeg's mjpeg encoder (2 best, 31 worst)."}
	optTransport  = Option{Name: "transport", Type: "string", Default: "tcp", Enum: []string{"tcp", "udp"}, Description: "RTSP transport."}
	optStall      = Option{Name: "stall", Type: "duration", Default: "15s", Description: "Longest gap between frames before the stream is restarted (1s to 10m)."}
	streamTimeout = Option{Name: "timeout", Type: "duration", Default: "10s", Description: "Socket I/O timeout (1s to 5m)."}
	optAuth       = Option{Name: "auth", Type: "string", Default: "auto", Enum: []string{"auto", "basic", "digest"}, Description: "HTTP authentication scheme."}
	optMaxBytes   = Option{Name: "max_bytes", Type: "integer", Default: 16 << 20, Min: num(1024), Max: num(256 << 20), Description: "Largest snapshot accepted, in bytes."}
	snapTimeout   = Option{Name: "timeout", Type: "duration", Default: "5s", Description: "Timeout of each request (100ms to 5m)."}
	// optStallEventAfter is read by the device center, not the driver:
	// every driver that delivers frames accepts it (OptStallEventAfter).
	optStallEventAfter = Option{Name: OptStallEventAfter, Type: "duration",
		Description: "While a task reads the device: how long without a new frame (none, or the same picture) before device.stalled is raised (1s to 1h); empty: the worker's --worker.stall-after."}
)

// OptStallEventAfter is the option that sets a device's stall period
// (Config.StallEventAfter).
const OptStallEventAfter = "stall_event_after"

// Bounds of a device's stall period.
const (
	MinStallEventAfter = time.Second
	MaxStallEventAfter = time.Hour
)

// StallEventAfter returns the device's own stall period (its
// stall_event_after option), and false when it has none.
func (c Config) StallEventAfter() (time.Duration, bool) {
	if _, ok := c.Options[OptStallEventAfter]; !ok {
		return 0, false
	}
	d, err := c.optDuration(OptStallEventAfter, 0, MinStallEventAfter, MaxStallEventAfter)
	return d, err == nil
}
