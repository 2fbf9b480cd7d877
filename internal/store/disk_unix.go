//go:build unix

package store

import "syscall"

// FreeBytes returns the space available to this process on dir's file
// system. The store uses it to tell a full disk from another I/O error;
// readiness to hold the data dir above a floor.
func FreeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}
