// Package testenv gives tests one way to find the real services and tools they
// need, and one rule for what happens when one is missing: skip with a clear
// reason on a developer's machine, fail in CI (TIANSHU_CI=1), where .ci/run is
// responsible for installing and starting everything.
//
// It stays light: the test algorithm servers that tests pack and upload
// (internal/algorithm/testdata/v1server, under the 3 MB request limit)
// link it, so anything that pulls in a large module (Prometheus' client,
// for one) belongs in a package of its own (vlogtest has the metric
// helpers).
package testenv

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// InCI reports whether missing services and tools must fail tests instead of
// skipping them. .ci/run sets TIANSHU_CI=1.
func InCI() bool { return os.Getenv("TIANSHU_CI") == "1" }

// Unavailable skips the test with reason, or fails it in CI.
func Unavailable(t testing.TB, reason string) {
	t.Helper()
	if InCI() {
		t.Fatalf("required in CI (TIANSHU_CI=1): %s", reason)
	}
	t.Skip(reason)
}

// Getenv returns the environment variable key, or def when it is unset.
func Getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// NeedTCP checks that addr (host:port) accepts connections, and otherwise
// calls Unavailable naming what is missing.
func NeedTCP(t testing.TB, what, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		Unavailable(t, what+" not reachable at "+addr+": "+err.Error())
		return
	}
	_ = c.Close()
}

// NeedCommand returns the path of a program on PATH, or calls Unavailable.
func NeedCommand(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Unavailable(t, name+" not found on PATH: "+err.Error())
	}
	return p
}

// PostgresURL is the PostgreSQL server tests use (database "test").
func PostgresURL() string {
	return Getenv("TIANSHU_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
}

// MySQLURL is the MariaDB/MySQL server tests use (database "test").
func MySQLURL() string { return Getenv("TIANSHU_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test") }

// NATSURL is the external NATS server with JetStream tests use.
func NATSURL() string { return Getenv("TIANSHU_TEST_NATS", "nats://127.0.0.1:4222") }

// RedisURL is the Redis server tests use.
func RedisURL() string { return Getenv("TIANSHU_TEST_REDIS", "redis://127.0.0.1:6379/0") }

// Eventually polls cond every 20 ms until it holds, failing the test with
// what it waited for once d has passed. Tests wait for conditions this way
// rather than for fixed times, which are flaky on a shared machine.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	EventuallyExplained(t, d, what, cond, nil)
}

// EventuallyExplained is Eventually whose failure also says what was seen
// last (explain, when not nil, is called once, at the deadline): the
// state, a process's log.
func EventuallyExplained(t testing.TB, d time.Duration, what string, cond func() bool, explain func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			if explain != nil {
				t.Fatalf("timed out after %s waiting for %s: %s", d, what, explain())
			}
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// KillChild runs the test named run (as t.Name() says it, subtests
// included) in a child process with env added,
// hands each line it prints to line, kills it with SIGKILL once line
// returns true, and hands line what the child printed until it died (it
// was acknowledged too).
func KillChild(t *testing.T, run, env string, line func(string) bool) {
	t.Helper()
	parts := strings.Split(run, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	cmd := exec.Command(os.Args[0], "-test.run="+strings.Join(parts, "/"), "-test.count=1")
	cmd.Env = append(os.Environ(), env)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() && !line(sc.Text()) {
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		line(sc.Text())
	}
	_ = cmd.Wait()
}
