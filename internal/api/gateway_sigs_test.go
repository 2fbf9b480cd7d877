package api_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/api/tc3"
)

// Codes are spelled out, not taken from package api, so that these tests
// compile (and fail) on a gateway that does not know them.
const (
	codeReplayed = api.Code("AuthFailure.SignatureReplayed")
)

// sigReq is a request signed by hand, so that the test chooses the
// service, the signed headers and the timestamp, and can send the very
// same request again.
type sigReq struct {
	action, body string
	header       http.Header
}

// signRaw signs action with body as s at ts, for service, signing the
// headers named in signed (lower case; "" signs none).
func (e *gatewayEnv) signRaw(t *testing.T, s tc3.Signer, action, body, service, signed string, ts time.Time) sigReq {
	t.Helper()
	u, err := url.Parse(e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-TC-Action", action)
	h.Set("X-TC-Version", api.Version)
	h.Set("X-TC-Timestamp", strconv.FormatInt(ts.Unix(), 10))
	var names []string
	if signed != "" {
		names = strings.Split(signed, ";")
	}
	values := map[string]string{"host": u.Host}
	for _, n := range names {
		if n != "host" {
			values[n] = h.Get(n)
		}
	}
	c := tc3.CanonicalRequest(http.MethodPost, "/", "", values, names, []byte(body))
	date := tc3.Date(ts.Unix())
	sig := tc3.Signature(s.SecretKey, date, service, ts.Unix(), c)
	h.Set("Authorization", fmt.Sprintf("%s Credential=%s/%s/%s/tc3_request, SignedHeaders=%s, Signature=%s",
		tc3.Algorithm, s.SecretID, date, service, signed, sig))
	return sigReq{action: action, body: body, header: h}
}

// send sends r; change, when given, alters a copy of it first.
func (e *gatewayEnv) send(t *testing.T, r sigReq, change func(*http.Request)) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/", strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = r.header.Clone()
	if change != nil {
		change(req)
	}
	return e.do(t, req)
}

func wantOK(t *testing.T, r reply) {
	t.Helper()
	if r.code() != "" {
		t.Fatalf("refused: %s", r.raw)
	}
}

func wantMessageHas(t *testing.T, r reply, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(r.message(), p) {
			t.Errorf("message %q does not name %q", r.message(), p)
		}
	}
}

// A signed request is accepted once: sent again within the window, as it
// was or re-aimed at another action (X-TC-Action is not signed by the
// SDKs), it is refused.
func TestGatewaySignatureReplay(t *testing.T) {
	// Each replay refused is a failed authentication; the holds those
	// earn (TestGatewayHoldsSecretIdAfterFailedSignatures) are off here, so that
	// every refusal below shows its own code.
	e := newGatewayWith(t, func(c *api.Config, _ *api.GatewayOptions) {
		c.AuthFailures.AddressFailures, c.AuthFailures.SecretFailures = 0, 0
	})
	now := e.clk.now()
	r := e.signRaw(t, e.admin, "DescribeApps", `{}`, api.Service, "content-type;host", now)
	wantOK(t, e.send(t, r, nil))
	again := e.send(t, r, nil)
	wantCode(t, again, codeReplayed)
	wantMessageHas(t, again, e.admin.SecretID)
	// Still refused later in the window.
	e.clk.add(4 * time.Minute)
	wantCode(t, e.send(t, r, nil), codeReplayed)
	e.clk.add(-4 * time.Minute)

	// A read of an app's keys turned into the creation of a key.
	body := `{"AppId": "` + e.adminID + `"}`
	keys := e.signRaw(t, e.admin, "DescribeAppKeys", body, api.Service, "content-type;host", now)
	wantOK(t, e.send(t, keys, nil))
	// With X-TC-Action unsigned (the SDKs' default) the signature cannot
	// tell two actions apart, and the SDKs legitimately send two actions
	// with one body in one second; so re-aiming is bounded, not refused:
	// once per action. RequireSignedAction refuses it
	// (TestGatewayKeyRequiresSignedAction).
	toCreate := func(r *http.Request) { r.Header.Set("X-TC-Action", "CreateAppKey") }
	wantOK(t, e.send(t, keys, toCreate))
	wantCode(t, e.send(t, keys, toCreate), codeReplayed)
	wantCode(t, e.send(t, keys, nil), codeReplayed)
	if got := e.postAt(t, e.admin, "DescribeAppKeys", body, now.Add(10*time.Second), nil); got.resp["TotalCount"] != float64(2) {
		t.Errorf("re-aiming created other than one key: %s", got.raw)
	}
	// Signed, the action is bound: the signature is accepted once, for
	// any action header.
	signedKeys := e.signRaw(t, e.admin, "DescribeAppKeys", body, api.Service, "content-type;host;x-tc-action", now.Add(3*time.Second))
	wantOK(t, e.send(t, signedKeys, nil))
	wantCode(t, e.send(t, signedKeys, nil), codeReplayed)

	// The same call signed again (another timestamp, another signature)
	// is a new request.
	wantOK(t, e.send(t, e.signRaw(t, e.admin, "DescribeApps", `{}`, api.Service, "content-type;host", now.Add(time.Second)), nil))
	// A refused signature is not remembered: the right one still passes.
	bad := e.signRaw(t, tc3.Signer{SecretID: e.admin.SecretID, SecretKey: "wrong"}, "DescribeApps", `{}`, api.Service, "content-type;host", now.Add(2*time.Second))
	wantCode(t, e.send(t, bad, nil), api.AuthFailureSignatureFailure)
	wantCode(t, e.send(t, bad, nil), api.AuthFailureSignatureFailure)
}

// Concurrent copies of one signed request: exactly one is accepted.
func TestGatewaySignatureReplayConcurrent(t *testing.T) {
	e := newGateway(t)
	r := e.signRaw(t, e.admin, "DescribeApps", `{}`, api.Service, "content-type;host", e.clk.now())
	const n = 8
	codes := make(chan string, n)
	for range n {
		go func() {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/", strings.NewReader(r.body))
			req.Header = r.header.Clone()
			res, err := e.srv.Client().Do(req)
			if err != nil {
				codes <- "transport: " + err.Error()
				return
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			s := string(b)
			switch {
			case strings.Contains(s, `"Error"`) && strings.Contains(s, string(codeReplayed)):
				codes <- string(codeReplayed)
			case strings.Contains(s, `"Error"`):
				codes <- s
			default:
				codes <- "OK"
			}
		}()
	}
	ok := 0
	for range n {
		switch c := <-codes; c {
		case "OK":
			ok++
		case string(codeReplayed):
		default:
			t.Errorf("unexpected answer %s", c)
		}
	}
	if ok != 1 {
		t.Errorf("%d copies of one signed request accepted, want 1", ok)
	}
}

// What a signature must cover: the credential scope names this service,
// host and content-type are signed, and X-TC-Version is present.
func TestGatewaySignatureBindsRequest(t *testing.T) {
	e := newGateway(t)
	now := e.clk.now()
	sec := 0
	at := func() time.Time { sec++; return now.Add(time.Duration(sec) * time.Second) }
	t.Run("other service", func(t *testing.T) {
		r := e.send(t, e.signRaw(t, e.admin, "DescribeApps", `{}`, "cvm", "content-type;host", at()), nil)
		wantCode(t, r, api.AuthFailureSignatureFailure)
		wantMessageHas(t, r, "credential scope", `"cvm"`, "tianshu")
	})
	t.Run("Node SDK service from the host's first label", func(t *testing.T) {
		// tencentcloud-sdk-nodejs names the service after the endpoint's
		// first label: "127" for 127.0.0.1:PORT.
		wantOK(t, e.send(t, e.signRaw(t, e.admin, "DescribeApps", `{}`, "127", "content-type;host", at()), nil))
	})
	for _, signed := range []string{"", "content-type", "host", "x-tc-action;host", "content-type;x-tc-action"} {
		t.Run("SignedHeaders="+signed, func(t *testing.T) {
			r := e.send(t, e.signRaw(t, e.admin, "DescribeApps", `{}`, api.Service, signed, at()), nil)
			wantCode(t, r, api.AuthFailureInvalidAuthorization)
			wantMessageHas(t, r, "SignedHeaders")
		})
	}
	t.Run("x-tc-action signed", func(t *testing.T) {
		wantOK(t, e.send(t, e.signRaw(t, e.admin, "DescribeApps", `{}`, api.Service, "content-type;host;x-tc-action", at()), nil))
		// Signed, the action cannot be changed.
		r := e.signRaw(t, e.admin, "DescribeAppKeys", `{"AppId": "`+e.adminID+`"}`, api.Service, "content-type;host;x-tc-action", at())
		wantCode(t, e.send(t, r, func(r *http.Request) { r.Header.Set("X-TC-Action", "CreateAppKey") }), api.AuthFailureSignatureFailure)
	})
	t.Run("no X-TC-Version", func(t *testing.T) {
		r := e.send(t, e.signRaw(t, e.admin, "DescribeApps", `{}`, api.Service, "content-type;host", at()), func(r *http.Request) { r.Header.Del("X-TC-Version") })
		wantCode(t, r, api.MissingParameter)
		if r.message() != "X-TC-Version: required" {
			t.Errorf("message %q", r.message())
		}
	})
	t.Run("signed host is the one addressed", func(t *testing.T) {
		r := e.send(t, e.signRaw(t, e.admin, "DescribeApps", `{}`, api.Service, "content-type;host", at()), func(r *http.Request) { r.Host = "elsewhere.example" })
		wantCode(t, r, api.AuthFailureSignatureFailure)
	})
}

// A key created with RequireSignedAction accepts only requests whose
// signature covers X-TC-Action.
func TestGatewayKeyRequiresSignedAction(t *testing.T) {
	e := newGateway(t)
	_, appID := e.newApp(t, "strict", api.RoleViewer)
	r := e.post(t, e.admin, "CreateAppKey", `{"AppId": "`+appID+`", "RequireSignedAction": true}`, nil)
	wantOK(t, r)
	strict := tc3.Signer{SecretID: r.resp["SecretId"].(string), SecretKey: r.resp["SecretKey"].(string)}
	keys := e.post(t, e.admin, "DescribeAppKeys", `{"AppId": "`+appID+`"}`, nil)
	wantOK(t, keys)
	if !strings.Contains(keys.raw, `"SecretId":"`+strict.SecretID+`","Status":"active","RequireSignedAction":true`) {
		t.Errorf("DescribeAppKeys does not show RequireSignedAction: %s", keys.raw)
	}
	now := e.clk.now()
	refused := e.send(t, e.signRaw(t, strict, "DescribeApps", `{}`, api.Service, "content-type;host", now), nil)
	wantCode(t, refused, api.AuthFailureInvalidAuthorization)
	wantMessageHas(t, refused, "SignedHeaders", "x-tc-action", strict.SecretID)
	wantOK(t, e.send(t, e.signRaw(t, strict, "DescribeApps", `{}`, api.Service, "content-type;host;x-tc-action", now), nil))
	// The app's other key, created without the setting, is unaffected.
	wantOK(t, e.send(t, e.signRaw(t, e.admin, "DescribeApps", `{}`, api.Service, "content-type;host", now), nil))

	// ModifyAppKey turns it on for an existing key, and off again.
	wantOK(t, e.post(t, e.admin, "ModifyAppKey", `{"AppId": "`+e.adminID+`", "SecretId": "`+e.admin.SecretID+`", "RequireSignedAction": true}`, nil))
	wantCode(t, e.send(t, e.signRaw(t, e.admin, "DescribeApps", `{}`, api.Service, "content-type;host", now.Add(time.Second)), nil), api.AuthFailureInvalidAuthorization)
	wantOK(t, e.send(t, e.signRaw(t, e.admin, "ModifyAppKey", `{"AppId": "`+e.adminID+`", "SecretId": "`+e.admin.SecretID+`", "RequireSignedAction": false}`,
		api.Service, "content-type;host;x-tc-action", now.Add(time.Second)), nil))
	wantOK(t, e.send(t, e.signRaw(t, e.admin, "DescribeApps", `{}`, api.Service, "content-type;host", now.Add(2*time.Second)), nil))
	wantCode(t, e.post(t, e.admin, "ModifyAppKey", `{"AppId": "`+e.adminID+`", "SecretId": "AKIDnone", "RequireSignedAction": true}`, nil), api.ResourceNotFound)
}

// brokenReplays is a replay cache that cannot answer (Redis down).
type brokenReplays struct{}

func (brokenReplays) Remember(context.Context, string, time.Duration) (bool, error) {
	return false, errors.New("redis: connection refused")
}

// When the replay cache cannot answer, signed requests are refused (fail
// closed) unless the gateway is configured to fail open.
func TestGatewayReplayCacheOutage(t *testing.T) {
	e := newGatewayWith(t, func(_ *api.Config, o *api.GatewayOptions) { o.Replays = brokenReplays{} })
	r := e.post(t, e.admin, "DescribeApps", `{}`, nil)
	wantCode(t, r, api.ResourceUnavailable)
	wantMessageHas(t, r, "replay")

	open := newGatewayWith(t, func(c *api.Config, o *api.GatewayOptions) {
		o.Replays = brokenReplays{}
		c.SignatureReplayFailOpen = true
	})
	wantOK(t, open.post(t, open.admin, "DescribeApps", `{}`, nil))
}

// With api.signed_hosts set, a signed request addressed to another host
// name is refused, whatever its signature.
func TestGatewaySignedHosts(t *testing.T) {
	e := newGatewayWith(t, func(c *api.Config, _ *api.GatewayOptions) { c.SignedHosts = []string{"tianshu.example.com"} })
	r := e.post(t, e.admin, "DescribeApps", `{}`, nil)
	wantCode(t, r, api.AuthFailureInvalidAuthorization)
	wantMessageHas(t, r, "Host", "tianshu.example.com")

	ok := newGatewayWith(t, func(c *api.Config, _ *api.GatewayOptions) {
		c.SignedHosts = []string{"tianshu.example.com", "127.0.0.1"}
	})
	wantOK(t, ok.post(t, ok.admin, "DescribeApps", `{}`, nil))
}
