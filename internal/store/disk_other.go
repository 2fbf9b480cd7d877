//go:build !unix

package store

import "errors"

// FreeBytes is not implemented here: it returns an error (readiness
// fails its disk check; set store.min_free_bytes to 0 to turn it off).
func FreeBytes(string) (uint64, error) {
	return 0, errors.New("free space is not known on this system")
}
