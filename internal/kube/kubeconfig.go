package kube

import (
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxKubeconfigBytes bounds a kubeconfig file and each file it names.
const maxKubeconfigBytes = 1 << 20

// kubeconfig is the part of a kubeconfig file the runtime reads.
type kubeconfig struct {
	CurrentContext string `yaml:"current-context"`
	Clusters       []struct {
		Name    string `yaml:"name"`
		Cluster struct {
			Server                   string `yaml:"server"`
			CertificateAuthority     string `yaml:"certificate-authority"`
			CertificateAuthorityData string `yaml:"certificate-authority-data"`
		} `yaml:"cluster"`
	} `yaml:"clusters"`
	Users []struct {
		Name string `yaml:"name"`
		User struct {
			Token                 string         `yaml:"token"`
			TokenFile             string         `yaml:"tokenFile"`
			ClientCertificate     string         `yaml:"client-certificate"`
			ClientCertificateData string         `yaml:"client-certificate-data"`
			ClientKey             string         `yaml:"client-key"`
			ClientKeyData         string         `yaml:"client-key-data"`
			Exec                  map[string]any `yaml:"exec"`
			AuthProvider          map[string]any `yaml:"auth-provider"`
		} `yaml:"user"`
	} `yaml:"users"`
	Contexts []struct {
		Name    string `yaml:"name"`
		Context struct {
			Cluster   string `yaml:"cluster"`
			User      string `yaml:"user"`
			Namespace string `yaml:"namespace"`
		} `yaml:"context"`
	} `yaml:"contexts"`
}

// LoadKubeconfig reads the current context of a kubeconfig file (the
// format kubectl uses): the cluster's server and CA, and the user's bearer
// token or client certificate, inline or in files (relative to the
// kubeconfig's directory). It returns the context's namespace too ("" when
// it names none). Exec plugins and auth providers are not supported.
func LoadKubeconfig(path string) (Config, string, error) {
	fail := func(format string, args ...any) (Config, string, error) {
		return Config{}, "", fmt.Errorf("kube: kubeconfig %s: %s", path, fmt.Sprintf(format, args...))
	}
	b, err := readLimited(path)
	if err != nil {
		return Config{}, "", fmt.Errorf("kube: kubeconfig: %w", err)
	}
	var kc kubeconfig
	if err := yaml.Unmarshal(b, &kc); err != nil {
		return fail("%v", err)
	}
	if kc.CurrentContext == "" {
		return fail("no current-context")
	}
	var cluster, user, ns string
	found := false
	for _, c := range kc.Contexts {
		if c.Name == kc.CurrentContext {
			cluster, user, ns, found = c.Context.Cluster, c.Context.User, c.Context.Namespace, true
		}
	}
	if !found {
		return fail("current-context %q is not among its contexts", kc.CurrentContext)
	}
	dir := filepath.Dir(path)
	file := func(name string) ([]byte, error) {
		if !filepath.IsAbs(name) {
			name = filepath.Join(dir, name)
		}
		return readLimited(name)
	}
	// inline returns the base64 data field, else the named file's contents.
	inline := func(field, data, name string) ([]byte, error) {
		if data != "" {
			b, err := base64.StdEncoding.DecodeString(data)
			if err != nil {
				return nil, fmt.Errorf("%s: not base64: %w", field, err)
			}
			return b, nil
		}
		if name != "" {
			return file(name)
		}
		return nil, nil
	}
	var cfg Config
	found = false
	for _, c := range kc.Clusters {
		if c.Name != cluster {
			continue
		}
		found = true
		cfg.Host = c.Cluster.Server
		if cfg.CAPEM, err = inline("certificate-authority-data", c.Cluster.CertificateAuthorityData, c.Cluster.CertificateAuthority); err != nil {
			return fail("cluster %q: %v", cluster, err)
		}
	}
	if !found {
		return fail("cluster %q of context %q is not among its clusters", cluster, kc.CurrentContext)
	}
	found = false
	for _, u := range kc.Users {
		if u.Name != user {
			continue
		}
		found = true
		switch {
		case u.User.Exec != nil || u.User.AuthProvider != nil:
			return fail("user %q: exec plugins and auth providers are not supported; use a token or a client certificate (e.g. a service account's token)", user)
		case u.User.Token != "":
			cfg.BearerToken = u.User.Token
		case u.User.TokenFile != "":
			t, err := file(u.User.TokenFile)
			if err != nil {
				return fail("user %q: tokenFile: %v", user, err)
			}
			cfg.BearerToken = strings.TrimSpace(string(t))
		}
		if cfg.ClientCertPEM, err = inline("client-certificate-data", u.User.ClientCertificateData, u.User.ClientCertificate); err != nil {
			return fail("user %q: %v", user, err)
		}
		if cfg.ClientKeyPEM, err = inline("client-key-data", u.User.ClientKeyData, u.User.ClientKey); err != nil {
			return fail("user %q: %v", user, err)
		}
	}
	if !found {
		return fail("user %q of context %q is not among its users", user, kc.CurrentContext)
	}
	if cfg.BearerToken == "" && cfg.ClientCertPEM == nil {
		return fail("user %q has neither a token nor a client certificate", user)
	}
	return cfg, ns, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKubeconfigBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxKubeconfigBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxKubeconfigBytes)
	}
	return b, nil
}
