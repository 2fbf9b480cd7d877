package config

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	// The backends a binary links in; Validate asks their registries.
	_ "github.com/tianshu-ai/tianshu/internal/blob/fileblob"
	_ "github.com/tianshu-ai/tianshu/internal/blob/s3blob"
	_ "github.com/tianshu-ai/tianshu/internal/bus/natsbus"
	_ "github.com/tianshu-ai/tianshu/internal/store/mysql"
	_ "github.com/tianshu-ai/tianshu/internal/store/postgres"
	_ "github.com/tianshu-ai/tianshu/internal/store/sqlite"
	_ "github.com/tianshu-ai/tianshu/internal/vectors/hnsw"
	_ "github.com/tianshu-ai/tianshu/internal/vectors/ivf"
)

// defaults < file < env < flags, as the package documents.
func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tianshu.yaml")
	if err := os.WriteFile(file, []byte("http_addr: 127.0.0.1:1111\ndata_dir: "+dir+"\nlog:\n  level: warn\napi:\n  max_body_bytes: 2048\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TIANSHU_CONFIG": file, "TIANSHU_HTTP_ADDR": "127.0.0.1:2222", "TIANSHU_LOG_LEVEL": "error"}
	c, err := Load(flag.NewFlagSet("t", flag.ContinueOnError), []string{"--log.level", "debug"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:2222" { // env beats file
		t.Errorf("http_addr = %s", c.HTTPAddr)
	}
	if c.Log.Level != "debug" { // flag beats env
		t.Errorf("log.level = %s", c.Log.Level)
	}
	if c.API.MaxBodyBytes != 2048 { // file beats default
		t.Errorf("api.max_body_bytes = %d", c.API.MaxBodyBytes)
	}
	if c.DB != "sqlite://"+filepath.Join(dir, "tianshu.db") || c.Bus != "nats://embedded" || !strings.HasPrefix(c.Blob, "file://") {
		t.Errorf("embedded defaults: db %s bus %s blob %s", c.DB, c.Bus, c.Blob)
	}
}

func TestUnknownFileFieldIsRefused(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	_ = os.WriteFile(file, []byte("htp_addr: x\n"), 0o600)
	_, err := Load(flag.NewFlagSet("t", flag.ContinueOnError), []string{"--config", file}, func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "htp_addr") {
		t.Fatalf("err = %v", err)
	}
}

func TestValidateNamesEveryBadField(t *testing.T) {
	env := map[string]string{"TIANSHU_BUS": "amqp://x", "TIANSHU_API_MAX_BODY_BYTES": "10", "TIANSHU_WORKER_CAPACITY": "0"}
	args := []string{"--data-dir", t.TempDir(), "--blob", "ftp://y", "--grpc-addr", "9090", "--db", "oracle://z", "--cache", "memcache://c", "--worker.lease-ttl", "1s"}
	_, err := Load(flag.NewFlagSet("t", flag.ContinueOnError), args, func(k string) string { return env[k] })
	for _, want := range []string{"config: bus:", "config: blob:", "config: db:", "config: cache:", "config: api.max_body_bytes", "config: grpc_addr", "config: worker.capacity", "config: worker.lease_ttl"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName("api.max-body-bytes"); got != "TIANSHU_API_MAX_BODY_BYTES" {
		t.Fatal(got)
	}
}

// The schemes come from the backends' registries, so every registered one
// is accepted, aliases included.
func TestValidateAcceptsRegisteredSchemes(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--data-dir", dir, "--db", "mariadb://root@127.0.0.1:3306/x", "--bus", "nats://127.0.0.1:4222", "--blob", "s3://bucket", "--cache", "rediss://127.0.0.1:6380"}
	if _, err := Load(flag.NewFlagSet("t", flag.ContinueOnError), args, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"ivf://", "ivf://" + dir + "/vectors-ivf?nprobe=32", "hnsw://"} {
		if _, err := Load(flag.NewFlagSet("t", flag.ContinueOnError), append(args, "--vectors", v), func(string) string { return "" }); err != nil {
			t.Errorf("--vectors %s: %v", v, err)
		}
	}
}

func TestWorkerConfigFromFlagsAndDefaults(t *testing.T) {
	c, err := Load(flag.NewFlagSet("t", flag.ContinueOnError), []string{"--data-dir", t.TempDir(), "--worker.labels", "zone=a, gpu=1"}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.Worker.Labels["zone"] != "a" || c.Worker.Labels["gpu"] != "1" || len(c.Worker.Labels) != 2 {
		t.Errorf("labels = %v", c.Worker.Labels)
	}
	if c.Worker.LeaseTTL != 6*time.Second || c.Worker.Capacity != 16 || c.Worker.InFlight != 4 || c.Worker.Interval != time.Second {
		t.Errorf("worker defaults = %+v", c.Worker)
	}
}

func TestAuditConfig(t *testing.T) {
	load := func(args []string, env map[string]string) (Config, error) {
		return Load(flag.NewFlagSet("t", flag.ContinueOnError), append([]string{"--data-dir", t.TempDir()}, args...), func(k string) string { return env[k] })
	}
	c, err := load(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Audit.Retention != 0 || c.Audit.RetentionInterval != 10*time.Minute {
		t.Errorf("audit defaults = %+v; want keep forever, every 10m", c.Audit)
	}
	c, err = load([]string{"--audit.retention", "2160h"}, map[string]string{"TIANSHU_AUDIT_RETENTION_INTERVAL": "1h"})
	if err != nil || c.Audit.Retention != 2160*time.Hour || c.Audit.RetentionInterval != time.Hour {
		t.Errorf("audit from flags and env = %+v, %v", c.Audit, err)
	}
	_, err = load([]string{"--audit.retention", "5m", "--audit.retention-interval", "0s"}, nil)
	for _, want := range []string{"config: audit.retention: must be 0 (forever) or at least 1h", "config: audit.retention_interval"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

func TestOutboundConfig(t *testing.T) {
	load := func(args []string, env map[string]string) (Config, error) {
		return Load(flag.NewFlagSet("t", flag.ContinueOnError), append([]string{"--data-dir", t.TempDir()}, args...), func(k string) string { return env[k] })
	}
	c, err := load(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Outbound.AllowLoopback || c.Outbound.AllowOnly || len(c.Outbound.Allow)+len(c.Outbound.Deny) != 0 {
		t.Errorf("outbound defaults = %+v; want no rules and loopback refused", c.Outbound)
	}
	c, err = load([]string{"--outbound.deny", "10.9.0.0/16,10.8.0.1:22"}, map[string]string{"TIANSHU_OUTBOUND_ALLOW_LOOPBACK": "true", "TIANSHU_OUTBOUND_ALLOW": "127.0.0.1:9000"})
	if err != nil || !c.Outbound.AllowLoopback || len(c.Outbound.Deny) != 2 || c.Outbound.Allow[0] != "127.0.0.1:9000" {
		t.Errorf("outbound from flags and env = %+v, %v", c.Outbound, err)
	}
	_, err = load([]string{"--outbound.allow", "example.com"}, nil)
	if err == nil || !strings.Contains(err.Error(), "config: outbound.allow: ") {
		t.Errorf("bad rule: %v", err)
	}
}
func TestExecAndMediaConfig(t *testing.T) {
	dir := t.TempDir()
	load := func(args []string, env map[string]string) (Config, error) {
		return Load(flag.NewFlagSet("t", flag.ContinueOnError), append([]string{"--data-dir", dir}, args...), func(k string) string { return env[k] })
	}
	c, err := load(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Exec.Allow) != 0 || c.Exec.User != "" || c.Exec.Limits.OpenFiles != 4096 || c.Exec.Limits.AddressSpace != 16<<30 {
		t.Errorf("exec defaults = %+v; want nothing allowed and the default limits", c.Exec)
	}
	if want := []string{filepath.Join(dir, "media"), filepath.Join(dir, "demo")}; !slices.Equal(c.Media.Root, want) {
		t.Errorf("media roots = %v; want %v", c.Media.Root, want)
	}
	c, err = load([]string{"--exec.allow", "/opt/a,/opt/b", "--exec.allow", "/opt/c", "--exec.user", "nobody", "--exec.rlimit-nofile", "256", "--media.root", "/srv/media"},
		map[string]string{"TIANSHU_EXEC_RLIMIT_CPU": "3600"})
	if err != nil || !slices.Equal(c.Exec.Allow, []string{"/opt/a", "/opt/b", "/opt/c"}) || c.Exec.User != "nobody" ||
		c.Exec.Limits.OpenFiles != 256 || c.Exec.Limits.CPUSeconds != 3600 || !slices.Equal(c.Media.Root, []string{"/srv/media"}) {
		t.Errorf("exec from flags and env = %+v %+v, %v", c.Exec, c.Media, err)
	}
	_, err = load([]string{"--exec.allow", "bin", "--exec.allow", "/", "--media.root", "/"}, nil)
	for _, want := range []string{"config: exec.allow: \"bin\" is not an absolute path", "config: exec.allow: / would allow", "config: media.root: /"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

// The unpacked-size limit of algorithm packages is the node's to set
// (issue #26, part 6), 2 GiB by default.
func TestMaxPackageBytes(t *testing.T) {
	load := func(args ...string) (Config, error) {
		return Load(flag.NewFlagSet("t", flag.ContinueOnError), append([]string{"--data-dir", t.TempDir()}, args...), func(string) string { return "" })
	}
	c, err := load()
	if err != nil || c.Worker.MaxPackageBytes != 2<<30 {
		t.Fatalf("default max_package_bytes = %d, %v", c.Worker.MaxPackageBytes, err)
	}
	if c, err = load("--worker.max-package-bytes", "1048576"); err != nil || c.Worker.MaxPackageBytes != 1<<20 {
		t.Fatalf("--worker.max-package-bytes 1048576 = %d, %v", c.Worker.MaxPackageBytes, err)
	}
	if _, err = load("--worker.max-package-bytes", "0"); err == nil || !strings.Contains(err.Error(), "worker.max_package_bytes") {
		t.Fatalf("max_package_bytes 0: %v", err)
	}
}

// The Kubernetes cluster is off by default and configured by a kubeconfig
// or the pod's service account, never both (issue #19).
func TestKubeConfig(t *testing.T) {
	dir := t.TempDir()
	load := func(args []string, env map[string]string) (Config, error) {
		return Load(flag.NewFlagSet("t", flag.ContinueOnError), append([]string{"--data-dir", dir}, args...), func(k string) string { return env[k] })
	}
	c, err := load(nil, map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1"})
	if err != nil || c.Kube.Enabled() {
		t.Fatalf("default kube = %+v (%v); want none, even in a pod", c.Kube, err)
	}
	c, err = load([]string{"--kube.kubeconfig", "/etc/kube.yaml"}, map[string]string{"TIANSHU_KUBE_NAMESPACE": "algos"})
	if err != nil || !c.Kube.Enabled() || c.Kube.Kubeconfig != "/etc/kube.yaml" || c.Kube.Namespace != "algos" {
		t.Errorf("kube from flag and env = %+v, %v", c.Kube, err)
	}
	if c, err = load([]string{"--kube.in-cluster"}, nil); err != nil || !c.Kube.Enabled() {
		t.Errorf("--kube.in-cluster = %+v, %v", c.Kube, err)
	}
	_, err = load([]string{"--kube.in-cluster", "--kube.kubeconfig", "/k", "--kube.namespace", "Algos_1"}, nil)
	for _, want := range []string{"config: kube.in_cluster: cannot be set together", "config: kube.namespace: \"Algos_1\" is not a DNS label"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

func TestLogConfig(t *testing.T) {
	load := func(args []string, env map[string]string) (Config, error) {
		return Load(flag.NewFlagSet("t", flag.ContinueOnError), append([]string{"--data-dir", t.TempDir()}, args...), func(k string) string { return env[k] })
	}
	c, err := load(nil, nil)
	if err != nil || c.Log.Format != "auto" || c.Log.RecentLines != 1000 || c.Log.RecentBytes != 1<<20 {
		t.Fatalf("defaults: %+v %v", c.Log, err)
	}
	c, err = load([]string{"--log.format", "text", "--log.recent-lines", "0"}, map[string]string{"TIANSHU_LOG_RECENT_BYTES": "65536"})
	if err != nil || c.Log.Format != "text" || c.Log.RecentLines != 0 || c.Log.RecentBytes != 64<<10 {
		t.Fatalf("set: %+v %v", c.Log, err)
	}
	_, err = load([]string{"--log.format", "yaml", "--log.recent-lines", "-1", "--log.recent-bytes", "10"}, nil)
	for _, f := range []string{"log.format", "log.recent_lines", "log.recent_bytes"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("error %v does not name %s", err, f)
		}
	}
}
