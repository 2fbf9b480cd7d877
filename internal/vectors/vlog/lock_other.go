//go:build !unix

package vlog

import "os"

// lockDir is a no-op where flock does not exist: one process per data
// directory is then the operator's to ensure.
func lockDir(dir string) (*os.File, error) { return nil, nil }
