package device

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/tianshu-ai/tianshu/internal/redact"
)

// Limits on Config fields.
const (
	MaxFPS   = 120
	MinWidth = 16
	MaxWidth = 7680
)

// Config is one device as the device center stores it. Everything a driver
// needs beyond the common fields goes in Options, whose keys each driver
// documents (see docs/device-adapter.md and the driver files).
type Config struct {
	// ID is the device's id; frames, events and statuses carry it.
	ID string `json:"id"`
	// Driver names a registered driver: replay, http-snapshot, rtsp, onvif,
	// mqtt, adapter, gb28181.
	Driver string `json:"driver"`
	// Address is where the device is: a URL (http://, rtsp://, tcp:// for an
	// MQTT broker, the ONVIF device service) or, for replay and adapter, a
	// path the driver interprets.
	Address string `json:"address"`
	// Username and Password are the device's credentials; the device center
	// encrypts the password at rest and takes credentials out of Address
	// into them. Credentials still inside Address (a Config built by other
	// code) are used when Username is empty, and masked all the same.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// Options are driver-specific settings (JSON values: string, number,
	// bool, list, object).
	Options map[string]any `json:"options,omitempty"`
	// FPS is the frame rate to deliver; 0 means the driver's default (every
	// frame for streams, 1/s for snapshots and replay).
	FPS float64 `json:"fps,omitempty"`
	// Width is the width to scale frames to, keeping the aspect ratio; 0
	// keeps the device's size.
	Width int `json:"width,omitempty"`
	// Delivery is how this open source hands frames over. It belongs to the
	// consumer (a task's source), not to the stored device, so it is never
	// serialised.
	Delivery Delivery `json:"-"`
}

// Delivery says how a source hands frames to its sink. The zero value is
// the live default: latest-frame-wins, frames numbered from 1.
type Delivery struct {
	// Backpressure makes the source wait for the sink to take a frame
	// instead of replacing it, so no frame is dropped and a slow sink slows
	// the device down (replay paces itself from then on; a live stream's
	// pipe fills). Frames then reach the sink from a goroutine of their own,
	// so statuses and events are not held up behind a slow Frame.
	Backpressure bool
	// After is the Seq of the last frame the consumer is done with: the
	// source numbers frames from After+1, and a driver that can seek
	// (replay) starts with the frame that has that number. Drivers that
	// cannot seek number from After+1 all the same, so a resumed consumer
	// never sees a frame number twice for different pictures.
	After uint64
}

// resumes reports whether the consumer asked for a resumable sequence:
// drivers that pay to seek (video replay decodes the frames it skips) seek
// only then.
func (d Delivery) resumes() bool { return d.Backpressure || d.After > 0 }

// credentials returns the address without userinfo and the user name and
// password to use: Username/Password when Username is set, else those of
// the URL.
func (c Config) credentials() (addr, user, pass string) {
	addr, u, p, _ := redact.SplitUserinfo(c.Address)
	if c.Username != "" || addr == c.Address {
		return addr, c.Username, c.Password
	}
	return addr, u, p
}

// Secrets returns the values this configuration must never show: its
// password (from the field or the URL) and the values of Options entries
// marked secret.
func (c Config) Secrets() []string {
	_, _, p, _ := redact.SplitUserinfo(c.Address)
	out := []string{c.Password, p}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if redact.IsSecretEntry(x) {
				if s, ok := x["value"].(string); ok {
					out = append(out, s)
				}
				return
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(map[string]any(c.Options))
	return out
}

// Scrub masks in s the credentials of URLs and this configuration's
// secrets: for text from a driver or a child process (ffmpeg echoes its
// input URL in errors) before it becomes a status, an error or a log line.
func (c Config) Scrub(s string) string { return redact.Text(s, c.Secrets()...) }

// scrubbed is an error whose text is masked; errors.As and errors.Is still
// see the error it wraps (its StatusError reason).
type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

// scrubErr returns err with its text masked by c.Scrub (nil stays nil, an
// error without secrets stays as it is).
func (c Config) scrubErr(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if m := c.Scrub(msg); m != msg {
		return &scrubbed{msg: m, err: err}
	}
	return err
}

// FieldError reports an invalid Config field; Field is the field's name as
// the API shows it (Options keys as "Options.key").
type FieldError struct {
	Field string
	Msg   string
	// Err is a sentinel the failure matches (ErrUnsupportedDriver), or nil.
	Err error
}

// Error names the field and what is wrong with it.
func (e *FieldError) Error() string { return "device: " + e.Field + ": " + e.Msg }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// planned lists drivers the design names but this version does not ship.
func planned(string) bool { return false }

// Validate checks the common fields and the driver's own, and names the first
// bad field. A planned or unknown driver is refused with an error wrapping
// ErrUnsupportedDriver.
func (c Config) Validate() error {
	if c.ID == "" {
		return fieldErr("ID", "required")
	}
	if c.Driver == "" {
		return fieldErr("Driver", "required")
	}
	if planned(c.Driver) {
		return &FieldError{Field: "Driver", Msg: fmt.Sprintf("%v: %s is planned", ErrUnsupportedDriver, c.Driver), Err: ErrUnsupportedDriver}
	}
	d, ok := lookup(c.Driver)
	if !ok {
		return &FieldError{Field: "Driver", Msg: fmt.Sprintf("%v: %q (known: %v)", ErrUnsupportedDriver, c.Driver, Drivers()), Err: ErrUnsupportedDriver}
	}
	if math.IsNaN(c.FPS) || c.FPS < 0 || c.FPS > MaxFPS {
		return fieldErr("FPS", "must be between 0 and %d", MaxFPS)
	}
	if c.Width != 0 && (c.Width < MinWidth || c.Width > MaxWidth) {
		return fieldErr("Width", "must be 0 or between %d and %d", MinWidth, MaxWidth)
	}
	if _, err := c.optDuration(OptStallEventAfter, 0, MinStallEventAfter, MaxStallEventAfter); err != nil {
		return err
	}
	return d.Validate(c)
}

// Unwrap returns the sentinel the failure matches, if any.
func (e *FieldError) Unwrap() error { return e.Err }

// Option accessors: each returns def when the key is absent and a FieldError
// naming Options.key when the value has the wrong type.

func (c Config) optString(key, def string) (string, error) {
	v, ok := c.Options[key]
	if !ok || v == nil {
		return def, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fieldErr("Options."+key, "must be a string")
	}
	return s, nil
}

func (c Config) optBool(key string, def bool) (bool, error) {
	v, ok := c.Options[key]
	if !ok || v == nil {
		return def, nil
	}
	switch b := v.(type) {
	case bool:
		return b, nil
	case string:
		if p, err := strconv.ParseBool(b); err == nil {
			return p, nil
		}
	}
	return false, fieldErr("Options."+key, "must be a boolean")
}

func (c Config) optFloat(key string, def float64) (float64, error) {
	v, ok := c.Options[key]
	if !ok || v == nil {
		return def, nil
	}
	switch n := v.(type) {
	case float64:
		return n, nil
	case float32:
		return float64(n), nil
	case int:
		return float64(n), nil
	case int64:
		return float64(n), nil
	case string:
		if f, err := strconv.ParseFloat(n, 64); err == nil {
			return f, nil
		}
	}
	return 0, fieldErr("Options."+key, "must be a number")
}

func (c Config) optInt(key string, def, lo, hi int) (int, error) {
	f, err := c.optFloat(key, float64(def))
	if err != nil {
		return 0, err
	}
	if f != math.Trunc(f) || f < float64(lo) || f > float64(hi) {
		return 0, fieldErr("Options."+key, "must be an integer between %d and %d", lo, hi)
	}
	return int(f), nil
}

// optDuration accepts a Go duration string ("5s", "250ms") or a number of seconds.
func (c Config) optDuration(key string, def, lo, hi time.Duration) (time.Duration, error) {
	v, ok := c.Options[key]
	if !ok || v == nil {
		return def, nil
	}
	var d time.Duration
	switch x := v.(type) {
	case string:
		p, err := time.ParseDuration(x)
		if err != nil {
			return 0, fieldErr("Options."+key, "must be a duration such as \"5s\"")
		}
		d = p
	default:
		f, err := c.optFloat(key, 0)
		if err != nil {
			return 0, fieldErr("Options."+key, "must be a duration such as \"5s\" or a number of seconds")
		}
		d = time.Duration(f * float64(time.Second))
	}
	if d < lo || d > hi {
		return 0, fieldErr("Options."+key, "must be between %v and %v", lo, hi)
	}
	return d, nil
}

func (c Config) optStrings(key string) ([]string, error) {
	v, ok := c.Options[key]
	if !ok || v == nil {
		return nil, nil
	}
	switch l := v.(type) {
	case []string:
		return l, nil
	case []any:
		out := make([]string, len(l))
		for i, x := range l {
			s, ok := x.(string)
			if !ok {
				return nil, fieldErr("Options."+key, "must be a list of strings")
			}
			out[i] = s
		}
		return out, nil
	}
	return nil, fieldErr("Options."+key, "must be a list of strings")
}

// optOneOf returns the option, which must be one of allowed (the first is the default).
func (c Config) optOneOf(key string, allowed ...string) (string, error) {
	s, err := c.optString(key, allowed[0])
	if err != nil {
		return "", err
	}
	for _, a := range allowed {
		if s == a {
			return s, nil
		}
	}
	return "", fieldErr("Options."+key, "must be one of %v", allowed)
}

// checkOptions refuses option keys the driver does not know, so a typo is an
// error rather than a silently ignored setting.
func (c Config) checkOptions(known ...string) error {
	for k := range c.Options {
		found := false
		for _, n := range known {
			if k == n {
				found = true
				break
			}
		}
		if !found {
			return fieldErr("Options."+k, "unknown option for driver %s (known: %v)", c.Driver, known)
		}
	}
	return nil
}
