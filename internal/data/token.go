package data

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tianshu-ai/tianshu/internal/ids"
)

// ErrBadToken means an upload token is missing, malformed, forged or
// expired; the client must ask CreateUploadToken for a new one.
var ErrBadToken = errors.New("data: invalid or expired upload token")

// tokenPrefix versions the token format.
const tokenPrefix = "tsu1."

// UploadGrant is what an upload token allows: uploads into one project, each
// at most MaxSize bytes, until Expires.
type UploadGrant struct {
	ProjectID string
	MaxSize   int64
	Expires   time.Time
}

type tokenClaims struct {
	P string `json:"p"` // project
	M int64  `json:"m"` // max size
	E int64  `json:"e"` // expiry, Unix seconds
	N string `json:"n"` // nonce: two tokens are never equal
}

// NewUploadToken signs a token that lets a tus client upload into projectID
// for TokenTTL. maxSize 0 (or beyond MaxUploadSize) means MaxUploadSize.
func (s *Service) NewUploadToken(projectID string, maxSize int64) (string, UploadGrant, error) {
	if len(s.o.TokenKey) == 0 {
		return "", UploadGrant{}, ErrNoUploads
	}
	if projectID == "" {
		projectID = "default"
	}
	if maxSize <= 0 || maxSize > s.o.MaxUploadSize {
		maxSize = s.o.MaxUploadSize
	}
	g := UploadGrant{ProjectID: projectID, MaxSize: maxSize, Expires: s.o.Now().Add(s.o.TokenTTL).Truncate(time.Second)}
	b, err := json.Marshal(tokenClaims{P: g.ProjectID, M: g.MaxSize, E: g.Expires.Unix(), N: ids.Random(8, recordIDChars)})
	if err != nil {
		return "", UploadGrant{}, err
	}
	payload := base64.RawURLEncoding.EncodeToString(b)
	return tokenPrefix + payload + "." + s.tokenMAC(payload), g, nil
}

func (s *Service) tokenMAC(payload string) string {
	m := hmac.New(sha256.New, s.o.TokenKey)
	m.Write([]byte("tianshu upload token\n")) // domain separation from other uses of the key
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// VerifyUploadToken checks a token's signature and expiry and returns its
// grant, or an error wrapping ErrBadToken.
func (s *Service) VerifyUploadToken(tok string) (UploadGrant, error) {
	if len(s.o.TokenKey) == 0 {
		return UploadGrant{}, ErrNoUploads
	}
	rest, ok := strings.CutPrefix(tok, tokenPrefix)
	if !ok || len(tok) > 1024 {
		return UploadGrant{}, fmt.Errorf("%w: malformed", ErrBadToken)
	}
	payload, mac, ok := strings.Cut(rest, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(s.tokenMAC(payload))) {
		return UploadGrant{}, fmt.Errorf("%w: bad signature", ErrBadToken)
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return UploadGrant{}, fmt.Errorf("%w: malformed", ErrBadToken)
	}
	var c tokenClaims
	if err := json.Unmarshal(b, &c); err != nil || c.P == "" {
		return UploadGrant{}, fmt.Errorf("%w: malformed", ErrBadToken)
	}
	g := UploadGrant{ProjectID: c.P, MaxSize: c.M, Expires: time.Unix(c.E, 0)}
	if !s.o.Now().Before(g.Expires) {
		return UploadGrant{}, fmt.Errorf("%w: expired at %s", ErrBadToken, g.Expires.UTC().Format(time.RFC3339))
	}
	return g, nil
}
