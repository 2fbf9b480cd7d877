// Package kubetest runs a real Kubernetes control plane for tests: a real
// etcd (Debian's etcd-server) and a real kube-apiserver (built from the
// k8s.io/kubernetes module by scripts/install-kube.sh), on loopback ports
// and a temporary directory, with a self-signed serving certificate and
// static bearer tokens. There is no kubelet and no scheduler: tests check
// the objects that code creates, and play the kubelet's part by writing
// status themselves. A kube-controller-manager is started on request, so
// that Deployments get ReplicaSets and Pods (which then stay Pending).
//
// When a binary is missing the test is skipped with the reason. It fails
// instead where TIANSHU_REQUIRE_KUBE=1: CI sets that once it runs
// scripts/install-kube.sh (a cold build of the control plane takes longer
// than CI's budget allows on a fresh machine, so CI does not require it
// yet; see docs/kubernetes.md). The package uses the standard library only,
// so a test can reach the API server with net/http or with client-go.
package kubetest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// KubeVersion is the Kubernetes release scripts/install-kube.sh builds;
// the cache directory is named after it.
const KubeVersion = "v1.37.2"

// Users the API server knows by static token. AdminUser is in
// system:masters and may do anything; LimitedUser is only authenticated,
// so RBAC denies it everything that no Role grants (for permission tests).
const (
	AdminUser   = "tianshu-admin"
	LimitedUser = "tianshu-limited"
)

// Options change what Start runs.
type Options struct {
	// ControllerManager also starts kube-controller-manager (Deployments
	// get ReplicaSets and Pods, namespaces are finalized on delete).
	ControllerManager bool
}

// Env is a running control plane.
type Env struct {
	// Host is the API server's URL, https://127.0.0.1:PORT.
	Host string
	// CAPEM is the PEM certificate that signed the serving certificate.
	CAPEM []byte
	// AdminToken and LimitedToken authenticate as AdminUser and LimitedUser.
	AdminToken, LimitedToken string
	// Kubeconfig is the path of a kubeconfig file for AdminUser (for
	// kubectl, helm --kubeconfig and client-go's clientcmd).
	Kubeconfig string
	// Dir holds the certificates, etcd's data and the processes' logs.
	Dir string

	procs   []*exec.Cmd
	ownDir  bool
	stopped sync.Once
}

// Binaries locates etcd, kube-apiserver and kube-controller-manager. A
// directory named by TIANSHU_KUBE_ASSETS, then by KUBEBUILDER_ASSETS (the
// envtest convention), then the repository's .tools/kube/bin, then PATH;
// missing ones are reported in err, naming the script that installs them.
func Binaries() (etcd, apiserver, controllerManager string, err error) {
	var dirs []string
	for _, k := range []string{"TIANSHU_KUBE_ASSETS", "KUBEBUILDER_ASSETS"} {
		if d := os.Getenv(k); d != "" {
			dirs = append(dirs, d)
		}
	}
	if root := repoRoot(); root != "" {
		dirs = append(dirs, filepath.Join(root, ".tools", "kube", "bin"))
	}
	find := func(name string) string {
		for _, d := range dirs {
			p := filepath.Join(d, name)
			if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
				return p
			}
		}
		p, _ := exec.LookPath(name)
		return p
	}
	etcd, apiserver, controllerManager = find("etcd"), find("kube-apiserver"), find("kube-controller-manager")
	var missing []string
	if etcd == "" {
		missing = append(missing, "etcd (Debian package etcd-server)")
	}
	if apiserver == "" {
		missing = append(missing, "kube-apiserver")
	}
	if controllerManager == "" {
		missing = append(missing, "kube-controller-manager")
	}
	if len(missing) > 0 {
		err = fmt.Errorf("%s not found in $TIANSHU_KUBE_ASSETS, $KUBEBUILDER_ASSETS, .tools/kube/bin or PATH; run scripts/install-kube.sh", strings.Join(missing, ", "))
	}
	return etcd, apiserver, controllerManager, err
}

// repoRoot is the nearest directory above the working directory holding
// go.mod ("" when none): tests run in their package's directory.
func repoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Required reports whether missing control plane programs fail tests
// (TIANSHU_REQUIRE_KUBE=1) instead of skipping them.
func Required() bool { return os.Getenv("TIANSHU_REQUIRE_KUBE") == "1" }

// unavailable skips the test with reason, or fails it when Required.
func unavailable(t testing.TB, reason string) {
	t.Helper()
	if Required() {
		t.Fatalf("required (TIANSHU_REQUIRE_KUBE=1): %s", reason)
	}
	t.Skip(reason)
}

// Start starts a control plane for one test, stopped when the test ends.
// It skips the test (fails it in CI) when a binary is missing.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	etcd, apiserver, cm, err := Binaries()
	if err != nil && (etcd == "" || apiserver == "" || (opts.ControllerManager && cm == "")) {
		unavailable(t, err.Error())
		return nil
	}
	if !opts.ControllerManager {
		cm = ""
	}
	e, err := start(t.TempDir(), false, etcd, apiserver, cm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Stop)
	return e
}

// Shared is one control plane for the tests of a package, started by the
// first test that asks and stopped by Main. Tests keep apart by working in
// namespaces of their own.
type Shared struct {
	// Options are used by the first Get.
	Options Options

	mu  sync.Mutex
	env *Env
	err error
}

// Get returns the shared control plane, starting it on first use. It
// skips the test (fails it in CI) when a binary is missing, and fails it
// when the control plane could not start.
func (s *Shared) Get(t testing.TB) *Env {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.env == nil && s.err == nil {
		etcd, apiserver, cm, err := Binaries()
		if err != nil && (etcd == "" || apiserver == "" || (s.Options.ControllerManager && cm == "")) {
			unavailable(t, err.Error())
			return nil
		}
		if !s.Options.ControllerManager {
			cm = ""
		}
		dir, err := os.MkdirTemp("", "kubetest-")
		if err != nil {
			t.Fatal(err)
		}
		s.env, s.err = start(dir, true, etcd, apiserver, cm)
	}
	if s.err != nil {
		t.Fatal(s.err)
	}
	return s.env
}

// Stop stops the shared control plane, if one was started.
func (s *Shared) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.env != nil {
		s.env.Stop()
		s.env = nil
	}
}

// Main runs a package's tests and then stops s; call it from TestMain.
func (s *Shared) Main(m *testing.M) {
	code := m.Run()
	s.Stop()
	os.Exit(code)
}

// start brings up etcd, then kube-apiserver (and kube-controller-manager
// when cm is not empty), and waits until the API server reports ready.
func start(dir string, ownDir bool, etcd, apiserver, cm string) (_ *Env, err error) {
	e := &Env{Dir: dir, ownDir: ownDir}
	defer func() {
		if err != nil {
			e.Stop()
		}
	}()
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	clientURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	if err := e.startProc("etcd", etcd,
		"--name=kubetest",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+clientURL,
		"--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kubetest="+peerURL,
	); err != nil {
		return nil, err
	}
	if err := waitHTTP(clientURL+"/health", nil, "", 30*time.Second); err != nil {
		return nil, fmt.Errorf("etcd did not become healthy: %w%s", err, e.logTail("etcd"))
	}

	pki, err := writePKI(dir)
	if err != nil {
		return nil, err
	}
	e.CAPEM = pki.caPEM
	e.AdminToken, e.LimitedToken = randToken(), randToken()
	tokens := fmt.Sprintf("%s,%s,%s,\"system:masters\"\n%s,%s,%s\n",
		e.AdminToken, AdminUser, AdminUser, e.LimitedToken, LimitedUser, LimitedUser)
	if err := os.WriteFile(filepath.Join(dir, "tokens.csv"), []byte(tokens), 0o600); err != nil {
		return nil, err
	}
	e.Host = "https://127.0.0.1:" + strconv.Itoa(ports[2])
	if err := e.startProc("kube-apiserver", apiserver,
		"--etcd-servers="+clientURL,
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(ports[2]),
		"--tls-cert-file="+pki.servingCert,
		"--tls-private-key-file="+pki.servingKey,
		"--client-ca-file="+pki.caCert,
		"--token-auth-file="+filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+pki.saPub,
		"--service-account-signing-key-file="+pki.saKey,
		"--service-cluster-ip-range=10.96.0.0/16",
		"--allow-privileged=true",
		"--cert-dir="+filepath.Join(dir, "apiserver-certs"),
		// No webhooks or aggregated APIs run here; flow control only
		// adds work on a busy 2-core machine.
		"--enable-priority-and-fairness=false",
		"--profiling=false",
	); err != nil {
		return nil, err
	}
	if err := waitHTTP(e.Host+"/readyz", e.tlsConfig(), e.AdminToken, 90*time.Second); err != nil {
		return nil, fmt.Errorf("kube-apiserver did not become ready: %w%s", err, e.logTail("kube-apiserver"))
	}
	e.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(e.Kubeconfig, e.kubeconfig(AdminUser, e.AdminToken), 0o600); err != nil {
		return nil, err
	}
	if cm != "" {
		cmConfig := filepath.Join(dir, "controller-manager.kubeconfig")
		if err := os.WriteFile(cmConfig, e.kubeconfig(AdminUser, e.AdminToken), 0o600); err != nil {
			return nil, err
		}
		if err := e.startProc("kube-controller-manager", cm,
			"--kubeconfig="+cmConfig,
			"--bind-address=127.0.0.1",
			"--secure-port="+strconv.Itoa(ports[3]),
			"--cert-dir="+filepath.Join(dir, "controller-manager-certs"),
			"--leader-elect=false",
			"--use-service-account-credentials=false",
			"--service-account-private-key-file="+pki.saKey,
			"--root-ca-file="+pki.caCert,
			"--controllers=*",
		); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Stop ends the processes (kube-controller-manager, kube-apiserver, then
// etcd) and, for a shared control plane, removes its directory.
func (e *Env) Stop() {
	e.stopped.Do(func() {
		for i := len(e.procs) - 1; i >= 0; i-- {
			c := e.procs[i]
			_ = c.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { _ = c.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				killGroup(c)
				<-done
			}
		}
		if e.ownDir {
			_ = os.RemoveAll(e.Dir)
		}
	})
}

// HTTPClient returns a client that trusts the API server's certificate.
// Requests still need an Authorization header (see Do).
func (e *Env) HTTPClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: e.tlsConfig()}}
}

// Do sends one JSON request to the API server with token (AdminToken when
// empty) and decodes a 2xx answer into out (when not nil). Other answers
// are returned as *StatusError.
func (e *Env) Do(ctx context.Context, token, method, path string, body, out any) error {
	if token == "" {
		token = e.AdminToken
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.Host+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		ct := "application/json"
		if method == http.MethodPatch {
			ct = "application/merge-patch+json"
		}
		req.Header.Set("Content-Type", ct)
	}
	resp, err := e.HTTPClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return &StatusError{Code: resp.StatusCode, Body: string(b)}
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// StatusError is an API server answer other than 2xx.
type StatusError struct {
	Code int
	Body string
}

func (s *StatusError) Error() string { return fmt.Sprintf("HTTP %d: %s", s.Code, s.Body) }

// CreateNode registers a Node with the given allocatable resources (e.g.
// {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "2"}) and labels, as a
// kubelet would, so code that reads nodes' GPU budgets has something to
// read. The node never runs anything.
func (e *Env) CreateNode(ctx context.Context, name string, labels, allocatable map[string]string) error {
	node := map[string]any{
		"apiVersion": "v1", "kind": "Node",
		"metadata": map[string]any{"name": name, "labels": labels},
	}
	if err := e.Do(ctx, "", http.MethodPost, "/api/v1/nodes", node, nil); err != nil {
		return fmt.Errorf("create node %s: %w", name, err)
	}
	status := map[string]any{"status": map[string]any{"capacity": allocatable, "allocatable": allocatable}}
	if err := e.Do(ctx, "", http.MethodPatch, "/api/v1/nodes/"+name+"/status", status, nil); err != nil {
		return fmt.Errorf("set node %s status: %w", name, err)
	}
	return nil
}

// CreateNamespace creates a namespace for one test, named after it and
// unique (Kubernetes names are lower-case), and returns its name.
func (e *Env) CreateNamespace(t testing.TB) string {
	t.Helper()
	name := strings.ToLower(t.Name())
	name = strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			return r
		}
		return '-'
	}, name)
	if len(name) > 40 {
		name = name[:40]
	}
	name = strings.Trim(name, "-") + "-" + randToken()[:6]
	ns := map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}}
	if err := e.Do(context.Background(), "", http.MethodPost, "/api/v1/namespaces", ns, nil); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	return name
}

func (e *Env) tlsConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(e.CAPEM)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// kubeconfig renders a kubeconfig file for user with token.
func (e *Env) kubeconfig(user, token string) []byte {
	// JSON is valid YAML, and kubeconfig loaders read either.
	cfg := map[string]any{
		"apiVersion": "v1", "kind": "Config", "current-context": "kubetest",
		"clusters": []any{map[string]any{"name": "kubetest", "cluster": map[string]any{
			"server": e.Host, "certificate-authority-data": e.CAPEM}}},
		"users": []any{map[string]any{"name": user, "user": map[string]any{"token": token}}},
		"contexts": []any{map[string]any{"name": "kubetest", "context": map[string]any{
			"cluster": "kubetest", "user": user}}},
	}
	b, _ := json.MarshalIndent(cfg, "", "  ") // []byte fields marshal as base64, as the format wants
	return b
}

// startProc starts one control plane process with its output in
// DIR/NAME.log.
func (e *Env) startProc(name, path string, args ...string) error {
	logf, err := os.Create(filepath.Join(e.Dir, name+".log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	c := exec.Command(path, args...)
	c.Stdout, c.Stderr = logf, logf
	c.Dir = e.Dir
	setProcAttr(c)
	if err := c.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	e.procs = append(e.procs, c)
	return nil
}

// logTail returns the end of a process's log, for errors.
func (e *Env) logTail(name string) string {
	b, err := os.ReadFile(filepath.Join(e.Dir, name+".log"))
	if err != nil {
		return ""
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return "\n--- end of " + name + ".log ---\n" + string(b)
}

// waitHTTP polls url until it answers 200 or d passes.
func waitHTTP(url string, tlsConf *tls.Config, token string, d time.Duration) error {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf}}
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("after %s: %w", d, last)
}

// freePorts reserves n loopback ports by listening and closing; another
// process could take one in between, which only makes a start fail.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// pki names the files writePKI made.
type pki struct {
	caPEM                           []byte
	caCert, servingCert, servingKey string
	saKey, saPub                    string
}

// writePKI makes a CA, a serving certificate for 127.0.0.1 and localhost
// signed by it, and the service account signing key pair.
func writePKI(dir string) (*pki, error) {
	p := &pki{
		caCert:      filepath.Join(dir, "ca.crt"),
		servingCert: filepath.Join(dir, "apiserver.crt"),
		servingKey:  filepath.Join(dir, "apiserver.key"),
		saKey:       filepath.Join(dir, "sa.key"),
		saPub:       filepath.Join(dir, "sa.pub"),
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kubetest-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	p.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})

	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, err
	}
	writeKey := func(path string, k *ecdsa.PrivateKey) error {
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return err
		}
		return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
	}
	return p, errors.Join(
		os.WriteFile(p.caCert, p.caPEM, 0o600),
		os.WriteFile(p.servingCert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}), 0o600),
		writeKey(p.servingKey, srvKey),
		writeKey(p.saKey, saKey),
		os.WriteFile(p.saPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPub}), 0o600),
	)
}
