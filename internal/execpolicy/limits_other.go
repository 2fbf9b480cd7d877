//go:build !linux

package execpolicy

// setLimits is a no-op where prlimit(2) does not exist.
func setLimits(int, Limits) error { return nil }
