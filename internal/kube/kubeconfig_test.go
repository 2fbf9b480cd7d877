package kube

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLoadKubeconfigOfTheTestCluster reads kubetest's kubeconfig (a token
// and inline CA) and lists nodes with what it returns.
func TestLoadKubeconfigOfTheTestCluster(t *testing.T) {
	e := cluster.Get(t)
	cfg, ns, err := LoadKubeconfig(e.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != e.Host || cfg.BearerToken != e.AdminToken || string(cfg.CAPEM) != string(e.CAPEM) || ns != "" {
		t.Fatalf("config = %+v, namespace %q", cfg, ns)
	}
	c, err := newClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.list(context.Background(), groupCore, "", nodes, "", new(struct{})); err != nil {
		t.Fatalf("list nodes with the kubeconfig's credentials: %v", err)
	}
}

// TestLoadKubeconfigFilesAndErrors reads a client certificate and CA from
// files relative to the kubeconfig, the context's namespace, and refuses
// what it cannot use with the reason.
func TestLoadKubeconfigFilesAndErrors(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t)
	for name, b := range map[string][]byte{"ca.crt": certPEM, "client.crt": certPEM, "client.key": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write := func(user string) string {
		p := filepath.Join(dir, "config")
		y := `apiVersion: v1
kind: Config
current-context: work
contexts:
- name: work
  context: {cluster: c1, user: u1, namespace: algos}
clusters:
- name: c1
  cluster: {server: "https://k8s.example:6443", certificate-authority: ca.crt}
users:
- name: u1
  user: ` + user + "\n"
		if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg, ns, err := LoadKubeconfig(write("{client-certificate: client.crt, client-key: " + filepath.Join(dir, "client.key") + "}"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://k8s.example:6443" || ns != "algos" || string(cfg.CAPEM) != string(certPEM) || string(cfg.ClientKeyPEM) != string(keyPEM) {
		t.Fatalf("config = %+v, namespace %q", cfg, ns)
	}
	if _, err := newClient(cfg); err != nil {
		t.Fatalf("client with the certificate: %v", err)
	}
	for user, want := range map[string]string{
		"{exec: {command: aws}}":    `user "u1": exec plugins and auth providers are not supported`,
		"{}":                        `user "u1" has neither a token nor a client certificate`,
		"{client-key-data: '%%%'}":  "client-key-data: not base64",
		"{tokenFile: missing-file}": "tokenFile:",
	} {
		if _, _, err := LoadKubeconfig(write(user)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("user %s: %v, want %q", user, err, want)
		}
	}
	if _, _, err := LoadKubeconfig(filepath.Join(dir, "nope")); err == nil || !strings.Contains(err.Error(), "kubeconfig") {
		t.Errorf("missing file: %v", err)
	}
}

func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tianshu"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}
