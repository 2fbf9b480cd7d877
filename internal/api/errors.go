package api

import (
	"errors"
	"fmt"
	"time"
)

// Code is an API error code, e.g. "AuthFailure.SignatureFailure".
type Code string

// The error codes of the action API. CodeTable describes each one; the API
// documentation is generated from it.
const (
	AuthFailureSignatureFailure      Code = "AuthFailure.SignatureFailure"
	AuthFailureSignatureExpire       Code = "AuthFailure.SignatureExpire"
	AuthFailureSignatureReplayed     Code = "AuthFailure.SignatureReplayed"
	AuthFailureSecretIDNotFound      Code = "AuthFailure.SecretIdNotFound"
	AuthFailureInvalidAuthorization  Code = "AuthFailure.InvalidAuthorization"
	AuthFailureUnauthorizedOperation Code = "AuthFailure.UnauthorizedOperation"
	AuthFailureLoginFailed           Code = "AuthFailure.LoginFailed"
	AuthFailureLoginLocked           Code = "AuthFailure.LoginLocked"
	AuthFailureInvalidSession        Code = "AuthFailure.InvalidSession"
	AuthFailureSessionExpired        Code = "AuthFailure.SessionExpired"
	AuthFailureInvalidCSRFToken      Code = "AuthFailure.InvalidCSRFToken"
	RequestLimitExceeded             Code = "RequestLimitExceeded"
	RequestSizeLimitExceeded         Code = "RequestSizeLimitExceeded"
	InvalidAction                    Code = "InvalidAction"
	NoSuchVersion                    Code = "NoSuchVersion"
	UnsupportedProtocol              Code = "UnsupportedProtocol"
	MissingParameter                 Code = "MissingParameter"
	UnknownParameter                 Code = "UnknownParameter"
	InvalidParameter                 Code = "InvalidParameter"
	InvalidParameterValue            Code = "InvalidParameterValue"
	ResourceNotFound                 Code = "ResourceNotFound"
	ResourceInUse                    Code = "ResourceInUse"
	ResourceUnavailable              Code = "ResourceUnavailable"
	ResourceInsufficientStorageFull  Code = "ResourceInsufficient.StorageFull"
	LimitExceeded                    Code = "LimitExceeded"
	FailedOperation                  Code = "FailedOperation"
	InternalError                    Code = "InternalError"
)

// CodeInfo documents one error code.
type CodeInfo struct {
	Code        Code
	Description string
}

// CodeTable lists every error code with what it means and what the caller
// should do. It is the single source of the error table in docs/api.md.
func CodeTable() []CodeInfo {
	return []CodeInfo{
		{AuthFailureSignatureFailure, "The TC3-HMAC-SHA256 signature does not match: wrong SecretKey, or the request was changed after signing. Do not retry unchanged."},
		{AuthFailureSignatureExpire, "X-TC-Timestamp is more than 300 s away from the server's clock. Fix the client's clock and sign again."},
		{AuthFailureSignatureReplayed, "This signature was already accepted once: each signed request is accepted once within the signature window, so a copy sent again (a replay, or a retry of a request that went through) is refused. Sign the request again; identical requests signed in the same second share a signature, so send them a second apart or sign a header that differs (X-TC-TraceId)."},
		{AuthFailureSecretIDNotFound, "The SecretId in the credential does not exist or its key was deleted."},
		{AuthFailureInvalidAuthorization, "The Authorization or X-TC-Timestamp header is missing or malformed, or SignedHeaders lacks a header that must be signed (content-type and host; x-tc-action too for a key created with RequireSignedAction)."},
		{AuthFailureUnauthorizedOperation, "The caller's role does not grant the action's permission."},
		{AuthFailureLoginFailed, "Login: the user name or password is wrong, or the user is disabled (one answer for all three, so that names cannot be probed)."},
		{AuthFailureLoginLocked, "Login: too many failed logins for this user name or from this address; the message says when to retry. Each further failure locks longer."},
		{AuthFailureInvalidSession, "The session cookie names no session: it was logged out, revoked, or never issued. Log in again."},
		{AuthFailureSessionExpired, "The session was idle too long or reached its maximum age. Log in again."},
		{AuthFailureInvalidCSRFToken, "A call with a session cookie lacks the X-Tianshu-CSRF header, or it is not the CsrfToken that Login returned for this session."},
		{RequestLimitExceeded, "A request rate limit (the app's, the person's or the project's) was exceeded, or the source address or SecretId is held after too many failed authentications; the message says when to retry. Or the server is busy (message `server busy: …`): the action's class (read, write or invoke) is at this server's concurrency limit and the call found the queue full or waited past api.concurrency.queue_wait. Nothing was done; retry after the Retry-After header's seconds (1), with a new signature. The official SDKs retry this code when told to (RateLimitExceededMaxRetries)."},
		{RequestSizeLimitExceeded, "The request body is larger than the gateway accepts."},
		{InvalidAction, "X-TC-Action names no action."},
		{NoSuchVersion, "X-TC-Version names an API version this server does not serve."},
		{UnsupportedProtocol, "The request is not a POST with a JSON body."},
		{MissingParameter, "A required field is missing; the message names it."},
		{UnknownParameter, "The body has a field the action does not take; the message names it."},
		{InvalidParameter, "The body is not a valid JSON object, or a header is wrong."},
		{InvalidParameterValue, "A field's value is out of range or of the wrong type; the message names the field."},
		{ResourceNotFound, "The resource named in the request does not exist (or is not visible to the caller)."},
		{ResourceInUse, "The resource cannot be changed or deleted while something uses it."},
		{ResourceUnavailable, "The resource exists but cannot serve the request now (stopped, unhealthy), or a component the platform needs cannot be reached now; the message names it (store: the database; bus: the message bus). Retry after the Retry-After header's seconds: nothing was changed, except that a write whose connection was lost at its commit may have been applied, so check or retry only what is safe to repeat."},
		{ResourceInsufficientStorageFull, "The platform's storage is full (the message names the component, e.g. store): writes fail until an operator frees space, reads still work. Retrying helps only after space is freed."},
		{LimitExceeded, "A quota would be exceeded (e.g. more than two active keys per app, or a project's quota of apps, devices or tasks); the message names it."},
		{FailedOperation, "The operation was valid but failed; the message says why."},
		{InternalError, "An unexpected server error; the RequestId finds it in the logs. Safe to retry idempotent actions."},
	}
}

// Error is an error answered to the caller with a code and a message.
type Error struct {
	Code    Code
	Message string
	// RetryAfter, when positive, is sent as the Retry-After header (in
	// whole seconds, rounded up): when the caller may try again.
	RetryAfter time.Duration
}

// Error implements error.
func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Errorf returns an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Missing reports a missing required field.
func Missing(field string) *Error {
	return &Error{Code: MissingParameter, Message: field + ": required"}
}

// InvalidValue reports a bad value of a field.
func InvalidValue(field, format string, args ...any) *Error {
	return &Error{Code: InvalidParameterValue, Message: field + ": " + fmt.Sprintf(format, args...)}
}

// NotFound reports a resource that does not exist.
func NotFound(kind, id string) *Error {
	return &Error{Code: ResourceNotFound, Message: fmt.Sprintf("%s %q not found", kind, id)}
}

// faultRetryAfter is the Retry-After of an answer to a backend that cannot
// be reached: long enough for a connection to be made again, short enough
// that a client does not wait after a blip.
const faultRetryAfter = 2 * time.Second

// backendFault is what an error of a backend (the store's, the bus's)
// implements when it is the backend's fault rather than the request's or a
// bug: the component ("store", "bus") and the kind of fault
// ("unavailable", "storage_full"). The gateway answers it without
// importing the backends.
type backendFault interface {
	Fault() (component, kind string)
}

// FaultError returns the answer for err when it is (or wraps) a backend's
// fault: ResourceInsufficient.StorageFull for a full disk, otherwise
// ResourceUnavailable naming the component, with a Retry-After. It
// returns false for other errors. requestID goes into the message so that
// the logs can be found.
func FaultError(err error, requestID string) (*Error, bool) {
	var f backendFault
	if !errors.As(err, &f) {
		return nil, false
	}
	component, kind := f.Fault()
	if kind == "storage_full" {
		return &Error{Code: ResourceInsufficientStorageFull,
			Message: fmt.Sprintf("%s: storage full; writes fail until space is freed (quote RequestId %s)", component, requestID)}, true
	}
	return &Error{Code: ResourceUnavailable, RetryAfter: faultRetryAfter,
		Message: fmt.Sprintf("%s: unavailable now; retry after %d s (quote RequestId %s)", component, int(faultRetryAfter.Seconds()), requestID)}, true
}

// AsError returns err as an *Error when it is (or wraps) one.
func AsError(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}
