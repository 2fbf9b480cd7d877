package algorithm

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/tianshu-ai/tianshu/internal/function"
	"github.com/tianshu-ai/tianshu/internal/media"
)

// httpMapped calls any vendor HTTP API: a request script turns the inputs
// into an HTTP request and a response script turns the vendor's answer
// into outputs. Both are compiled once per version.
//
// The request script's main(input) sees the inputs with each image as
// {"base64": str, "contentType": str, "size": int} and returns a dict:
//
//	method    "POST" by default
//	path      appended to the endpoint URL, e.g. "/v1/detect"
//	query     dict of query parameters
//	headers   dict of request headers
//	json      any value, sent as a JSON body, or
//	body      a string or bytes sent as is, or
//	bodyInput the name of an image input whose raw bytes are the body
//
// The response script's main(response) sees {"status": int, "headers":
// {lower-case name: value}, "json": the parsed body or None, "text": the
// body when it is not JSON} for 2xx answers and returns the outputs dict;
// other statuses are errors before the script runs.
//
// A header value may name the version's secrets as ${secret:NAME}; they
// are put in after the request script has run, so the script never sees
// a secret's value (nor can return it as a path, query or body).
type httpMapped struct {
	httpBase
	req, resp  *function.Program
	healthPath string
	secrets    map[string]string
}

func newMapped(h httpBase, v *Version, maxImage int64) (*httpMapped, error) {
	limits := function.Limits{
		MaxInputBytes:  int(maxImage)*4/3 + 1<<20,
		MaxOutputBytes: int(maxImage)*4/3 + 1<<20,
		MaxValueBytes:  int(maxImage)*4/3 + 1<<20,
	}
	req, err := function.Compile(v.ref()+"/request", v.Mapping.Request, limits)
	if err != nil {
		return nil, &FieldError{Field: "mapping.request", Msg: err.Error()}
	}
	respLimits := limits
	respLimits.MaxInputBytes = int(h.maxResp)*2 + 1<<20
	resp, err := function.Compile(v.ref()+"/response", v.Mapping.Response, respLimits)
	if err != nil {
		return nil, &FieldError{Field: "mapping.response", Msg: err.Error()}
	}
	return &httpMapped{httpBase: h, req: req, resp: resp, healthPath: v.HealthPath, secrets: v.Secrets}, nil
}

func (p *httpMapped) infer(ctx context.Context, in *instance, inputs map[string]any) (map[string]any, error) {
	script := make(map[string]any, len(inputs))
	for k, v := range inputs {
		if data, ct, ok := media.AsImage(v); ok {
			script[k] = map[string]any{
				"base64":      base64.StdEncoding.EncodeToString(data),
				"contentType": ct,
				"size":        int64(len(data)),
			}
			continue
		}
		script[k] = v
	}
	r, err := p.req.Call(ctx, script, nil)
	if err != nil {
		return nil, err
	}
	spec, ok := r.(map[string]any)
	if !ok {
		return nil, &function.ScriptError{Program: p.req.Name(), Err: fmt.Errorf("main must return a dict, got %T", r)}
	}
	hr, err := p.build(ctx, in.address(), spec, inputs)
	if err != nil {
		return nil, &function.ScriptError{Program: p.req.Name(), Err: err}
	}
	resp, err := p.do(hr)
	if err != nil {
		return nil, err
	}
	defer drain(resp)
	b, err := io.ReadAll(io.LimitReader(resp.Body, p.maxResp+1))
	if err != nil {
		return nil, &transportError{err: fmt.Errorf("reading response: %w", err), sent: true}
	}
	if int64(len(b)) > p.maxResp {
		return nil, fmt.Errorf("%w: response larger than %d bytes", ErrBadResponse, p.maxResp)
	}
	headers := make(map[string]any, len(resp.Header))
	for k, v := range resp.Header {
		headers[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	view := map[string]any{"status": int64(resp.StatusCode), "headers": headers, "json": nil, "text": nil}
	var parsed any
	if len(bytes.TrimSpace(b)) > 0 && json.Unmarshal(b, &parsed) == nil {
		view["json"] = parsed
	} else {
		view["text"] = string(b)
	}
	out, err := p.resp.Call(ctx, view, nil)
	if err != nil {
		return nil, err
	}
	m, ok := out.(map[string]any)
	if !ok {
		return nil, &function.ScriptError{Program: p.resp.Name(), Err: fmt.Errorf("main must return a dict, got %T", out)}
	}
	return m, nil
}

// build turns the request script's dict into an HTTP request.
func (p *httpMapped) build(ctx context.Context, base string, spec map[string]any, inputs map[string]any) (*http.Request, error) {
	method := http.MethodPost
	if m, ok := spec["method"].(string); ok && m != "" {
		method = strings.ToUpper(m)
	}
	path, _ := spec["path"].(string)
	if path != "" && !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u := base + path
	if q, ok := spec["query"].(map[string]any); ok && len(q) > 0 {
		vals := url.Values{}
		for k, v := range q {
			vals.Set(k, scalarString(v))
		}
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		u += sep + vals.Encode()
	}
	var body []byte
	ct := ""
	switch {
	case spec["json"] != nil:
		b, err := json.Marshal(spec["json"])
		if err != nil {
			return nil, fmt.Errorf("json: %v", err)
		}
		body, ct = b, "application/json"
	case spec["body"] != nil:
		switch x := spec["body"].(type) {
		case string:
			body = []byte(x)
		case []byte:
			body = x
		default:
			return nil, fmt.Errorf("body must be a string or bytes, got %T", x)
		}
	case spec["bodyInput"] != nil:
		name, _ := spec["bodyInput"].(string)
		data, t, ok := media.AsImage(inputs[name])
		if !ok {
			return nil, fmt.Errorf("bodyInput %q is not an image input", name)
		}
		body, ct = data, t
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if h, ok := spec["headers"].(map[string]any); ok {
		for k, v := range h {
			val, err := withSecrets(scalarString(v), p.secrets)
			if err != nil {
				return nil, fmt.Errorf("headers[%q]: %w", k, err)
			}
			req.Header.Set(k, val)
		}
	}
	return req, nil
}

// secretRef opens a reference to a secret in a header value.
const secretRef = "${secret:"

// withSecrets replaces every ${secret:NAME} in s by the secret's value.
func withSecrets(s string, secrets map[string]string) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, secretRef)
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		name, rest, ok := strings.Cut(s[i+len(secretRef):], "}")
		if !ok {
			return "", fmt.Errorf("%s without its closing }", secretRef)
		}
		val, ok := secrets[name]
		if !ok {
			return "", fmt.Errorf("the version has no secret named %q", name)
		}
		b.WriteString(s[:i])
		b.WriteString(val)
		s = rest
	}
}

func scalarString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

func (p *httpMapped) inferBatch(context.Context, *instance, []map[string]any) ([]itemResult, error) {
	return nil, errNoBatch
}

func (p *httpMapped) health(ctx context.Context, in *instance) error {
	if p.healthPath == "" {
		return errNoHealthCheck
	}
	return httpHealth(ctx, &p.httpBase, in.address()+p.healthPath)
}
