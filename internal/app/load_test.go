package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/api/tc3"
	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// faceRouteFile is the hot path's flow (issue #18): a script keeps the
// adults of a list of faces, a switch routes on how many.
const faceRouteFile = "../flow/testdata/face-route.json"

// TestNoErrorUnderLoad calls InvokeFlow and DescribeApps from many clients
// at once, far more than the machine has cores, and expects every correct
// request to succeed: a busy server may be slow, never wrong.
func TestNoErrorUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("a load test; skipped with -short")
	}
	problems := &levelLines{levels: []string{`"level":"ERROR"`, `"level":"WARN"`}}
	e := apptest.Start(t, apptest.Options{Logs: problems, Args: []string{"--api.project-rps", "0"}})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	doc, err := os.ReadFile(faceRouteFile)
	if err != nil {
		t.Fatal(err)
	}
	flowID := c.mustCall("CreateFlow", map[string]any{"Document": string(doc)})["FlowId"].(string)
	// The load is the point: the app's own rate limits (and, above, the
	// project's) are lifted, as a platform admin does for a trusted
	// integration.
	appID := c.mustCall("DescribeApps", map[string]any{"Limit": 1})["AppSet"].([]any)[0].(map[string]any)["AppId"]
	c.mustCall("ModifyApp", map[string]any{"AppId": appID, "RateLimit": map[string]any{"ReadRps": 1e6, "WriteRps": 1e6, "Burst": 1e7}})

	// TIANSHU_LOAD_CALLS raises the calls per client, to hunt rare failures.
	const clients = 64
	calls, err := strconv.Atoi(testenv.Getenv("TIANSHU_LOAD_CALLS", "150"))
	if err != nil {
		t.Fatalf("TIANSHU_LOAD_CALLS: %v", err)
	}
	faces := make([]map[string]any, 5)
	for i := range faces {
		faces[i] = map[string]any{"age": 10 + 5*i, "box": []int{i * 10, 20, 40, 40}}
	}
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	var mu sync.Mutex
	codes := map[string]int{}
	var wg sync.WaitGroup
	for w := range clients {
		wg.Go(func() {
			for i := range calls {
				action, params := "InvokeFlow", map[string]any{"FlowId": flowID, "Input": map[string]any{"faces": faces, "seq": fmt.Sprint(w, "-", i)}}
				if i%4 == 3 {
					n := w*calls + i // a body of its own: a repeated one is refused as a replay
					action, params = "DescribeApps", map[string]any{"Limit": 1 + n%100, "Offset": n / 100}
				}
				code := signedCall(client, e.Endpoint, action, params)
				mu.Lock()
				codes[action+" "+code]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	var bad []string
	for k, n := range codes {
		if !strings.HasSuffix(k, " ") {
			bad = append(bad, fmt.Sprintf("%s ×%d", k, n))
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Fatalf("correct requests failed under load: %s (all: %v); the server's warnings and errors:\n%s", strings.Join(bad, ", "), codes, problems)
	}
	t.Logf("answers: %v", codes)
}

// signedCall signs params with the admin key and returns the error code
// ("" on success, "transport: …" when no answer came).
func signedCall(client *http.Client, endpoint, action string, params map[string]any) string {
	body, _ := json.Marshal(params)
	req, _ := http.NewRequest(http.MethodPost, endpoint+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-TC-Action", action)
	req.Header.Set("X-TC-Version", api.Version)
	tc3.Signer{SecretID: apptest.AdminSecretID, SecretKey: apptest.AdminSecretKey}.Sign(req, body, time.Now())
	resp, err := client.Do(req)
	if err != nil {
		return "transport: " + err.Error()
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out struct {
		Response struct {
			Error struct{ Code, Message string }
		}
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return fmt.Sprintf("status %d: %.80s", resp.StatusCode, raw)
	}
	if out.Response.Error.Code != "" {
		return out.Response.Error.Code + ": " + out.Response.Error.Message
	}
	return ""
}

// levelLines keeps the log lines that hold one of levels (the platform
// logs JSON, one record per write).
type levelLines struct {
	levels []string
	mu     sync.Mutex
	kept   []string
}

func (l *levelLines) Write(p []byte) (int, error) {
	for _, lv := range l.levels {
		if bytes.Contains(p, []byte(lv)) {
			l.mu.Lock()
			if len(l.kept) < 200 {
				l.kept = append(l.kept, string(p))
			}
			l.mu.Unlock()
			break
		}
	}
	return len(p), nil
}

func (l *levelLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.kept, "")
}
