package kube

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config says how to reach the API server. client-go is not used: its
// typed clients register every API group and would add about 25 MB to
// the binary (docs/kubernetes.md); the few calls the runtime makes are
// plain REST with the k8s.io/api types as bodies.
type Config struct {
	// Host is the API server's base URL, e.g. https://10.96.0.1:443.
	Host string
	// BearerToken authenticates the requests.
	BearerToken string
	// CAPEM holds the certificates the server's must chain to; empty
	// means the system's roots.
	CAPEM []byte
	// ClientCertPEM and ClientKeyPEM, when set, authenticate with a
	// client certificate (kubeconfigs of kubeadm, kind, minikube).
	ClientCertPEM, ClientKeyPEM []byte
	// Timeout bounds one request (default 30s).
	Timeout time.Duration
}

// In-cluster paths of the service account's credentials.
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// InCluster reads the Config of a pod's service account: the API server
// from KUBERNETES_SERVICE_HOST and _PORT, the token and CA from the
// mounted service account. The namespace is returned as well.
func InCluster() (Config, string, error) {
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return Config{}, "", errors.New("kube: not in a cluster (KUBERNETES_SERVICE_HOST and _PORT unset)")
	}
	token, err := os.ReadFile(filepath.Join(serviceAccountDir, "token"))
	if err != nil {
		return Config{}, "", fmt.Errorf("kube: service account token: %w", err)
	}
	ca, err := os.ReadFile(filepath.Join(serviceAccountDir, "ca.crt"))
	if err != nil {
		return Config{}, "", fmt.Errorf("kube: service account CA: %w", err)
	}
	ns, err := os.ReadFile(filepath.Join(serviceAccountDir, "namespace"))
	if err != nil {
		return Config{}, "", fmt.Errorf("kube: service account namespace: %w", err)
	}
	return Config{Host: "https://" + net.JoinHostPort(host, port), BearerToken: strings.TrimSpace(string(token)), CAPEM: ca},
		strings.TrimSpace(string(ns)), nil
}

// client makes JSON requests to the API server.
type client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// maxBody bounds an answer read from the API server (a node list of a
// large cluster fits).
const maxBody = 64 << 20

func newClient(c Config) (*client, error) {
	u, err := url.Parse(c.Host)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("kube: host must be an https URL, got %q", c.Host)
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(c.CAPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(c.CAPEM) {
			return nil, errors.New("kube: no certificate in the CA PEM")
		}
		tlsConf.RootCAs = pool
	}
	if len(c.ClientCertPEM) > 0 {
		cert, err := tls.X509KeyPair(c.ClientCertPEM, c.ClientKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("kube: client certificate: %w", err)
		}
		tlsConf.Certificates = []tls.Certificate{cert}
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return &client{base: u, token: c.BearerToken, http: &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			TLSClientConfig:     tlsConf,
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
		},
	}}, nil
}

// StatusError is an answer of the API server other than 2xx, with the
// reason and message of its Status body.
type StatusError struct {
	Code    int
	Reason  string // e.g. NotFound, AlreadyExists, Forbidden, Conflict
	Message string
}

func (e *StatusError) Error() string {
	if e.Message != "" {
		return e.Message
	}
	return fmt.Sprintf("HTTP %d %s", e.Code, e.Reason)
}

// IsNotFound reports whether err, wrapped or not, is the API server's
// 404: the object does not exist.
func IsNotFound(err error) bool { return hasCode(err, http.StatusNotFound) }

// IsAlreadyExists reports whether err is the API server's answer to
// creating an object whose name is taken.
func IsAlreadyExists(err error) bool { return hasReason(err, "AlreadyExists") }

// IsConflict reports whether err is the API server's 409 for a write
// based on an outdated resourceVersion: someone else wrote in between.
func IsConflict(err error) bool { return hasReason(err, "Conflict") }

// IsForbidden reports whether err is the API server's 403: RBAC (or an
// admission rule) denied the request.
func IsForbidden(err error) bool { return hasCode(err, http.StatusForbidden) }

func hasCode(err error, code int) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == code
}

func hasReason(err error, reason string) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Reason == reason
}

// do sends one request; in (when not nil) is the JSON body, out (when not
// nil) receives the JSON answer.
func (c *client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = query.Encode()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return err
	}
	if len(b) > maxBody {
		return fmt.Errorf("kube: answer to %s %s over %d bytes", method, path, maxBody)
	}
	if resp.StatusCode/100 != 2 {
		se := &StatusError{Code: resp.StatusCode}
		var st struct {
			Reason  string `json:"reason"`
			Message string `json:"message"`
		}
		if json.Unmarshal(b, &st) == nil {
			se.Reason, se.Message = st.Reason, st.Message
		}
		if se.Message == "" {
			se.Message = fmt.Sprintf("HTTP %d: %.200s", resp.StatusCode, b)
		}
		return se
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// resourcePath is the REST path of one kind of namespaced object, e.g.
// /apis/apps/v1/namespaces/NS/deployments.
func resourcePath(group, ns, plural string) string {
	prefix := "/api/v1"
	if group != "" {
		prefix = "/apis/" + group
	}
	if ns == "" {
		return prefix + "/" + plural
	}
	return prefix + "/namespaces/" + url.PathEscape(ns) + "/" + plural
}

func (c *client) get(ctx context.Context, group, ns, plural, name string, out any) error {
	return c.do(ctx, http.MethodGet, resourcePath(group, ns, plural)+"/"+url.PathEscape(name), nil, nil, out)
}

func (c *client) create(ctx context.Context, group, ns, plural string, in, out any) error {
	return c.do(ctx, http.MethodPost, resourcePath(group, ns, plural), nil, in, out)
}

func (c *client) update(ctx context.Context, group, ns, plural, name string, in, out any) error {
	return c.do(ctx, http.MethodPut, resourcePath(group, ns, plural)+"/"+url.PathEscape(name), nil, in, out)
}

// remove deletes one object, its dependents in the background.
func (c *client) remove(ctx context.Context, group, ns, plural, name string) error {
	opts := map[string]any{"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
	return c.do(ctx, http.MethodDelete, resourcePath(group, ns, plural)+"/"+url.PathEscape(name), nil, opts, nil)
}

func (c *client) list(ctx context.Context, group, ns, plural, labelSelector string, out any) error {
	q := url.Values{}
	if labelSelector != "" {
		q.Set("labelSelector", labelSelector)
	}
	return c.do(ctx, http.MethodGet, resourcePath(group, ns, plural), q, nil, out)
}
