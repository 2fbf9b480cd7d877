// Package secrets encrypts small secrets at rest (app SecretKeys, device
// credentials) with AES-256-GCM under the installation's master key.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the master key's size in bytes.
const KeySize = 32

// prefix versions the stored form so the scheme can change later.
const prefix = "v1:"

// Box seals and opens secrets with one master key.
type Box struct {
	aead   cipher.AEAD
	master []byte
}

// New returns a Box for a 32-byte master key.
func New(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secrets: master key must be %d bytes, got %d", KeySize, len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	return &Box{aead: a, master: append([]byte(nil), key...)}, nil
}

// Seal encrypts plaintext; the result is printable and fits a VARCHAR.
func (b *Box) Seal(plaintext string) string {
	nonce := make([]byte, b.aead.NonceSize())
	_, _ = rand.Read(nonce)
	ct := b.aead.Seal(nonce, nonce, []byte(plaintext), nil)
	return prefix + base64.RawStdEncoding.EncodeToString(ct)
}

// Open decrypts what Seal returned.
func (b *Box) Open(sealed string) (string, error) {
	s, ok := strings.CutPrefix(sealed, prefix)
	if !ok {
		return "", errors.New("secrets: unknown sealed format")
	}
	ct, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil || len(ct) < b.aead.NonceSize() {
		return "", errors.New("secrets: malformed sealed value")
	}
	pt, err := b.aead.Open(nil, ct[:b.aead.NonceSize()], ct[b.aead.NonceSize():], nil)
	if err != nil {
		return "", errors.New("secrets: cannot decrypt (wrong master key?)")
	}
	return string(pt), nil
}

// LoadKey returns the master key: from base64 text in env when it is set,
// otherwise from file, creating file with a new random key (mode 0600) when
// it does not exist. Every process of one installation must use the same
// key, so scaled-out deployments set it explicitly.
func LoadKey(envValue, file string) ([]byte, error) {
	if envValue != "" {
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(envValue))
		if err != nil || len(k) != KeySize {
			return nil, fmt.Errorf("secrets: TIANSHU_MASTER_KEY must be %d bytes in base64", KeySize)
		}
		return k, nil
	}
	k, err := readKey(file)
	if !errors.Is(err, os.ErrNotExist) {
		return k, err
	}
	k = make([]byte, KeySize)
	_, _ = rand.Read(k)
	if err := publishKey(file, k); err != nil {
		if errors.Is(err, os.ErrExist) { // another process won the race
			return readKey(file)
		}
		return nil, fmt.Errorf("secrets: create master key: %w", err)
	}
	return k, nil
}

// readKey reads the master key from file; the error wraps os.ErrNotExist
// when there is no file.
func readKey(file string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("secrets: read master key: %w", err)
	}
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(k) != KeySize {
		return nil, fmt.Errorf("secrets: %s does not hold a %d-byte base64 key", file, KeySize)
	}
	return k, nil
}

// publishKey writes k to a temporary file beside file and links it into
// place, so file appears whole or not at all: a process that loses the
// creation race never reads a half-written key. It returns an error
// wrapping os.ErrExist, and leaves the file alone, when file already exists.
func publishKey(file string, k []byte) error {
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(file)+".tmp*") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(k) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// Unlike rename, link fails when file exists, so a key already in use
	// is never replaced.
	if err := os.Link(f.Name(), file); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil { // make the new name durable
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// DeriveKey returns a 32-byte key for one purpose, derived from the master
// key with HKDF-SHA256, so each use (URL signing, sessions) has its own key
// and none exposes the master key.
func (b *Box) DeriveKey(purpose string) []byte {
	k, err := hkdf.Key(sha256.New, b.master, nil, "tianshu:"+purpose, 32)
	if err != nil {
		panic("secrets: hkdf: " + err.Error()) // only for lengths we never ask
	}
	return k
}
