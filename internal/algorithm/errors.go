package algorithm

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrUnknownAlgorithm: no applied version matches the reference.
	// Adapters to other components translate it to their own sentinel
	// (algorepo to flow.ErrUnknownAlgorithm).
	ErrUnknownAlgorithm = errors.New("algorithm: unknown algorithm")
	// ErrNoInstance: the version has no instance that can take the call
	// now (none ready, or every breaker open). Retrying later may help.
	ErrNoInstance = errors.New("algorithm: no ready instance")
	// ErrInputTooLarge: an input exceeds Options.MaxImageBytes (or the
	// protocol's limit). Never worth retrying.
	ErrInputTooLarge = errors.New("algorithm: input too large")
	// ErrBadInput: the inputs cannot be sent with the version's protocol
	// (e.g. two images for tianshu-v1). Never worth retrying.
	ErrBadInput = errors.New("algorithm: bad input")
	// ErrBadResponse: the instance answered with something that is not a
	// valid response (not JSON, too large, wrong shape).
	ErrBadResponse = errors.New("algorithm: bad response")
	// ErrContainerRuntime: no container runtime is configured
	// (Options.Containers), so container versions cannot run.
	ErrContainerRuntime = errors.New("container runtime requires Kubernetes, which is not configured")
	// ErrStopped: the version was stopped while the call waited.
	ErrStopped = errors.New("algorithm: version stopped")
)

// RemoteError is an error status answered by an instance, with the
// message from its {"error": "..."} body when there is one.
type RemoteError struct {
	Status  int
	Message string
	// RetryAfter is the instance's Retry-After header, when it sent one.
	RetryAfter time.Duration
}

// Error formats as "instance answered 503: overloaded".
func (e *RemoteError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("instance answered %d", e.Status)
	}
	return fmt.Sprintf("instance answered %d: %s", e.Status, e.Message)
}

// Retryable reports whether the status asks the caller to try again
// (429, 503) without the request having been processed.
func (e *RemoteError) Retryable() bool { return e.Status == 429 || e.Status == 503 }

// InvokeError is the failure of one call: which version and instance,
// why (Reason, a metrics label), and the cause.
type InvokeError struct {
	Algorithm string
	Version   string
	Instance  string // empty when no instance was reached
	Reason    string // one of the Reason* constants
	Err       error
}

// Reasons carried by InvokeError and the errors metric.
const (
	ReasonUnavailable = "unavailable"  // no ready instance, breakers open
	ReasonConnection  = "connection"   // transport failure
	ReasonTimeout     = "timeout"      // deadline exceeded
	ReasonCanceled    = "canceled"     // caller canceled
	ReasonStatus      = "status"       // instance answered an error status
	ReasonBadResponse = "bad_response" // unreadable or oversized answer
	ReasonBadInput    = "bad_input"    // inputs refused before sending
	ReasonScript      = "script"       // an http-mapped script failed
	ReasonAlgorithm   = "algorithm"    // a builtin returned an error
)

// Error names the version and instance before the cause.
func (e *InvokeError) Error() string {
	s := "algorithm " + e.Algorithm + "@" + e.Version
	if e.Instance != "" {
		s += " instance " + e.Instance
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *InvokeError) Unwrap() error { return e.Err }
