package algorithm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strconv"
)

// Paths and headers of the tianshu-v1 protocol (docs/protocol-tianshu-v1.md).
const (
	TianshuInferPath    = "/v1/infer"
	TianshuBatchPath    = "/v1/infer/batch"
	TianshuHealthPath   = "/v1/health"
	TianshuMetadataPath = "/v1/metadata"
	// TianshuParamsHeader carries the non-image inputs as a JSON object.
	TianshuParamsHeader = "X-Tianshu-Params"
	maxParamsHeader     = 8 << 10
)

// tianshuV1 is the client of our own protocol: raw image bytes as the body,
// the other inputs as JSON in a header, JSON objects out.
type tianshuV1 struct {
	httpBase
	healthPath string
}

func (p *tianshuV1) infer(ctx context.Context, in *instance, inputs map[string]any) (map[string]any, error) {
	name, data, ct, err := splitImage(inputs)
	if err != nil {
		return nil, err
	}
	var body []byte
	var params []byte
	if name == "" {
		if body, err = json.Marshal(inputs); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadInput, err)
		}
		ct = "application/json"
	} else {
		body = data
		if rest := withoutKey(inputs, name); len(rest) > 0 {
			if params, err = json.Marshal(rest); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrBadInput, err)
			}
			if len(params) > maxParamsHeader {
				return nil, fmt.Errorf("%w: parameters are %d bytes of JSON, over the %d bytes tianshu-v1 carries in %s", ErrInputTooLarge, len(params), maxParamsHeader, TianshuParamsHeader)
			}
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.address()+TianshuInferPath, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header["Content-Type"] = []string{ct}
	if params != nil {
		req.Header[TianshuParamsHeader] = []string{string(params)}
	}
	resp, err := p.do(req)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := p.readJSON(resp, &out); err != nil {
		return nil, err
	}
	if out == nil {
		return nil, fmt.Errorf("%w: expected a JSON object", ErrBadResponse)
	}
	return out, nil
}

// inferBatch sends items as multipart/form-data: one part named "item"
// per item (an image, or application/json for JSON-only items) and one
// part "params" holding a JSON array of each item's parameters.
func (p *tianshuV1) inferBatch(ctx context.Context, in *instance, items []map[string]any) ([]itemResult, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	params := make([]map[string]any, len(items))
	anyParams := false
	for i, item := range items {
		name, data, ct, err := splitImage(item)
		if err != nil {
			return nil, err
		}
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="item"; filename="`+strconv.Itoa(i)+`"`)
		if name == "" {
			if data, err = json.Marshal(item); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrBadInput, err)
			}
			ct = "application/json"
		} else if rest := withoutKey(item, name); len(rest) > 0 {
			params[i], anyParams = rest, true
		}
		h.Set("Content-Type", ct)
		w, err := mw.CreatePart(h)
		if err != nil {
			return nil, err
		}
		_, _ = w.Write(data)
	}
	if anyParams {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="params"`)
		h.Set("Content-Type", "application/json")
		w, err := mw.CreatePart(h)
		if err != nil {
			return nil, err
		}
		if err := json.NewEncoder(w).Encode(params); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadInput, err)
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.address()+TianshuBatchPath, bytes.NewReader(buf.Bytes()))
	if err != nil {
		return nil, err
	}
	req.Header["Content-Type"] = []string{mw.FormDataContentType()}
	resp, err := p.do(req)
	if err != nil {
		return nil, err
	}
	var out struct {
		Results []map[string]any `json:"results"`
	}
	if err := p.readJSON(resp, &out); err != nil {
		return nil, err
	}
	if len(out.Results) != len(items) {
		return nil, fmt.Errorf("%w: %d results for a batch of %d", ErrBadResponse, len(out.Results), len(items))
	}
	res := make([]itemResult, len(items))
	for i, r := range out.Results {
		if msg, ok := r["error"].(string); ok && len(r) == 1 {
			res[i].err = &RemoteError{Status: http.StatusOK, Message: msg}
			continue
		}
		if r == nil {
			res[i].err = fmt.Errorf("%w: result %d is not an object", ErrBadResponse, i)
			continue
		}
		res[i].out = r
	}
	return res, nil
}

func (p *tianshuV1) health(ctx context.Context, in *instance) error {
	return httpHealth(ctx, &p.httpBase, in.address()+p.healthPath)
}

// httpHealth GETs url and wants a 2xx status.
func httpHealth(ctx context.Context, h *httpBase, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.StatusCode/100 != 2 {
		return remoteError(resp)
	}
	return nil
}

// Metadata is what a tianshu-v1 server answers at GET /v1/metadata.
type Metadata struct {
	Name     string   `json:"name"`
	Version  string   `json:"version"`
	Contract Contract `json:"contract"`
}

// FetchMetadata reads a tianshu-v1 server's metadata, e.g. to prefill a
// version's contract when an endpoint is registered.
func FetchMetadata(ctx context.Context, client *http.Client, baseURL string) (*Metadata, error) {
	if client == nil {
		client = http.DefaultClient
	}
	h := &httpBase{client: client, maxResp: 1 << 20}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+TianshuMetadataPath, nil)
	if err != nil {
		return nil, err
	}
	resp, err := h.do(req)
	if err != nil {
		return nil, err
	}
	var md Metadata
	if err := h.readJSON(resp, &md); err != nil {
		return nil, err
	}
	return &md, nil
}
