package app_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/api/tc3"
	"github.com/tianshu-ai/tianshu/internal/app/apptest"
)

// signedRaw calls an action signed with a key pair and returns the whole
// Response object, errors included, as text.
func signedRaw(t *testing.T, e *apptest.Env, id, key, action string, params any) string {
	t.Helper()
	body, _ := json.Marshal(params)
	req, err := http.NewRequest(http.MethodPost, e.Endpoint+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-TC-Action", action)
	req.Header.Set("X-TC-Version", api.Version)
	tc3.Signer{SecretID: id, SecretKey: key}.Sign(req, body, time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	_, _ = out.ReadFrom(resp.Body)
	return out.String()
}

// Through the gateway: a version's secret reaches the vendor's endpoint as
// a header, while a viewer's DescribeAlgorithmVersions, the failing call's
// error (the vendor echoes the key) and the audit log never show it
// (issue #26, part 5).
func TestAlgorithmSecretsThroughGateway(t *testing.T) {
	const key = "sk-vendor-93be41d7c0"
	var mu sync.Mutex
	var got []string
	vendor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Authorization"))
		mu.Unlock()
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"error": "` + r.Header.Get("Authorization") + ` may not call this"}`))
			return
		}
		w.Write([]byte(`{}`))
	}))
	defer vendor.Close()
	e := apptest.Start(t, apptest.Options{}) // loopback allowed for the vendor
	admin := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	algID := admin.mustCall("CreateAlgorithm", map[string]any{"Name": "vendor-api"})["AlgorithmId"].(string)
	def := map[string]any{"runtime": "endpoint", "protocol": "http-mapped", "endpoints": []string{vendor.URL},
		"contract": map[string]any{"inputs": []any{map[string]any{"name": "mode", "type": "text", "required": true}},
			"outputs": []any{map[string]any{"name": "ok", "type": "bool"}}},
		"mapping": map[string]any{
			"request":  "def main(input):\n    return {\"path\": \"/\" + input[\"mode\"], \"headers\": {\"Authorization\": \"Bearer ${secret:VENDOR_KEY}\"}, \"json\": {}}\n",
			"response": "def main(resp):\n    return {\"ok\": True}\n"}}
	admin.mustCall("CreateAlgorithmVersion", map[string]any{"AlgorithmId": algID, "Definition": def, "Start": true,
		"Secrets": []map[string]string{{"Name": "VENDOR_KEY", "Value": key}}})

	vid := admin.mustCall("CreateApp", map[string]any{"Name": "wall", "Role": "viewer"})["AppId"].(string)
	vk := admin.mustCall("CreateAppKey", map[string]any{"AppId": vid})
	desc := signedRaw(t, e, vk["SecretId"].(string), vk["SecretKey"].(string), "DescribeAlgorithmVersions", map[string]any{"AlgorithmId": algID})
	if strings.Contains(desc, key) || !strings.Contains(desc, `"Secrets":[{"Name":"VENDOR_KEY","Value":"***"}]`) {
		t.Fatalf("viewer's DescribeAlgorithmVersions: %s", desc)
	}

	admin.mustCall("InvokeAlgorithm", map[string]any{"AlgorithmId": algID, "Inputs": map[string]any{"mode": "ok"}})
	failed := signedRaw(t, e, apptest.AdminSecretID, apptest.AdminSecretKey, "InvokeAlgorithm", map[string]any{"AlgorithmId": algID, "Inputs": map[string]any{"mode": "fail"}})
	if !strings.Contains(failed, `"Error"`) || strings.Contains(failed, key) || !strings.Contains(failed, "Bearer *** may not call this") {
		t.Fatalf("failing call: %s", failed)
	}
	mu.Lock()
	if len(got) != 2 || got[0] != "Bearer "+key || got[1] != "Bearer "+key {
		t.Fatalf("the vendor received %q", got)
	}
	mu.Unlock()
	audit := signedRaw(t, e, apptest.AdminSecretID, apptest.AdminSecretKey, "DescribeAuditEvents", map[string]any{"Limit": 100})
	if strings.Contains(audit, key) || !strings.Contains(audit, "CreateAlgorithmVersion") {
		t.Fatalf("audit log: %s", audit)
	}
}
