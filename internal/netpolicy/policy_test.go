package netpolicy

import (
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

func mustNew(t *testing.T, cfg Config, self ...string) *Policy {
	t.Helper()
	p, err := New(cfg, self...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	p := mustNew(t, Default(), "0.0.0.0:8080", "[::1]:9090")
	for _, c := range []struct {
		addr string
		ok   bool
	}{
		{"10.1.2.3:554", true},
		{"192.168.1.64:80", true},
		{"172.16.0.5:8000", true},
		{"[fd12::5]:80", true},
		{"8.8.8.8:443", true},
		{"127.0.0.1:80", false},
		{"127.9.9.9:80", false},
		{"[::1]:80", false},
		{"[::ffff:127.0.0.1]:80", false},
		{"0.0.0.0:80", false},
		{"[::]:80", false},
		{"169.254.169.254:80", false},
		{"169.254.1.1:80", false},
		{"[fe80::1]:80", false},
		{"[fd00:ec2::254]:80", false},
		{"100.100.100.200:80", false},
		{"239.255.255.250:3702", false},
		{"[ff02::1]:3702", false},
		{"255.255.255.255:80", false},
	} {
		err := p.Check(netip.MustParseAddrPort(c.addr))
		if (err == nil) != c.ok {
			t.Errorf("%s: got %v, want ok=%v", c.addr, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrRefused) {
			t.Errorf("%s: %v does not wrap ErrRefused", c.addr, err)
		}
	}
	err := p.Check(netip.MustParseAddrPort("169.254.169.254:80"))
	if !strings.Contains(err.Error(), "169.254.169.254:80") || !strings.Contains(err.Error(), "169.254.0.0/16") {
		t.Errorf("error does not name the address and the rule: %v", err)
	}
}

func TestSwitchesAndRules(t *testing.T) {
	p := mustNew(t, Config{AllowLoopback: true, Deny: []string{"10.0.0.0/8:22", "192.168.7.7"}}, "127.0.0.1:8080", "[::]:9443")
	for _, c := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:9000", true},
		{"[::1]:9000", true},
		{"127.0.0.1:8080", false}, // self
		{"127.0.0.5:9443", false}, // self, unspecified listen host
		{"10.0.0.1:22", false},
		{"10.0.0.1:23", true},
		{"192.168.7.7:80", false},
		{"169.254.169.254:80", false},
	} {
		if err := p.Check(netip.MustParseAddrPort(c.addr)); (err == nil) != c.ok {
			t.Errorf("%s: got %v, want ok=%v", c.addr, err, c.ok)
		}
	}

	p = mustNew(t, Config{Allow: []string{"127.0.0.2", "[::1]:8000-8100", "169.254.169.254/32:80"}, Deny: []string{"127.0.0.2:25"}})
	for _, c := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.2:80", true},
		{"127.0.0.2:25", false}, // deny wins
		{"127.0.0.1:80", false},
		{"[::1]:8050", true},
		{"[::1]:8101", false},
		{"169.254.169.254:80", true},
		{"169.254.169.254:81", false},
	} {
		if err := p.Check(netip.MustParseAddrPort(c.addr)); (err == nil) != c.ok {
			t.Errorf("%s: got %v, want ok=%v", c.addr, err, c.ok)
		}
	}

	p = mustNew(t, Config{Allow: []string{"10.0.5.0/24"}, AllowOnly: true})
	if err := p.Check(netip.MustParseAddrPort("10.0.5.9:554")); err != nil {
		t.Error(err)
	}
	if err := p.Check(netip.MustParseAddrPort("10.0.6.9:554")); !errors.Is(err, ErrRefused) {
		t.Errorf("allow-only: got %v", err)
	}

	var none *Policy
	if err := none.Check(netip.MustParseAddrPort("127.0.0.1:1")); err != nil {
		t.Errorf("nil policy: %v", err)
	}
}

func TestConfig(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"--outbound.allow", "1.2.3.4", "--outbound.allow", "127.0.0.1:9000, 10.0.0.0/8,::1", "--outbound.deny", "10.9.0.0/16:1-1024", "--outbound.allow-loopback"}); err != nil {
		t.Fatal(err)
	}
	if len(c.Allow) != 3 || len(c.Deny) != 1 || !c.AllowLoopback {
		t.Fatalf("parsed %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "host.example", "10.0.0.0/33", "1.2.3.4:0", "1.2.3.4:x", "10.0.0.0/8:90-80", "fe80::1%eth0", "::ffff:10.0.0.0/104"} {
		if err := (Config{Deny: []string{bad}}).Validate(); err == nil || !strings.Contains(err.Error(), "outbound.deny") {
			t.Errorf("%q: got %v", bad, err)
		}
	}
	if err := (Config{AllowOnly: true}).Validate(); err == nil {
		t.Error("allow_only without rules validated")
	}
}

func TestCheckURLAndResolved(t *testing.T) {
	p := mustNew(t, Config{Allow: []string{"127.0.0.2"}})
	u, _ := url.Parse("rtsp://127.0.0.1/stream")
	if err := p.CheckURL(u); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "127.0.0.1:554") {
		t.Errorf("literal: %v", err)
	}
	u, _ = url.Parse("http://localhost:9/")
	if err := p.CheckURL(u); err != nil {
		t.Errorf("host names pass CheckURL (the dialer checks them): %v", err)
	}
	if err := p.CheckResolved(context.Background(), u); !errors.Is(err, ErrRefused) {
		t.Errorf("localhost resolved: %v", err)
	}
	u, _ = url.Parse("http://127.0.0.2:9/")
	if err := p.CheckResolved(context.Background(), u); err != nil {
		t.Errorf("allowed: %v", err)
	}
	if err := p.CheckHostPort(context.Background(), "localhost:3702"); !errors.Is(err, ErrRefused) {
		t.Errorf("host port: %v", err)
	}
	// Port 0, not known: deny rules with ports still refuse, allow rules
	// with ports do not allow.
	p = mustNew(t, Config{Allow: []string{"127.0.0.3:80"}, Deny: []string{"10.0.0.0/8:22"}})
	if err := p.CheckHost(context.Background(), "10.1.1.1", 0); !errors.Is(err, ErrRefused) || strings.Contains(err.Error(), ":0") {
		t.Errorf("deny rule with a port, port unknown: %v", err)
	}
	if err := p.CheckHost(context.Background(), "127.0.0.3", 0); !errors.Is(err, ErrRefused) {
		t.Errorf("allow rule with a port, port unknown: %v", err)
	}
	if err := p.CheckHost(context.Background(), "192.168.0.1", 0); err != nil {
		t.Error(err)
	}
}

// listen127 starts a server on 127.0.0.2 (every 127/8 address is this host
// on Linux), which tests allow while 127.0.0.1 stays refused.
func listen127(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2: %v", err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func TestDialerRefusesAtConnectTime(t *testing.T) {
	secret := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "secret") }))
	defer secret.Close()
	allowed := listen127(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, secret.URL, http.StatusFound)
			return
		}
		io.WriteString(w, "ok")
	}))
	p := mustNew(t, Config{Allow: []string{"127.0.0.2"}})
	d := p.Guard(&net.Dialer{Timeout: 2 * time.Second})
	client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}

	get := func(u string) (string, error) {
		resp, err := client.Get(u)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	if body, err := get(allowed.URL); err != nil || body != "ok" {
		t.Fatalf("allowed: %q %v", body, err)
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(secret.URL, "http://"))
	for _, u := range []string{secret.URL, "http://localhost:" + port, allowed.URL + "/redirect"} {
		body, err := get(u)
		if !errors.Is(err, ErrRefused) || body != "" {
			t.Errorf("%s: got %q, %v; want refused", u, body, err)
		}
	}
	// Unix sockets are not network destinations.
	if err := p.Control("unix", "/tmp/x.sock", nil); err != nil {
		t.Error(err)
	}
}
