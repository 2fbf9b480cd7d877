package algorithm

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/algorithm/algotest"
	"github.com/tianshu-ai/tianshu/internal/netpolicy"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

const secretBody = "tianshu_secret_metric 42"

// outboundSetup starts a "secret" server on 127.0.0.1 (standing for the
// platform's own /metrics) and returns a policy that refuses it: loopback
// is denied by default and only 127.0.0.2 is allowed.
func outboundSetup(t *testing.T) (secret *httptest.Server, port string, p *netpolicy.Policy) {
	t.Helper()
	secret = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, secretBody)
	}))
	t.Cleanup(secret.Close)
	_, port, _ = net.SplitHostPort(strings.TrimPrefix(secret.URL, "http://"))
	p, err := netpolicy.New(netpolicy.Config{Allow: []string{"127.0.0.2"}})
	if err != nil {
		t.Fatal(err)
	}
	return secret, port, p
}

// serve127 starts a server on 127.0.0.2, the address the tests' policy
// allows (every 127/8 address is this host on Linux).
func serve127(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 on this host: %v", err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func mappedVersion(id, endpoint, path string) Version {
	v := endpointVersion(id, endpoint)
	v.Protocol = ProtocolHTTPMapped
	v.Mapping = Mapping{
		Request:  "def main(input):\n    return {\"path\": \"" + path + "\", \"json\": {}}\n",
		Response: "def main(resp):\n    return {\"objects\": [], \"text\": resp[\"text\"]}\n",
	}
	v.Contract.Outputs = append(v.Contract.Outputs, Field{Name: "text", Type: TypeText})
	return v
}

func noSecret(t *testing.T, what string, out map[string]any, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: call succeeded with %v; want refused", what, out)
	}
	if strings.Contains(errString(err), secretBody) || strings.Contains(strings.Join(stringValues(out), " "), secretBody) {
		t.Errorf("%s: the refused server's body came back: %v %v", what, out, err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func stringValues(m map[string]any) []string {
	var out []string
	for _, v := range m {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// TestOutboundHTTPMapped: an http-mapped endpoint cannot read the server's
// loopback (literal, by host name, or through a redirect from an allowed
// server); an allowed one works.
func TestOutboundHTTPMapped(t *testing.T) {
	secret, port, p := outboundSetup(t)
	allowed := serve127(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, secret.URL+"/metrics", http.StatusFound)
			return
		}
		io.WriteString(w, "hello from "+r.URL.Path)
	}))
	m := newManager(t, Options{Outbound: p})
	ctx := context.Background()
	in := map[string]any{"image": pngImage(t, 4, 4)}

	var fe *FieldError
	if err := m.Apply(ctx, mappedVersion("literal", secret.URL, "/metrics")); !errors.As(err, &fe) || !strings.Contains(err.Error(), "refused by the outbound policy") {
		t.Errorf("loopback literal endpoint applied: %v", err)
	}

	if err := m.Apply(ctx, mappedVersion("byname", "http://localhost:"+port, "/metrics")); err != nil {
		t.Fatal(err)
	}
	out, err := m.Invoke(ctx, ref("byname", ""), in)
	noSecret(t, "localhost endpoint", out, err)
	if !errors.Is(err, netpolicy.ErrRefused) {
		t.Errorf("localhost endpoint: %v; want ErrRefused", err)
	}

	applyReady(t, m, mappedVersion("redir", allowed.URL, "/redirect"))
	out, err = m.Invoke(ctx, ref("redir", ""), in)
	noSecret(t, "redirect to loopback", out, err)

	applyReady(t, m, mappedVersion("ok", allowed.URL, "/detect"))
	out, err = m.Invoke(ctx, ref("ok", ""), in)
	if err != nil || out["text"] != "hello from /detect" {
		t.Fatalf("allowed endpoint: %v %v", out, err)
	}
}

// TestOutboundTianshuV1AndOIP: tianshu-v1 and oip-v2 endpoints on refused
// addresses never become ready and are never called; allowed ones work.
func TestOutboundTianshuV1AndOIP(t *testing.T) {
	_, _, p := outboundSetup(t)
	denied := v1Endpoint(t, &algotest.V1Server{Name: "det", Version: "1"})
	_, dport, _ := net.SplitHostPort(strings.TrimPrefix(denied.URL, "http://"))
	allowed := serve127(t, (&algotest.V1Server{Name: "det", Version: "1"}).Handler())
	m := newManager(t, Options{Outbound: p})
	ctx := context.Background()

	for _, e := range []string{"http://169.254.169.254", "http://[fd00:ec2::254]:80", denied.URL} {
		var fe *FieldError
		if err := m.Apply(ctx, endpointVersion("lit", e)); !errors.As(err, &fe) || !strings.Contains(err.Error(), "refused by the outbound policy") {
			t.Errorf("%s applied: %v", e, err)
		}
		v := endpointVersion("oiplit", e)
		v.Protocol = ProtocolOIPV2
		if err := m.Apply(ctx, v); !errors.As(err, &fe) {
			t.Errorf("oip %s applied: %v", e, err)
		}
	}

	if err := m.Apply(ctx, endpointVersion("byname", "http://localhost:"+dport)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "refusal in the instance status", func() bool {
		st := statuses(t, m, ref("byname", "1"))
		return st[0].Status != StatusReady && strings.Contains(st[0].LastError, "refused by the outbound policy")
	})
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := m.Invoke(cctx, ref("byname", ""), map[string]any{"image": pngImage(t, 4, 4)}); err == nil {
		t.Error("a refused endpoint answered")
	}

	oip := endpointVersion("oipname", "http://localhost:"+dport)
	oip.Protocol = ProtocolOIPV2
	if err := m.Apply(ctx, oip); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "oip refusal in the instance status", func() bool {
		st := statuses(t, m, ref("oipname", "1"))
		return st[0].Status != StatusReady && strings.Contains(st[0].LastError, "refused by the outbound policy")
	})

	applyReady(t, m, endpointVersion("ok", allowed.URL))
	if out, err := m.Invoke(ctx, ref("ok", ""), map[string]any{"image": pngImage(t, 8, 6)}); err != nil || out["width"] != 8.0 {
		t.Fatalf("allowed endpoint: %v %v", out, err)
	}
}

// TestOutboundPolicyLeavesProcessesAlone: the platform's own algorithm
// processes listen on loopback, which the policy refuses to endpoints.
func TestOutboundPolicyLeavesProcessesAlone(t *testing.T) {
	_, _, p := outboundSetup(t)
	m := newManager(t, Options{Outbound: p})
	applyReady(t, m, processVersion("proc", v1Package(t, v1Manifest(nil)), 1))
	if _, err := m.Invoke(context.Background(), ref("proc", ""), map[string]any{"image": pngImage(t, 8, 8)}); err != nil {
		t.Fatal(err)
	}
}
