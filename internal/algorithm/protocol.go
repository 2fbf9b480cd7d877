package algorithm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tianshu-ai/tianshu/internal/media"
)

// protocol is the client side of one wire protocol (or a builtin's direct
// call). infer and inferBatch return *RemoteError for error statuses,
// errors wrapping ErrBadResponse or ErrBadInput, *transportError for
// failures of the connection, and anything else for script or algorithm
// failures.
type protocol interface {
	infer(ctx context.Context, in *instance, inputs map[string]any) (map[string]any, error)
	// inferBatch returns one result per item; nil when unsupported.
	inferBatch(ctx context.Context, in *instance, items []map[string]any) ([]itemResult, error)
	// health returns nil when the instance is ready; errNoHealthCheck when
	// the protocol has no way to tell (the instance counts as ready).
	health(ctx context.Context, in *instance) error
}

// itemResult is one item's answer inside a batch.
type itemResult struct {
	out map[string]any
	err error
}

var (
	errNoHealthCheck = errors.New("no health check")
	errNoBatch       = errors.New("protocol does not batch")
)

// transportError is a failure to exchange a request with an instance;
// sent says whether the request may have reached it.
type transportError struct {
	err  error
	sent bool
}

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// httpBase holds what every HTTP protocol shares: the pooled client and
// the limits.
type httpBase struct {
	client     *http.Client
	maxResp    int64
	idempotent bool
}

// do sends req and returns the response for a 2xx status; anything else
// becomes a *RemoteError or *transportError.
func (h *httpBase) do(req *http.Request) (*http.Response, error) {
	if h.idempotent {
		// A nil Idempotency-Key lets net/http replay the request on a
		// stale pooled connection without sending the header.
		req.Header["Idempotency-Key"] = nil
	}
	resp, err := h.client.Do(req)
	if err != nil {
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, &transportError{err: err, sent: !isDialError(err)}
	}
	if resp.StatusCode/100 != 2 {
		defer drain(resp)
		return nil, remoteError(resp)
	}
	return resp, nil
}

// isDialError reports a failure to connect, after which nothing was sent.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// drain reads a little of what is left so the connection can be reused,
// and closes the body.
func drain(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	_ = resp.Body.Close()
}

// remoteError turns an error status into a *RemoteError carrying the
// {"error": "..."} message, or the start of a non-JSON body.
func remoteError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	e := &RemoteError{Status: resp.StatusCode}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && ra > 0 {
		e.RetryAfter = time.Duration(ra) * time.Second
	}
	var msg struct {
		Error any `json:"error"`
	}
	if json.Unmarshal(b, &msg) == nil && msg.Error != nil {
		switch m := msg.Error.(type) {
		case string:
			e.Message = m
		default:
			mb, _ := json.Marshal(m)
			e.Message = string(mb)
		}
	} else {
		e.Message = strings.TrimSpace(snippet(b))
	}
	return e
}

// readJSON decodes a response body of at most maxResp bytes into v.
func (h *httpBase) readJSON(resp *http.Response, v any) error {
	defer drain(resp)
	lr := &io.LimitedReader{R: resp.Body, N: h.maxResp + 1}
	b, err := io.ReadAll(lr)
	if err != nil {
		return &transportError{err: fmt.Errorf("reading response: %w", err), sent: true}
	}
	if int64(len(b)) > h.maxResp {
		return fmt.Errorf("%w: response larger than %d bytes", ErrBadResponse, h.maxResp)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: not valid JSON (%v): %q", ErrBadResponse, err, snippet(b))
	}
	return nil
}

// snippet returns the start of a body for error messages.
func snippet(b []byte) string {
	const n = 120
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// splitImage finds the single image input: its bytes become the request
// body, the other inputs the parameters. More than one image is refused.
func splitImage(inputs map[string]any) (name string, data []byte, contentType string, err error) {
	for k, v := range inputs {
		d, ct, ok := media.AsImage(v)
		if !ok {
			continue
		}
		if name != "" {
			return "", nil, "", fmt.Errorf("%w: inputs %q and %q are both images; this protocol carries one image per call", ErrBadInput, name, k)
		}
		name, data, contentType = k, d, ct
	}
	return name, data, contentType, nil
}

// withoutKey returns inputs without one key (nil when nothing is left).
func withoutKey(inputs map[string]any, key string) map[string]any {
	n := len(inputs)
	if _, ok := inputs[key]; ok {
		n--
	}
	if n == 0 {
		return nil
	}
	out := make(map[string]any, n)
	for k, v := range inputs {
		if k != key {
			out[k] = v
		}
	}
	return out
}
