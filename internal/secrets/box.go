// Package secrets encrypts small secrets at rest (app SecretKeys, device
// credentials, webhook secrets) with AES-256-GCM under the installation's
// master keys.
//
// A Box holds a keyring: the current key, which seals, and any number of
// keys that only open (previous keys, and at most one staged "next" key
// that a rotation is about to make current). A sealed value names the key
// that sealed it, so values under any key of the ring open while a
// rotation re-encrypts them; docs/secrets.md gives the procedure.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
)

// KeySize is a master key's size in bytes.
const KeySize = 32

// The stored forms. v1 is "v1:" + base64(nonce+ct), under the keyring's
// oldest key (the only key before keyrings existed); v2 is "v2:" + key id +
// ":" + base64(nonce+ct). Seal writes v1 while the oldest key is current,
// so that until the first rotation values stay readable by binaries that
// know only v1 (a rolling upgrade), and v2 from then on.
const (
	prefixV1 = "v1:"
	prefixV2 = "v2:"
)

// ErrUnknownKey is wrapped by Open's error when a value is sealed under a
// key that the keyring does not hold: give this process the keyring the
// rotation wrote (docs/secrets.md).
var ErrUnknownKey = errors.New("secrets: sealed under a key this keyring does not hold")

// KeyID names a master key in sealed values and messages. It is a hash of
// the key, so it reveals nothing of it and every process computes the same.
func KeyID(key []byte) string {
	h := sha256.Sum256(append([]byte("tianshu master key id\x00"), key...))
	return hex.EncodeToString(h[:4])
}

// Box seals and opens secrets with a keyring. It is safe for concurrent
// use, and its keyring can be replaced while in use (SetKeyring).
type Box struct {
	ring atomic.Pointer[ring]
}

// ring is a Keyring ready for use.
type ring struct {
	current string // key id that seals
	ids     []string
	aeads   map[string]cipher.AEAD
	root    []byte // the oldest key: it opens v1 values and derives keys
	rootID  string
	next    string // staged key id, "" when none
}

// New returns a Box for a single 32-byte master key.
func New(key []byte) (*Box, error) {
	return NewKeyring(Keyring{Keys: [][]byte{key}})
}

// NewKeyring returns a Box over a keyring.
func NewKeyring(k Keyring) (*Box, error) {
	r, err := k.build()
	if err != nil {
		return nil, err
	}
	b := &Box{}
	b.ring.Store(r)
	return b, nil
}

// SetKeyring replaces the keyring of a Box in use, so that a process can
// learn a staged or promoted key without restarting. Derived keys handed
// out earlier stay as they were; the new keyring must keep the same
// derivation root (its oldest key), or SetKeyring refuses it.
func (b *Box) SetKeyring(k Keyring) error {
	r, err := k.build()
	if err != nil {
		return err
	}
	if old := b.ring.Load(); string(old.root) != string(r.root) {
		return fmt.Errorf("secrets: new keyring's oldest key %s differs from the running one's %s; derived keys would change, restart instead",
			KeyID(r.root), KeyID(old.root))
	}
	b.ring.Store(r)
	return nil
}

func (k Keyring) build() (*ring, error) {
	if len(k.Keys) == 0 {
		return nil, errors.New("secrets: keyring holds no key")
	}
	r := &ring{aeads: map[string]cipher.AEAD{}}
	add := func(key []byte) (string, error) {
		if len(key) != KeySize {
			return "", fmt.Errorf("secrets: master key must be %d bytes, got %d", KeySize, len(key))
		}
		id := KeyID(key)
		if _, dup := r.aeads[id]; dup {
			return "", fmt.Errorf("secrets: keyring holds key %s twice", id)
		}
		c, err := aes.NewCipher(key)
		if err != nil {
			return "", err
		}
		a, err := cipher.NewGCM(c)
		if err != nil {
			return "", err
		}
		r.aeads[id] = a
		r.ids = append(r.ids, id)
		return id, nil
	}
	for _, key := range k.Keys {
		if _, err := add(key); err != nil {
			return nil, err
		}
	}
	r.current = r.ids[0]
	r.root = append([]byte(nil), k.Keys[len(k.Keys)-1]...)
	r.rootID = r.ids[len(r.ids)-1]
	if k.Next != nil {
		id, err := add(k.Next)
		if err != nil {
			return nil, err
		}
		r.next = id
	}
	return r, nil
}

// CurrentKeyID is the id of the key that Seal uses.
func (b *Box) CurrentKeyID() string { return b.ring.Load().current }

// KeyIDs lists the ids of the keys the Box opens with: current first, then
// previous keys newest first, then the staged key if any.
func (b *Box) KeyIDs() []string { return append([]string(nil), b.ring.Load().ids...) }

// Seal encrypts plaintext under the current key; the result is printable
// and fits a VARCHAR(512) for secrets up to about 300 bytes.
func (b *Box) Seal(plaintext string) string {
	r := b.ring.Load()
	a := r.aeads[r.current]
	nonce := make([]byte, a.NonceSize())
	_, _ = rand.Read(nonce)
	ct := a.Seal(nonce, nonce, []byte(plaintext), nil)
	if r.current == r.rootID {
		return prefixV1 + base64.RawStdEncoding.EncodeToString(ct)
	}
	return prefixV2 + r.current + ":" + base64.RawStdEncoding.EncodeToString(ct)
}

// SealedKeyID returns the id of the key a value is sealed under: the one
// it names, or for a v1 value the keyring's oldest key.
func (b *Box) SealedKeyID(sealed string) (string, error) {
	return b.ring.Load().sealedKeyID(sealed)
}

func (r *ring) sealedKeyID(sealed string) (string, error) {
	if strings.HasPrefix(sealed, prefixV1) {
		return r.rootID, nil
	}
	s, ok := strings.CutPrefix(sealed, prefixV2)
	if !ok {
		return "", errors.New("secrets: unknown sealed format")
	}
	id, _, ok := strings.Cut(s, ":")
	if !ok || id == "" {
		return "", errors.New("secrets: malformed sealed value")
	}
	return id, nil
}

// Open decrypts what Seal returned, under whichever key of the ring sealed
// it.
func (b *Box) Open(sealed string) (string, error) {
	r := b.ring.Load()
	if s, ok := strings.CutPrefix(sealed, prefixV1); ok {
		ct, err := decode(s)
		if err != nil {
			return "", err
		}
		return open(r.aeads[r.rootID], ct)
	}
	id, err := r.sealedKeyID(sealed)
	if err != nil {
		return "", err
	}
	a, ok := r.aeads[id]
	if !ok {
		return "", fmt.Errorf("%w: value sealed under key %s; this process holds %s", ErrUnknownKey, id, strings.Join(r.ids, ", "))
	}
	ct, err := decode(sealed[len(prefixV2)+len(id)+1:])
	if err != nil {
		return "", err
	}
	return open(a, ct)
}

func decode(s string) ([]byte, error) {
	ct, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil || len(ct) < 12 {
		return nil, errors.New("secrets: malformed sealed value")
	}
	return ct, nil
}

func open(a cipher.AEAD, ct []byte) (string, error) {
	n := a.NonceSize()
	pt, err := a.Open(nil, ct[:n], ct[n:], nil)
	if err != nil {
		return "", errors.New("secrets: cannot decrypt (wrong master key?)")
	}
	return string(pt), nil
}

// Current reports whether sealed is under the current key, so that a
// rotation skips it.
func (b *Box) Current(sealed string) bool {
	r := b.ring.Load()
	id, err := r.sealedKeyID(sealed)
	return err == nil && id == r.current
}

// Reseal returns sealed re-encrypted under the current key. A value
// already under it comes back unchanged, with changed false.
func (b *Box) Reseal(sealed string) (resealed string, changed bool, err error) {
	if b.Current(sealed) {
		return sealed, false, nil
	}
	pt, err := b.Open(sealed)
	if err != nil {
		return "", false, err
	}
	return b.Seal(pt), true, nil
}

// DeriveKey returns a 32-byte key for one purpose, derived with
// HKDF-SHA256 from the keyring's oldest key (its derivation root), so each
// use (URL signing, upload tokens) has its own key, none exposes a master
// key, and a rotation, which keeps the oldest key, changes none of them:
// URLs and tokens signed before it still verify. With a single key this is
// the key derived before keyrings existed.
func (b *Box) DeriveKey(purpose string) []byte {
	k, err := hkdf.Key(sha256.New, b.ring.Load().root, nil, "tianshu:"+purpose, 32)
	if err != nil {
		panic("secrets: hkdf: " + err.Error()) // only for lengths we never ask
	}
	return k
}
