package bus

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"sync"
)

// Factory opens a Bus for a URL whose scheme it was registered under.
type Factory func(ctx context.Context, u *url.URL, opts Options) (Bus, error)

// The registry is the one piece of package state, accepted for the same
// reason database/sql keeps its drivers: backends register themselves from
// init in the package that implements them, and one file of blank imports
// decides which backends a binary has.
var (
	registryMu sync.RWMutex
	registry   = map[string]Factory{}
)

// Register makes a backend available to Open under a URL scheme. It panics
// when the scheme is empty, the factory nil, or the scheme already taken,
// since each of those is a programming error found at start-up.
func Register(scheme string, f Factory) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if scheme == "" || f == nil {
		panic("bus: Register needs a scheme and a factory")
	}
	if _, dup := registry[scheme]; dup {
		panic("bus: Register called twice for scheme " + scheme)
	}
	registry[scheme] = f
}

// Schemes lists the registered URL schemes, sorted.
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

// Open opens the bus that rawURL names, DefaultURL when rawURL is empty.
// The backend for the URL's scheme must have been registered, usually by a
// blank import of its package.
func Open(ctx context.Context, rawURL string, opts Options) (Bus, error) {
	if rawURL == "" {
		rawURL = DefaultURL
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse repeats the URL, which may hold a password.
		return nil, fmt.Errorf("bus: parse URL: %w", redactURLError(err))
	}
	registryMu.RLock()
	f := registry[u.Scheme]
	registryMu.RUnlock()
	if f == nil {
		return nil, fmt.Errorf("bus: no backend registered for scheme %q (have %v)", u.Scheme, Schemes())
	}
	return f(ctx, u, opts)
}

func redactURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}
