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
	e, flowID := setUpLoad(t, problems) // the default concurrency limits
	// TIANSHU_LOAD_CALLS raises the calls per client, to hunt rare failures.
	calls, err := strconv.Atoi(testenv.Getenv("TIANSHU_LOAD_CALLS", "150"))
	if err != nil {
		t.Fatalf("TIANSHU_LOAD_CALLS: %v", err)
	}
	codes := loadFaceRoute(e.Endpoint, flowID, 64, calls)
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

// setUpLoad starts a platform with args, creates the face-route flow and
// lifts the admin app's rate limits; it returns the platform and the flow.
func setUpLoad(t *testing.T, logs io.Writer, args ...string) (*apptest.Env, string) {
	t.Helper()
	e := apptest.Start(t, apptest.Options{Logs: logs, Args: append([]string{"--api.project-rps", "0"}, args...)})
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
	return e, flowID
}

// loadFaceRoute calls InvokeFlow (three calls in four) and DescribeApps
// from clients at once, calls each, and counts the answers by "action
// code" (code "" on success).
func loadFaceRoute(endpoint, flowID string, clients, calls int) map[string]int {
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
				code := signedCall(client, endpoint, action, params)
				mu.Lock()
				codes[action+" "+code]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return codes
}

// TestOverloadAnswersRetriable runs the same load against deliberately
// small concurrency limits (one call of a class at a time, a queue of two,
// a wait of a millisecond): every answer is a success or the documented
// refusal of a busy server, RequestLimitExceeded with Retry-After — never
// InternalError, never another code.
func TestOverloadAnswersRetriable(t *testing.T) {
	if testing.Short() {
		t.Skip("a load test; skipped with -short")
	}
	problems := &levelLines{levels: []string{`"level":"ERROR"`}}
	e, flowID := setUpLoad(t, problems, "--api.concurrency.read", "1", "--api.concurrency.invoke", "1",
		"--api.concurrency.queue", "2", "--api.concurrency.queue-wait", "1ms")
	codes := loadFaceRoute(e.Endpoint, flowID, 32, 40)
	var bad []string
	refused := 0
	for k, n := range codes {
		_, code, _ := strings.Cut(k, " ")
		switch {
		case code == "":
		case strings.HasPrefix(code, "RequestLimitExceeded: server busy") && strings.HasSuffix(code, "[Retry-After 1]"):
			refused += n
		default:
			bad = append(bad, fmt.Sprintf("%s ×%d", k, n))
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Fatalf("answers other than success or a retriable refusal: %s; the server's errors:\n%s", strings.Join(bad, ", "), problems)
	}
	if refused == 0 {
		t.Errorf("32 clients against a limit of 1 and a queue of 2 were never refused: %v", codes)
	}
	if p := problems.String(); p != "" {
		t.Errorf("the server logged errors:\n%s", p)
	}
	t.Logf("answers: %v", codes)
}

// signedCall signs params with the admin key and returns the error code
// and message ("" on success, "transport: …" when no answer came), and the
// Retry-After header when the answer has one.
func signedCall(client *http.Client, endpoint, action string, params map[string]any) string {
	_, code := signedCallAs(client, endpoint, tc3.Signer{SecretID: apptest.AdminSecretID, SecretKey: apptest.AdminSecretKey}, action, params)
	return code
}

// signedCallAs is signedCall with the key of s, returning the answer too.
// Each request signs a random X-TC-TraceId, so identical calls in one
// second are not refused as replays (as the official SDKs' would be).
func signedCallAs(client *http.Client, endpoint string, s tc3.Signer, action string, params map[string]any) (map[string]any, string) {
	body, _ := json.Marshal(params)
	req, _ := http.NewRequest(http.MethodPost, endpoint+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-TC-Action", action)
	req.Header.Set("X-TC-Version", api.Version)
	s.Sign(req, body, time.Now())
	resp, err := client.Do(req)
	if err != nil {
		return nil, "transport: " + err.Error()
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out struct {
		Response map[string]any
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Sprintf("status %d: %.80s", resp.StatusCode, raw)
	}
	if e, ok := out.Response["Error"].(map[string]any); ok {
		code := fmt.Sprint(e["Code"], ": ", e["Message"])
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			code += " [Retry-After " + ra + "]"
		}
		return nil, code
	}
	return out.Response, ""
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
