package fileblob

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tianshu-ai/tianshu/internal/blob"
)

// MountPath is where the platform must mount Handler, without stripping
// the prefix: presigned URLs are PublicURL + MountPath + escaped key.
const MountPath = "/objects/"

// PresignGet implements blob.Store. The URL is
// <PublicURL>/objects/<key, each segment path-escaped>?expires=<unix seconds>&sig=<hex>,
// where sig is HMAC-SHA256(SigningKey, key + "\n" + expires). It works while
// the platform serves Handler at MountPath.
func (s *Store) PresignGet(ctx context.Context, key string, ttl time.Duration) (string, error) {
	if err := blob.ValidateKey(key); err != nil {
		return "", err
	}
	if ttl <= 0 || ttl > blob.MaxPresignTTL {
		return "", fmt.Errorf("fileblob: presign %q: ttl %v outside (0, %v]", key, ttl, blob.MaxPresignTTL)
	}
	if s.publicURL == "" {
		return "", fmt.Errorf("fileblob: presign %q: Options.PublicURL is not set", key)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("fileblob: presign %q: %w", key, err)
	}
	exp := strconv.FormatInt(s.now().Add(ttl).Unix(), 10)
	return s.publicURL + MountPath + escapeKey(key) + "?expires=" + exp + "&sig=" + hex.EncodeToString(s.sign(key, exp)), nil
}

func (s *Store) sign(key, expires string) []byte {
	m := hmac.New(sha256.New, s.signingKey)
	m.Write([]byte(key + "\n" + expires))
	return m.Sum(nil)
}

func escapeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	return strings.Join(segs, "/")
}

// Handler serves presigned URLs; mount it at MountPath. It answers 403 to a
// URL whose signature is wrong or whose time has passed (checked before the
// object is looked up, so unsigned requests learn nothing about which keys
// exist), 404 to a signed URL of a missing object, and otherwise the
// content, with Range, If-None-Match and If-Modified-Since support.
func (s *Store) Handler() http.Handler { return http.HandlerFunc(s.serve) }

func (s *Store) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	key, ok := strings.CutPrefix(r.URL.Path, MountPath)
	if !ok || blob.ValidateKey(key) != nil {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	exp := q.Get("expires")
	expUnix, err1 := strconv.ParseInt(exp, 10, 64)
	sig, err2 := hex.DecodeString(q.Get("sig"))
	if err1 != nil || err2 != nil || !hmac.Equal(sig, s.sign(key, exp)) {
		http.Error(w, "invalid signature", http.StatusForbidden)
		return
	}
	now := s.now()
	if now.Unix() > expUnix {
		http.Error(w, "URL expired", http.StatusForbidden)
		return
	}
	o, info, err := s.openObject(key)
	if err != nil {
		if errors.Is(err, blob.ErrNotFound) {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		s.log.Error("blob serve failed", "key", key, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	defer o.Close()
	h := w.Header()
	h.Set("Content-Type", info.ContentType)
	h.Set("ETag", `"`+info.ETag+`"`)
	// Objects are user content served from the platform's own origin: never
	// let a browser sniff or run it as a page of ours.
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox")
	// Caches must not outlive the URL's permission.
	h.Set("Cache-Control", "private, max-age="+strconv.FormatInt(expUnix-now.Unix(), 10))
	http.ServeContent(w, r, "", info.ModTime, o)
}
