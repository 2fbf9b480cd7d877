package app_test

import (
	"encoding/base64"
	"net"
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
)

// TestOutboundCannotReachTheServerItself: even where loopback is allowed
// (apptest allows it for its test servers), nothing a tenant configures can
// reach the server's own listen address: not an algorithm (the issue's
// http-mapped endpoint reading /metrics through InvokeAlgorithm), not a
// device probe, not discovery. Link-local stays refused too.
func TestOutboundCannotReachTheServerItself(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	_, port, _ := net.SplitHostPort(e.Host)
	const metricsMark = "go_goroutines"

	alg := c.mustCall("CreateAlgorithm", map[string]any{"Name": "metrics-reader"})["AlgorithmId"].(string)
	c.mustCall("CreateAlgorithmVersion", map[string]any{"AlgorithmId": alg, "Start": true, "Definition": map[string]any{
		"runtime": "endpoint", "protocol": "http-mapped", "endpoints": []string{"http://localhost:" + port},
		"contract": map[string]any{"inputs": []any{map[string]any{"name": "image", "type": "image"}},
			"outputs": []any{map[string]any{"name": "text", "type": "text"}}},
		"mapping": map[string]any{
			"request":  "def main(input):\n    return {\"method\": \"GET\", \"path\": \"/metrics\"}\n",
			"response": "def main(resp):\n    return {\"text\": resp[\"text\"]}\n",
		}}})
	img := base64.StdEncoding.EncodeToString(pngImage(8, 8))
	out, code := c.call("InvokeAlgorithm", map[string]any{"AlgorithmId": alg, "Image": img})
	if code == "" || strings.Contains(toJSON(out), metricsMark) {
		t.Errorf("InvokeAlgorithm read the server's /metrics: %q %.200s", code, toJSON(out))
	}

	for _, addr := range []string{"http://" + e.Host + "/metrics", "http://localhost:" + port + "/metrics", "http://169.254.169.254/latest/meta-data/"} {
		p := c.mustCall("ProbeDevice", map[string]any{"Device": map[string]any{"Driver": "http-snapshot", "Address": addr}})
		if p["Online"] != false || p["Reason"] != "policy" || strings.Contains(toJSON(p), metricsMark) {
			t.Errorf("probe of %s: %v", addr, p)
		}
	}

	for _, u := range []string{"http://" + e.Host + "/hook", "http://[fd00:ec2::254]/hook"} {
		if _, code := c.call("CreateSubscription", map[string]any{"Name": "self", "Channel": map[string]any{"Type": "webhook", "Webhook": map[string]any{"Url": u}}}); code != "InvalidParameterValue" {
			t.Errorf("webhook to %s: %q", u, code)
		}
	}

	for _, target := range []string{e.Host, "169.254.169.254:3702"} {
		if _, code := c.call("DiscoverDevices", map[string]any{"Target": target, "TimeoutMs": 200}); code != "InvalidParameterValue" {
			t.Errorf("discovery to %s: %q", target, code)
		}
	}
}
