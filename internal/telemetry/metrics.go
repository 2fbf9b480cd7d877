package telemetry

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c with r and returns it, or returns the collector of
// the same type already registered under c's descriptors. That lets several
// components (two buses, two platforms in one test) share one registry
// without panicking and without double counting: each gets the one
// collector. A nil r registers nothing and returns c, so components may run
// without metrics. Any other registration error (a name registered with
// different labels or help) is returned with c.
func Register[C prometheus.Collector](r prometheus.Registerer, c C) (C, error) {
	if r == nil {
		return c, nil
	}
	err := r.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

// MustRegister is Register for constructors that cannot return an error:
// it panics where Register fails, which is a programming error (two
// metrics of one name with different labels), like
// prometheus.Registerer.MustRegister, but shares already registered
// collectors instead of panicking on them.
func MustRegister[C prometheus.Collector](r prometheus.Registerer, c C) C {
	c, err := Register(r, c)
	if err != nil {
		panic(err)
	}
	return c
}
