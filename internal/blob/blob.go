// Package blob is Tianshu's object store: one small interface over the local
// file system (package fileblob) and S3-compatible storage (package s3blob),
// chosen by URL (file:///var/lib/tianshu/objects, s3://bucket?endpoint=…).
//
// Objects hold images, crops, uploads and algorithm packages. The store
// knows nothing about what it holds (DESIGN §14): keys are opaque,
// "/"-separated names chosen by the caller.
//
// Every backend passes the conformance suite in package blobtest; code that
// uses a Store may rely only on what that suite checks. In particular, the
// file backend lets a key and a "directory" of the same name coexist ("a"
// and "a/b") but some S3 gateways do not, so portable callers avoid it.
package blob

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"time"
)

// Errors returned by stores, always wrapped with the operation and key;
// test them with errors.Is.
var (
	// ErrNotFound means the key has no object. It is not retryable: the
	// caller should treat the object as absent (Delete never returns it).
	ErrNotFound = errors.New("blob: object not found")

	// ErrInvalidKey means the key (or list prefix) breaks the rules of
	// ValidateKey. It is the caller's bug; retrying cannot help.
	ErrInvalidKey = errors.New("blob: invalid key")

	// ErrClosed means the store was used after Close.
	ErrClosed = errors.New("blob: store closed")
)

// MaxPresignTTL is the longest validity a presigned URL may ask for. It is
// S3's own limit, applied to every backend so callers see one contract.
const MaxPresignTTL = 7 * 24 * time.Hour

// DefaultContentType is recorded for objects put without a ContentType, so
// every backend reports the same value.
const DefaultContentType = "application/octet-stream"

// Info describes one stored object.
type Info struct {
	// Key is the object's key, as the caller gave it.
	Key string
	// Size is the length of the content in bytes.
	Size int64
	// ContentType is the media type given to Put (DefaultContentType when
	// none was). List may leave it empty on backends whose listings do not
	// carry it (S3); Stat always fills it.
	ContentType string
	// ModTime is when the object was last written. Put returns the local
	// clock's reading where the backend does not report its own.
	ModTime time.Time
	// ETag is an opaque validator, without quotes, that changes whenever the
	// content changes. It is not always a hash of the content (S3 multipart
	// uploads), so never compare it against one.
	ETag string
}

// PutOptions describe an object being written.
type PutOptions struct {
	// ContentType is recorded with the object and served with presigned
	// URLs. Empty means DefaultContentType.
	ContentType string
	// Size is the exact content length when known, or -1. When it is
	// non-negative, a reader that yields more or fewer bytes fails the Put.
	// The zero value means an empty object, so callers that stream pass -1.
	Size int64
}

// Store is an object store. Implementations are safe for concurrent use.
//
// Errors: ErrNotFound, ErrInvalidKey and ErrClosed as documented on them;
// context errors (errors.Is(err, context.Canceled)) when ctx ends; anything
// else is a backend failure that the caller may retry (stores do not retry
// beyond what their client library does).
type Store interface {
	// Put stores the content read from r under key, replacing any previous
	// object. It streams: memory use does not grow with the object's size.
	// It is atomic: readers see the old object or the new one, never a part,
	// and a Put that fails (r returns an error, which Put wraps; ctx ends;
	// the size disagrees with o.Size) leaves the previous object, or none,
	// in place. Of concurrent Puts to one key, exactly one wins whole.
	Put(ctx context.Context, key string, r io.Reader, o PutOptions) (Info, error)

	// Get opens the object for reading. The caller must close the reader.
	// The reader may also implement io.Seeker (the file backend does).
	Get(ctx context.Context, key string) (io.ReadCloser, Info, error)

	// Stat describes the object without reading it.
	Stat(ctx context.Context, key string) (Info, error)

	// Delete removes the object. Deleting a missing key succeeds, so callers
	// can retry a Delete safely.
	Delete(ctx context.Context, key string) error

	// List calls fn for every object whose key starts with prefix, in
	// lexical (byte) order of keys. The prefix need not end at a "/": "a/b"
	// matches "a/b/c" and "a/bc". An error from fn stops the listing and is
	// returned as is. Objects written during a listing may or may not appear.
	List(ctx context.Context, prefix string, fn func(Info) error) error

	// PresignGet returns an absolute URL from which a plain HTTP client can
	// GET the object, without credentials, until ttl passes
	// (0 < ttl <= MaxPresignTTL). The URL serves Range and If-None-Match.
	// It does not check that the object exists: fetching a missing object
	// answers 404, a tampered or expired URL 403.
	PresignGet(ctx context.Context, key string, ttl time.Duration) (string, error)

	// Close releases the store's resources. Calls after Close fail with
	// ErrClosed (for stores returned by Open).
	Close() error
}

// Handler returns the HTTP handler that serves s's presigned URLs when the
// backend serves them through the platform (the file backend: mount it at
// "/objects/"), looking through the wrappers Open adds. ok is false when the
// backend's URLs point elsewhere (S3) and nothing needs mounting.
func Handler(s Store) (h http.Handler, ok bool) {
	for {
		switch v := s.(type) {
		case interface{ Handler() http.Handler }:
			return v.Handler(), true
		case interface{ Unwrap() Store }:
			s = v.Unwrap()
		default:
			return nil, false
		}
	}
}

// Adopt makes the local file at path the object key, moving it rather than
// copying it when the backend keeps objects on the same file system (the
// file backend), and otherwise streaming it with Put. The file is consumed
// either way: on success it no longer exists at path. Finished resumable
// uploads take this path, so a large upload is not written twice.
//
// etag, when not empty, is the object's ETag for a backend that keeps its
// own (the file backend; others derive it from the content): an id that no
// other content under key ever has, which spares the backend a pass over
// the file to hash it. Empty means the backend's usual ETag.
func Adopt(ctx context.Context, s Store, key, path, contentType, etag string) (Info, error) {
	for inner := s; ; {
		if a, ok := inner.(interface {
			Adopt(ctx context.Context, key, path, contentType, etag string) (Info, error)
		}); ok {
			info, err := a.Adopt(ctx, key, path, contentType, etag)
			if !errors.Is(err, ErrCannotAdopt) {
				return info, err
			}
			break
		}
		u, ok := inner.(interface{ Unwrap() Store })
		if !ok {
			break
		}
		inner = u.Unwrap()
	}
	f, err := os.Open(path)
	if err != nil {
		return Info{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Info{}, err
	}
	info, err := s.Put(ctx, key, f, PutOptions{ContentType: contentType, Size: st.Size()})
	if err != nil {
		return Info{}, err
	}
	_ = os.Remove(path)
	return info, nil
}

// ErrCannotAdopt is returned by a backend's Adopt when the file cannot be
// moved in (another file system); Adopt then copies it.
var ErrCannotAdopt = errors.New("blob: cannot adopt the file")

// ContextReader returns a reader that stops between reads once ctx ends, so
// that copying a slow or endless stream returns promptly when cancelled.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
