//go:build unix

package vlog

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockDir takes an exclusive lock on dir's LOCK file for as long as the
// returned file stays open: two processes appending to one log would
// corrupt it.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(dir+"/LOCK", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("vectors: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("vectors: another process has the index at %s open; processes share one index through postgres:// (pgvector)", dir)
		}
		return nil, fmt.Errorf("vectors: lock %s: %w", dir, err)
	}
	return f, nil
}
