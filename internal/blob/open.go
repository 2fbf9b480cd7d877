package blob

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options are what the platform gives every backend when it opens a store.
type Options struct {
	// DataDir is the platform's data directory; the file backend defaults
	// to <DataDir>/objects when its URL names no directory.
	DataDir string
	// PublicURL is the platform's externally reachable base URL (for
	// example http://127.0.0.1:8080). Backends that serve presigned URLs
	// through the platform build them on it.
	PublicURL string
	// SigningKey signs presigned URLs of backends that serve them through
	// the platform. Every replica must share it; when it is empty the file
	// backend makes a random one, valid until the process exits.
	SigningKey []byte
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the store's metrics; nil keeps them unregistered.
	Registerer prometheus.Registerer
	// Now is the clock (for presigned URL expiry); nil means time.Now.
	Now func() time.Time
}

// Factory opens a store for a parsed URL whose scheme it was registered for.
type Factory func(ctx context.Context, u *url.URL, o Options) (Store, error)

// The registry is the package's only mutable state: backends add themselves
// from init functions, which is what lets a binary choose its backends with
// blank imports.
var (
	registryMu sync.RWMutex
	registry   = map[string]Factory{}
)

// Register makes a backend available to Open under a URL scheme. It panics
// when the scheme is taken or f is nil, since that is a wiring bug to catch
// at start-up.
func Register(scheme string, f Factory) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if f == nil {
		panic("blob: Register factory is nil for scheme " + scheme)
	}
	if _, dup := registry[scheme]; dup {
		panic("blob: Register called twice for scheme " + scheme)
	}
	registry[scheme] = f
}

// Schemes returns the registered URL schemes, sorted, for error messages
// and config validation.
func Schemes() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	s := make([]string, 0, len(registry))
	for k := range registry {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// Open opens the store that rawURL names (file:///dir, s3://bucket?…), using
// the backend registered for its scheme, and wraps it with metrics and
// ErrClosed handling. The backend's package must be linked in (imported).
func Open(ctx context.Context, rawURL string, o Options) (Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse errors quote the URL, which may hold credentials.
		return nil, fmt.Errorf("blob: parse store URL: invalid URL")
	}
	registryMu.RLock()
	f := registry[u.Scheme]
	registryMu.RUnlock()
	if f == nil {
		return nil, fmt.Errorf("blob: no backend for scheme %q in %s (registered: %v)", u.Scheme, u.Redacted(), Schemes())
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s, err := f(ctx, u, o)
	if err != nil {
		return nil, fmt.Errorf("blob: open %s: %w", u.Redacted(), err)
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("blob: open %s: %w", u.Redacted(), err)
	}
	return newInstrumented(s, u.Scheme, m), nil
}
