// Package iam keeps people and what they did: users with argon2id password
// hashes, and the append-only, hash-chained audit log.
package iam

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// argon2id parameters: OWASP's recommended minimum (19 MiB, 2 passes, one
// lane). They keep a login (and the first start, which hashes the admin
// password) well under a second on a small machine; the PHC string records
// them, so stronger settings later still verify old hashes.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// Bounds on the parameters CheckPassword accepts from a stored hash. They
// leave room for stronger settings later (RFC 9106's second choice is 64 MiB)
// while keeping a damaged or planted users row from making one login take
// gigabytes or minutes; argon2 itself panics on t=0, p=0 or an empty key.
const (
	maxArgonMemory  = 256 * 1024 // KiB
	maxArgonTime    = 16
	maxArgonThreads = 16
	minArgonSaltLen = 8 // argon2's minimum
	minArgonKeyLen  = 16
	maxArgonDataLen = 64 // for salt and key
)

// HashPassword returns the PHC-format argon2id hash of password.
func HashPassword(password string) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// CheckPassword reports whether password matches a HashPassword hash.
func CheckPassword(hash, password string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errors.New("iam: not an argon2id hash")
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false, fmt.Errorf("iam: hash parameters: %w", err)
	}
	if m < 8*uint32(p) || m > maxArgonMemory || t < 1 || t > maxArgonTime || p < 1 || p > maxArgonThreads {
		return false, fmt.Errorf("iam: hash parameters m=%d,t=%d,p=%d out of range", m, t, p)
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false, err
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil {
		return false, err
	}
	if len(salt) < minArgonSaltLen || len(salt) > maxArgonDataLen || len(want) < minArgonKeyLen || len(want) > maxArgonDataLen {
		return false, fmt.Errorf("iam: hash has a %d-byte salt and a %d-byte key", len(salt), len(want))
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
