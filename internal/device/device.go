// Package device is the driver layer of Tianshu's device center: it turns a
// camera (or a folder of pictures, a broker topic, a vendor's own process)
// into a Source of frames and events.
//
// A driver registers itself by name from its own file (driver_<name>.go).
// A Runtime holds what drivers share — logger, metrics, clock, the status
// callback — and opens sources: each Source runs one goroutine that connects,
// produces frames and events, reconnects with exponential backoff when the
// device goes away, and hands frames to the consumer through a one-slot
// mailbox, so a slow consumer always gets the newest frame and older ones are
// counted as drops (latest-frame-wins). A consumer that must see every frame
// asks for back-pressure instead (Config.Delivery), and one that resumes
// says which frame it finished last: replay then continues from there.
// Close stops everything the source started, child processes included.
//
// The package knows no store and no bus: the device center persists Configs
// and publishes the Status changes a Sink receives.
package device

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"time"
)

// State is a device's coarse connection state.
type State string

// States a Source reports.
const (
	// StateConnecting: the source is (re)connecting and has produced nothing yet.
	StateConnecting State = "connecting"
	// StateOnline: the device delivers frames or events.
	StateOnline State = "online"
	// StateOffline: the device went away (stream ended, host unreachable,
	// timeout); the source retries with backoff.
	StateOffline State = "offline"
	// StateError: the device answers but refuses or misbehaves (wrong
	// password, garbage instead of a picture, bad configuration); the source
	// still retries, less often.
	StateError State = "error"
	// StateClosed: Close was called.
	StateClosed State = "closed"
)

// Reasons carried by Status.Reason and StatusError.Reason; stable strings the
// console and the API show and filter on.
const (
	ReasonAuthFailed  = "auth_failed"  // credentials refused
	ReasonUnreachable = "unreachable"  // connection refused, no route, DNS failure
	ReasonTimeout     = "timeout"      // the device did not answer in time
	ReasonBadImage    = "bad_image"    // the answer is not a picture
	ReasonBadResponse = "bad_response" // unexpected status code or document
	ReasonStreamEnded = "stream_ended" // a stream stopped or stalled
	ReasonProcess     = "process"      // a child process failed (ffmpeg, adapter)
	ReasonConfig      = "config"       // the configuration cannot work
	ReasonPolicy      = "policy"       // the outbound policy refuses the address
	ReasonError       = "error"        // anything else
)

// Frame is one picture from a device. Image holds it JPEG-encoded, Pixels
// holds it decoded (Format says how), or both. A delivered Frame belongs to
// the consumer: drivers never reuse its buffers.
type Frame struct {
	DeviceID string
	// Time is when the frame was received (the platform's clock).
	Time time.Time
	// Seq counts frames produced by the source from 1 (from
	// Config.Delivery.After+1 when resuming), including frames later dropped
	// and replay files that did not decode, so a gap in Seq shows drops. A
	// replayed folder's frame n is the folder's file n-1 (modulo the number
	// of files when looping).
	Seq uint64
	// Image is the JPEG-encoded picture, or nil.
	Image []byte
	// Pixels is the decoded picture in Format, row-major without padding, or nil.
	Pixels []byte
	// Format is the layout of Pixels: FormatRGB24 or FormatGray; empty when
	// Pixels is nil.
	Format PixelFormat
	Width  int
	Height int
}

// PixelFormat names the layout of Frame.Pixels.
type PixelFormat string

// Pixel formats a Frame may carry, and FormatJPEG for sources configured to
// deliver JPEG (Frame.Image) only.
const (
	FormatJPEG  PixelFormat = "jpeg"
	FormatRGB24 PixelFormat = "rgb24"
	FormatGray  PixelFormat = "gray"
)

// Decode returns the frame as an image: Pixels converted when present,
// otherwise Image decoded.
func (f Frame) Decode() (image.Image, error) {
	switch {
	case f.Pixels != nil && f.Format == FormatGray:
		if len(f.Pixels) < f.Width*f.Height {
			return nil, errors.New("device: short gray frame")
		}
		return &image.Gray{Pix: f.Pixels, Stride: f.Width, Rect: image.Rect(0, 0, f.Width, f.Height)}, nil
	case f.Pixels != nil && f.Format == FormatRGB24:
		if len(f.Pixels) < 3*f.Width*f.Height {
			return nil, errors.New("device: short rgb24 frame")
		}
		img := image.NewRGBA(image.Rect(0, 0, f.Width, f.Height))
		for i, j := 0, 0; i < f.Width*f.Height; i, j = i+1, j+3 {
			copy(img.Pix[4*i:4*i+3], f.Pixels[j:j+3])
			img.Pix[4*i+3] = 0xff
		}
		return img, nil
	case f.Image != nil:
		return jpeg.Decode(bytes.NewReader(f.Image))
	}
	return nil, errors.New("device: empty frame")
}

// Event is something a device pushed: a detection, an alarm, a capture.
type Event struct {
	DeviceID string
	// Time is when the event was received.
	Time time.Time
	// Type is the event's kind as the device (or the mapping script) names it.
	Type string
	// Data is the event's payload.
	Data map[string]any
	// Snapshot is a JPEG that came with the event, or nil.
	Snapshot []byte
}

// Status is a source's health as the device center shows it.
type Status struct {
	DeviceID string
	Driver   string
	State    State
	// Reason is one of the Reason* constants when State is offline or error.
	Reason string
	// LastError is the last failure in words (for rtsp, the tail of ffmpeg's
	// stderr); it is kept after the device recovers.
	LastError string
	// Since is when State last changed.
	Since time.Time
	// LastFrameTime is when the last frame (or event) arrived; zero if none.
	LastFrameTime time.Time
	// MeasuredFPS is the rate frames arrived at over the last few seconds.
	MeasuredFPS float64
	// FramesDelivered counts frames handed to the sink.
	FramesDelivered uint64
	// Drops counts frames replaced in the mailbox before the sink took them,
	// and events discarded because the event queue was full.
	Drops uint64
	// Events counts events handed to the sink.
	Events uint64
	// Reconnects counts connection attempts after the first.
	Reconnects uint64
}

// ProbeResult is what a one-off look at a device found.
type ProbeResult struct {
	// Online is true when the device answered as expected.
	Online bool
	// Info describes the device: vendor, model, firmware, profiles, stream
	// and snapshot URIs, picture size — whatever the driver learnt.
	Info map[string]any
	// Snapshot is a current JPEG when the driver could take one.
	Snapshot []byte
}

// Sink receives what a Source produces. Frame, Event and Status are called
// from one goroutine per source, never concurrently for the same source, so a
// slow Frame makes the source drop frames (not queue them). With
// Config.Delivery.Backpressure a slow Frame holds the source back instead,
// and Frame is called from a goroutine of its own, concurrently with Event
// and Status; Close then waits for a Frame in progress, so Frame must return
// once its consumer goes away. Implementations must not block for long in
// Status.
type Sink interface {
	Frame(Frame)
	Event(Event)
	// Status is called when the state or reason changes.
	Status(Status)
}

// SinkFuncs adapts functions to a Sink; nil fields ignore their calls.
type SinkFuncs struct {
	OnFrame  func(Frame)
	OnEvent  func(Event)
	OnStatus func(Status)
}

// Frame calls OnFrame.
func (s SinkFuncs) Frame(f Frame) {
	if s.OnFrame != nil {
		s.OnFrame(f)
	}
}

// Event calls OnEvent.
func (s SinkFuncs) Event(e Event) {
	if s.OnEvent != nil {
		s.OnEvent(e)
	}
}

// Status calls OnStatus.
func (s SinkFuncs) Status(st Status) {
	if s.OnStatus != nil {
		s.OnStatus(st)
	}
}

// Source is an open device. It reconnects by itself; the caller only reads
// Status and eventually calls Close.
type Source interface {
	// Status returns the current status.
	Status() Status
	// Close stops the source, its goroutines and child processes, and waits
	// for them; the sink gets no call after Close returns. Close is idempotent.
	Close() error
}

// ProcessReporter is implemented by sources that run child processes
// (ffmpeg, a vendor adapter), for CPU accounting and debugging.
type ProcessReporter interface {
	// Processes returns the pids of the child processes running now.
	Processes() []int
}

// StatusError is a failure with the Reason the status should show. Drivers
// return it; errors.As finds it through wrapping.
type StatusError struct {
	Reason string
	Err    error
}

// Error returns the reason and the cause.
func (e *StatusError) Error() string { return e.Reason + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *StatusError) Unwrap() error { return e.Err }

// statusErr wraps err with reason, or returns nil for a nil err.
func statusErr(reason string, err error) error {
	if err == nil {
		return nil
	}
	return &StatusError{Reason: reason, Err: err}
}

func statusErrf(reason, format string, args ...any) error {
	return &StatusError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// ReasonOf returns the Reason err carries: the StatusError's, a timeout or
// unreachable for network errors, ReasonError otherwise.
func ReasonOf(err error) string {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Reason
	}
	return classifyNetErr(err)
}

// ErrUnsupportedDriver is returned (wrapped) by Config.Validate for a driver
// that is planned or unknown.
var ErrUnsupportedDriver = errors.New("unsupported driver")

// ErrClosed is returned by operations on a closed Runtime.
var ErrClosed = errors.New("device: runtime closed")

// stateFor picks the state a failure puts a source in.
func stateFor(reason string) State {
	switch reason {
	case ReasonUnreachable, ReasonTimeout, ReasonStreamEnded:
		return StateOffline
	}
	return StateError
}
