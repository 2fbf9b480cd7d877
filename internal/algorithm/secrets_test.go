package algorithm

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// A process version's secrets reach its environment, never its command
// line ($NAME in the manifest's args stays as written), and its logs show
// them masked (issue #26, part 5).
func TestProcessSecretsInEnvironmentOnly(t *testing.T) {
	const token = "tok-5e3c1b9a"
	m := newManager(t, Options{})
	man := v1Manifest(map[string]string{"ECHO_ENV": "VENDOR_TOKEN"})
	man["args"] = []string{"--token=$VENDOR_TOKEN"}
	v := processVersion("sec", v1Package(t, man), 1)
	v.SecretNames, v.Secrets = []string{"VENDOR_TOKEN"}, map[string]string{"VENDOR_TOKEN": token}
	applyReady(t, m, v)
	var st InstanceStatus
	testenv.Eventually(t, 30*time.Second, "the process printed its environment", func() bool {
		st = statuses(t, m, ref("sec", "1"))[0]
		return strings.Contains(joinLogs(st.Logs), "env VENDOR_TOKEN is")
	})
	logs := joinLogs(st.Logs)
	if !strings.Contains(logs, "env VENDOR_TOKEN is ***") || strings.Contains(logs, token) {
		t.Fatalf("logs show the secret unmasked or the process did not get it:\n%s", logs)
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(st.PID) + "/cmdline")
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	if strings.Contains(string(cmdline), token) || !strings.Contains(string(cmdline), "--token=$VENDOR_TOKEN") {
		t.Fatalf("command line %q", cmdline)
	}
}

// ${secret:NAME} in a header value is replaced by the secret; an unknown
// name or an unclosed reference is an error that names no value.
func TestWithSecrets(t *testing.T) {
	sec := map[string]string{"KEY": "s3cr3t-value"}
	for in, want := range map[string]string{
		"Bearer ${secret:KEY}":        "Bearer s3cr3t-value",
		"${secret:KEY}:${secret:KEY}": "s3cr3t-value:s3cr3t-value",
		"plain":                       "plain",
	} {
		if got, err := withSecrets(in, sec); err != nil || got != want {
			t.Errorf("withSecrets(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"${secret:OTHER}": `the version has no secret named "OTHER"`,
		"${secret:KEY":    "${secret: without its closing }",
	} {
		if _, err := withSecrets(in, sec); err == nil || err.Error() != want {
			t.Errorf("withSecrets(%q): %v; want %q", in, err, want)
		}
	}
}
