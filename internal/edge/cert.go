package edge

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/secrets/reseal"
	"github.com/tianshu-ai/tianshu/internal/store"
)

// hubCertificate returns the hub's certificate and its SHA-256, which join
// tokens carry, so no CA is involved. With a box it is the one in the
// store (edge_hub_certificates), shared by every cloud replica that serves
// the leaf port: the first hub puts it there (the one in dir when an
// earlier version generated it, so that tokens already issued keep
// working; otherwise a new one), and the others load it. Without a box it
// is dir's, generated on first start (self-signed ECDSA P-256, ten years).
func hubCertificate(ctx context.Context, db *store.DB, box *secrets.Box, dir string, hosts []string) (tls.Certificate, string, error) {
	certFile, keyFile := filepath.Join(dir, "hub-cert.pem"), filepath.Join(dir, "hub-key.pem")
	certPEM, errC := os.ReadFile(certFile)
	keyPEM, errK := os.ReadFile(keyFile)
	if errC != nil && !errors.Is(errC, os.ErrNotExist) || errK != nil && !errors.Is(errK, os.ErrNotExist) {
		return tls.Certificate{}, "", fmt.Errorf("edge: hub certificate: %w", errors.Join(errC, errK))
	}
	if box != nil {
		var cp, sealed string
		err := db.QueryRow(ctx, "SELECT cert_pem, key_enc FROM edge_hub_certificates WHERE name = ?", hubName).Scan(&cp, &sealed)
		if errors.Is(err, sql.ErrNoRows) {
			if errC != nil || errK != nil {
				if certPEM, keyPEM, err = newHubCertificate(hosts); err != nil {
					return tls.Certificate{}, "", err
				}
			}
			// Of replicas starting together, the first insert wins; all
			// read back the winner's.
			if _, err := db.Exec(ctx, "INSERT INTO edge_hub_certificates (name, cert_pem, key_enc, created_at) VALUES (?, ?, ?, ?)"+
				db.Dialect().OnConflict([]string{"name"}), hubName, string(certPEM), box.Seal(string(keyPEM)), time.Now().UnixMilli()); err != nil {
				return tls.Certificate{}, "", fmt.Errorf("edge: hub certificate: %w", err)
			}
			err = db.QueryRow(ctx, "SELECT cert_pem, key_enc FROM edge_hub_certificates WHERE name = ?", hubName).Scan(&cp, &sealed)
		}
		if err != nil {
			return tls.Certificate{}, "", fmt.Errorf("edge: hub certificate: %w", err)
		}
		key, err := box.Open(sealed)
		if err != nil {
			return tls.Certificate{}, "", fmt.Errorf("edge: hub certificate key: %w", err)
		}
		return keyPair([]byte(cp), []byte(key))
	}
	if errC == nil && errK == nil {
		return keyPair(certPEM, keyPEM)
	}
	certPEM, keyPEM, err := newHubCertificate(hosts)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, "", err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, "", err
	}
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return tls.Certificate{}, "", err
	}
	return keyPair(certPEM, keyPEM)
}

func keyPair(certPEM, keyPEM []byte) (tls.Certificate, string, error) {
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("edge: hub certificate: %w", err)
	}
	return c, Fingerprint(c.Certificate[0]), nil
}

// newHubCertificate generates a self-signed certificate (ECDSA P-256, ten
// years) in PEM.
func newHubCertificate(hosts []string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "tianshu edge hub"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range append(hosts, "localhost", "127.0.0.1") {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}

// SealedColumns lists the hub's columns sealed under the master key, for
// `tianshu secrets rotate`.
func SealedColumns() []reseal.Column {
	return []reseal.Column{{Table: "edge_hub_certificates", Key: "name", Column: "key_enc"}}
}

// Fingerprint is the lower-case hex SHA-256 of a DER certificate.
func Fingerprint(der []byte) string {
	h := sha256.Sum256(der)
	return hex.EncodeToString(h[:])
}

// pinnedTLS trusts exactly the certificate whose SHA-256 is fingerprint,
// whatever its name or issuer: the join token said which one.
func pinnedTLS(fingerprint string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The chain is not checked against any CA; the pin below is the
		// whole check.
		InsecureSkipVerify: true, //nolint:gosec // pinned by fingerprint
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || Fingerprint(raw[0]) != fingerprint {
				return errors.New("edge: the cloud's certificate is not the one the join token pins")
			}
			return nil
		},
	}
}
